"""Common-subexpression elimination: identical calls on the same inputs are computed once.

Two nodes are identical when they call the same layer object (so the same weights), or weight-free layers
of the same class and config, with the same inputs (source node, output index, position) and the same
non-tensor arguments. Layers that may draw random numbers (`Layer.random_in_training`, True unless a layer
declares otherwise) are never merged in train mode.
"""
import json

import jax

from fncompiler import ir
from fncompiler.symbolic import Slot
from .manager import Pass, PassResult, register
from .rewrite import redirect


def _random(layer):
    return isinstance(layer, type) or getattr(layer, "random_in_training", True)


def _arguments_key(arguments):
    leaves, treedef = jax.tree_util.tree_flatten(arguments, is_leaf=lambda x: isinstance(x, Slot))
    out = []
    for leaf in leaves:
        if isinstance(leaf, Slot):
            out.append(("slot", leaf.index))
        elif isinstance(leaf, (int, float, str, bool, type(None))):
            out.append(("value", leaf))
        else:
            out.append(("object", id(leaf)))
    return str(treedef), tuple(out)


def _layer_key(data):
    layer = data["layer"]
    if layer.weights:
        return ("layer", id(layer))
    try:
        config = json.dumps({k: v for k, v in data["config"].items() if k != "name"}, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return ("layer", id(layer))
    return ("config", data["op"], config)


def run(graph, ctx):
    seen, merged = {}, []
    for nid in list(graph.graph["order"]):
        if nid not in graph:
            continue
        data = graph.nodes[nid]
        if data["kind"] != "layer" or (ctx.mode == "train" and _random(data["layer"])):
            continue
        key = (_layer_key(data), tuple(ir.input_edges(graph, nid)), _arguments_key(data["arguments"]))
        first = seen.get(key)
        if first is None:
            seen[key] = nid
            continue
        for i in range(len(data["output_specs"])):
            redirect(graph, nid, i, first, i)
        graph.remove_node(nid)
        merged.append(f"{nid} -> {first}")
    return PassResult(graph, bool(merged), f"merged {len(merged)} duplicate nodes" +
                      (f": {', '.join(merged)}" if merged else ""))


common_subexpression_elimination = register(Pass("cse", run, requires=("shape_inference",),
                                                 description=__doc__.splitlines()[0],
    preserves=("shape_inference", "dtype_check")))
