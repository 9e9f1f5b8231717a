"""Dtype checks: every node's inputs have dtypes its layer accepts, and promotions are reported.

Rules: float layers receive floats (an integer input to a float layer is promoted, and reported);
layers that index (`Layer.index_input`: Embedding) receive integers or integral floats; float64 never appears (JAX runs with
x64 off, so it would be silently demoted); all float inputs of a merge share one dtype or are reported.
"""
from fncompiler import ir
from .manager import Pass, PassResult, register


class DtypeError(TypeError):
    pass


def run(graph, ctx):
    findings = []
    for nid in graph.graph.get("order") or ir.topo_order(graph):
        data = graph.nodes[nid]
        specs = data["output_specs"]
        for s in specs:
            if s.dtype == "float64":
                raise DtypeError(f"Node {nid!r} ({data['op']}) produces float64, which JAX computes as float32 unless "
                                 "jax_enable_x64 is set. Use float32 inputs, or enable x64 explicitly.")
        if data["kind"] == "input":
            continue
        ins = [graph.nodes[src]["output_specs"][i] for src, i in ir.input_edges(graph, nid)]
        floats = {s.dtype for s in ins if s.dtype in ("float16", "bfloat16", "float32", "float64")}
        if len(floats) > 1:
            findings.append(f"{nid}: mixed float inputs {sorted(floats)} promoted")
        if getattr(data["layer"], "index_input", False):
            continue
        if ins and all(s.dtype not in ("float16", "bfloat16", "float32", "float64") for s in ins) \
                and any(s.dtype.startswith("float") for s in specs):
            findings.append(f"{nid}: integer input {[s.dtype for s in ins]} promoted to {specs[0].dtype}")
        data["meta"]["dtype_check"] = [s.dtype for s in specs]
    report = "all dtypes consistent" if not findings else "; ".join(findings)
    return PassResult(graph, False, report)


dtype_check = register(Pass("dtype_check", run, requires=("shape_inference",), description=__doc__.splitlines()[0],
                            analysis=True))
