"""Pass manager and the spine's passes: ordering, verification, reports, shape/dtype checking."""
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import ir, layers
from fncompiler import passes
from fncompiler.passes import Pass, PassContext, PassError, PassManager, PassResult


def _noop(name, requires=()):
    return Pass(name, lambda g, ctx: PassResult(g, False, f"{name} ran"), requires=requires)


def test_manager_orders_by_requirements():
    order = passes.order_passes([_noop("c", ("b",)), _noop("b", ("a",)), _noop("a")])
    assert [p.name for p in order] == ["a", "b", "c"]


def test_missing_requirement_and_cycle_are_errors():
    with pytest.raises(PassError, match="requires pass 'z'"):
        passes.order_passes([_noop("a", ("z",))])
    with pytest.raises(PassError, match="cycle"):
        passes.order_passes([_noop("a", ("b",)), _noop("b", ("a",))])


def test_failing_pass_is_named_with_the_passes_before_it(mlp):
    def boom(g, ctx):
        raise RuntimeError("kaput")
    manager = PassManager(["shape_inference", Pass("boom", boom, requires=("shape_inference",))])
    with pytest.raises(PassError, match=r"Pass 'boom' failed \(after \['shape_inference'\]\): kaput"):
        manager.run(mlp.graph, PassContext("predict"))


def test_verify_after_each_pass_catches_a_bad_rewrite(mlp):
    def break_graph(g, ctx):
        g.graph["outputs"] = [("gone", 0)]
        return PassResult(g, True, "broke it")
    bad = Pass("bad", break_graph)
    PassManager([bad], verify=False).run(mlp.graph, PassContext())  # unverified: slips through
    with pytest.raises(PassError, match="'bad'"):
        PassManager([bad], verify=True).run(mlp.graph, PassContext())


def test_default_pipeline_records_and_leaves_model_graph_untouched(mlp):
    compiled = keras.compile_model(mlp, verify=True)
    g = compiled.graph("predict")
    records = compiled.records("predict")
    assert [r.name for r in records] == ["shape_inference", "dtype_check", "inline", "inference_specialization",
                                         "dead_code_elimination", "simplify", "cse", "constant_folding", "layouts"]
    assert all(not r.changed and r.nodes_before == r.nodes_after == 4 for r in records)
    assert "checked 3 nodes" in records[0].report
    assert g.nodes["d2"]["meta"]["shape_inference"] == [ir.TensorSpec((None, 64), "float32")]
    assert "shape_inference" not in mlp.graph.nodes["d2"]["meta"]   # passes work on a copy
    text = compiled.report(print_fn=lambda s: None)
    assert "shape_inference" in text and "constant_folding" in text


def test_shape_inference_detects_a_recorded_spec_that_is_wrong(mlp):
    g = ir.copy(mlp.graph)
    g.nodes["d2"]["output_specs"] = [ir.TensorSpec((None, 65), "float32")]
    with pytest.raises(PassError, match="Node 'd2' \\(Dense\\).*recorded"):
        PassManager(["shape_inference"]).run(g, PassContext())


def test_shape_inference_handles_unknown_dims_and_ops():
    inp = keras.Input(shape=(None, 4), name="seq")
    x = keras.ops.mean(inp, axis=1)
    out = layers.Dense(2, name="head")(x * 2.0)
    model = keras.Model(inp, out)
    g, records, _ = PassManager(["shape_inference"], verify=True).run(model.graph, PassContext())
    assert g.nodes["head"]["meta"]["shape_inference"] == [ir.TensorSpec((None, 2), "float32")]


def test_dtype_check_reports_integer_promotion_and_refuses_float64():
    inp = keras.Input(shape=(3,), dtype="int32", name="ids")
    out = layers.Dense(2, name="d")(inp)
    model = keras.Model(inp, out)
    g, records, _ = PassManager(["shape_inference", "dtype_check"]).run(model.graph, PassContext())
    assert "d: integer input ['int32'] promoted to float32" in records[1].report
    wide = keras.Input(shape=(3,), dtype="float64", name="wide")
    model = keras.Model(wide, layers.Dense(2)(wide))
    with pytest.raises(PassError, match="Node 'wide' \\(InputLayer\\) produces float64"):
        PassManager(["shape_inference", "dtype_check"]).run(model.graph, PassContext())


def test_custom_pass_registration_and_stage_access(mlp):
    seen = []

    def count_dense(g, ctx):
        n = sum(1 for _, d in g.nodes(data=True) if d["op"] == "Dense")
        seen.append(n)
        return PassResult(g, False, f"{n} Dense")
    passes.register(Pass("count_dense", count_dense))
    compiled = keras.compile_model(mlp, passes=["shape_inference", "count_dense"])
    assert seen == [] and compiled.records("predict")[1].report == "3 Dense"
    assert seen == [3]
    assert compiled.graph("count_dense").number_of_nodes() == 4
    with pytest.raises(ValueError, match="Unknown stage"):
        compiled.graph("nope")
    with pytest.raises(ValueError, match="Unknown pass 'nope'"):
        passes.get("nope")
