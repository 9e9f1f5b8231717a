"""Layer-level fusion (rewrite rules as data). The spine ships the pass with no rules enabled yet."""
from .manager import Pass, PassResult, register

# (pattern, replacement) pairs, each with a one-line comment of what it does. Empty until the
# optimizing-pipeline work lands: XLA already fuses element-wise chains inside one jitted step.
RULES = []


def run(graph, ctx):
    return PassResult(graph, False, f"{len(RULES)} rewrite rules enabled; no change")


fusion = register(Pass("fusion", run, requires=("shape_inference",), description=__doc__.splitlines()[0]))
