"""Inlining: a nested functional model's node is replaced by the nodes of its own IR.

The inner nodes keep their layers (so their weights stay shared with the standalone model) and are named
`outer/inner` (e.g. "encoder/conv2d"), so reports and summaries still say where they came from. A nested
call is inlined only when it is a plain call on its inputs (no extra keyword arguments such as training=).
"""
from fncompiler import ir
from fncompiler.symbolic import Slot
from .manager import Pass, PassResult, register
from .rewrite import redirect


def _plain_call(arguments, n_inputs):
    args, kwargs = arguments
    if kwargs or len(args) != 1:
        return False
    first = args[0]
    slots = [first] if isinstance(first, Slot) else first if isinstance(first, (list, tuple)) else None
    return slots is not None and [s.index for s in slots if isinstance(s, Slot)] == list(range(n_inputs)) \
        and len(slots) == n_inputs


def _inline_one(g, nid):
    data = g.nodes[nid]
    inner = data["layer"].graph
    outer_inputs = ir.input_edges(g, nid)
    if len(outer_inputs) != len(inner.graph["inputs"]) or not _plain_call(data["arguments"], len(outer_inputs)):
        return False
    mapping = {}   # inner (node, index) -> outer (node, index)
    for inner_input, source in zip(inner.graph["inputs"], outer_inputs):
        mapping[(inner_input, 0)] = source
    base = data["order"]
    count = inner.number_of_nodes() + 1
    for inner_id in inner.graph["order"]:
        idata = inner.nodes[inner_id]
        if idata["kind"] == "input":
            continue
        new_id = f"{nid}/{inner_id}"
        attrs = dict(idata)
        attrs["meta"] = dict(idata["meta"], inlined_from=nid)
        attrs["order"] = base + (idata["order"] + 1) / count
        g.add_node(new_id, **attrs)
        for pos, (src, src_index) in enumerate(ir.input_edges(inner, inner_id)):
            osrc, oidx = mapping.get((src, src_index), (f"{nid}/{src}", src_index))
            g.add_edge(osrc, new_id, src_index=oidx, dst_index=pos)
        for i in range(len(idata["output_specs"])):
            mapping[(inner_id, i)] = (new_id, i)
    for i, (onode, oidx) in enumerate(inner.graph["outputs"]):
        target = mapping[(onode, oidx)]
        redirect(g, nid, i, *target)
    g.remove_node(nid)
    return True


def _is_nested_model(layer):
    return layer is not None and hasattr(layer, "_nodes") and hasattr(layer, "graph")


def run(graph, ctx):
    inlined = []
    changed = True
    while changed:   # inner models may nest further models
        changed = False
        for nid in list(ir.topo_order(graph)):
            data = graph.nodes[nid]
            if data["kind"] == "layer" and _is_nested_model(data["layer"]) and _inline_one(graph, nid):
                inlined.append(nid)
                changed = True
    return PassResult(graph, bool(inlined), f"inlined {len(inlined)} nested models" +
                      (f": {', '.join(inlined)}" if inlined else ""))


inline_nested_models = register(Pass("inline", run, description=__doc__.splitlines()[0],
    preserves=("shape_inference", "dtype_check")))
