"""The IR: a networkx.MultiDiGraph with one node per layer call.

Node attributes
    kind         "input" (a model input) or "layer" (one call of a layer)
    layer        the Layer object whose `call` computes the node
    op           the layer's class name
    config       the layer's get_config() when the IR was built
    arguments    (args, kwargs) of the call with `Slot(i)` where the i-th input tensor goes
    output_specs list of TensorSpec(shape, dtype), one per output
    order        creation order (a topological order of the original graph)
    meta         dict namespaced by pass name: what analyses found (e.g. meta["shape_inference"])
    fold         (optional, predict) a constant-folding plan (passes/partial_eval.py WeightFold): the weight-only
                 part of the call, evaluated once per weight version by the predict step
Edge attributes (u -> v, one edge per input of v)
    src_index    which output of u
    dst_index    which input position of v
Graph attributes
    name, inputs (node ids in model input order), outputs ([(node id, output index)] in model output order),
    output_tree (the outputs' pytree structure)
"""
import collections

import networkx as nx

TensorSpec = collections.namedtuple("TensorSpec", ["shape", "dtype"])


class IRError(ValueError):
    """The IR is malformed (raised by `verify`)."""


def build(model):
    """The IR of a model: what its `graph` property returns. A model builds its own IR (fncompiler.models.to_ir:
    a functional model one node per layer call, a subclassed one a single node), so this module, the IR's data
    structure and invariants, knows no model class."""
    if not hasattr(type(model), "graph"):
        raise TypeError(f"ir.build takes a model (functional, Sequential or subclassed); received "
                        f"{type(model).__name__} {getattr(model, 'name', model)!r}.")
    return model.graph


def topo_order(g):
    """Node ids in a deterministic topological order (ties broken by creation order)."""
    return list(nx.lexicographical_topological_sort(g, key=lambda n: g.nodes[n]["order"]))


def input_edges(g, nid):
    """[(src, src_index)] feeding node `nid`, in input-position order."""
    edges = sorted(g.in_edges(nid, data=True), key=lambda e: e[2]["dst_index"])
    return [(src, d["src_index"]) for src, _, d in edges]


def verify(g):
    """Check the IR's invariants; raise IRError naming the node and what is wrong."""
    if not nx.is_directed_acyclic_graph(g):
        cycle = nx.find_cycle(g)
        raise IRError(f"IR {g.name!r} has a cycle: {cycle}.")
    for key in ("inputs", "outputs"):
        if key not in g.graph:
            raise IRError(f"IR {g.name!r} lacks graph attribute {key!r}.")
    for nid in g.graph["inputs"]:
        if nid not in g or g.nodes[nid]["kind"] != "input":
            raise IRError(f"IR {g.name!r}: model input {nid!r} is not an input node.")
    for nid, idx in g.graph["outputs"]:
        if nid not in g:
            raise IRError(f"IR {g.name!r}: model output refers to missing node {nid!r}.")
        if idx >= len(g.nodes[nid]["output_specs"]):
            raise IRError(f"IR {g.name!r}: model output {nid!r}[{idx}] is out of range.")
    for nid, data in g.nodes(data=True):
        for attr in ("kind", "op", "arguments", "output_specs", "order", "meta"):
            if attr not in data:
                raise IRError(f"IR node {nid!r} lacks attribute {attr!r}.")
        if data["kind"] == "input":
            if g.in_degree(nid):
                raise IRError(f"IR input node {nid!r} has incoming edges.")
            continue
        if data.get("layer") is None:
            raise IRError(f"IR node {nid!r} has no layer.")
        positions = sorted(d["dst_index"] for _, _, d in g.in_edges(nid, data=True))
        if positions != list(range(len(positions))):
            raise IRError(f"IR node {nid!r}: input positions {positions} are not 0..{len(positions) - 1}.")
        for src, _, d in g.in_edges(nid, data=True):
            if d["src_index"] >= len(g.nodes[src]["output_specs"]):
                raise IRError(f"IR edge {src!r} -> {nid!r} reads output {d['src_index']} of {src!r}, which has "
                              f"{len(g.nodes[src]['output_specs'])} outputs.")
    return True


def _fmt_spec(s):
    shape = "(" + ", ".join("None" if d is None else str(d) for d in s.shape) + ("," if len(s.shape) == 1 else "") + ")"
    return f"{s.dtype}{shape}"


def dump(g):
    """The IR as text, one line per node in topological order."""
    lines = [f"graph {g.name} ("
             + ", ".join(f"%{n}: {_fmt_spec(g.nodes[n]['output_specs'][0])}" for n in g.graph['inputs']) + ") {"]
    for nid in topo_order(g):
        data = g.nodes[nid]
        if data["kind"] == "input":
            continue
        args = ", ".join(f"%{src}" + (f"[{i}]" if len(g.nodes[src]["output_specs"]) > 1 else "")
                         for src, i in input_edges(g, nid))
        outs = ", ".join(_fmt_spec(s) for s in data["output_specs"])
        note = ""
        if data.get("fold") is not None:
            note = f"  # folded: {data['fold'].expressions} weight-only expressions"
        lines.append(f"  %{nid} = {data['op']}({args}) -> {outs}{note}")
    rets = ", ".join(f"%{n}" + (f"[{i}]" if len(g.nodes[n]["output_specs"]) > 1 else "") for n, i in g.graph["outputs"])
    lines.append(f"  return {rets}")
    lines.append("}")
    return "\n".join(lines)


def copy(g):
    """A copy whose node/edge attribute dicts (and meta) can be changed without touching `g`."""
    h = g.copy()
    for _, data in h.nodes(data=True):
        data["meta"] = dict(data["meta"])
        data["output_specs"] = list(data["output_specs"])
    h.graph = dict(g.graph)
    return h


def count_ops(g):
    return collections.Counter(d["op"] for _, d in g.nodes(data=True) if d["kind"] == "layer")
