"""Algebraic simplification of shape and activation layers (rewrite rules as data).

Each rule looks at a node and the single node feeding it and, when the pair is redundant, rewires the graph;
the values computed are unchanged (tests check each rule against the unrewritten graph).
"""
from fncompiler import ir
from fncompiler.layers.reshaping import Permute, Reshape
from .manager import Pass, PassResult, register
from .rewrite import bypass, consumers, is_output, redirect

IDEMPOTENT = {"relu", "relu6", "linear", "hard_sigmoid"}


def _producer(g, nid):
    ins = ir.input_edges(g, nid)
    if len(ins) != 1:
        return None
    src, idx = ins[0]
    if g.nodes[src]["kind"] != "layer" or idx != 0 or len(consumers(g, src)) != 1 or is_output(g, src):
        return None
    return src


def _activation_name(data):
    if data["op"] == "Activation":
        return data["config"].get("activation")
    if data["op"] == "ReLU" and data["config"].get("max_value") is None and not data["config"].get("negative_slope") \
            and not data["config"].get("threshold"):
        return "relu"
    return None


def _linear_activation(g, nid):
    # Activation("linear")(x) -> x
    data = g.nodes[nid]
    if data["op"] == "Activation" and data["config"].get("activation") == "linear" and g.in_degree(nid) == 1:
        bypass(g, nid)
        return "removed linear activation"
    return None


def _repeated_idempotent_activation(g, nid):
    # f(f(x)) -> f(x) for f in relu, relu6, hard_sigmoid: the second application changes nothing
    name = _activation_name(g.nodes[nid])
    src = _producer(g, nid) if name in IDEMPOTENT else None
    if src is not None and _activation_name(g.nodes[src]) == name:
        bypass(g, nid)
        return f"removed repeated {name}"
    return None


def _reshape_of_reshape(g, nid):
    # Reshape(b)(Reshape(a)(x)) -> Reshape(b)(x); Reshape(Flatten(x)) likewise: only the last shape matters
    if g.nodes[nid]["op"] not in ("Reshape", "Flatten"):
        return None
    src = _producer(g, nid)
    if src is None or g.nodes[src]["op"] not in ("Reshape", "Flatten"):
        return None
    if g.nodes[nid]["op"] == "Flatten" and g.nodes[nid]["config"].get("data_format") == "channels_first":
        return None
    if g.nodes[src]["op"] == "Flatten" and g.nodes[src]["config"].get("data_format") == "channels_first":
        return None
    (orig, idx), = ir.input_edges(g, src)
    target = tuple(g.nodes[nid]["output_specs"][0].shape[1:])
    if any(d is None for d in target):
        return None
    data = g.nodes[nid]
    if data["op"] == "Flatten":
        data["layer"] = Reshape(target, name=f"{nid}_reshape")
        data["op"], data["config"] = "Reshape", data["layer"].get_config()
    g.remove_edge(src, nid)
    g.add_edge(orig, nid, src_index=idx, dst_index=0)
    g.remove_node(src)
    if tuple(g.nodes[orig]["output_specs"][idx].shape[1:]) == target:
        bypass(g, nid)                      # the two reshapes cancel
        return "removed a pair of cancelling reshapes"
    return "merged two reshapes"


def _permute_of_permute(g, nid):
    # Permute(q)(Permute(p)(x)) -> Permute(p∘q)(x), and nothing at all when the composition is the identity
    if g.nodes[nid]["op"] != "Permute":
        return None
    src = _producer(g, nid)
    if src is None or g.nodes[src]["op"] != "Permute":
        return None
    p, q = g.nodes[src]["layer"].dims, g.nodes[nid]["layer"].dims
    composed = tuple(p[d - 1] for d in q)
    (orig, idx), = ir.input_edges(g, src)
    g.remove_edge(src, nid)
    g.add_edge(orig, nid, src_index=idx, dst_index=0)
    g.remove_node(src)
    if composed == tuple(range(1, len(composed) + 1)):
        bypass(g, nid)
        return "removed a pair of cancelling permutes"
    layer = Permute(composed, name=f"{nid}_composed")
    g.nodes[nid].update(layer=layer, config=layer.get_config())
    return "merged two permutes"


RULES = [_linear_activation, _repeated_idempotent_activation, _reshape_of_reshape, _permute_of_permute]


def run(graph, ctx):
    applied = []
    for nid in list(graph.graph["order"]):
        if nid not in graph or graph.nodes[nid]["kind"] != "layer":
            continue
        for rule in RULES:
            what = rule(graph, nid)
            if what:
                applied.append(f"{nid}: {what}")
                break
    return PassResult(graph, bool(applied), f"{len(applied)} simplifications" +
                      (f" ({'; '.join(applied)})" if applied else ""))


simplify = register(Pass("simplify", run, requires=("shape_inference",), description=__doc__.splitlines()[0],
                         preserves=("shape_inference", "dtype_check")))
