"""BatchNormalization folding (predict/export): Conv/Dense -> BatchNormalization becomes one node.

In inference BN is an affine map per channel, so it folds into the preceding linear layer's kernel and bias.
Applies when the linear layer has no activation, feeds only the BN, BN normalizes the last axis, and the
linear layer's output channels are its kernel's last axis (Dense, Conv1D/2D/3D).
"""
from fncompiler import ir
from .composite import FoldedBatchNorm
from .manager import Pass, PassResult, register
from .rewrite import consumers, is_output, redirect

LINEAR = {"Dense", "Conv1D", "Conv2D", "Conv3D"}


def _foldable(g, lin_id, bn_id):
    lin, bn = g.nodes[lin_id], g.nodes[bn_id]
    if lin["kind"] != "layer" or lin["op"] not in LINEAR or bn["op"] != "BatchNormalization":
        return False
    layer, bn_layer = lin["layer"], bn["layer"]
    if getattr(layer, "activation", None) is not None and getattr(layer.activation, "__name__", "") != "linear":
        return False
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return False
    rank = len(bn["output_specs"][0].shape)
    axis = bn_layer.axis if isinstance(bn_layer.axis, int) else (bn_layer.axis[0] if len(bn_layer.axis) == 1 else None)
    if axis is None or axis % rank != rank - 1:
        return False
    if len(consumers(g, lin_id)) != 1 or is_output(g, lin_id):
        return False
    args, kwargs = bn["arguments"]
    return not kwargs.get("training")


def run(graph, ctx):
    folded = []
    for bn_id in list(graph.graph["order"]):
        if bn_id not in graph or graph.nodes[bn_id]["op"] != "BatchNormalization":
            continue
        (lin_id, idx), = ir.input_edges(graph, bn_id) or [(None, 0)]
        if lin_id is None or not _foldable(graph, lin_id, bn_id):
            continue
        lin, bn = graph.nodes[lin_id], graph.nodes[bn_id]
        new_id = f"{lin_id}+{bn_id}"
        graph.add_node(new_id, kind="layer", layer=FoldedBatchNorm(lin["layer"], bn["layer"], name=new_id),
                       op="FoldedBatchNorm", config={"linear": lin["config"], "batch_normalization": bn["config"]},
                       arguments=lin["arguments"], output_specs=list(bn["output_specs"]), order=lin["order"],
                       meta={"fold_batchnorm": [lin_id, bn_id]})
        for src, src_index in ir.input_edges(graph, lin_id):
            graph.add_edge(src, new_id, src_index=src_index, dst_index=0)
        redirect(graph, bn_id, 0, new_id, 0)
        graph.remove_nodes_from([lin_id, bn_id])
        folded.append(f"{bn_id} into {lin_id}")
    return PassResult(graph, bool(folded), f"folded {len(folded)} BatchNormalization" +
                      (f": {', '.join(folded)}" if folded else ""))


fold_batchnorm = register(Pass("fold_batchnorm", run, requires=("shape_inference",), modes=("predict", "export"),
                               description=__doc__.splitlines()[0],
    preserves=("shape_inference", "dtype_check")))
