"""The IR: one node per layer call, edges by input position, verify() and the text dump."""
import networkx as nx
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import ir, layers


def test_mlp_ir_nodes_edges_and_specs(mlp):
    g = mlp.graph
    assert isinstance(g, nx.MultiDiGraph)
    assert ir.topo_order(g) == ["pixels", "d1", "d2", "logits"]
    assert g.nodes["pixels"]["kind"] == "input"
    assert g.nodes["d1"]["op"] == "Dense" and g.nodes["d1"]["config"]["units"] == 64
    assert g.nodes["logits"]["output_specs"] == [ir.TensorSpec((None, 10), "float32")]
    assert [(u, v) for u, v, _ in g.edges] == [("pixels", "d1"), ("d1", "d2"), ("d2", "logits")]
    assert g.graph["inputs"] == ["pixels"] and g.graph["outputs"] == [("logits", 0)]
    assert ir.verify(g)


def test_dump_is_golden(mlp):
    assert ir.dump(mlp.graph) == (
        "graph mnist_model (%pixels: float32(None, 784)) {\n"
        "  %d1 = Dense(%pixels) -> float32(None, 64)\n"
        "  %d2 = Dense(%d1) -> float32(None, 64)\n"
        "  %logits = Dense(%d2) -> float32(None, 10)\n"
        "  return %logits\n"
        "}")


def test_shared_layer_gets_one_node_per_call_and_input_positions():
    a = keras.Input(shape=(3,), name="a")
    b = keras.Input(shape=(3,), name="b")
    shared = layers.Dense(4, name="shared")
    out = layers.subtract([shared(a), shared(b)], name="diff")
    model = keras.Model([a, b], out)
    g = model.graph
    assert {"shared:0", "shared:1"} <= set(g.nodes)
    assert ir.input_edges(g, "diff") == [("shared:0", 0), ("shared:1", 0)]
    assert model.count_params() == 16
    x = np.random.rand(2, 3).astype("float32")
    y = np.random.rand(2, 3).astype("float32")
    w, bias = shared.get_weights()
    np.testing.assert_allclose(model.predict([x, y], verbose=0), (x @ w + bias) - (y @ w + bias), rtol=1e-5, atol=1e-6)


def test_multi_output_edges_carry_output_index():
    inp = keras.Input(shape=(6,), name="x")
    parts = keras.ops.split(inp, 2, axis=-1)
    out = layers.add([parts[1], parts[0]], name="sum")
    model = keras.Model(inp, out)
    g = model.graph
    (split_node,) = [n for n in g.nodes if g.nodes[n]["op"] == "OpLayer"]
    assert len(g.nodes[split_node]["output_specs"]) == 2
    assert ir.input_edges(g, "sum") == [(split_node, 1), (split_node, 0)]
    x = np.arange(12, dtype="float32").reshape(2, 6)
    np.testing.assert_allclose(model.predict(x, verbose=0), x[:, 3:] + x[:, :3])


def test_verify_rejects_broken_graphs(mlp):
    g = ir.copy(mlp.graph)
    g.add_edge("logits", "d1", src_index=0, dst_index=1)
    with pytest.raises(ir.IRError, match="cycle"):
        ir.verify(g)
    g = ir.copy(mlp.graph)
    g.remove_edge("d1", "d2")
    g.add_edge("d1", "d2", src_index=0, dst_index=3)
    with pytest.raises(ir.IRError, match="input positions"):
        ir.verify(g)
    g = ir.copy(mlp.graph)
    g.graph["outputs"] = [("nope", 0)]
    with pytest.raises(ir.IRError, match="missing node"):
        ir.verify(g)
    g = ir.copy(mlp.graph)
    g.add_edge("d1", "d2", src_index=5, dst_index=1)
    with pytest.raises(ir.IRError, match="reads output 5"):
        ir.verify(g)


def test_copy_is_independent(mlp):
    g = mlp.graph
    h = ir.copy(g)
    h.nodes["d1"]["meta"]["x"] = 1
    h.remove_node("logits")
    assert "x" not in g.nodes["d1"]["meta"] and "logits" in g


def test_subclassed_model_is_one_opaque_node():
    class Twice(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = layers.Dense(2)

        def call(self, x):
            return self.d(x) * 2

    m = Twice()
    with pytest.raises(ir.IRError, match="has not been called"):
        ir.build(m)
    m(np.ones((1, 3), "float32"))
    g = ir.build(m)
    assert ir.count_ops(g) == {"Twice": 1}
    assert ir.verify(g)


@pytest.mark.parametrize("shapes,axes", [(((2, 3), (2, 3)), -1), (((2, 4, 3), (2, 5, 3)), 2),
                                         (((2, 3, 4), (2, 3, 5)), 1), (((2, 4, 3), (2, 3, 5)), (2, 1))])
def test_dot_is_a_per_sample_dot_product(shapes, axes):
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(s).astype("float32") for s in shapes)
    ta, tb = keras.Input(shape=shapes[0][1:]), keras.Input(shape=shapes[1][1:])
    out = layers.Dot(axes=axes)([ta, tb])
    ax = axes if isinstance(axes, tuple) else (axes, axes)
    expected = np.stack([np.tensordot(a[i], b[i], axes=([ax[0] % a.ndim - 1], [ax[1] % b.ndim - 1]))
                         for i in range(2)])
    expected = expected.reshape(2, 1) if expected.ndim == 1 else expected
    assert out.shape == (None,) + expected.shape[1:]
    got = keras.Model([ta, tb], out).predict([a, b], verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_compiled_stages_are_snapshots():
    x = keras.Input(shape=(3,))
    model = keras.Model(x, layers.Dense(2)(layers.Dropout(0.5, name="drop")(x)))
    compiled = keras.compile_model(model)
    assert "drop" in compiled.graph("input") and "drop" not in compiled.graph("predict")
    assert "drop" not in compiled.graph("inference_specialization")
