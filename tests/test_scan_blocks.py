"""scan_repeated_blocks: the rewrite keeps outputs, gradients and trained weights; the scan body traces once; the
"auto" policy scans deep train-mode runs and declines where the scan was measured not to pay (docs/passes.md)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import fncompiler as keras
from fncompiler import ir, layers
from fncompiler.passes import PassContext, PassError, PassManager
from fncompiler.passes import scan_blocks
from fncompiler.runtime import lowering
from fncompiler.runtime import steps as steps_lib

ALWAYS = {"scan_blocks": "always"}
RTOL = 1e-5


def run_passes(model, mode="train", options=ALWAYS):
    return PassManager(["shape_inference", "scan_repeated_blocks"], verify=True).run(
        model.graph, PassContext(mode, options=dict(options)))


def residual_model(blocks=5, width=8, block_fn=None):
    x = keras.Input(shape=(width,), name="x")
    h = layers.Dense(width, name="stem")(x)
    for i in range(blocks):
        if block_fn is not None:
            h = block_fn(h, i)
            continue
        y = layers.Dense(width, activation="relu", name=f"b{i}_d1")(h)
        y = layers.Dense(width, name=f"b{i}_d2")(y)
        h = layers.add([h, y], name=f"b{i}_add")
    return keras.Model(x, layers.Dense(3, name="head")(h))


def bn_block(h, i):
    y = layers.Dense(8, name=f"b{i}_d", activity_regularizer="l2")(h)
    y = layers.BatchNormalization(name=f"b{i}_bn")(y)
    return layers.add([h, layers.Activation("tanh", name=f"b{i}_act")(y)], name=f"b{i}_add")


def transformer_model(blocks=3, seq=4, dim=8, heads=2):
    x = keras.Input(shape=(seq, dim), name="x")
    h = x
    for i in range(blocks):
        a = layers.MultiHeadAttention(heads, dim // heads, name=f"b{i}_mha")(h, h)
        h = layers.LayerNormalization(name=f"b{i}_ln1")(layers.add([h, a]))
        f = layers.Dense(dim * 2, activation="gelu", name=f"b{i}_f1")(h)
        f = layers.Dense(dim, name=f"b{i}_f2")(f)
        h = layers.LayerNormalization(name=f"b{i}_ln2")(layers.add([h, f]))
    return keras.Model(x, layers.Dense(3, name="head")(layers.GlobalAveragePooling1D()(h)))


def randomize_bn(model):
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            n = layer.get_weights()[0].shape[0]
            layer.set_weights([rng.random(n) + 0.5, rng.random(n), rng.random(n), rng.random(n) + 0.5])


def forward(model, graph, x, training=False, tv=None):
    """Outputs, new non-trainable values (in the model's layout) and losses of the lowered graph."""
    low = lowering.lower(graph, model)
    tv = [v.value for v in low.trainable] if tv is None else tv
    out, new_nt, losses = low.forward(tv, [v.value for v in low.non_trainable], [jnp.asarray(x)],
                                      jax.random.key(0), training)
    return out, low.weights_to_model(tv, new_nt)[1], losses


def loss_and_grads(model, graph, x):
    """Loss and gradients, the gradients in the model's layout (a stacked program's cut into its blocks')."""
    low = lowering.lower(graph, model)

    def loss(tv):
        out, _, losses = forward(model, graph, x, True, tv)
        return jnp.sum(out[0] ** 2) + sum(losses)
    value, grads = jax.value_and_grad(loss)([v.value for v in low.trainable])
    return value, low.weights_to_model(grads, [v.value for v in low.non_trainable])[0]


def assert_close(a, b, scale=1.0):
    """Within 1e-5 relative, or 1e-5 of `scale` (and of the array's own largest entry) for entries that are
    round-off next to much larger ones."""
    a, b = np.asarray(a), np.asarray(b)
    scale = max(scale, float(np.max(np.abs(b))) if b.size else 1.0)
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * scale)


def assert_equivalent(model, x, mode="train", options=ALWAYS):
    """The scanned graph gives the same outputs, gradients and non-trainable updates as the original."""
    graph, records, _ = run_passes(model, mode, options)
    assert records[-1].changed, records[-1].report
    ir.verify(graph)
    for training in (False, True):
        before, after = forward(model, model.graph, x, training), forward(model, graph, x, training)
        assert_close(before[0][0], after[0][0])
        for a, b in zip(before[1], after[1]):
            assert_close(a, b)
        assert_close(sum(before[2]) if before[2] else 0.0, sum(after[2]) if after[2] else 0.0)
    (l0, g0), (l1, g1) = loss_and_grads(model, model.graph, x), loss_and_grads(model, graph, x)
    assert_close(l0, l1)
    # gradients that are exactly zero in exact arithmetic (a bias or beta followed by a BatchNormalization) come
    # out as round-off, so they compare to the largest gradient of the model
    scale = max(float(np.max(np.abs(np.asarray(g)))) for g in g0)
    for a, b in zip(g0, g1):
        assert_close(a, b, scale)
    return graph


def test_residual_blocks_become_one_scan_with_same_outputs_and_gradients():
    model = residual_model(blocks=5)
    x = np.random.default_rng(0).standard_normal((4, 8)).astype("float32")
    graph = assert_equivalent(model, x)
    assert ir.count_ops(graph)["ScanBlocks"] == 1
    node = next(d for _, d in graph.nodes(data=True) if d["op"] == "ScanBlocks")
    assert node["config"]["blocks"] == 5 and node["config"]["block_ops"] == ["Dense", "Dense", "Add"]
    assert graph.number_of_nodes() == 4        # input, stem, scan, head


def test_batchnorm_statistics_and_activity_losses_come_out_of_the_scan():
    model = residual_model(blocks=4, block_fn=bn_block)
    randomize_bn(model)
    x = np.random.default_rng(1).standard_normal((6, 8)).astype("float32")
    graph = assert_equivalent(model, x)
    assert ir.count_ops(graph)["ScanBlocks"] == 1
    _, new_nt, losses = forward(model, graph, x, training=True)
    assert len(losses) == 1                     # the 4 blocks' activity losses, summed by the scan
    low = lowering.lower(graph, model)
    changed = [not np.allclose(np.asarray(a), np.asarray(v.value)) for a, v in zip(new_nt, low.model_non_trainable)]
    assert sum(changed) == 8                    # moving mean and variance of each of the 4 blocks


def test_transformer_blocks_scan_as_one_period_two_run():
    model = transformer_model(blocks=3)
    x = np.random.default_rng(2).standard_normal((2, 4, 8)).astype("float32")
    graph = assert_equivalent(model, x)
    node = next(d for _, d in graph.nodes(data=True) if d["op"] == "ScanBlocks")
    assert node["config"]["blocks"] == 3
    assert node["config"]["block_ops"].count("MultiHeadAttention") == 1
    assert node["config"]["block_ops"].count("LayerNormalization") == 2


def _train_once(model, passes, options):
    cm = keras.compile_model(model, passes=passes, pass_options=options)
    low = cm.lowered("train")
    state = steps_lib.initial_train_state([jnp.array(v.value) for v in low.trainable],
                                          [jnp.array(v.value) for v in low.non_trainable], model._compile_config, 0)
    x = [jnp.asarray(np.random.default_rng(3).standard_normal((6, 8)).astype("float32"))]
    y = [jnp.asarray(np.random.default_rng(4).integers(0, 3, 6).astype("int32"))]
    step = cm.step("train")
    for _ in range(2):
        state = step(state, x, y, None)
    tv, ntv = low.weights_to_model(state[0], state[1])        # the model's layout, for comparison
    return cm, jax.device_get((tv, ntv, low.opt_state_to_model(state[2])) + tuple(state[3:]))


def test_train_step_updates_weights_like_the_unrolled_graph_and_traces_once():
    model = residual_model(blocks=4, block_fn=bn_block)
    randomize_bn(model)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    base = ["shape_inference", "dtype_check"]
    cm0, s0 = _train_once(model, base, None)
    cm1, s1 = _train_once(model, base + ["scan_repeated_blocks"], ALWAYS)
    assert ir.count_ops(cm1.graph("train"))["ScanBlocks"] == 1
    for a, b in zip(jax.tree_util.tree_leaves(s0[:3]), jax.tree_util.tree_leaves(s1[:3])):
        assert_close(a, b)                      # weights, BN statistics and Adam moments after two steps
    assert cm0.trace_counts["train"] == cm1.trace_counts["train"] == 1


class CountingDense(layers.Dense):
    calls = 0

    def call(self, inputs, *args, **kwargs):
        type(self).calls += 1                 # runs while JAX traces, not per step
        return super().call(inputs, *args, **kwargs)


def counting_block(h, i):
    y = CountingDense(8, activation="relu", name=f"b{i}_d1")(h)
    return layers.add([h, CountingDense(8, name=f"b{i}_d2")(y)], name=f"b{i}_add")


@pytest.mark.parametrize("scanned", [False, True])
def test_the_scan_body_is_traced_once_per_step_trace(scanned):
    model = residual_model(blocks=6, block_fn=counting_block)
    model.compile(optimizer="sgd", loss="mse")
    cm = keras.compile_model(model, passes=["shape_inference"] + (["scan_repeated_blocks"] if scanned else []),
                             pass_options=ALWAYS)
    low = cm.lowered("train")
    state = steps_lib.initial_train_state([v.value for v in low.trainable], [v.value for v in low.non_trainable],
                                          model._compile_config, 0)
    x = [jnp.ones((2, 8))]
    y = [jnp.ones((2, 3))]
    CountingDense.calls = 0
    state = cm.step("train")(state, x, y, None)
    traced = CountingDense.calls
    state = cm.step("train")(state, x, y, None)
    assert CountingDense.calls == traced       # the second step reuses the compiled step
    assert cm.trace_counts["train"] == 1
    # one forward trace (value_and_grad differentiates it without tracing the layers again)
    assert traced == (2 if scanned else 12)


def test_auto_scans_deep_train_runs_and_declines_elsewhere(monkeypatch):
    monkeypatch.setattr(scan_blocks, "_backend", lambda: "cpu")
    model = residual_model(blocks=4)
    for mode, why in (("train", "fewer than 8"), ("predict", "XLA:CPU")):
        graph, records, _ = run_passes(model, mode, options={})
        assert not records[-1].changed
        assert "found 1 runs (4 x 3 nodes)" in records[-1].report and why in records[-1].report
        assert "ScanBlocks" not in ir.count_ops(graph)
    deep = residual_model(blocks=scan_blocks.AUTO_TRAIN_MIN_BLOCKS)
    graph, records, _ = run_passes(deep, "train", options={})
    assert records[-1].changed and ir.count_ops(graph)["ScanBlocks"] == 1
    assert "applied in train mode (8 blocks >= 8" in records[-1].report
    graph, records, _ = run_passes(deep, "predict", options={})
    assert not records[-1].changed
    apply, why = scan_blocks.auto_decision("train", "cpu", 16, ["Conv2D", "BatchNormalization", "Add"])
    assert not apply and "convolution" in why
    monkeypatch.setattr(scan_blocks, "_backend", lambda: "gpu")
    graph, records, _ = run_passes(model, "predict", options={"scan_blocks": "auto"})
    assert records[-1].changed and ir.count_ops(graph)["ScanBlocks"] == 1
    graph, records, _ = run_passes(model, "train", options={"scan_blocks": "auto"})
    assert not records[-1].changed and "train mode" in records[-1].report
    graph, records, _ = run_passes(model, "predict", options={"scan_blocks": "never"})
    assert not records[-1].changed and "not applied (scan_blocks='never')" in records[-1].report


@pytest.mark.parametrize("remat", ["always", "never"])
@pytest.mark.parametrize("build", [lambda: residual_model(blocks=4, block_fn=bn_block), lambda: transformer_model(4)],
                         ids=["batchnorm", "transformer"])
def test_a_rematerialized_loop_body_keeps_outputs_gradients_and_statistics(build, remat):
    model = build()
    randomize_bn(model)
    x = np.random.default_rng(2).standard_normal((6,) + tuple(model.inputs[0].shape[1:])).astype("float32")
    graph = assert_equivalent(model, x, options={**ALWAYS, "scan_remat": remat})
    scan = next(d for _, d in graph.nodes(data=True) if d["op"] == "ScanBlocks")
    assert (scan["layer"].remat_policy is not None) is (remat == "always")
    assert (scan["meta"].get("remat") == "scan body") is (remat == "always")


def _grad_step_temp_bytes(model, graph, x):
    """XLA's temporary bytes of the gradient of the lowered graph's loss (memory_analysis: no timing)."""
    low = lowering.lower(graph, model)

    def loss(tv):
        out, _, _ = low.forward(tv, [v.value for v in low.non_trainable], [x], jax.random.key(0), True)
        return jnp.sum(out[0] ** 2)
    tv = [v.value for v in low.trainable]
    return jax.jit(jax.grad(loss)).lower(tv).compile().memory_analysis().temp_size_in_bytes


def test_a_rematerialized_loop_body_keeps_only_the_blocks_inputs():
    # 12 blocks of two 256-wide Dense layers at batch 256: each block's residuals (its hidden activation and
    # relu mask, 256 KiB apiece) are what the plain loop stores per iteration; the rematerialized one stores
    # the block's input and recomputes the rest in the backward loop
    model = residual_model(blocks=12, width=256)
    x = jnp.asarray(np.random.default_rng(3).standard_normal((256, 256)), jnp.float32)
    temp = {}
    for remat in ("never", "always"):
        graph, records, _ = run_passes(model, options={**ALWAYS, "scan_remat": remat})
        assert ("loop body rematerialized" in records[-1].report) is (remat == "always")
        temp[remat] = _grad_step_temp_bytes(model, graph, x)
    assert temp["always"] < 0.6 * temp["never"], temp


def test_scan_remat_auto_follows_the_measured_platforms():
    assert scan_blocks.remat_decision("train", "cpu")[0] is True
    for mode, backend in (("train", "gpu"), ("train", "tpu"), ("predict", "cpu"), ("eval", "cpu")):
        assert scan_blocks.remat_decision(mode, backend) == (False, None)
    assert scan_blocks.remat_decision("train", "gpu", "always")[0] is True
    assert scan_blocks.remat_decision("train", "cpu", "never") == (False, None)
    assert scan_blocks.remat_decision("predict", "cpu", "always") == (False, None)


@pytest.mark.parametrize("options, error, message", [
    ({"scan_blocks": "sometimes"}, ValueError, "must be one of \\['auto', 'always', 'never'\\]"),
    ({"scan_blocks": "always", "scan_remat": True}, ValueError, "scan_remat'\\] must be one of"),
    ({"scan_blocks": "always", "scan_min_repeats": "3"}, TypeError, "scan_min_repeats must be an int"),
    ({"scan_blocks": "always", "scan_min_repeats": 1}, ValueError, "at least 2")])
def test_bad_options_are_refused(options, error, message):
    model = residual_model(blocks=3)
    with pytest.raises(error, match=message):
        scan_blocks.run(model.graph.copy(), PassContext("train", options=options))
    with pytest.raises(PassError, match=message) as info:        # through the manager: names the pass
        run_passes(model, options=options)
    assert isinstance(info.value.__cause__, error)


def test_min_repeats_option():
    model = residual_model(blocks=3)
    _, records, _ = run_passes(model, options={"scan_blocks": "always", "scan_min_repeats": 4})
    assert not records[-1].changed and records[-1].report == "scanned 0 runs of repeated blocks"


def test_blocks_a_mask_may_reach_stay_unrolled():
    x = keras.Input(shape=(5,), dtype="int32", name="tokens")
    h = layers.Embedding(10, 8, mask_zero=True, name="emb")(x)
    for i in range(3):
        h = layers.add([h, layers.Dense(8, name=f"b{i}")(h)], name=f"b{i}_add")
    model = keras.Model(x, h)
    graph, records, _ = run_passes(model)
    assert not records[-1].changed and "a Keras mask may reach them" in records[-1].report
    assert "ScanBlocks" not in ir.count_ops(graph)


OPS = ["dense", "relu", "tanh", "residual", "bn", "dense_residual", "layernorm"]


def recipe_block(recipe):
    def block(h, i):
        for j, op in enumerate(recipe):
            name = f"b{i}_{j}"
            if op == "dense":
                h = layers.Dense(8, name=name)(h)
            elif op == "relu":
                h = layers.Activation("relu", name=name)(h)
            elif op == "tanh":
                h = layers.Activation("tanh", name=name)(h)
            elif op == "residual":
                h = layers.add([h, layers.Activation("tanh", name=name + "a")(h)], name=name)
            elif op == "bn":
                h = layers.BatchNormalization(name=name)(h)
            elif op == "layernorm":
                h = layers.LayerNormalization(name=name)(h)
            else:
                h = layers.add([h, layers.Dense(8, activation="tanh", name=name + "d")(h)], name=name)
        return h
    return block


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(OPS), min_size=1, max_size=4), st.integers(3, 5))
@example(["dense", "dense", "relu"], 4)        # two adjacent runs: the stem + 2 Dense, then 3 x (relu, Dense, Dense)
@example(["bn"], 3)                            # gradients that are round-off of exact zeros
def test_random_repeated_blocks_keep_outputs_and_gradients(recipe, repeats):
    model = residual_model(blocks=repeats, block_fn=recipe_block(recipe))
    randomize_bn(model)
    # 16 rows: with fewer, a relu can zero a feature for the whole batch and a following BatchNormalization
    # (train mode, variance ~0) then amplifies float32 round-off in the gradients beyond any tolerance
    x = np.random.default_rng(5).standard_normal((16, 8)).astype("float32")
    graph, records, _ = run_passes(model, "train")
    ir.verify(graph)
    if records[-1].changed:
        assert ir.count_ops(graph)["ScanBlocks"] >= 1
        assert_equivalent(model, x)
    else:                                       # e.g. a block of one weight-free node: nothing worth a scan
        assert "ScanBlocks" not in ir.count_ops(graph)
