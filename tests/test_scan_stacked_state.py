"""A scanned train program keeps each weight kind of its blocks stacked in the train state (passes/scan_blocks.py,
runtime/lowering.py): fits through it match the unrolled program's (losses, weights, optimizer state, validation),
the model keeps Keras's per-layer weights, and the step traces once per input signature."""
import jax
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import ir, layers
from fncompiler.passes import scan_blocks

RTOL = 2e-5


def residual_model(blocks=4, width=8, bn=False, constrained=False):
    x = keras.Input(shape=(width,), name="x")
    h = layers.Dense(width, name="stem")(x)
    extra = dict(kernel_constraint="non_neg", kernel_regularizer="l2") if constrained else {}
    for i in range(blocks):
        y = layers.Dense(width, activation="relu", name=f"b{i}_d1", **extra)(h)
        if bn:
            y = layers.BatchNormalization(name=f"b{i}_bn")(y)
        y = layers.Dense(width, name=f"b{i}_d2")(y)
        h = layers.add([h, y], name=f"b{i}_add")
    return keras.Model(x, layers.Dense(3, name="head")(h))


def transformer_model(blocks=3, seq=4, dim=8, heads=2):
    x = keras.Input(shape=(seq, dim), name="x")
    h = x
    for i in range(blocks):
        a = layers.MultiHeadAttention(heads, dim // heads, name=f"b{i}_mha")(h, h)
        h = layers.LayerNormalization(name=f"b{i}_ln1")(layers.add([h, a]))
        f = layers.Dense(dim * 2, activation="relu", name=f"b{i}_f1")(h)
        f = layers.Dense(dim, name=f"b{i}_f2")(f)
        h = layers.LayerNormalization(name=f"b{i}_ln2")(layers.add([h, f]))
    return keras.Model(x, layers.Dense(3, name="head")(layers.GlobalAveragePooling1D()(h)))


def data(model, n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n,) + tuple(model.inputs[0].shape[1:])).astype("float32")
    return x, rng.integers(0, 3, n).astype("int32")


def use_program(model, policy):
    """Train through the program compiled with pass_options={"scan_blocks": policy} (the trainer's own
    CompiledModel, as benchmarks/depth.py forces it)."""
    trainer = model._get_trainer()
    trainer.compiled = keras.compile_model(model, compile_config=model._compile_config,
                                           pass_options={"scan_blocks": policy})
    return trainer


def fit_both(build, optimizer, epochs=2, fits=1, **fit_kwargs):
    """The same model (same initial weights) fitted through the unrolled and the scanned train program."""
    out = {}
    init = None
    for policy in ("never", "always"):
        model = build()
        if init is None:
            init = model.get_weights()
        model.set_weights(init)
        opt = keras.optimizers.get(optimizer) if isinstance(optimizer, str) else optimizer()
        model.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      steps_per_execution=1)
        trainer = use_program(model, policy)
        x, y = data(model)
        histories = [model.fit(x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0, **fit_kwargs).history
                     for _ in range(fits)]
        out[policy] = dict(model=model, trainer=trainer, histories=histories, low=trainer.compiled.lowered("train"))
    return out["never"], out["always"]


def assert_same_fit(a, b):
    for ha, hb in zip(a["histories"], b["histories"]):
        assert ha.keys() == hb.keys()
        for k in ha:
            np.testing.assert_allclose(hb[k], ha[k], rtol=RTOL, atol=1e-6, err_msg=k)
    for wa, wb in zip(a["model"].get_weights(), b["model"].get_weights()):
        assert wa.shape == wb.shape
        # atol: Adam turns the round-off gradient of attention's key bias (zero in exact arithmetic) into steps
        np.testing.assert_allclose(wb, wa, rtol=1e-4, atol=5e-5)
    # the trainer keeps the optimizer state in the model's layout (what saved files hold)
    sa, sb = a["trainer"].opt_state, b["trainer"].opt_state
    assert jax.tree_util.tree_structure(sa) == jax.tree_util.tree_structure(sb)
    for la, lb in zip(jax.tree_util.tree_leaves(sa), jax.tree_util.tree_leaves(sb)):
        assert np.shape(la) == np.shape(lb)
        # atol: slots of gradients that are zero in exact arithmetic (attention's key bias) hold round-off
        np.testing.assert_allclose(np.asarray(lb), np.asarray(la), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("build", [lambda: residual_model(4), lambda: residual_model(3, bn=True),
                                   lambda: transformer_model(3)], ids=["residual", "residual_bn", "transformer"])
def test_scanned_fit_matches_the_unrolled_fit_and_traces_once(build, optimizer):
    a, b = fit_both(build, optimizer)
    low = b["low"]
    assert ir.count_ops(low.graph).get("ScanBlocks") == 1 and "ScanBlocks" not in ir.count_ops(a["low"].graph)
    # the program's state holds one stacked array per weight kind of the blocks
    stacks = [v for v in low.trainable if isinstance(v, scan_blocks.StackedVariable)]
    assert stacks and len(low.trainable) == len(low.model_trainable) - sum(len(s.members) - 1 for s in stacks)
    assert all(s.shape == (len(s.members),) + s.members[0].shape for s in stacks)
    assert not a["low"].stacked
    assert_same_fit(a, b)
    for r in (a, b):        # 32 samples in batches of 8: one input signature, one trace, over both epochs
        assert r["trainer"].compiled.trace_counts["train"] == 1


def test_second_fit_and_validation_go_through_the_model_layout():
    """A second fit starts from the optimizer state the first wrote back (model layout, packed again); the
    validation step (an unrolled eval program) reads the stacked train state converted to its layout."""
    x_val, y_val = data(residual_model(4), n=16, seed=1)
    a, b = fit_both(lambda: residual_model(4, bn=True), "adam", fits=2, validation_data=(x_val, y_val))
    assert "val_loss" in b["histories"][0]
    assert not b["trainer"].compiled.lowered("eval").stacked
    assert_same_fit(a, b)


def test_constraints_and_regularizers_apply_per_block():
    a, b = fit_both(lambda: residual_model(4, constrained=True), "adam")
    assert b["low"].stacked
    assert_same_fit(a, b)
    kernels = [w for w in b["model"].get_weights() if w.ndim == 2]
    assert all(k.min() >= 0 for k in kernels[1:-1:2])       # each block's first kernel kept non-negative


def test_per_variable_clipnorm_keeps_the_model_layout():
    a, b = fit_both(lambda: residual_model(4), lambda: keras.optimizers.Adam(1e-2, clipnorm=0.01))
    assert ir.count_ops(b["low"].graph).get("ScanBlocks") == 1 and not b["low"].stacked
    assert_same_fit(a, b)


def test_stacked_variable_reads_and_writes_its_members():
    model = residual_model(3)
    members = [model.get_layer(f"b{i}_d1").kernel for i in range(3)]
    stack = scan_blocks.StackedVariable(members)
    assert stack.shape == (3, 8, 8) and stack.trainable
    first = stack._value
    np.testing.assert_array_equal(np.asarray(first), np.stack([np.asarray(m._value) for m in members]))
    assert stack._value is first                         # cached while the members are unchanged
    new = np.arange(3 * 64, dtype="float32").reshape(3, 8, 8)
    stack._value = jax.numpy.asarray(new)                # the trainer's write-back
    for i, m in enumerate(members):
        np.testing.assert_array_equal(np.asarray(m.value), new[i])
    members[1].assign(np.zeros((8, 8), "float32"))
    np.testing.assert_array_equal(np.asarray(stack._value)[1], 0.0)


def reused_block_layer_model():
    """The first block's Dense is called again after the blocks: its weights are read outside the scan."""
    x = keras.Input(shape=(8,), name="x")
    h = layers.Dense(8, name="stem")(x)
    dense = [layers.Dense(8, activation="tanh", name=f"b{i}") for i in range(3)]
    for i in range(3):
        h = layers.add([h, dense[i](h)], name=f"b{i}_add")
    return keras.Model(x, layers.Dense(3, name="head")(dense[0](h)))


def test_a_block_layer_called_outside_the_blocks_keeps_the_model_layout():
    a, b = fit_both(reused_block_layer_model, "adam")
    assert ir.count_ops(b["low"].graph).get("ScanBlocks") == 1 and not b["low"].stacked
    assert_same_fit(a, b)


def shared_block_model():
    """The same Dense layer in every block: the blocks' weights are one Variable, which no stack may hold."""
    x = keras.Input(shape=(8,), name="x")
    shared = layers.Dense(8, activation="tanh", name="shared")
    h = layers.Dense(8, name="stem")(x)
    for i in range(3):
        h = layers.add([h, shared(h)], name=f"b{i}_add")
    return keras.Model(x, layers.Dense(3, name="head")(h))


def test_blocks_sharing_a_layer_keep_the_model_layout():
    a, b = fit_both(shared_block_model, "adam")
    assert ir.count_ops(b["low"].graph).get("ScanBlocks") == 1 and not b["low"].stacked
    assert_same_fit(a, b)


def test_saved_file_after_a_scanned_fit_holds_the_per_layer_layout(tmp_path):
    a, b = fit_both(lambda: residual_model(4), "adam")
    path = str(tmp_path / "scanned.keras")
    b["model"].save(path)
    loaded = keras.models.load_model(path)
    for wl, wa in zip(loaded.get_weights(), a["model"].get_weights()):
        np.testing.assert_allclose(wl, wa, rtol=1e-4, atol=1e-6)
    restored = loaded.__dict__.get("_restored_opt_state")
    assert restored is not None
    ref = a["trainer"].opt_state
    assert [np.shape(x) for x in jax.tree_util.tree_leaves(restored)] == \
        [np.shape(x) for x in jax.tree_util.tree_leaves(ref)]
    for lr, la in zip(jax.tree_util.tree_leaves(restored), jax.tree_util.tree_leaves(ref)):
        np.testing.assert_allclose(np.asarray(lr), np.asarray(la), rtol=1e-4, atol=1e-5)


def test_a_train_state_converts_between_the_scanned_and_the_unrolled_layout():
    from fncompiler.runtime import lowering, steps as steps_lib
    model = residual_model(4, bn=True)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    lows = {p: keras.compile_model(model, compile_config=model._compile_config,
                                   pass_options={"scan_blocks": p}).lowered("train") for p in ("never", "always")}
    assert lows["always"].stacked and not lows["never"].stacked
    cfg = model._compile_config
    flat = steps_lib.initial_train_state([v.value for v in lows["never"].trainable],
                                         [v.value for v in lows["never"].non_trainable], cfg, 0)
    stacked = lowering.convert_state(lows["never"], lows["always"], flat)
    assert [np.shape(a) for a in stacked[0]] == [v.shape for v in lows["always"].trainable]
    back = lowering.convert_state(lows["always"], lows["never"], stacked)
    for a, b in zip(jax.tree_util.tree_leaves(back), jax.tree_util.tree_leaves(flat)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert lowering.convert_state(lows["always"], lows["always"], stacked) is stacked
