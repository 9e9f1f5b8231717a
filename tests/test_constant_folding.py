"""Constant folding: constant nodes evaluated at compile time, weight-only expressions once per weight version."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import ir, layers, ops
from fncompiler.ops.op_layer import OpLayer
from fncompiler.passes import PassContext, PassManager
from fncompiler.passes.partial_eval import NOT_APPLIED, WeightFold
from fncompiler.runtime import lowering
from fncompiler.symbolic import Slot

FOLD = {"fold_weight_expressions": True}


def run(graph, mode="predict", options=None, extra=()):
    return PassManager(["shape_inference", *extra, "constant_folding"], verify=True).run(
        graph, PassContext(mode, options=dict(options or {})))


def forward(model, graph, xs, residuals=False, training=False):
    low = lowering.lower(graph, model)
    tv, ntv = [v.value for v in low.trainable], [v.value for v in low.non_trainable]
    res = low.residuals(tv, ntv) if residuals else None
    out, _, _ = low.forward(tv, ntv, [jnp.asarray(x) for x in xs], None, training, residuals=res)
    return [np.asarray(o) for o in out]


def assert_close(a, b):
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6 * max(1.0, float(np.max(np.abs(v)))))


def randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for w in model.weights:
        low = 0.5 if ("variance" in w.path or "gamma" in w.path) else -0.5
        w.assign((rng.random(w.shape) + low).astype("float32"))


def bn_model():
    """BatchNormalization after an Add and after pooling: nothing for fold_batchnorm to fold it into."""
    x = keras.Input(shape=(6, 6, 4), name="x")
    a = layers.Conv2D(4, 3, padding="same", name="conv")(x)
    h = layers.BatchNormalization(name="bn_add")(layers.add([x, a], name="add"))
    h = layers.BatchNormalization(name="bn_pool")(layers.AveragePooling2D(2, name="pool")(h))
    h = layers.BatchNormalization(name="bn_gap")(layers.GlobalAveragePooling2D(name="gap")(h))
    model = keras.Model(x, layers.Dense(3, name="head")(h), name="bn_model")
    randomize(model)
    return model


def xs(batch=5, seed=1):
    return [np.random.default_rng(seed).standard_normal((batch, 6, 6, 4)).astype("float32")]


# -- 1. constant nodes --------------------------------------------------------------------------------
def test_functional_api_records_no_constant_nodes_and_the_pass_is_a_no_op_on_them():
    x = keras.Input(shape=(3,), name="x")
    c = ops.exp(ops.ones((3,)))                   # concrete: evaluated when the graph is written
    y = layers.Dense(3, name="d")(x * c + 1.0)
    model = keras.Model(x, ops.tanh(y))
    g0 = model.graph
    reach = set(g0.graph["inputs"])
    for nid in g0.graph["inputs"]:
        reach |= set(__import__("networkx").descendants(g0, nid))
    assert set(g0.nodes) == reach                  # every node depends on the input
    for mode in ("train", "eval", "predict", "export"):
        g, records, _ = run(g0, mode)
        cf = records[-1]
        assert cf.name == "constant_folding" and not cf.changed
        assert cf.report.startswith("folded 0 nodes / 0 weight-only expressions in 0 layers")
        assert list(g.nodes) == list(g0.nodes)
        assert_close(forward(model, g, [np.ones((2, 3), "float32")]), forward(model, g0, [np.ones((2, 3), "float32")]))


def _with_constant_nodes():
    """x -> d -> add(d, c2) with c2 = c1 * c1, c1 = exp(0.5): two nodes that depend on no input (built by hand)."""
    x = keras.Input(shape=(3,), name="x")
    d = layers.Dense(3, name="d")(x)
    model = keras.Model(x, layers.Add(name="add")([d, d]))
    g = ir.copy(model.graph)
    spec = ir.TensorSpec((3,), "float32")
    c1, c2 = OpLayer("exp", name="c1"), OpLayer("multiply", name="c2")
    g.add_node("c1", kind="layer", layer=c1, op="OpLayer", config=c1.get_config(),
               arguments=((np.full(3, 0.5, "float32"),), {}), output_specs=[spec], order=10, meta={})
    g.add_node("c2", kind="layer", layer=c2, op="OpLayer", config=c2.get_config(),
               arguments=((Slot(0), Slot(1)), {}), output_specs=[spec], order=11, meta={})
    g.add_edge("c1", "c2", src_index=0, dst_index=0)
    g.add_edge("c1", "c2", src_index=0, dst_index=1)
    key = next(k for _, _, k, e in g.in_edges("add", keys=True, data=True) if e["dst_index"] == 1)
    g.remove_edge("d", "add", key)
    g.add_edge("c2", "add", src_index=0, dst_index=1)
    g.graph["order"] = ir.topo_order(g)
    ir.verify(g)
    return model, g


@pytest.mark.parametrize("mode", ["train", "eval", "predict", "export"])
def test_constant_nodes_are_evaluated_at_compile_time_in_every_mode(mode):
    model, g0 = _with_constant_nodes()
    g, records, _ = run(g0, mode)
    assert "c1" not in g and "c2" not in g
    assert records[-1].changed and records[-1].report.startswith("folded 2 nodes / ")
    assert ir.input_edges(g, "add") == [("d", 0)]
    (arg,), _ = g.nodes["add"]["arguments"]
    assert isinstance(arg[0], Slot) and np.allclose(arg[1], np.exp(0.5) ** 2)
    x = [np.random.default_rng(0).standard_normal((4, 3)).astype("float32")]
    assert_close(forward(model, g, x), forward(model, g0, x))
    assert forward(model, g, x)[0].shape == (4, 3)


def test_a_constant_model_output_keeps_a_constant_node():
    model, g0 = _with_constant_nodes()
    g0.graph["outputs"] = [("add", 0), ("c2", 0)]
    g0.graph["output_tree"] = jax.tree_util.tree_structure([0, 0])
    g, records, _ = run(g0, "predict")
    assert "c1" not in g and g.nodes["c2"]["op"] == "Constant" and g.in_degree("c2") == 0
    x = [np.ones((2, 3), "float32")]
    out, ref = forward(model, g, x), forward(model, g0, x)
    assert_close(out, ref)
    np.testing.assert_allclose(out[1], np.full(3, np.exp(0.5) ** 2), rtol=1e-6)
    assert "Constant" in ir.dump(g)


def test_a_constant_node_that_reads_weights_is_not_baked():
    """Dense applied to a constant reads weights: not folded in train/eval; in predict its whole output is a
    residual, recomputed when the weights change."""
    x = keras.Input(shape=(3,), name="x")
    d = layers.Dense(3, name="d")
    model = keras.Model(x, layers.Add(name="add")([d(x), d(x)]))
    g0 = ir.copy(model.graph)
    key = next(k for _, _, k, e in g0.in_edges("add", keys=True, data=True) if e["dst_index"] == 1)
    g0.remove_edge("d:1", "add", key)
    g0.remove_node("d:1")
    g0.add_node("dc", kind="layer", layer=d, op="Dense", config=d.get_config(),
                arguments=((np.ones((1, 3), "float32"),), {}), output_specs=[ir.TensorSpec((1, 3), "float32")],
                order=10, meta={})
    g0.add_edge("dc", "add", src_index=0, dst_index=1)
    g0.graph["order"] = ir.topo_order(g0)
    for mode in ("train", "eval"):
        g, records, _ = run(g0, mode, FOLD)
        assert "dc" in g and g.nodes["dc"].get("fold") is None and not records[-1].changed
    g, records, _ = run(g0, "predict", FOLD)
    fold = g.nodes["dc"]["fold"]
    assert fold.residual_avals[0].shape == (1, 3)            # the node's whole output, once per weight version
    x1 = [np.random.default_rng(0).standard_normal((2, 3)).astype("float32")]
    assert_close(forward(model, g, x1, residuals=True), forward(model, g0, x1))
    d.set_weights([w * 2 for w in d.get_weights()])
    assert_close(forward(model, g, x1, residuals=True), forward(model, g0, x1))


# -- 2. weight-only expressions -----------------------------------------------------------------------
def test_batchnorm_scale_and_offset_are_folded_in_predict():
    model = bn_model()
    g0 = model.graph
    g, records, _ = run(g0, "predict", FOLD)
    ir.verify(g)
    cf = records[-1]
    assert cf.changed
    assert cf.report.startswith("folded 0 nodes / 18 weight-only expressions in 3 layers"), cf.report
    folded = {n for n in g.nodes if g.nodes[n].get("fold") is not None}
    assert folded == {"bn_add", "bn_pool", "bn_gap"}        # conv, dense: nothing weight-only to split off
    meta = g.nodes["bn_add"]["meta"]["constant_folding"]
    assert meta["expressions"] == 6 and meta["residuals"] == 2
    assert sorted(meta["weights"]) == sorted(v.path for v in model.get_layer("bn_add").weights)
    for batch in (1, 5):
        x = xs(batch)
        assert_close(forward(model, g, x, residuals=True), forward(model, g0, x))
        assert_close(forward(model, g, x, residuals=False), forward(model, g0, x))   # without residuals: as before
    assert "# folded: 6 weight-only expressions" in ir.dump(g)


def test_residuals_do_not_depend_on_the_batch():
    """Weights broadcast to the batch's shape (jnp.where, Dense's bias) stay in the per-batch half."""
    x = keras.Input(shape=(4,), name="x")
    gate = layers.Dense(4, name="gate")
    h = layers.BatchNormalization(name="bn")(ops.where(x > 0, x, ops.ones_like(x)))
    model = keras.Model(x, gate(h))
    randomize(model)
    g, _, _ = run(model.graph, "predict", FOLD)
    fold = g.nodes["bn"]["fold"]
    assert all(None not in a.shape and 83 not in a.shape and 89 not in a.shape for a in fold.residual_avals)
    cm = keras.compile_model(model, pass_options=FOLD)
    ref = keras.compile_model(model)
    for batch in (1, 7, 7, 16):
        xb = np.random.default_rng(batch).standard_normal((batch, 4)).astype("float32")
        assert_close([cm.predict(xb)], [ref.predict(xb)])
    assert cm.trace_counts["predict_residuals"] == 1 and cm.trace_counts["predict"] == 3


def test_compiled_predict_matches_and_hlo_loses_the_weight_only_ops():
    model = bn_model()
    folded, plain = keras.compile_model(model, pass_options=FOLD), keras.compile_model(model)
    x = xs(8)[0]
    assert_close([folded.predict(x)], [plain.predict(x)])
    text_f, text_p = folded.as_text("predict", batch_size=8), plain.as_text("predict", batch_size=8)
    assert text_p.count("stablehlo.rsqrt") == 3 and text_f.count("stablehlo.rsqrt") == 0
    count = lambda t: sum(1 for line in t.splitlines() if " = " in line)
    assert count(text_f) < count(text_p)
    exe = folded.lower("predict", batch_size=8).compile()        # takes (trainable, non_trainable, x) as before
    tv, ntv = folded.weights("predict")
    np.testing.assert_allclose(np.asarray(exe(tv, ntv, [jnp.asarray(x)])[0]), plain.predict(x), rtol=1e-5, atol=1e-5)
    text = folded.report(print_fn=lambda s: None)
    assert "folded 0 nodes / 18 weight-only expressions in 3" in text


def test_predict_after_training_uses_the_new_weights():
    model = bn_model()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    folded = keras.compile_model(model, pass_options=FOLD)
    x, y = xs(16)[0], np.random.default_rng(2).standard_normal((16, 3)).astype("float32")
    before = folded.predict(x)
    folded.predict(x)
    step = folded.step("predict")
    assert step.residual_computations == 1                   # same weights: residuals from the cache
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)       # changes weights and BN moving statistics
    after = folded.predict(x)
    assert step.residual_computations == 2
    assert not np.allclose(after, before, rtol=1e-3)
    assert_close([after], [keras.compile_model(model).predict(x)])
    model.get_layer("bn_add").moving_variance.assign(np.full(4, 9.0, "float32"))   # a direct assignment too
    assert_close([folded.predict(x)], [keras.compile_model(model).predict(x)])
    assert_close([model.predict(x, verbose=0)], [folded.predict(x)])


def test_residual_cache_holds_only_immutable_concrete_weights():
    model = bn_model()
    folded = keras.compile_model(model, pass_options=FOLD)
    step = folded.step("predict")
    tv, ntv = folded.weights("predict")
    x = [jnp.asarray(xs(2)[0])]
    ref = np.asarray(step(tv, ntv, x)[0])
    tv_np, ntv_np = [np.array(a) for a in tv], [np.array(a) for a in ntv]
    n = step.residual_computations
    step(tv_np, ntv_np, x)
    ntv_np[0][...] += 1.0                                        # a NumPy weight mutated in place: not cached
    changed = np.asarray(step(tv_np, ntv_np, x)[0])
    assert step.residual_computations == n + 2 and not np.allclose(changed, ref)
    traced = jax.jit(lambda a, b, c: step(a, b, c))(tv, ntv, x)  # tracers: computed inside, never cached
    np.testing.assert_allclose(np.asarray(traced[0]), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_no_weight_folding_in_train_and_eval(mode):
    model = bn_model()
    g, records, _ = run(model.graph, mode, FOLD)
    assert not records[-1].changed
    assert records[-1].report == "folded 0 nodes / 0 weight-only expressions in 0 layers"
    assert all(d.get("fold") is None for _, d in g.nodes(data=True))
    cm = keras.compile_model(model, pass_options=FOLD)
    assert all(d.get("fold") is None for _, d in cm.graph(mode).nodes(data=True))


def test_weight_folding_is_off_by_default():
    model = bn_model()
    cm = keras.compile_model(model)
    rec = next(r for r in cm.records("predict") if r.name == "constant_folding")
    assert not rec.changed and "off" in rec.report
    assert not lowering.lower(cm.graph("predict"), model).folds


def test_folded_batchnorm_kernel_rescale_is_hoisted():
    x = keras.Input(shape=(8,), name="x")
    h = layers.BatchNormalization(name="bn")(layers.Dense(8, use_bias=False, name="d")(x))
    model = keras.Model(x, h)
    randomize(model)
    g, records, _ = run(model.graph, "predict", FOLD, extra=("fold_batchnorm",))
    (nid,) = [n for n in g.nodes if g.nodes[n]["op"] == "FoldedBatchNorm"]
    fold = g.nodes[nid]["fold"]
    assert fold.expressions >= 5 and any(a.shape == (8, 8) for a in fold.residual_avals)   # the rescaled kernel
    x1 = [np.random.default_rng(3).standard_normal((4, 8)).astype("float32")]
    assert_close(forward(model, g, x1, residuals=True), forward(model, model.graph, x1))


def test_a_call_that_differs_from_the_plan_falls_back_to_the_layer():
    """Embedding(mask_zero) hands BatchNormalization a mask the plan was not traced with: the call runs as is."""
    x = keras.Input(shape=(5,), dtype="int32", name="ids")
    h = layers.Embedding(10, 4, mask_zero=True, name="emb")(x)
    h = layers.BatchNormalization(name="bn")(h)
    model = keras.Model(x, layers.GlobalAveragePooling1D(name="gap")(h))
    randomize(model)
    g, _, _ = run(model.graph, "predict", FOLD)
    fold = g.nodes["bn"]["fold"]
    ids = [np.array([[1, 2, 0, 0, 3], [4, 0, 5, 6, 7]], "int32")]
    assert_close(forward(model, g, ids, residuals=True), forward(model, model.graph, ids))
    layer = model.get_layer("bn")
    assert fold.apply(layer, (jnp.ones((2, 5, 4)),), {"training": False, "mask": jnp.ones((2, 5), bool)},
                      fold.residuals()) is NOT_APPLIED


def test_plan_of_a_weight_free_layer_is_none():
    x = keras.Input(shape=(4,), name="x")
    model = keras.Model(x, layers.Activation("relu", name="r")(x))
    g = model.graph
    data = g.nodes["r"]
    assert WeightFold.plan(data["layer"], data["arguments"], [ir.TensorSpec((None, 4), "float32")]) is None


def test_scan_blocks_weight_stacking_is_hoisted():
    x = keras.Input(shape=(8,), name="x")
    h = layers.Dense(8)(x)
    for _ in range(4):
        h = layers.add([h, layers.Dense(8)(layers.Dense(8, activation="relu")(h))])
    model = keras.Model(x, layers.Dense(2)(h))
    g, records, _ = run(model.graph, "predict", {**FOLD, "scan_blocks": "always"}, extra=("scan_repeated_blocks",))
    (nid,) = [n for n in g.nodes if g.nodes[n]["op"] == "ScanBlocks"]
    assert g.nodes[nid].get("fold") is not None
    x1 = [np.random.default_rng(4).standard_normal((3, 8)).astype("float32")]
    assert_close(forward(model, g, x1, residuals=True), forward(model, model.graph, x1))


def test_benchmark_script_quick(tmp_path):
    import importlib.util
    import json
    import os
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks",
                        "constant_folding.py")
    spec = importlib.util.spec_from_file_location("bench_constant_folding", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "cf.json"
    bench.main(["--quick", "--models", "bn_after_merge", "--rounds", "1", "--calls", "2", "--json", str(out)])
    results = json.loads(out.read_text())["results"]
    base, folded = results["bn_after_merge/default"], results["bn_after_merge/+fold_weights"]
    assert folded["stablehlo"] < base["stablehlo"] and folded["hlo"] < base["hlo"]
    assert folded["max_rel_diff_vs_default"] < 1e-5 and folded["residual_traces"] == 1
    assert "weight-only expressions in 9 layers" in folded["report"]
