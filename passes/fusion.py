"""Layer-level fusion: rewrite rules as data, each a (name, pattern test, rewrite) with a one-line comment.

A rule matches a node and its single reader; the two become one composite node that calls the original
layers in order (their weights are unchanged and shared). XLA already fuses element-wise chains inside a
jitted step, so these rules shrink the IR (and the number of layer calls the eager mode makes); see
docs/passes.md for what was measured.
"""
from fncompiler import ir
from .composite import AddThen, Chain
from .manager import Pass, PassResult, register
from .rewrite import consumers, is_output, redirect

LINEAR = {"Dense", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
          "DepthwiseConv2D", "SeparableConv2D"}
ACTIVATIONS = {"Activation", "ReLU", "LeakyReLU", "ELU", "Softmax"}


def _single_reader(g, nid):
    readers = consumers(g, nid)
    if len(readers) != 1 or is_output(g, nid) or len(g.nodes[nid]["output_specs"]) != 1:
        return None
    dst = readers[0][0]
    if g.in_degree(dst) != 1 or g.nodes[dst]["arguments"][1]:
        return None
    return dst


def _linear_then_activation(g, nid):
    # Dense/Conv(x) -> Activation: one node calling both (the activation runs on the layer's output)
    return g.nodes[nid]["op"] in LINEAR and (dst := _single_reader(g, nid)) is not None \
        and g.nodes[dst]["op"] in ACTIVATIONS and dst


def _add_then_activation(g, nid):
    # Add([a, b, ...]) -> Activation: the residual sum and its activation as one node
    return g.nodes[nid]["op"] == "Add" and (dst := _single_reader(g, nid)) is not None \
        and g.nodes[dst]["op"] in ACTIVATIONS and dst


RULES = [
    ("linear+activation", _linear_then_activation, lambda first, second, name: Chain([first, second], name)),
    ("add+activation", _add_then_activation, lambda first, second, name: AddThen(second, name)),
]


def _merge(g, nid, dst, make, rule):
    first, second = g.nodes[nid], g.nodes[dst]
    new_id = f"{nid}+{dst}"
    g.add_node(new_id, kind="layer", layer=make(first["layer"], second["layer"], new_id), op=f"Fused[{rule}]",
               config={"first": first["config"], "second": second["config"]}, arguments=first["arguments"],
               output_specs=list(second["output_specs"]), order=first["order"], meta={"fusion": [nid, dst]})
    for pos, (src, idx) in enumerate(ir.input_edges(g, nid)):
        g.add_edge(src, new_id, src_index=idx, dst_index=pos)
    redirect(g, dst, 0, new_id, 0)
    g.remove_nodes_from([nid, dst])


def run(graph, ctx, rules=None):
    applied = []
    for nid in list(graph.graph["order"]):
        if nid not in graph or graph.nodes[nid]["kind"] != "layer":
            continue
        for rule, match, make in (RULES if rules is None else rules):
            dst = match(graph, nid)
            if dst:
                _merge(graph, nid, dst, make, rule)
                applied.append(f"{rule}: {nid}+{dst}")
                break
    return PassResult(graph, bool(applied), f"applied {len(applied)} fusions" +
                      (f" ({', '.join(applied)})" if applied else ""))


fusion = register(Pass("fusion", run, requires=("shape_inference",), description=__doc__.splitlines()[0],
    preserves=("shape_inference", "dtype_check")))
