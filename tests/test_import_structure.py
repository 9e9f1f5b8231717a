"""The import structure: every module imports on its own, and the layers that must not import each other in a
circle do not (tools/import_cycles.py, which these tests also check on a synthetic package)."""
import importlib.util
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _load_tool():
    spec = importlib.util.spec_from_file_location("import_cycles", ROOT / "tools" / "import_cycles.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


@pytest.fixture(scope="module")
def project_graph():
    return tool.build_graph(tool.discover(tool.package_dirs()))


# One process imports the third-party dependencies, then forks a child per project module: each child starts
# with no fncompiler module loaded and imports just that one (a fresh interpreter per module would take
# minutes: most of an import's time is jax's). Two children run at a time.
_FORK_EACH = textwrap.dedent("""
    import os, sys, traceback
    import importlib
    for dep in ("jax", "jax.numpy", "numpy", "networkx", "optax", "msgpack", "flax.serialization", "h5py", "rich"):
        try:                                          # third party: loaded once, shared by every child
            importlib.import_module(dep)
        except ImportError:
            pass
    modules = sys.argv[1:]
    failed = []
    running = {}

    def reap(block):
        pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
        if pid:
            name = running.pop(pid)
            if status:
                failed.append(name)

    for name in modules:
        while len(running) >= 2:
            reap(True)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                __import__(name)
            except BaseException:
                traceback.print_exc()
                print("FAILED", name, flush=True)
                code = 1
            sys.stdout.flush(); sys.stderr.flush()
            os._exit(code)
        running[pid] = name
    while running:
        reap(True)
    print("failed:", sorted(failed))
    sys.exit(1 if failed else 0)
""")


def test_every_module_imports_alone():
    modules = sorted(tool.discover(tool.package_dirs()))
    assert "fncompiler.models.functional" in modules and "fncompiler.runtime.trainer" in modules
    assert "fncompiler.__main__" in modules
    modules.remove("fncompiler.__main__")           # runs the command line when imported
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", _FORK_EACH, *modules], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-6000:]
    assert "failed: []" in proc.stdout


def _circles(g, **view):
    return tool.circles(tool.restrict(g, **view))


def test_no_circle_between_ir_models_and_saving(project_graph):
    packages = ["fncompiler.ir", "fncompiler.models", "fncompiler.saving"]
    assert _circles(project_graph, among=packages) == []
    assert _circles(project_graph, within=packages) == []           # nor between modules inside them
    # the IR is the lowest of the three: it imports neither models nor saving, not even in a function
    assert not [v for v in project_graph.successors("fncompiler.ir") if tool._in(v, packages[1:])]
    # saving's modules never import models (saving knows the model classes through a registered table)
    assert not [(u, v) for u, v in project_graph.edges
                if tool._in(u, ["fncompiler.saving"]) and tool._in(v, ["fncompiler.models"])]


def test_no_circle_within_runtime(project_graph):
    assert _circles(project_graph, within=["fncompiler.runtime"]) == []


def test_the_architecture_diagram_of_the_runtime_is_its_import_graph(project_graph):
    """docs/architecture.md section 6a draws runtime/'s files and imports: it must be the code's graph."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text[text.index("```mermaid\ngraph TD\n"):]
    block = block[:block.index("```", 10)].splitlines()[2:]
    drawn = {tuple(line.split(" --> ")) for line in map(str.strip, block) if " --> " in line}
    boxes = {name for edge in drawn for name in edge} | {line.strip() for line in block if "-->" not in line}
    g = tool.restrict(project_graph, within=["fncompiler.runtime"])
    short = lambda mod: mod.rsplit(".", 1)[-1]
    real = {(short(u), short(v)) for u, v in g.edges if "fncompiler.runtime" not in (u, v)}
    assert drawn == real, f"missing from the diagram: {sorted(real - drawn)}; not in the code: {sorted(drawn - real)}"
    assert boxes == {short(m) for m in g.nodes if m != "fncompiler.runtime"}


def test_no_circle_between_the_model_classes_and_the_runtime(project_graph):
    """Model.fit calls into runtime.trainer; the runtime reaches models only for host_prefix (no model class)."""
    assert _circles(project_graph, within=["fncompiler.ir", "fncompiler.models", "fncompiler.saving",
                                           "fncompiler.runtime"]) == []


def _write(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_tool_finds_module_level_deferred_and_lazy_edges_and_skips_type_checking(tmp_path):
    _write(tmp_path / "pkg", {
        "__init__.py": """
            import importlib
            _NAMES = {"Thing": "lazy_target"}
            def __getattr__(name):
                return getattr(importlib.import_module("." + _NAMES[name], __name__), name)
        """,
        "a.py": "from . import b\n",                                # a -> b at module level
        "b.py": "def f():\n    from .a import x\n    return x\n",    # b -> a deferred: a circle
        "c.py": """
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from . import d                                      # never runs: no edge
            else:
                from . import e                                      # runs: an edge
        """,
        "d.py": "import pkg.c\n",
        "e.py": "",
        "lazy_target.py": "from pkg import sub\n",                   # -> pkg.sub, the subpackage's __init__
        "sub/__init__.py": "from .inner import y\n",
        "sub/inner.py": "from pkg import Thing\ny = 1\n",            # through the lazy _NAMES: -> lazy_target
    })
    g = tool.build_graph(tool.discover({"pkg": tmp_path / "pkg"}))
    assert g.edges["pkg.a", "pkg.b"]["deferred"] is False
    assert g.edges["pkg.b", "pkg.a"]["deferred"] is True
    assert g.has_edge("pkg.c", "pkg.e") and not g.has_edge("pkg.c", "pkg.d")
    assert g.has_edge("pkg.d", "pkg.c")
    assert g.has_edge("pkg.lazy_target", "pkg.sub") and g.has_edge("pkg.sub", "pkg.sub.inner")
    assert g.has_edge("pkg.sub.inner", "pkg.lazy_target")
    assert not g.has_edge("pkg", "pkg.lazy_target")                  # a lazy namespace has no edge of its own
    assert set(g.successors("pkg")) == set()
    assert tool.circles(g) == [["pkg.lazy_target", "pkg.sub", "pkg.sub.inner"], ["pkg.a", "pkg.b"]]
    # only module-level edges: the deferred b -> a no longer closes a circle
    assert tool.circles(tool.restrict(g, module_level=True)) == [["pkg.lazy_target", "pkg.sub", "pkg.sub.inner"]]
    assert tool.circles(tool.restrict(g, within=["pkg.sub"])) == []
    # packages collapsed: pkg.sub <-> pkg.lazy_target is a circle between the two groups
    assert tool.circles(tool.restrict(g, among=["pkg.sub", "pkg.lazy_target"])) == [["pkg.lazy_target", "pkg.sub"]]
    assert tool.circles(tool.restrict(g, among=["pkg.a", "pkg.c", "pkg.d"])) == []   # d -> c only
    with_lazy = tool.build_graph(tool.discover({"pkg": tmp_path / "pkg"}), lazy_edges=True)
    assert with_lazy.edges["pkg", "pkg.lazy_target"]["deferred"] is True
    # the command line: exit status 1 with a circle, 0 without, and the deferred edge marked
    run = [sys.executable, str(ROOT / "tools" / "import_cycles.py"), "--package", f"pkg={tmp_path / 'pkg'}"]
    found = subprocess.run(run + ["--within", "pkg.a,pkg.b"], capture_output=True, text=True)
    assert found.returncode == 1, found.stderr
    assert "pkg.b -> pkg.a  [deferred]" in found.stdout and "cycle: pkg.a -> pkg.b -> pkg.a" in found.stdout
    clean = subprocess.run(run + ["--within", "pkg.a,pkg.b", "--module-level"], capture_output=True, text=True)
    assert clean.returncode == 0 and "No import circle" in clean.stdout
