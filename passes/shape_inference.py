"""Shape inference: recompute every node's output specs from its inputs' specs and check them.

Each node's layer computes its output spec from symbolic inputs built from the specs of the nodes feeding
it; the result must match the spec recorded when the graph was written. Findings go to
meta["shape_inference"].
"""
import jax

from fncompiler import ir
from fncompiler.symbolic import SymbolicTensor, fill_arguments
from .manager import Pass, PassResult, register


class ShapeMismatchError(ValueError):
    pass


def _compatible(recorded, inferred):
    if len(recorded.shape) != len(inferred.shape) or recorded.dtype != inferred.dtype:
        return False
    return all(a is None or b is None or a == b for a, b in zip(recorded.shape, inferred.shape))


def run(graph, ctx):
    checked = 0
    for nid in graph.graph.get("order") or ir.topo_order(graph):
        data = graph.nodes[nid]
        if data["kind"] == "input":
            data["meta"]["shape_inference"] = list(data["output_specs"])
            continue
        ins = [graph.nodes[src]["meta"]["shape_inference"][i] for src, i in ir.input_edges(graph, nid)]
        symbolic = [SymbolicTensor(s.shape, s.dtype) for s in ins]
        args, kwargs = fill_arguments(data["arguments"], symbolic)
        out = data["layer"].compute_output_spec(*args, **kwargs)
        inferred = [ir.TensorSpec(t.shape, t.dtype) for t in jax.tree_util.tree_leaves(out)]
        recorded = data["output_specs"]
        if len(inferred) != len(recorded) or not all(_compatible(r, i) for r, i in zip(recorded, inferred)):
            raise ShapeMismatchError(f"Node {nid!r} ({data['op']}): inputs {[tuple(s.shape) for s in ins]} give "
                                     f"outputs {inferred}, but the graph recorded {recorded}.")
        data["meta"]["shape_inference"] = inferred
        checked += 1
    return PassResult(graph, False, f"checked {checked} nodes: all output shapes match")


shape_inference = register(Pass("shape_inference", run, description=__doc__.splitlines()[0], analysis=True))
