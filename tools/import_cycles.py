"""Import circles: which of the project's modules import each other in a circle.

    python tools/import_cycles.py                                   # every circle in the project
    python tools/import_cycles.py --within fncompiler.runtime       # circles among runtime's modules
    python tools/import_cycles.py --among fncompiler.ir,fncompiler.models,fncompiler.saving
    python tools/import_cycles.py --module-level                    # only imports run when a module loads

Exit status 1 when a circle is found, 0 when none is (so a test or CI step can call it), 2 on bad arguments.

What is scanned. The packages of pyproject.toml's `[tool.setuptools] package-dir` (fncompiler/ as fncompiler,
passes/ as fncompiler.passes, runtime/ as fncompiler.runtime), read with `ast` (nothing is imported, so the scan
is safe: about a second for the project). A module is a .py file; a package is its `__init__.py`, under the
package's own name (`fncompiler.models` is fncompiler/models/__init__.py).

What is an edge (importer -> imported, both project modules; imports of anything else are dropped):
  * `import a.b.c` and `import a.b.c as x`: an edge to `a.b.c`, the module named.
  * `from a.b import c`: an edge to the submodule `a.b.c` when there is one (so `from . import x` and
    `from fncompiler import ir` are edges to that submodule), else to `a.b` itself, i.e. to the package's
    __init__ when `a.b` is a package: `from fncompiler.models import Functional` is an edge to
    fncompiler.models (whose __init__ imports .functional, ...), not to fncompiler.models.functional.
    Relative imports are resolved against the importer's package.
  * A lazy package (an __init__ that defines a module-level `__getattr__` and a dict literal `_NAMES` of
    name -> module relative to the package, as fncompiler/__init__.py and fncompiler/saving/__init__.py do,
    PEP 562): `from fncompiler import Model` is an edge to the module `_NAMES` names (fncompiler.models), which
    is what the attribute access imports; the lazy package itself gets no edge for it (it is a namespace: the
    importer is the one that uses the name). `--lazy-edges` gives the package those edges too (deferred), to
    see what an attribute access on it can import. Attribute access on a module (`fncompiler.saving.x`) is
    not followed.
  * `importlib.import_module("a.b")` with a literal absolute name counts like `import a.b`.
  * The package __init__s that Python runs on the way to a submodule (`import a.b.c` runs a/__init__ and
    a/b/__init__ first) are not edges: they would tie every submodule to its package's re-exports, and the
    importer's own ancestors are always loaded first anyway. `--parents` adds them (to packages other than
    the importer's own ancestors) for the strictly import-time view.
  * Imports under `if TYPE_CHECKING:` (or `typing.TYPE_CHECKING`) are not edges: they never run. Their
    `else:` branch counts.
  * Deferred imports, those inside a function or method body (run when it is called, not when the module
    loads), are edges marked "deferred"; an edge is deferred only when every import statement giving it is.
    Imports at module level, in class bodies and in module-level `try:`/`if` blocks are module-level.
    `--module-level` drops the deferred edges (the circles that can fail at import time).

What is a circle: a strongly connected component of two or more nodes (a module importing itself is ignored).
For each, the tool prints its members, the edges inside it (file:line, deferred or not) and up to
`--max-cycles` simple cycles, shortest first.
  * `--within P[,Q]`: only the modules in package P (P and P.*), module by module.
  * `--among A,B,C`: only the modules in A, B and C, each package collapsed to one node; a circle is a pair
    (or ring) of those packages that import each other directly: the layering between them. Imports through
    modules outside A, B, C are not followed.
"""
import argparse
import ast
import pathlib
import sys
import tomllib

import networkx as nx

ROOT = pathlib.Path(__file__).resolve().parent.parent


def package_dirs(root=ROOT):
    """{package name: directory} of the top-level packages of pyproject.toml's package-dir mapping."""
    with open(root / "pyproject.toml", "rb") as f:
        mapping = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    return {name: root / path for name, path in mapping.items()}


def discover(packages):
    """{module name: path} of every .py file under each package directory (a package is its __init__)."""
    modules = {}
    for name, directory in sorted(packages.items()):
        directory = pathlib.Path(directory)
        for path in sorted(directory.rglob("*.py")):
            rel = path.relative_to(directory).with_suffix("").parts
            if any(not part.isidentifier() for part in rel):
                continue
            if rel[-1] == "__init__":
                rel = rel[:-1]
            if _inside_package(directory, path):
                modules[".".join((name,) + rel)] = path
    return modules


def _inside_package(directory, path):
    """Every directory between `directory` and `path` is a package (has an __init__.py)."""
    parent = path.parent
    while parent != directory:
        if not (parent / "__init__.py").exists():
            return False
        parent = parent.parent
    return True


def _is_type_checking(test):
    return ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _lazy_names(tree):
    """A lazy package's `_NAMES` (name -> relative submodule) when its __init__ defines `__getattr__`."""
    has_getattr = any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body)
    if not has_getattr:
        return {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == "_NAMES" and isinstance(node.value, ast.Dict)):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return {}
            return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}
    return {}


class _Imports(ast.NodeVisitor):
    """Collect (target text, level, names, line, deferred) of every import statement that can run."""

    def __init__(self):
        self.found = []       # (kind, module, level, names, line, deferred)
        self._depth = 0       # > 0 inside a function body

    def visit_FunctionDef(self, node):
        for d in node.decorator_list + node.args.defaults + node.args.kw_defaults:
            if d is not None:
                self.visit(d)
        self._depth += 1
        for stmt in node.body:
            self.visit(stmt)
        self._depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    def visit_If(self, node):
        if _is_type_checking(node.test):
            for stmt in node.orelse:
                self.visit(stmt)
            return
        self.generic_visit(node)

    def visit_Import(self, node):
        for alias in node.names:
            self.found.append(("import", alias.name, 0, (), node.lineno, self._depth > 0))

    def visit_ImportFrom(self, node):
        self.found.append(("from", node.module or "", node.level, tuple(a.name for a in node.names),
                           node.lineno, self._depth > 0))

    def visit_Call(self, node):
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
        if (name == "import_module" and node.args and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str) and not node.args[0].value.startswith(".")
                and len(node.args) == 1):
            self.found.append(("import", node.args[0].value, 0, (), node.lineno, self._depth > 0))
        self.generic_visit(node)


def _ancestors(mod):
    parts = mod.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _lazy_target(package, value):
    """The module a lazy package's `_NAMES` value names: relative to the package, "runtime.compiled" (the
    top-level package's style: its __getattr__ adds the dot) or "..models" (import_module(value, package))."""
    if not value.startswith("."):
        return f"{package}.{value}"
    level = len(value) - len(value.lstrip("."))
    base = package.split(".")
    base = base[:len(base) - (level - 1)] if level > 1 else base
    rest = value.lstrip(".")
    return ".".join(base + ([rest] if rest else []))


def build_graph(modules, parents=False, lazy_edges=False):
    """The import graph: a networkx.DiGraph over `modules`' names; each edge has `deferred` (bool) and
    `sites` ([(path, line, deferred)])."""
    trees = {mod: ast.parse(pathlib.Path(path).read_text(), str(path)) for mod, path in modules.items()}
    packages = {mod for mod, path in modules.items() if pathlib.Path(path).name == "__init__.py"}
    lazy = {mod: _lazy_names(trees[mod]) for mod in packages}
    g = nx.DiGraph()
    g.add_nodes_from(modules)

    def add(src, dst, path, line, deferred):
        if dst not in modules or dst == src:
            return
        if g.has_edge(src, dst):
            data = g.edges[src, dst]
            if (path, line, deferred) not in data["sites"]:
                data["sites"].append((path, line, deferred))
            data["deferred"] = data["deferred"] and deferred
        else:
            g.add_edge(src, dst, deferred=deferred, sites=[(path, line, deferred)])
        if parents:
            own = set(_ancestors(src)) | ({src} if src in packages else set())
            for anc in _ancestors(dst):
                if anc not in own:
                    add(src, anc, path, line, deferred)

    if lazy_edges:
        for pkg, names in lazy.items():
            line = next(n.lineno for n in trees[pkg].body if isinstance(n, ast.Assign)
                        and getattr(n.targets[0], "id", None) == "_NAMES") if names else 0
            for value in sorted(set(names.values())):
                add(pkg, _longest_known(_lazy_target(pkg, value), modules), modules[pkg], line, True)
    for mod, tree in trees.items():
        collector = _Imports()
        collector.visit(tree)
        path = modules[mod]
        here = mod if mod in packages else mod.rpartition(".")[0]     # the package relative imports start from
        for kind, target, level, names, line, deferred in collector.found:
            if kind == "import":
                add(mod, _longest_known(target, modules), path, line, deferred)
                continue
            if level:
                base = here.split(".")
                base = base[:len(base) - (level - 1)] if level > 1 else base
                target = ".".join(base + ([target] if target else []))
            for name in names:
                sub = f"{target}.{name}"
                if sub in modules:
                    add(mod, sub, path, line, deferred)
                elif target in lazy and name in lazy[target]:
                    add(mod, _longest_known(_lazy_target(target, lazy[target][name]), modules), path, line,
                        deferred)
                else:
                    add(mod, _longest_known(target, modules), path, line, deferred)
    return g


def _longest_known(name, modules):
    """`name`, or its longest prefix that is a project module (`import a.b.func` is not valid, but
    `import a.b.c` where c is not scanned should still tie to a.b)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        cand = ".".join(parts[:i])
        if cand in modules:
            return cand
    return None


def _in(mod, prefixes):
    return any(mod == p or mod.startswith(p + ".") for p in prefixes)


def restrict(g, within=None, among=None, module_level=False):
    """The view the options select: see the module docstring."""
    h = g
    if module_level:
        h = nx.DiGraph()
        h.add_nodes_from(g)
        h.add_edges_from((u, v, d) for u, v, d in g.edges(data=True) if not d["deferred"])
    if within:
        h = h.subgraph([n for n in h if _in(n, within)]).copy()
    if among:
        def group(n):
            return max((p for p in among if _in(n, [p])), key=len, default=None)
        collapsed = nx.DiGraph()
        collapsed.add_nodes_from(among)
        for u, v, d in h.edges(data=True):
            gu, gv = group(u), group(v)
            if gu is None or gv is None or gu == gv:
                continue
            sites = [(p, line, dfr, u, v) for p, line, dfr in d["sites"]]
            if collapsed.has_edge(gu, gv):
                data = collapsed.edges[gu, gv]
                data["sites"].extend(sites)
                data["deferred"] = data["deferred"] and d["deferred"]
            else:
                collapsed.add_edge(gu, gv, deferred=d["deferred"], sites=sites)
        h = collapsed
    return h


def circles(g):
    """The strongly connected components with two or more nodes, each a sorted list, largest first."""
    comps = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    return sorted(comps, key=lambda c: (-len(c), c))


def simple_cycles(g, component, limit):
    """Up to `limit` simple cycles inside `component`, shortest first (length bounded so this stays fast)."""
    sub = g.subgraph(component)
    found = []
    for bound in range(2, len(component) + 1):
        found = [c for c in nx.simple_cycles(sub, length_bound=bound)]
        if len(found) >= limit or bound >= 8:
            break
    found = sorted(found, key=lambda c: (len(c), c))
    return [_rotate(c) for c in found[:limit]]


def _rotate(cycle):
    i = cycle.index(min(cycle))
    return cycle[i:] + cycle[:i]


def _site_text(site):
    path, line, deferred = site[:3]
    try:
        path = pathlib.Path(path).relative_to(ROOT)
    except ValueError:
        pass
    via = f" {site[3]} -> {site[4]}" if len(site) > 3 else ""
    return f"{path}:{line}{' (deferred)' if deferred else ''}{via}"


def report(g, max_cycles=10, out=sys.stdout):
    """Print every circle of `g`; return how many there are."""
    comps = circles(g)
    if not comps:
        print(f"No import circle among {g.number_of_nodes()} modules ({g.number_of_edges()} edges).", file=out)
        return 0
    print(f"{len(comps)} import circle(s) among {g.number_of_nodes()} modules:", file=out)
    for k, comp in enumerate(comps, 1):
        print(f"\ncircle {k}: {len(comp)} modules: {', '.join(comp)}", file=out)
        members = set(comp)
        for u, v, d in sorted(g.edges(data=True)):
            if u in members and v in members:
                mark = "deferred" if d["deferred"] else "module-level"
                print(f"  {u} -> {v}  [{mark}]  " + "; ".join(_site_text(s) for s in d["sites"]), file=out)
        cycles = simple_cycles(g, comp, max_cycles)
        for c in cycles:
            print("  cycle: " + " -> ".join(c + [c[0]]), file=out)
    return len(comps)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--within", help="comma-separated packages: only their modules")
    parser.add_argument("--among", help="comma-separated packages: each one node, circles between them")
    parser.add_argument("--module-level", action="store_true", help="ignore deferred (function-level) imports")
    parser.add_argument("--parents", action="store_true",
                        help="also count the package __init__s run on the way to an imported submodule")
    parser.add_argument("--lazy-edges", action="store_true",
                        help="also give each lazy package (deferred) edges to the modules its __getattr__ imports")
    parser.add_argument("--max-cycles", type=int, default=10, help="simple cycles printed per circle")
    parser.add_argument("--package", action="append", default=[], metavar="NAME=DIR",
                        help="scan these packages instead of pyproject.toml's package-dir (repeatable)")
    args = parser.parse_args(argv)
    if args.package:
        try:
            packages = dict(p.split("=", 1) for p in args.package)
        except ValueError:
            parser.error("--package takes NAME=DIR")
    else:
        packages = package_dirs()
    split = lambda s: [p.strip() for p in s.split(",") if p.strip()] if s else None
    g = build_graph(discover(packages), parents=args.parents, lazy_edges=args.lazy_edges)
    unknown = [p for p in (split(args.within) or []) + (split(args.among) or []) if not any(_in(n, [p]) for n in g)]
    if unknown:
        parser.error(f"no scanned module is in {', '.join(unknown)} (a typo?)")
    view = restrict(g, within=split(args.within), among=split(args.among), module_level=args.module_level)
    return 1 if report(view, max_cycles=args.max_cycles) else 0


if __name__ == "__main__":
    sys.exit(main())
