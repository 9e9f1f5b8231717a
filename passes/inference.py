"""Inference specialization: layers that only act in training become identities in eval/predict/export.

A layer declares the modes in which it returns its input (`Layer.identity_in`): Dropout and its variants and
noise layers in eval/predict/export, so there their nodes are removed and their readers read the input
directly; ActivityRegularization (identity plus a loss) in predict/export only, since evaluate() reports its loss.
BatchNormalization already uses its moving statistics there (training=False); see fold_batchnorm.
"""
from fncompiler import ir
from .manager import Pass, PassResult, register
from .rewrite import bypass



def run(graph, ctx):
    removed = []
    for nid in list(graph.graph["order"]):
        data = graph.nodes[nid]
        if data["kind"] != "layer" or ctx.mode not in getattr(data["layer"], "identity_in", ()):
            continue
        if graph.in_degree(nid) != 1 or len(data["output_specs"]) != 1:
            continue
        src, _, edge = next(iter(graph.in_edges(nid, data=True)))
        if graph.nodes[src]["output_specs"][edge["src_index"]].dtype != data["output_specs"][0].dtype:
            continue  # e.g. an augmentation layer that casts uint8 images to float at inference
        args, kwargs = data["arguments"]
        if kwargs.get("training"):
            continue  # the model asked for training behaviour explicitly
        bypass(graph, nid)
        removed.append(f"{nid} ({data['op']})")
    report = f"removed {len(removed)} training-only nodes" + (f": {', '.join(removed)}" if removed else "")
    return PassResult(graph, bool(removed), report)


inference_specialization = register(Pass("inference_specialization", run, modes=("eval", "predict", "export"),
                                         description=__doc__.splitlines()[0],
    preserves=("shape_inference", "dtype_check")))
