"""The pass manager: runs passes over the IR, in dependency order, recording what each did.

A pass is a function `(graph, ctx) -> PassResult(graph, changed, report)`; it is registered as a `Pass`
with the analyses it requires and the modes it runs in. The manager orders passes so that each runs after
those it requires, optionally repeats the pipeline to a fixed point, runs `ir.verify` after every pass when
asked (tests always ask), and on failure raises PassError naming the pass and those that ran before it.
"""
import dataclasses
import time

import networkx as nx

from fncompiler import ir


@dataclasses.dataclass
class PassResult:
    graph: object
    changed: bool
    report: str = ""


@dataclasses.dataclass
class PassContext:
    mode: str = "predict"            # "train", "eval" or "predict"/"export"
    options: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Pass:
    name: str
    fn: object
    requires: tuple = ()             # names of passes that must run first
    modes: tuple = ("train", "eval", "predict", "export")
    description: str = ""
    preserves: tuple = ()            # analyses still valid after this pass changes the IR
    analysis: bool = False           # an analysis: re-run when a later pass needs it after invalidating it
    options: tuple = ()              # the ctx.options (compile_model's pass_options) keys this pass reads

    def __call__(self, graph, ctx):
        return self.fn(graph, ctx)


@dataclasses.dataclass
class PassRecord:
    name: str
    changed: bool
    report: str
    nodes_before: int
    nodes_after: int
    seconds: float


class PassError(RuntimeError):
    """A pass failed, or left an IR that does not verify."""


_REGISTRY = {}


def register(pass_):
    """Make a pass available by name to pipelines (`compile_model(model, passes=[...names or Pass...])`)."""
    if not isinstance(pass_, Pass):
        raise TypeError(f"register() expects a Pass; received {type(pass_).__name__}.")
    _REGISTRY[pass_.name] = pass_
    return pass_


def check_options(options, passes=None):
    """ValueError naming each pass_options key that no registered pass (nor a Pass object in `passes`) reads,
    with the keys that some do. A pass declares the keys it reads in `Pass(options=...)`."""
    own = [p for p in (passes or []) if isinstance(p, Pass)]
    known = sorted({key for p in list(_REGISTRY.values()) + own for key in p.options})
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"pass_options: unknown key(s) {unknown}; the passes read only {known}.")
    return dict(options)


def get(name):
    if isinstance(name, Pass):
        return name
    if name not in _REGISTRY:
        raise ValueError(f"Unknown pass {name!r}. Registered passes: {', '.join(sorted(_REGISTRY))}.")
    return _REGISTRY[name]


def order_passes(passes):
    """Order passes so that each comes after the passes it requires (stable otherwise)."""
    passes = [get(p) for p in passes]
    names = {p.name for p in passes}
    dep = nx.DiGraph()
    for i, p in enumerate(passes):
        dep.add_node(p.name, i=i)
        for r in p.requires:
            if r not in names:
                raise PassError(f"Pass {p.name!r} requires pass {r!r}, which is not in the pipeline "
                                f"{[q.name for q in passes]}.")
            dep.add_edge(r, p.name)
    if not nx.is_directed_acyclic_graph(dep):
        raise PassError(f"Pass requirements form a cycle: {nx.find_cycle(dep)}.")
    by_name = {p.name: p for p in passes}
    return [by_name[n] for n in nx.lexicographical_topological_sort(dep, key=lambda n: dep.nodes[n]["i"])]


class PassManager:
    def __init__(self, passes, verify=False, fixed_point=False, max_iterations=8):
        self.passes = order_passes(passes)
        self._by_name = {p.name: p for p in self.passes}
        self.verify = verify
        self.fixed_point = fixed_point
        self.max_iterations = max_iterations

    def run(self, graph, ctx):
        """Run the pipeline on a copy of `graph`; return (new graph, [PassRecord], {pass name: graph after})."""
        graph = ir.copy(graph)
        records, stages, ran = [], {"input": ir.copy(graph)}, []
        valid = set()
        for _ in range(self.max_iterations if self.fixed_point else 1):
            any_changed = False
            for p in self.passes:
                if ctx.mode not in p.modes:
                    continue
                for req in p.requires:             # an analysis a rewrite invalidated runs again first
                    analysis = self._by_name[req]
                    if analysis.analysis and req not in valid and req in ran:
                        graph = self._run_one(analysis, graph, ctx, records, stages, ran, valid)
                graph = self._run_one(p, graph, ctx, records, stages, ran, valid)
                any_changed |= records[-1].changed
            if not any_changed:
                break
        return graph, records, stages

    def _run_one(self, p, graph, ctx, records, stages, ran, valid):
        before = graph.number_of_nodes()
        start = time.perf_counter()
        try:
            result = p(graph, ctx)
            if not isinstance(result, PassResult):
                raise PassError(f"Pass {p.name!r} returned {type(result).__name__}, expected PassResult.")
            graph = result.graph
            if result.changed:
                graph.graph["order"] = ir.topo_order(graph)
            if self.verify:
                ir.verify(graph)
        except PassError:
            raise
        except Exception as exc:
            raise PassError(f"Pass {p.name!r} failed (after {ran or 'no passes'}): {exc}") from exc
        ran.append(p.name)
        records.append(PassRecord(p.name, result.changed, result.report, before, graph.number_of_nodes(),
                                  time.perf_counter() - start))
        stages[p.name] = ir.copy(graph)    # a snapshot: later passes may rewrite `graph` in place
        if p.analysis:
            valid.add(p.name)
        elif result.changed:
            valid.intersection_update(p.preserves)
        return graph
