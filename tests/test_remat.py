"""The remat pass (passes/remat.py): segments of several layers between the graph's cut points, and ScanBlocks'
loop body, run under jax.checkpoint. Fits through the rematerialized train program match the plain program's
(losses, weights, BatchNormalization statistics), gradients match plain jax.numpy, the IR verifies, and XLA's
memory analysis of the train step shows fewer temporary bytes (deterministic, not a timing)."""
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import ir, layers, passes
from fncompiler.passes import PassContext, PassError, PassManager

from test_scan_stacked_state import assert_same_fit, data, residual_model, transformer_model

remat_lib = sys.modules["fncompiler.passes.remat"]
TRAIN = passes.default_pipeline("train")


def deep_mlp(depth=12, width=16):
    x = keras.Input(shape=(width,), name="x")
    h = x
    for i in range(depth):
        h = layers.Dense(width, activation="tanh", name=f"d{i}")(h)
    return keras.Model(x, h)


def fit_both(build, scan, optimizer="adam", **remat_options):
    remat_options.setdefault("remat_mode", "segments")     # "auto" leaves unrolled segments alone on XLA:CPU
    """The same model (same initial weights) fitted through the train program without and with remat."""
    out, init = {}, None
    for key, pipeline in (("plain", TRAIN), ("remat", TRAIN + ["remat"])):
        model = build()
        if init is None:
            init = model.get_weights()
        model.set_weights(init)
        model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      steps_per_execution=1)
        trainer = model._get_trainer()
        trainer.compiled = keras.compile_model(model, compile_config=model._compile_config, passes=pipeline,
                                               pass_options={"scan_blocks": scan, **remat_options,
                                                             # the plain program: no loop-body remat either
                                                             **({"scan_remat": "never"} if key == "plain" else {})})
        x, y = data(model)
        hist = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
        out[key] = dict(model=model, trainer=trainer, histories=[hist], low=trainer.compiled.lowered("train"))
    return out["plain"], out["remat"]


@pytest.mark.parametrize("build,scan,kind", [
    (lambda: residual_model(4), "never", "RematSegment"),
    (lambda: residual_model(4, bn=True), "never", "RematSegment"),
    (lambda: residual_model(4, bn=True), "always", "ScanBlocks"),
    (lambda: transformer_model(3), "always", "ScanBlocks"),
    (lambda: transformer_model(3), "never", "RematSegment"),
], ids=["residual", "residual_bn", "residual_bn_scan", "transformer_scan", "transformer"])
def test_remat_fit_matches_the_plain_fit_and_traces_once(build, scan, kind):
    a, b = fit_both(build, scan)
    graph = b["low"].graph
    counts = ir.count_ops(graph)
    if kind == "ScanBlocks":
        scans = [d["layer"] for _, d in graph.nodes(data=True) if d["op"] == "ScanBlocks"]
        assert scans and all(s.remat_policy is jax.checkpoint_policies.nothing_saveable for s in scans)
        assert all(d["layer"].remat_policy is None for _, d in a["low"].graph.nodes(data=True)
                   if d["op"] == "ScanBlocks")       # the plain program's scan is not rematerialized
    else:
        assert counts.get("RematSegment", 0) >= 2 and "RematSegment" not in ir.count_ops(a["low"].graph)
    assert_same_fit(a, b)              # losses, weights (BatchNormalization's moving statistics too), optimizer
    for r in (a, b):
        assert r["trainer"].compiled.trace_counts["train"] == 1


def test_batchnorm_statistics_leave_the_checkpointed_segment():
    a, b = fit_both(lambda: residual_model(3, bn=True), "never", remat_segment_size=2)
    for i in range(3):
        bn_a, bn_b = a["model"].get_layer(f"b{i}_bn"), b["model"].get_layer(f"b{i}_bn")
        assert not np.allclose(bn_b.moving_variance.numpy(), 1.0)      # the statistics moved
        np.testing.assert_allclose(bn_b.moving_mean.numpy(), bn_a.moving_mean.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(bn_b.moving_variance.numpy(), bn_a.moving_variance.numpy(), rtol=1e-5, atol=1e-6)


def _reference_grads(weights, x):
    def loss(ws):
        h = x
        for k, b in ws:
            h = jnp.tanh(h @ k + b)
        return jnp.sum(h ** 2)
    return jax.grad(loss)(weights)


@pytest.mark.parametrize("size", [2, 5, "sqrt"])
def test_segment_gradients_match_jax_numpy(size):
    from fncompiler.runtime import lowering
    model = deep_mlp(depth=12)
    g, records, _ = PassManager(["shape_inference", "remat"], verify=True).run(
        model.graph, PassContext("train", options={"remat_segment_size": size, "remat_mode": "segments"}))
    per = 4 if size == "sqrt" else size      # 12 pieces between cuts (one Dense each): ceil(sqrt(12)) = 4
    n = -(-12 // per)
    assert records[-1].report.startswith(f"{n} segments rematerialized (12 nodes, {per} pieces")
    ir.verify(g)
    assert ir.count_ops(g) == {"RematSegment": n}
    x = jnp.asarray(np.random.default_rng(0).standard_normal((8, 16)).astype("float32"))
    low = lowering.lower(g, model)
    got = jax.grad(lambda tv: jnp.sum(low.forward(tv, [], [x], None, True)[0][0] ** 2))(
        [v.value for v in low.trainable])
    want = _reference_grads([(model.get_layer(f"d{i}").kernel.value, model.get_layer(f"d{i}").bias.value)
                             for i in range(12)], x)
    for a, b in zip(got, [w for pair in want for w in pair]):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_layers_mode_keeps_the_per_layer_wrapping():
    model = deep_mlp(depth=4)
    g, records, _ = PassManager(["shape_inference", "remat"], verify=True).run(
        model.graph, PassContext("train", options={"remat_mode": "layers"}))
    assert records[-1].report == "4 layers rematerialized (nothing_saveable)"
    assert all(isinstance(d["layer"], remat_lib.Rematerialized) for _, d in g.nodes(data=True) if d["kind"] != "input")


@pytest.mark.parametrize("options,message", [
    ({"remat_mode": "blocks"}, "remat_mode'] must be one of ['auto', 'segments', 'layers']; received 'blocks'"),
    ({"remat_segment_size": 0}, "remat_segment_size'] must be 'sqrt' or an int >= 1"),
    ({"remat_segment_size": True}, "remat_segment_size'] must be 'sqrt' or an int >= 1"),
    ({"remat_policy": "everything"}, "remat_policy'] must name one of jax.checkpoint_policies"),
])
def test_options_are_validated(options, message):
    pattern = message.replace("[", r"\[").replace("]", r"\]")
    graph = deep_mlp(4).graph
    with pytest.raises(ValueError, match=pattern):
        remat_lib.run(graph.copy(), PassContext("train", options=options))
    with pytest.raises(PassError, match=pattern) as info:        # through the manager: names the pass
        PassManager(["shape_inference", "remat"]).run(graph, PassContext("train", options=options))
    assert isinstance(info.value.__cause__, ValueError) and "Pass 'remat' failed" in str(info.value)


def _train_temp_bytes(model, pipeline, options, batch):
    model.compile(optimizer="sgd", loss="mse")
    cm = keras.compile_model(model, passes=pipeline, pass_options=options)
    args = cm.example_args("train", batch, [tuple(model.inputs[0].shape[1:])])
    return cm.step("train").lower(*args).compile().memory_analysis().temp_size_in_bytes


def test_checkpointed_scan_body_lowers_the_train_steps_temporary_memory():
    """16 tanh layers of 256 at batch 1024 (1 MiB per activation), scanned: the plain loop keeps each block's
    residuals for the backward pass; with its body checkpointed it keeps only each block's input carry
    (measured on XLA:CPU: 55.3 -> 23.3 MiB of temporaries)."""
    model = deep_mlp(depth=16, width=256)
    plain = _train_temp_bytes(model, TRAIN, {"scan_blocks": "always", "scan_remat": "never"}, 1024)
    # scan_repeated_blocks' own loop-body remat (its default on XLA:CPU) holds what the remat pass's holds
    own = _train_temp_bytes(model, TRAIN, {"scan_blocks": "always", "scan_remat": "always"}, 1024)
    remat = _train_temp_bytes(model, TRAIN + ["remat"], {"scan_blocks": "always"}, 1024)
    assert remat < 0.6 * plain and own == remat, (plain, remat, own)


def test_auto_mode_leaves_unrolled_segments_alone_on_cpu_only(monkeypatch):
    scan_lib = sys.modules["fncompiler.passes.scan_blocks"]
    model = deep_mlp(depth=9)
    for backend, segments in (("cpu", 0), ("gpu", 3)):
        monkeypatch.setattr(scan_lib, "_backend", lambda: backend)
        g, records, _ = PassManager(["shape_inference", "remat"], verify=True).run(model.graph, PassContext("train"))
        assert ir.count_ops(g).get("RematSegment", 0) == segments
        assert records[-1].changed == bool(segments)
        assert ("left as they are on XLA:CPU" in records[-1].report) == (backend == "cpu")


def dropout_residual(blocks=3, width=8):
    x = keras.Input(shape=(width,), name="x")
    h = layers.Dense(width, name="stem")(x)
    for i in range(blocks):
        y = layers.Dense(width, activation="relu", name=f"b{i}_d1", activity_regularizer="l2")(h)
        y = layers.Dropout(0.5, name=f"b{i}_drop")(y)
        y = layers.Dense(width, name=f"b{i}_d2")(y)
        h = layers.add([h, y], name=f"b{i}_add")
    return keras.Model(x, layers.Dense(3, name="head")(h))


@pytest.mark.parametrize("scan", ["never", "always"])
def test_recomputation_draws_the_same_dropout_masks_and_keeps_added_losses(scan):
    """The backward pass recomputes a segment (or scan block) with the key its forward used: the gradient with
    recomputation (nothing_saveable) equals the one without (everything_saveable, same keys); the activity
    regularizers' add_loss losses come out of the checkpointed function."""
    from fncompiler.runtime import lowering
    model = dropout_residual()
    x = jnp.asarray(np.random.default_rng(0).standard_normal((16, 8)).astype("float32"))
    results = []
    for policy in ("nothing_saveable", "everything_saveable"):
        g, records, _ = PassManager(["shape_inference", "scan_repeated_blocks", "remat"], verify=True).run(
            model.graph, PassContext("train", options={"scan_blocks": scan, "remat_mode": "segments",
                                                       "remat_segment_size": 2, "remat_policy": policy}))
        op = "ScanBlocks" if scan == "always" else "RematSegment"
        assert ir.count_ops(g).get(op)
        low = lowering.lower(g, model)

        def loss(tv):
            (y,), _, losses = low.forward(tv, [], [x], jax.random.key(1), True)
            assert losses                                   # the activity regularizers' losses
            return jnp.sum(y ** 2) + sum(jnp.sum(v) for v in losses)
        results.append(jax.jit(jax.value_and_grad(loss))([v.value for v in low.trainable]))
    (la, ga), (lb, gb) = results
    np.testing.assert_allclose(float(la), float(lb), rtol=1e-6)
    for a, b in zip(ga, gb):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_a_segment_a_keras_mask_may_reach_stays_as_it_is():
    x = keras.Input(shape=(6,), dtype="int32", name="tokens")
    h = layers.Embedding(20, 8, mask_zero=True, name="emb")(x)
    for i in range(4):
        h = layers.Dense(8, activation="tanh", name=f"d{i}")(h)
    model = keras.Model(x, layers.GlobalAveragePooling1D(name="pool")(h))
    g, records, _ = PassManager(["shape_inference", "remat"], verify=True).run(
        model.graph, PassContext("train", options={"remat_mode": "segments"}))
    assert "RematSegment" not in ir.count_ops(g) and "a Keras mask may reach them" in records[-1].report


def test_program_size_counts_a_segments_layers():
    scan_lib = sys.modules["fncompiler.passes.scan_blocks"]
    model = deep_mlp(depth=9)
    g, _, _ = PassManager(["shape_inference", "remat"]).run(
        model.graph, PassContext("train", options={"remat_mode": "segments"}))
    assert ir.count_ops(g) == {"RematSegment": 3}
    assert scan_lib.program_size(g) == scan_lib.program_size(model.graph) == 10


@pytest.mark.skipif(jax.default_backend() == "cpu", reason="XLA:CPU merges the recomputation back into the forward "
                    "pass (docs/benchmarks.md, 'Remat: segments and scan bodies'), so unrolled segments hold more there")
def test_unrolled_segments_lower_the_train_steps_temporary_memory_off_cpu():
    model = deep_mlp(depth=16, width=256)
    plain = _train_temp_bytes(model, TRAIN, {"scan_blocks": "never"}, 1024)
    remat = _train_temp_bytes(model, TRAIN + ["remat"], {"scan_blocks": "never"}, 1024)
    assert remat < 0.7 * plain, (plain, remat)
