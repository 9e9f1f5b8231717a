"""Dead-node elimination: remove nodes none of whose outputs reaches a model output.

Runs in eval/predict/export only: in training a dead node could still add a loss or update state.
"""
from .manager import Pass, PassResult, register
from .rewrite import live_nodes


def run(graph, ctx):
    dead = [n for n in graph.nodes if n not in live_nodes(graph)]
    graph.remove_nodes_from(dead)
    return PassResult(graph, bool(dead), f"removed {len(dead)} dead nodes" + (f": {', '.join(dead)}" if dead else ""))


dead_code_elimination = register(Pass("dead_code_elimination", run, modes=("eval", "predict", "export"),
                                      description=__doc__.splitlines()[0],
    preserves=("shape_inference", "dtype_check")))
