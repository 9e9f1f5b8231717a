"""Weight layouts: under an active distribution, record on each node how its weights are laid out
(meta["layouts"] = {weight path: layout}) and the totals in graph.graph["layouts"]. Not in the export
pipeline: an exported artifact holds gathered (unsharded) weights."""
import sys

from .manager import Pass, PassResult, register


def run(graph, ctx):
    dist_mod = sys.modules.get("fncompiler.distribution")
    if dist_mod is None or dist_mod.get_distribution() is None:
        return PassResult(graph, False, "no distribution: weights on one device")
    sharded = 0
    total = 0
    for _, data in graph.nodes(data=True):
        layer = data.get("layer")
        if data["kind"] != "layer" or layer is None or not layer.weights:
            continue
        layouts = {w.path: str(dist_mod.layout_of(w)) for w in layer.weights}
        data["meta"]["layouts"] = layouts
        total += len(layouts)
        sharded += sum(1 for v in layouts.values() if v != "replicated")
    graph.graph["layouts"] = {"sharded": sharded, "replicated": total - sharded}
    return PassResult(graph, False, f"{sharded} weights sharded, {total - sharded} replicated")


layouts = register(Pass("layouts", run, modes=("train", "eval", "predict"), analysis=True,
                        description=__doc__.splitlines()[0]))
