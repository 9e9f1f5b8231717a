"""A model's IR (fncompiler.ir): the graph of a functional model, or one opaque node for a subclassed model.

The models build their own IR, so fncompiler.ir (the data structure and its invariants) imports no model class:
`Functional.graph` calls `functional_graph`, `Model.graph` (a subclassed model) calls `opaque_graph`, and
`fncompiler.ir.build(model)` returns `model.graph`.
"""
import collections

import jax
import networkx as nx

from .. import ir
from ..symbolic import Slot


def _spec(t):
    return ir.TensorSpec(tuple(t.shape), t.dtype)


def functional_graph(model):
    """The IR of a functional model: one node per layer call (host-prefix layers excluded)."""
    g = nx.MultiDiGraph(name=model.name)
    ids = {}
    counts = collections.Counter(node.layer.name for node in model._nodes)
    seen = collections.Counter()
    order = 0
    input_ids = []
    prefix = getattr(model, "_host_prefix", None)     # host (NumPy) preprocessing: not part of the compiled graph
    for i, t in enumerate(model.inputs if prefix is None else prefix.device_inputs):
        if t.node.is_input:
            nid = t.node.layer.name
            ids[t.node.id] = nid
        else:
            nid = f"input_{i}"
        ids[("tensor", id(t))] = nid
        g.add_node(nid, kind="input", layer=t.node.layer if t.node.is_input else None,
                   op="InputLayer", config=t.node.layer.get_config() if t.node.is_input else {},
                   arguments=((), {}), output_specs=[_spec(t)], order=order, meta={})
        order += 1
        input_ids.append(nid)
    for node in model._nodes:
        if prefix is not None and node.id in prefix.node_ids:
            continue
        if node.is_input:
            if prefix is not None and node.id not in ids:
                continue                                  # a string input read only by the host prefix
            if node.id not in ids:
                raise ir.IRError(f"Input layer {node.layer.name!r} is part of the graph but not a model input.")
            continue
        name = node.layer.name
        nid = name if counts[name] == 1 else f"{name}:{seen[name]}"
        seen[name] += 1
        ids[node.id] = nid
        g.add_node(nid, kind="layer", layer=node.layer, op=type(node.layer).__name__,
                   config=_safe_config(node.layer), arguments=node.arguments,
                   output_specs=[_spec(t) for t in node.output_tensors], order=order, meta={})
        order += 1
        for pos, t in enumerate(node.input_tensors):
            src = ids.get(("tensor", id(t)))
            if src is None:
                src, src_index = ids[t.node.id], t.index
            else:
                src_index = 0
            g.add_edge(src, nid, src_index=src_index, dst_index=pos)
    g.graph["inputs"] = input_ids
    outs = []
    for t in model.outputs:
        if ("tensor", id(t)) in ids:
            outs.append((ids[("tensor", id(t))], 0))
        else:
            outs.append((ids[t.node.id], t.index))
    g.graph["outputs"] = outs
    g.graph["output_tree"] = jax.tree_util.tree_structure(model._outputs_struct)
    g.graph["order"] = ir.topo_order(g)
    return g


def _safe_config(layer):
    try:
        return layer.get_config()
    except Exception as exc:  # a custom layer without get_config must not stop compilation
        return {"error": f"get_config failed: {exc}"}


def opaque_graph(model):
    """A subclassed model (or layer) is one node: its `call` is traced as a whole by JAX."""
    specs = getattr(model, "_traced_input_specs", None)
    if specs is None:
        raise ir.IRError(f"Model {model.name!r} is subclassed and has not been called yet, so its input shapes are "
                      "unknown. Call it once on data (model(x)) or build it before compiling.")
    g = nx.MultiDiGraph(name=model.name)
    inputs = []
    for i, spec in enumerate(specs):
        nid = f"input_{i}"
        g.add_node(nid, kind="input", layer=None, op="InputLayer", config={}, arguments=((), {}),
                   output_specs=[ir.TensorSpec((None,) + tuple(spec.shape[1:]), spec.dtype)], order=i, meta={})
        inputs.append(nid)
    arg = Slot(0) if len(specs) == 1 else [Slot(i) for i in range(len(specs))]
    out_specs = getattr(model, "_traced_output_specs", [])
    g.add_node(model.name, kind="layer", layer=model, op=type(model).__name__, config={},
               arguments=((arg,), {}), output_specs=list(out_specs), order=len(specs), meta={})
    for i, nid in enumerate(inputs):
        g.add_edge(nid, model.name, src_index=0, dst_index=i)
    g.graph["inputs"] = inputs
    g.graph["outputs"] = [(model.name, i) for i in range(max(1, len(out_specs)))]
    g.graph["output_tree"] = getattr(model, "_traced_output_tree", None) or jax.tree_util.tree_structure(0)
    g.graph["order"] = ir.topo_order(g)
    return g
