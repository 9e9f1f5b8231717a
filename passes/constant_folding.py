"""Constant folding: what depends on no model input is evaluated once, not in every step.

1. Constant nodes (every mode). A node none of whose inputs depends on a model input is evaluated at compile
   time when it reads no weights and draws no random numbers; its values are written into the arguments of
   the nodes that read it (as the symbolic API itself records `x + jnp.ones(3)`), and the node is removed (a
   model output keeps a `Constant` node). The functional API never records such nodes today: an op or layer
   applied to concrete arrays runs eagerly when the graph is written (it is already folded) and only calls on
   symbolic tensors become nodes, all of which depend on an `Input`. They appear in IRs written by hand or by
   other passes; on graphs built from `Input` this part is a no-op (tests check both).

2. Weight-only expressions (predict only, `pass_options={"fold_weight_expressions": True}`; off by default, see
   docs/passes.md for the measurement). Each node's inference call is traced with `jax.make_jaxpr` and split by
   partial evaluation into the equations that depend only on weights and constants (e.g. BatchNormalization's
   `scale = gamma * rsqrt(moving_variance + eps)` and `offset = beta - moving_mean * scale`, the rescaled kernel
   of a FoldedBatchNorm, a weight's cast to a bfloat16 compute dtype) and the rest (see partial_eval.py). The
   node keeps its layer and gets `fold`, the plan. Weights change between predict calls (training goes on), so
   nothing is baked: the predict step of `compile_model` evaluates the weight-only part (the *residuals*) in a
   separate jitted function once per weight version (cached on the identity of the weight arrays) and the
   per-batch step reads the residuals; any other use of the graph (eval, export, `lowering.forward` without
   residuals) calls the layer as before. A node that reads weights and no model input (part 1 leaves it)
   becomes one whose every output is a residual.

Train and eval graphs get no plans: there weights are differentiated or change every step.
"""
import jax
import networkx as nx
import numpy as np

from fncompiler import ir
from fncompiler.symbolic import Slot, fill_arguments
from .composite import Constant
from .manager import Pass, PassResult, register
from .partial_eval import WeightFold, _RecordingScope, accepts_training
from .rewrite import is_output

DEFAULT_FOLD_WEIGHT_EXPRESSIONS = False


def _evaluate(data, mode):
    """The node's output values (a list), or None when it reads weights, keeps state or may be random."""
    layer = data["layer"]
    args, kwargs = fill_arguments(data["arguments"], [])
    kwargs = dict(kwargs)
    if accepts_training(layer) and kwargs.get("training") is None:
        if mode == "train":
            return None                        # e.g. Dropout: random in training
        kwargs["training"] = False
    scope = _RecordingScope({}, claim_all=True)      # assignments stay in the scope (and refuse folding)
    try:
        with jax.ensure_compile_time_eval(), scope:
            out = layer(*args, **kwargs)
    except Exception:
        return None
    if scope.missed or scope.updates or scope.losses:
        return None
    leaves = jax.tree_util.tree_leaves(out)
    if len(leaves) != len(data["output_specs"]) or any(isinstance(v, jax.core.Tracer) for v in leaves):
        return None
    return [jax.numpy.asarray(v) for v in leaves]


def _inline_input(g, dst, pos, value):
    """Replace input `pos` of node `dst` by the constant `value` in its argument template."""
    def renumber(leaf):
        if isinstance(leaf, Slot):
            if leaf.index == pos:
                return value
            return Slot(leaf.index - 1) if leaf.index > pos else leaf
        return leaf
    data = g.nodes[dst]
    data["arguments"] = jax.tree_util.tree_map(renumber, data["arguments"], is_leaf=lambda x: isinstance(x, Slot))
    for src, _, key, d in list(g.in_edges(dst, keys=True, data=True)):
        if d["dst_index"] == pos:
            g.remove_edge(src, dst, key)
        elif d["dst_index"] > pos:
            d["dst_index"] -= 1


def _fold_constant_nodes(graph, mode):
    reachable = set(graph.graph["inputs"])
    for nid in graph.graph["inputs"]:
        reachable |= nx.descendants(graph, nid)
    folded = []
    for nid in list(graph.graph["order"]):
        if nid in reachable or nid not in graph:
            continue
        data = graph.nodes[nid]
        if data["kind"] != "layer" or data["op"] == "Constant" or graph.in_degree(nid):
            continue                           # an input still comes from a node that was not folded
        values = _evaluate(data, mode)
        if values is None:
            continue
        for dst, key, d in sorted(((v, k, d) for _, v, k, d in graph.out_edges(nid, keys=True, data=True)),
                                  key=lambda e: -e[2]["dst_index"]):
            _inline_input(graph, dst, d["dst_index"], values[d["src_index"]])
        if is_output(graph, nid):
            layer = Constant(values, name=f"{nid}_constant", folded_from=nid)
            data.update(layer=layer, op="Constant", config=layer.get_config(), arguments=((), {}))
            data["meta"]["constant_folding"] = {"folded_from": data["config"]["folded_from"]}
        else:
            graph.remove_node(nid)
        folded.append(nid)
    return folded


def _plan_weight_expressions(graph):
    planned, new = [], 0
    for nid in graph.graph["order"]:
        data = graph.nodes[nid]
        if data["kind"] != "layer" or data["op"] == "Constant":
            data.pop("fold", None)
            continue
        if data.get("fold") is not None and data["fold"].layer is data["layer"]:
            planned.append((nid, data["fold"]))   # planned by an earlier run (fixed-point pipelines)
            continue
        data.pop("fold", None)
        specs = [graph.nodes[src]["output_specs"][i] for src, i in ir.input_edges(graph, nid)]
        try:
            fold = WeightFold.plan(data["layer"], data["arguments"], specs)
        except Exception:                      # a call that cannot be traced on its specs stays as it is
            fold = None
        if fold is None or not fold.variables or (fold.expressions == 0 and graph.in_degree(nid)):
            continue
        data["fold"] = fold
        data["meta"]["constant_folding"] = {"expressions": fold.expressions, "residuals": len(fold.residual_refs),
                                            "residual_bytes": fold.residual_bytes,
                                            "weights": [v.path for v in fold.variables]}
        planned.append((nid, fold))
        new += 1
    return planned, new


def run(graph, ctx):
    folded = _fold_constant_nodes(graph, ctx.mode)
    planned, new = [], 0
    if ctx.mode == "predict" and ctx.options.get("fold_weight_expressions", DEFAULT_FOLD_WEIGHT_EXPRESSIONS):
        planned, new = _plan_weight_expressions(graph)
    expressions = sum(f.expressions for _, f in planned)
    res_bytes = sum(f.residual_bytes for _, f in planned)
    report = f"folded {len(folded)} nodes / {expressions} weight-only expressions in {len(planned)} layers"
    if folded:
        report += f" (constant nodes: {', '.join(folded)})"
    if planned:
        report += f"; residuals {res_bytes / 1024:.1f} KiB, computed once per weight version"
    if ctx.mode == "predict" and not ctx.options.get("fold_weight_expressions", DEFAULT_FOLD_WEIGHT_EXPRESSIONS):
        report += " (weight-only folding is off; pass_options fold_weight_expressions=True turns it on)"
    return PassResult(graph, bool(folded or new), report)


constant_folding = register(Pass("constant_folding", run, requires=("shape_inference",),
                                 options=("fold_weight_expressions",),
                                 description=__doc__.splitlines()[0], preserves=("shape_inference", "dtype_check")))
