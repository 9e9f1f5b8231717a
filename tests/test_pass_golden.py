"""Golden IR dumps: the exact `ir.dump` text each optimizing pass leaves on a small hand-built graph.

Any change in what a pass rewrites (node names, ops, wiring, output specs, folded-node notes) shows up here as
a readable text diff. Each test also checks that the dumped graph verifies and computes what the unrewritten
model computes (`model(x, training=False)` runs the model's own IR, no passes): the dumped graph itself through
`lowering.forward`, and the jitted predict step of the CompiledModel.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import ir, layers, passes
from fncompiler.layers.convolutional import Conv2D
from fncompiler.runtime import lowering

RTOL, ATOL = 1e-5, 1e-6


# The predict pipeline with a pass that creates layers inserted before constant_folding (docs/passes.md).
def predict_pipeline_with(name):
    names = passes.default_pipeline("predict")
    names.insert(names.index("constant_folding"), name)
    return names


def _flat(xs):
    return list(xs) if isinstance(xs, (list, tuple)) else [xs]


def _reference(model, xs):
    """The unrewritten model: its own IR run layer by layer, no passes."""
    out = model(xs, training=False)
    return [np.asarray(o) for o in jax.tree_util.tree_leaves(out)]


def _forward(model, graph, xs):
    low = lowering.lower(graph, model)
    out, _, _ = low.forward([v.value for v in low.trainable], [v.value for v in low.non_trainable],
                            [jnp.asarray(x) for x in _flat(xs)], jax.random.key(0), False)
    return [np.asarray(o) for o in out]


def _assert_close(got, want):
    assert len(got) == len(want)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


def assert_golden(model, graph, expected, xs):
    """`graph` dumps as `expected`, verifies, and computes what the unrewritten model computes."""
    assert ir.verify(graph)
    assert ir.dump(graph) == expected
    _assert_close(_forward(model, graph, xs), _reference(model, xs))


def assert_predict_matches(compiled, model, xs):
    """The CompiledModel's jitted predict step (the whole pipeline) agrees with the unrewritten model."""
    got = [np.asarray(o) for o in jax.tree_util.tree_leaves(compiled.predict(xs))]
    _assert_close(got, _reference(model, xs))


def report(compiled, name, mode="predict"):
    (text,) = [r.report for r in compiled.records(mode) if r.name == name]
    return text


def set_bn_statistics(bn, rng):
    n = bn.gamma.shape[0]
    bn.set_weights([rng.random(n) + 0.5, rng.random(n), rng.random(n), rng.random(n) + 0.5])


# -- inline ------------------------------------------------------------------------------------------


def test_inline_golden_nested_twice_and_shared():
    bi = keras.Input(shape=(4,), name="bi")
    block = keras.Model(bi, layers.Dense(4, activation="tanh", name="proj")(bi), name="block")
    ei = keras.Input(shape=(4,), name="ei")
    encoder = keras.Model(ei, layers.Dense(3, name="out")(block(ei)), name="encoder")
    x = keras.Input(shape=(4,), name="x")
    y = keras.Input(shape=(4,), name="y")
    model = keras.Model([x, y], layers.add([encoder(x), encoder(y)], name="sum"), name="siamese")
    rng = np.random.default_rng(0)
    xs = [rng.random((3, 4)).astype("float32"), rng.random((3, 4)).astype("float32")]
    compiled = keras.compile_model(model, verify=True)

    assert_golden(model, compiled.graph("input"), (
        "graph siamese (%x: float32(None, 4), %y: float32(None, 4)) {\n"
        "  %encoder:0 = Functional(%x) -> float32(None, 3)\n"
        "  %encoder:1 = Functional(%y) -> float32(None, 3)\n"
        "  %sum = Add(%encoder:0, %encoder:1) -> float32(None, 3)\n"
        "  return %sum\n"
        "}"), xs)
    inlined = (
        "graph siamese (%x: float32(None, 4), %y: float32(None, 4)) {\n"
        "  %encoder:0/block/proj = Dense(%x) -> float32(None, 4)\n"
        "  %encoder:0/out = Dense(%encoder:0/block/proj) -> float32(None, 3)\n"
        "  %encoder:1/block/proj = Dense(%y) -> float32(None, 4)\n"
        "  %encoder:1/out = Dense(%encoder:1/block/proj) -> float32(None, 3)\n"
        "  %sum = Add(%encoder:0/out, %encoder:1/out) -> float32(None, 3)\n"
        "  return %sum\n"
        "}")
    assert_golden(model, compiled.graph("inline"), inlined, xs)
    assert_golden(model, compiled.graph("predict"), inlined, xs)     # nothing later changes it
    assert report(compiled, "inline") == \
        "inlined 4 nested models: encoder:0, encoder:1, encoder:0/block, encoder:1/block"
    g = compiled.graph("predict")
    # the two calls of the shared encoder share its layers (weights), and cse keeps them: different inputs
    assert g.nodes["encoder:0/out"]["layer"] is g.nodes["encoder:1/out"]["layer"] is encoder.get_layer("out")
    assert g.nodes["encoder:1/block/proj"]["layer"] is block.get_layer("proj")
    assert_predict_matches(compiled, model, xs)


# -- inference_specialization ------------------------------------------------------------------------


def test_inference_specialization_golden_removes_dropout_and_noise_in_predict_only():
    x = keras.Input(shape=(5,), name="x")
    h = layers.Dense(4, name="d1")(x)
    h = layers.Dropout(0.5, name="drop")(h)
    h = layers.GaussianNoise(0.1, name="noise")(h)
    model = keras.Model(x, layers.Dense(2, name="d2")(h), name="regularized")
    xs = np.random.default_rng(0).random((3, 5)).astype("float32")
    compiled = keras.compile_model(model, verify=True)

    unchanged = (
        "graph regularized (%x: float32(None, 5)) {\n"
        "  %d1 = Dense(%x) -> float32(None, 4)\n"
        "  %drop = Dropout(%d1) -> float32(None, 4)\n"
        "  %noise = GaussianNoise(%drop) -> float32(None, 4)\n"
        "  %d2 = Dense(%noise) -> float32(None, 2)\n"
        "  return %d2\n"
        "}")
    assert_golden(model, compiled.graph("input"), unchanged, xs)
    specialized = (
        "graph regularized (%x: float32(None, 5)) {\n"
        "  %d1 = Dense(%x) -> float32(None, 4)\n"
        "  %d2 = Dense(%d1) -> float32(None, 2)\n"
        "  return %d2\n"
        "}")
    assert_golden(model, compiled.graph("inference_specialization"), specialized, xs)
    assert_golden(model, compiled.graph("predict"), specialized, xs)
    assert report(compiled, "inference_specialization") == \
        "removed 2 training-only nodes: drop (Dropout), noise (GaussianNoise)"
    assert_golden(model, compiled.graph("train"), unchanged, xs)     # training keeps them (they act there)
    assert_predict_matches(compiled, model, xs)


# -- dead_code_elimination ---------------------------------------------------------------------------


def test_dead_code_elimination_golden_unused_output_of_an_inlined_model():
    i = keras.Input(shape=(3,), name="i")
    two = keras.Model(i, [layers.Dense(2, name="a")(i), layers.Dense(2, name="b")(i)], name="two")
    x = keras.Input(shape=(3,), name="x")
    first, _ = two(x)
    model = keras.Model(x, layers.Dense(1, name="out")(first), name="uses_one")
    xs = np.random.default_rng(0).random((3, 3)).astype("float32")
    compiled = keras.compile_model(model, verify=True)

    assert_golden(model, compiled.graph("input"), (
        "graph uses_one (%x: float32(None, 3)) {\n"
        "  %two = Functional(%x) -> float32(None, 2), float32(None, 2)\n"
        "  %out = Dense(%two[0]) -> float32(None, 1)\n"
        "  return %out\n"
        "}"), xs)
    with_dead = (
        "graph uses_one (%x: float32(None, 3)) {\n"
        "  %two/a = Dense(%x) -> float32(None, 2)\n"
        "  %two/b = Dense(%x) -> float32(None, 2)\n"
        "  %out = Dense(%two/a) -> float32(None, 1)\n"
        "  return %out\n"
        "}")
    assert_golden(model, compiled.graph("inline"), with_dead, xs)
    live = (
        "graph uses_one (%x: float32(None, 3)) {\n"
        "  %two/a = Dense(%x) -> float32(None, 2)\n"
        "  %out = Dense(%two/a) -> float32(None, 1)\n"
        "  return %out\n"
        "}")
    assert_golden(model, compiled.graph("dead_code_elimination"), live, xs)
    assert_golden(model, compiled.graph("predict"), live, xs)
    assert report(compiled, "dead_code_elimination") == "removed 1 dead nodes: two/b"
    assert_golden(model, compiled.graph("train"), with_dead, xs)     # not run in train mode
    assert_predict_matches(compiled, model, xs)


# -- cse ---------------------------------------------------------------------------------------------


def test_cse_golden_merges_identical_weight_free_calls_and_what_reads_them():
    x = keras.Input(shape=(4,), name="x")
    t1 = layers.Activation("tanh", name="t1")(x)
    t2 = layers.Activation("tanh", name="t2")(x)        # same class, config and input as t1: merged
    s = layers.Activation("sigmoid", name="s")(x)       # other config: kept
    d = layers.Dense(3, name="d")
    model = keras.Model(x, layers.concatenate([d(t1), d(t2), s], name="cat"), name="dups")
    xs = np.random.default_rng(0).standard_normal((3, 4)).astype("float32")
    compiled = keras.compile_model(model, verify=True)

    assert_golden(model, compiled.graph("input"), (
        "graph dups (%x: float32(None, 4)) {\n"
        "  %t1 = Activation(%x) -> float32(None, 4)\n"
        "  %t2 = Activation(%x) -> float32(None, 4)\n"
        "  %s = Activation(%x) -> float32(None, 4)\n"
        "  %d:0 = Dense(%t1) -> float32(None, 3)\n"
        "  %d:1 = Dense(%t2) -> float32(None, 3)\n"
        "  %cat = Concatenate(%d:0, %d:1, %s) -> float32(None, 10)\n"
        "  return %cat\n"
        "}"), xs)
    merged = (
        "graph dups (%x: float32(None, 4)) {\n"
        "  %t1 = Activation(%x) -> float32(None, 4)\n"
        "  %s = Activation(%x) -> float32(None, 4)\n"
        "  %d:0 = Dense(%t1) -> float32(None, 3)\n"
        "  %cat = Concatenate(%d:0, %d:0, %s) -> float32(None, 10)\n"
        "  return %cat\n"
        "}")
    assert_golden(model, compiled.graph("cse"), merged, xs)
    assert_golden(model, compiled.graph("predict"), merged, xs)
    # once t2 is t1, the second call of the shared Dense reads the same input as the first: merged too
    assert report(compiled, "cse") == "merged 2 duplicate nodes: t2 -> t1, d:1 -> d:0"
    assert_predict_matches(compiled, model, xs)


# -- simplify ----------------------------------------------------------------------------------------


def test_simplify_golden_linear_activation_and_reshape_chains():
    x = keras.Input(shape=(4, 6), name="x")
    h = layers.Activation("linear", name="lin")(x)      # removed
    h = layers.Reshape((2, 12), name="r1")(h)
    h = layers.Reshape((3, 8), name="r2")(h)            # Reshape(Reshape): r1 goes
    h = layers.Flatten(name="flat")(h)                  # Flatten(Reshape): becomes one Reshape of x to (24,)
    h = layers.Dense(5, name="d")(h)
    h = layers.Flatten(name="flat2")(h)                 # Flatten of an already-flat (None, 5) tensor ...
    h = layers.Reshape((5, 1), name="r3")(h)            # ... merged into r3 ...
    h = layers.Reshape((5,), name="r4")(h)              # ... which cancels with r4: d feeds head directly
    model = keras.Model(x, layers.Dense(2, name="head")(h), name="shapes")
    xs = np.random.default_rng(0).standard_normal((3, 4, 6)).astype("float32")
    compiled = keras.compile_model(model, verify=True)

    assert_golden(model, compiled.graph("input"), (
        "graph shapes (%x: float32(None, 4, 6)) {\n"
        "  %lin = Activation(%x) -> float32(None, 4, 6)\n"
        "  %r1 = Reshape(%lin) -> float32(None, 2, 12)\n"
        "  %r2 = Reshape(%r1) -> float32(None, 3, 8)\n"
        "  %flat = Flatten(%r2) -> float32(None, 24)\n"
        "  %d = Dense(%flat) -> float32(None, 5)\n"
        "  %flat2 = Flatten(%d) -> float32(None, 5)\n"
        "  %r3 = Reshape(%flat2) -> float32(None, 5, 1)\n"
        "  %r4 = Reshape(%r3) -> float32(None, 5)\n"
        "  %head = Dense(%r4) -> float32(None, 2)\n"
        "  return %head\n"
        "}"), xs)
    simplified = (
        "graph shapes (%x: float32(None, 4, 6)) {\n"
        "  %flat = Reshape(%x) -> float32(None, 24)\n"
        "  %d = Dense(%flat) -> float32(None, 5)\n"
        "  %head = Dense(%d) -> float32(None, 2)\n"
        "  return %head\n"
        "}")
    assert_golden(model, compiled.graph("simplify"), simplified, xs)
    assert_golden(model, compiled.graph("predict"), simplified, xs)
    assert report(compiled, "simplify") == (
        "5 simplifications (lin: removed linear activation; r2: merged two reshapes; flat: merged two reshapes; "
        "r3: merged two reshapes; r4: removed a pair of cancelling reshapes)")
    assert tuple(compiled.graph("predict").nodes["flat"]["config"]["target_shape"]) == (24,)
    assert_predict_matches(compiled, model, xs)


def test_simplify_golden_repeated_relu_permutes_and_cancelling_reshapes():
    x = keras.Input(shape=(4, 6), name="x")
    h = layers.ReLU(name="r1")(x)
    h = layers.Activation("relu", name="r2")(h)         # relu(relu(x)): r2 goes
    h = layers.Permute((2, 1), name="p1")(h)
    h = layers.Permute((2, 1), name="p2")(h)            # cancels with p1
    h = layers.Reshape((24,), name="flat")(h)
    h = layers.Reshape((4, 6), name="unflat")(h)        # cancels with flat
    h = layers.Reshape((12,), name="img")(layers.Dense(3, name="d")(h))
    h = layers.Permute((2, 1, 3), name="pa")(layers.Reshape((4, 3, 1), name="img2")(h))
    h = layers.Permute((1, 3, 2), name="pb")(h)         # composed with pa into one Permute((2, 3, 1))
    model = keras.Model(x, h, name="cancel")
    xs = np.random.default_rng(0).standard_normal((3, 4, 6)).astype("float32")
    compiled = keras.compile_model(model, verify=True)

    assert_golden(model, compiled.graph("input"), (
        "graph cancel (%x: float32(None, 4, 6)) {\n"
        "  %r1 = ReLU(%x) -> float32(None, 4, 6)\n"
        "  %r2 = Activation(%r1) -> float32(None, 4, 6)\n"
        "  %p1 = Permute(%r2) -> float32(None, 6, 4)\n"
        "  %p2 = Permute(%p1) -> float32(None, 4, 6)\n"
        "  %flat = Reshape(%p2) -> float32(None, 24)\n"
        "  %unflat = Reshape(%flat) -> float32(None, 4, 6)\n"
        "  %d = Dense(%unflat) -> float32(None, 4, 3)\n"
        "  %img = Reshape(%d) -> float32(None, 12)\n"
        "  %img2 = Reshape(%img) -> float32(None, 4, 3, 1)\n"
        "  %pa = Permute(%img2) -> float32(None, 3, 4, 1)\n"
        "  %pb = Permute(%pa) -> float32(None, 3, 1, 4)\n"
        "  return %pb\n"
        "}"), xs)
    simplified = (
        "graph cancel (%x: float32(None, 4, 6)) {\n"
        "  %r1 = ReLU(%x) -> float32(None, 4, 6)\n"
        "  %d = Dense(%r1) -> float32(None, 4, 3)\n"
        "  %img2 = Reshape(%d) -> float32(None, 4, 3, 1)\n"
        "  %pb = Permute(%img2) -> float32(None, 3, 1, 4)\n"
        "  return %pb\n"
        "}")
    assert_golden(model, compiled.graph("simplify"), simplified, xs)
    assert_golden(model, compiled.graph("predict"), simplified, xs)
    assert report(compiled, "simplify") == (
        "5 simplifications (r2: removed repeated relu; p2: removed a pair of cancelling permutes; "
        "unflat: removed a pair of cancelling reshapes; img2: merged two reshapes; pb: merged two permutes)")
    assert tuple(compiled.graph("predict").nodes["pb"]["layer"].dims) == (2, 3, 1)
    assert_predict_matches(compiled, model, xs)


# -- fold_batchnorm ----------------------------------------------------------------------------------


def test_fold_batchnorm_golden_in_the_export_pipeline():
    x = keras.Input(shape=(6,), name="x")
    h = layers.Dense(4, name="d")(x)
    h = layers.BatchNormalization(name="bn")(h)                          # folds into d
    h = layers.Activation("relu", name="act")(h)
    h = layers.Dense(4, activation="relu", name="d_relu")(h)
    h = layers.BatchNormalization(name="bn_kept")(h)                     # d_relu has an activation: kept
    h = layers.Reshape((2, 2, 1), name="img")(h)
    h = Conv2D(3, 1, use_bias=False, name="conv")(h)
    h = layers.BatchNormalization(name="bn2")(h)                         # folds into conv (no bias)
    model = keras.Model(x, layers.Flatten(name="flat")(h), name="bn_model")
    rng = np.random.default_rng(0)
    for name in ("bn", "bn_kept", "bn2"):
        set_bn_statistics(model.get_layer(name), rng)
    xs = rng.random((3, 6)).astype("float32")

    assert_golden(model, keras.compile_model(model, verify=True).graph("input"), (
        "graph bn_model (%x: float32(None, 6)) {\n"
        "  %d = Dense(%x) -> float32(None, 4)\n"
        "  %bn = BatchNormalization(%d) -> float32(None, 4)\n"
        "  %act = Activation(%bn) -> float32(None, 4)\n"
        "  %d_relu = Dense(%act) -> float32(None, 4)\n"
        "  %bn_kept = BatchNormalization(%d_relu) -> float32(None, 4)\n"
        "  %img = Reshape(%bn_kept) -> float32(None, 2, 2, 1)\n"
        "  %conv = Conv2D(%img) -> float32(None, 2, 2, 3)\n"
        "  %bn2 = BatchNormalization(%conv) -> float32(None, 2, 2, 3)\n"
        "  %flat = Flatten(%bn2) -> float32(None, 12)\n"
        "  return %flat\n"
        "}"), xs)
    folded = (
        "graph bn_model (%x: float32(None, 6)) {\n"
        "  %d+bn = FoldedBatchNorm(%x) -> float32(None, 4)\n"
        "  %act = Activation(%d+bn) -> float32(None, 4)\n"
        "  %d_relu = Dense(%act) -> float32(None, 4)\n"
        "  %bn_kept = BatchNormalization(%d_relu) -> float32(None, 4)\n"
        "  %img = Reshape(%bn_kept) -> float32(None, 2, 2, 1)\n"
        "  %conv+bn2 = FoldedBatchNorm(%img) -> float32(None, 2, 2, 3)\n"
        "  %flat = Flatten(%conv+bn2) -> float32(None, 12)\n"
        "  return %flat\n"
        "}")
    compiled = keras.compile_model(model, verify=True)
    assert_golden(model, compiled.graph("export:fold_batchnorm"), folded, xs)
    assert_golden(model, compiled.graph("export"), folded, xs)
    assert report(compiled, "fold_batchnorm", "export") == "folded 2 BatchNormalization: bn into d, bn2 into conv"
    assert compiled.graph("export").nodes["conv+bn2"]["meta"]["fold_batchnorm"] == ["conv", "bn2"]
    # the predict pipeline does not fold (measured slower on CPU); the export pipeline's predict step does
    assert ir.count_ops(compiled.graph("predict"))["BatchNormalization"] == 3
    exported = keras.compile_model(model, passes=passes.default_pipeline("export"), verify=True)
    assert_golden(model, exported.graph("predict"), folded, xs)
    assert_predict_matches(exported, model, xs)


# -- fusion ------------------------------------------------------------------------------------------


def test_fusion_golden_when_named():
    x = keras.Input(shape=(6,), name="x")
    h = layers.Dense(8, name="d")(x)
    h = layers.Activation("relu", name="act")(h)                         # Dense -> Activation
    h = layers.Dense(6, name="d2")(h)
    h = layers.add([h, x], name="res")
    model = keras.Model(x, layers.Activation("tanh", name="act2")(h), name="fusable")   # Add -> Activation
    xs = np.random.default_rng(0).standard_normal((3, 6)).astype("float32")
    assert "fusion" not in passes.default_pipeline("predict")
    compiled = keras.compile_model(model, passes=predict_pipeline_with("fusion"), verify=True)

    assert_golden(model, compiled.graph("input"), (
        "graph fusable (%x: float32(None, 6)) {\n"
        "  %d = Dense(%x) -> float32(None, 8)\n"
        "  %act = Activation(%d) -> float32(None, 8)\n"
        "  %d2 = Dense(%act) -> float32(None, 6)\n"
        "  %res = Add(%d2, %x) -> float32(None, 6)\n"
        "  %act2 = Activation(%res) -> float32(None, 6)\n"
        "  return %act2\n"
        "}"), xs)
    fused = (
        "graph fusable (%x: float32(None, 6)) {\n"
        "  %d+act = Fused[linear+activation](%x) -> float32(None, 8)\n"
        "  %d2 = Dense(%d+act) -> float32(None, 6)\n"
        "  %res+act2 = Fused[add+activation](%d2, %x) -> float32(None, 6)\n"
        "  return %res+act2\n"
        "}")
    assert_golden(model, compiled.graph("fusion"), fused, xs)
    assert_golden(model, compiled.graph("predict"), fused, xs)
    assert report(compiled, "fusion") == "applied 2 fusions (linear+activation: d+act, add+activation: res+act2)"
    assert compiled.graph("predict").nodes["d+act"]["meta"]["fusion"] == ["d", "act"]
    assert_predict_matches(compiled, model, xs)


# -- constant_folding (weight-only expressions) ------------------------------------------------------


def test_constant_folding_golden_notes_folded_weight_expressions():
    x = keras.Input(shape=(6,), name="x")
    h = layers.Dense(4, name="d")(x)
    h = layers.BatchNormalization(name="bn")(h)          # scale and offset depend on weights only: folded
    h = layers.Activation("relu", name="act")(h)
    h = layers.LayerNormalization(name="ln")(h)          # statistics of the batch: nothing weight-only to fold
    model = keras.Model(x, layers.Dense(2, name="head")(h), name="norms")
    rng = np.random.default_rng(0)
    set_bn_statistics(model.get_layer("bn"), rng)
    xs = rng.random((3, 6)).astype("float32")
    plain = keras.compile_model(model, verify=True)
    compiled = keras.compile_model(model, verify=True, pass_options={"fold_weight_expressions": True})

    unfolded = (
        "graph norms (%x: float32(None, 6)) {\n"
        "  %d = Dense(%x) -> float32(None, 4)\n"
        "  %bn = BatchNormalization(%d) -> float32(None, 4)\n"
        "  %act = Activation(%bn) -> float32(None, 4)\n"
        "  %ln = LayerNormalization(%act) -> float32(None, 4)\n"
        "  %head = Dense(%ln) -> float32(None, 2)\n"
        "  return %head\n"
        "}")
    assert_golden(model, plain.graph("predict"), unfolded, xs)     # off by default
    folded = (
        "graph norms (%x: float32(None, 6)) {\n"
        "  %d = Dense(%x) -> float32(None, 4)\n"
        "  %bn = BatchNormalization(%d) -> float32(None, 4)  # folded: 6 weight-only expressions\n"
        "  %act = Activation(%bn) -> float32(None, 4)\n"
        "  %ln = LayerNormalization(%act) -> float32(None, 4)\n"
        "  %head = Dense(%ln) -> float32(None, 2)\n"
        "  return %head\n"
        "}")
    assert_golden(model, compiled.graph("constant_folding"), folded, xs)
    assert_golden(model, compiled.graph("predict"), folded, xs)
    assert report(compiled, "constant_folding").startswith(
        "folded 0 nodes / 6 weight-only expressions in 1 layers; residuals ")
    meta = compiled.graph("predict").nodes["bn"]["meta"]["constant_folding"]
    assert meta["residuals"] == 2 and sorted(meta["weights"]) == ["bn/beta", "bn/gamma", "bn/moving_mean",
                                                                  "bn/moving_variance"]
    assert type(compiled.step("predict")).__name__ == "FoldedPredictStep"
    assert_predict_matches(compiled, model, xs)
    set_bn_statistics(model.get_layer("bn"), rng)        # new weights: the residuals are computed again
    assert_predict_matches(compiled, model, xs)


def test_constant_folding_golden_with_fold_batchnorm_in_predict():
    x = keras.Input(shape=(6,), name="x")
    h = layers.BatchNormalization(name="bn")(layers.Dense(4, name="d")(x))
    h = layers.BatchNormalization(name="bn_kept")(layers.Dense(4, activation="relu", name="d_relu")(h))
    model = keras.Model(x, layers.Dense(2, name="head")(h), name="norms")
    rng = np.random.default_rng(1)
    for name in ("bn", "bn_kept"):
        set_bn_statistics(model.get_layer(name), rng)
    xs = rng.random((3, 6)).astype("float32")
    compiled = keras.compile_model(model, passes=predict_pipeline_with("fold_batchnorm"), verify=True,
                                   pass_options={"fold_weight_expressions": True})

    assert_golden(model, compiled.graph("fold_batchnorm"), (
        "graph norms (%x: float32(None, 6)) {\n"
        "  %d+bn = FoldedBatchNorm(%x) -> float32(None, 4)\n"
        "  %d_relu = Dense(%d+bn) -> float32(None, 4)\n"
        "  %bn_kept = BatchNormalization(%d_relu) -> float32(None, 4)\n"
        "  %head = Dense(%bn_kept) -> float32(None, 2)\n"
        "  return %head\n"
        "}"), xs)
    assert_golden(model, compiled.graph("predict"), (
        "graph norms (%x: float32(None, 6)) {\n"
        "  %d+bn = FoldedBatchNorm(%x) -> float32(None, 4)  # folded: 8 weight-only expressions\n"
        "  %d_relu = Dense(%d+bn) -> float32(None, 4)\n"
        "  %bn_kept = BatchNormalization(%d_relu) -> float32(None, 4)  # folded: 6 weight-only expressions\n"
        "  %head = Dense(%bn_kept) -> float32(None, 2)\n"
        "  return %head\n"
        "}"), xs)
    # the rescaled kernel and bias are the residuals: kernel (6, 4) and bias (4,) in float32
    assert compiled.graph("predict").nodes["d+bn"]["meta"]["constant_folding"]["residual_bytes"] == (24 + 4) * 4
    assert_predict_matches(compiled, model, xs)


# -- scan_repeated_blocks ----------------------------------------------------------------------------


def residual_dense_model(blocks):
    x = keras.Input(shape=(8,), name="x")
    h = x
    for k in range(blocks):
        d = layers.Dense(8, activation="relu", name=f"b{k}_dense")(h)
        h = layers.add([h, d], name=f"b{k}_add")
    return keras.Model(x, layers.Dense(2, name="head")(h), name="residual")


def test_scan_repeated_blocks_golden_three_residual_dense_blocks():
    model = residual_dense_model(3)
    xs = np.random.default_rng(0).random((3, 8)).astype("float32")
    compiled = keras.compile_model(model, passes=predict_pipeline_with("scan_repeated_blocks"), verify=True,
                                   pass_options={"scan_blocks": "always"})

    assert_golden(model, compiled.graph("input"), (
        "graph residual (%x: float32(None, 8)) {\n"
        "  %b0_dense = Dense(%x) -> float32(None, 8)\n"
        "  %b0_add = Add(%x, %b0_dense) -> float32(None, 8)\n"
        "  %b1_dense = Dense(%b0_add) -> float32(None, 8)\n"
        "  %b1_add = Add(%b0_add, %b1_dense) -> float32(None, 8)\n"
        "  %b2_dense = Dense(%b1_add) -> float32(None, 8)\n"
        "  %b2_add = Add(%b1_add, %b2_dense) -> float32(None, 8)\n"
        "  %head = Dense(%b2_add) -> float32(None, 2)\n"
        "  return %head\n"
        "}"), xs)
    scanned = (
        "graph residual (%x: float32(None, 8)) {\n"
        "  %scan[b0_dense..b2_add] = ScanBlocks(%x) -> float32(None, 8)\n"
        "  %head = Dense(%scan[b0_dense..b2_add]) -> float32(None, 2)\n"
        "  return %head\n"
        "}")
    assert_golden(model, compiled.graph("scan_repeated_blocks"), scanned, xs)
    assert_golden(model, compiled.graph("predict"), scanned, xs)
    assert report(compiled, "scan_repeated_blocks") == "scanned 1 runs of repeated blocks (3 x 2 nodes)"
    node = compiled.graph("predict").nodes["scan[b0_dense..b2_add]"]
    assert node["config"] == {"blocks": 3, "block_ops": ["Dense", "Add"]}
    # the loop body is the first block's IR, read from the block's input
    template = node["layer"]._template
    assert ir.verify(template)
    assert ir.dump(template) == (
        "graph block (%block_input: float32(None, 8)) {\n"
        "  %b0_dense = Dense(%block_input) -> float32(None, 8)\n"
        "  %b0_add = Add(%block_input, %b0_dense) -> float32(None, 8)\n"
        "  return %b0_add\n"
        "}")
    assert_predict_matches(compiled, model, xs)


def test_scan_repeated_blocks_golden_with_folded_weight_stacking():
    model = residual_dense_model(3)
    xs = np.random.default_rng(1).random((3, 8)).astype("float32")
    compiled = keras.compile_model(model, passes=predict_pipeline_with("scan_repeated_blocks"), verify=True,
                                   pass_options={"scan_blocks": "always", "fold_weight_expressions": True})
    assert_golden(model, compiled.graph("predict"), (
        "graph residual (%x: float32(None, 8)) {\n"
        "  %scan[b0_dense..b2_add] = ScanBlocks(%x) -> float32(None, 8)  # folded: 3 weight-only expressions\n"
        "  %head = Dense(%scan[b0_dense..b2_add]) -> float32(None, 2)\n"
        "  return %head\n"
        "}"), xs)
    meta = compiled.graph("predict").nodes["scan[b0_dense..b2_add]"]["meta"]["constant_folding"]
    # the stacked kernels (3, 8, 8) and biases (3, 8), and the scan's block index arange(3) (int32)
    assert meta["residual_bytes"] == (3 * 8 * 8 + 3 * 8) * 4 + 3 * 4
    assert_predict_matches(compiled, model, xs)


# -- stages ------------------------------------------------------------------------------------------


def test_stage_of_a_pass_that_changed_nothing_is_a_snapshot():
    x = keras.Input(shape=(6,), name="x")
    h = layers.BatchNormalization(name="bn")(layers.Dense(4, name="d")(x))
    model = keras.Model(x, h, name="bn_model")
    compiled = keras.compile_model(model, verify=True)
    assert ir.dump(compiled.graph("export")) == (
        "graph bn_model (%x: float32(None, 6)) {\n"
        "  %d+bn = FoldedBatchNorm(%x) -> float32(None, 4)\n"
        "  return %d+bn\n"
        "}")
    # cse ran before fold_batchnorm and changed nothing: the graph after it still has the BatchNormalization
    assert ir.dump(compiled.graph("export:cse")) == (
        "graph bn_model (%x: float32(None, 6)) {\n"
        "  %d = Dense(%x) -> float32(None, 4)\n"
        "  %bn = BatchNormalization(%d) -> float32(None, 4)\n"
        "  return %bn\n"
        "}")
