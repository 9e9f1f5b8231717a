"""`model_to_dot` / `plot_model`: draw a model's layer graph with Graphviz, as Keras 3 does.

One DOT node per layer (a layer called several times in the model, e.g. a shared layer, is one node with
several incoming edges), labelled with an HTML-like table: "name (Class)" on a black header row and,
optionally, the activation, the input / output shapes, the output dtype and whether it is trainable.
Edges go from the layer that produced each input tensor to the layer that reads it (one edge per pair of
layers). Nested models are one node, or with ``expand_nested=True`` a dashed cluster holding their own
layers, with the outer edges routed to the nested model's input layers and from its output layers.

An IR graph (a `networkx.MultiDiGraph` from `model.graph`, `fncompiler.ir.build` or
`compile_model(model).graph(stage)`) is drawn the same way, one DOT node per IR node: "node id (op)", the
input / output shapes and dtypes from the IR's `output_specs`, and a row for what a pass recorded that changes
the computation (a constant-folding plan, a node folded into a constant, a fused or folded pair). Edges follow
the IR's edges (one per pair of nodes, labelled ":i" when they read output i of a multi-output node).

`model_to_dot` needs only the `pydot` package. `plot_model` renders PNG / SVG / PDF / ... files with the
Graphviz library that the `pygraphviz` wheel bundles (a dependency of fncompiler: no system Graphviz is
needed), or, where pygraphviz is not installed, with the system's Graphviz `dot` program (``.dot`` / ``.gv``
files get the DOT source and need neither).
"""
import errno
import html
import os
import shutil
import sys

__all__ = ["GraphvizNotFoundError", "model_to_dot", "plot_model"]

_PYDOT_HELP = "You must install pydot (`pip install pydot`) for `plot_model` / `model_to_dot` to work."
_GRAPHVIZ_HELP = (
    "Install the pygraphviz wheel, which bundles Graphviz (`pip install 'pygraphviz>=2.0'`; fncompiler "
    "depends on it where a wheel exists: Linux x86_64, macOS, Windows), or the Graphviz programs: "
    "`apt-get install graphviz` (Debian/Ubuntu), `dnf install graphviz` (Fedora), `brew install graphviz` "
    "(macOS), `conda install graphviz`, or see https://graphviz.org/download/ ; then make sure `dot` is on "
    "PATH. (`pip install graphviz` installs neither; the Python side also needs `pip install pydot`.)")

# Output formats that are plain DOT source, written without running Graphviz.
_RAW_EXTENSIONS = ("dot", "gv")


class GraphvizNotFoundError(OSError):
    """Neither pygraphviz (bundled Graphviz) nor Graphviz's `dot` program on PATH, needed to render a model
    plot, is available."""


def _import_pydot():
    try:
        import pydot
    except ImportError as exc:
        raise ImportError(_PYDOT_HELP) from exc
    return pydot


def _graphviz_missing(prog, to_file=None):
    target = f" to render {to_file!r}" if to_file else ""
    return GraphvizNotFoundError(
        errno.ENOENT,
        f"pygraphviz is not installed and Graphviz's `{prog}` program was not found on PATH; plot_model needs "
        f"one of them{target}. {_GRAPHVIZ_HELP}")


# -- model structure -------------------------------------------------------------------------------
def _drawn_layers(model):
    """The boxes of a model: its layers and the ops applied to its symbolic tensors (`operations`)."""
    return list(getattr(model, "operations", None) or model.layers)


def _graph_nodes(model):
    """The Nodes (layer calls) of `model`'s own graph, in creation order; [] for non-graph models."""
    functional = getattr(model, "_functional", None)
    if functional is not None and hasattr(functional, "_nodes"):  # Sequential
        return list(functional._nodes)
    nodes = model.__dict__.get("_nodes") if hasattr(model, "__dict__") else None
    return list(nodes) if nodes else []


def _model_inputs(model):
    inputs = getattr(model, "inputs", None)
    return list(inputs) if inputs else []


def _model_outputs(model):
    outputs = getattr(model, "outputs", None)
    return list(outputs) if outputs else []


def _has_graph(model):
    from ..models.model import Model
    return isinstance(model, Model) and bool(_graph_nodes(model))


def _is_sequential(model):
    from ..models.sequential import Sequential
    return isinstance(model, Sequential)


# -- labels ----------------------------------------------------------------------------------------
def _esc(s):
    return html.escape(str(s), quote=True)


def _format_shape(struct):
    """Keras's plot format: a tuple as Python prints it, lists of them, dicts as 'key: shape'."""
    if struct is None:
        return "?"
    if isinstance(struct, dict):
        return ", ".join(f"{k}: {_format_shape(v)}" for k, v in struct.items())
    if isinstance(struct, (list, tuple)) and not _is_shape(struct):
        return "[" + ", ".join(_format_shape(s) for s in struct) + "]"
    return str(tuple(struct))


def _is_shape(s):
    return isinstance(s, tuple) and all(d is None or isinstance(d, int) for d in s)


def _map_tensors(struct, fn):
    from ..symbolic import is_symbolic
    if is_symbolic(struct):
        return fn(struct)
    if isinstance(struct, dict):
        return {k: _map_tensors(v, fn) for k, v in struct.items()}
    if isinstance(struct, (list, tuple)):
        return [_map_tensors(v, fn) for v in struct]
    return None


def _distinct(strings):
    out = []
    for s in strings:
        if s not in out:
            out.append(s)
    return " | ".join(out) if out else "?"


def _activation_name(layer):
    act = getattr(layer, "activation", None)
    if act is None:
        return None
    if isinstance(act, str):
        return act
    from .. import activations
    try:
        return activations.serialize(act)
    except Exception:  # pragma: no cover - an unusual activation object
        return getattr(act, "name", None) or getattr(act, "__name__", None) or type(act).__name__


def _layer_label(layer, calls, opts):
    """HTML-like Graphviz label of one layer; `calls` are its Nodes in the model being drawn."""
    class_name = type(layer).__name__
    rows = []
    cols = []
    if opts["show_shapes"]:
        if not getattr(layer, "_is_input_layer", False):
            shapes = []
            for node in calls:
                tensors = list(node.input_tensors)
                struct = tensors[0].shape if len(tensors) == 1 else [t.shape for t in tensors]
                shapes.append(_format_shape(struct))
            cols.append(("white", f'Input shape: <b>{_esc(_distinct(shapes))}</b>'))
        shapes = [_format_shape(_map_tensors(node.outputs_struct, lambda t: t.shape)) for node in calls]
        cols.append(("white", f'Output shape: <b>{_esc(_distinct(shapes))}</b>'))
    if opts["show_dtype"]:
        dtypes = [_format_dtype(_map_tensors(node.outputs_struct, lambda t: t.dtype)) for node in calls]
        cols.append(("white", f'Output dtype: <b>{_esc(_distinct(dtypes))}</b>'))
    if opts["show_trainable"] and getattr(layer, "weights", None):
        if layer.trainable:
            cols.append(("forestgreen", '<font color="white"><b>Trainable</b></font>'))
        else:
            cols.append(("firebrick", '<font color="white"><b>Non-trainable</b></font>'))
    colspan = max(1, len(cols))
    if opts["show_layer_names"]:
        title = f"<b>{_esc(layer.name)}</b> ({_esc(class_name)})"
    else:
        title = f"<b>{_esc(class_name)}</b>"
    rows.append(f'<tr><td colspan="{colspan}" bgcolor="black"><font point-size="16" color="white">{title}'
                f'</font></td></tr>')
    if opts["show_layer_activations"]:
        act = _activation_name(layer)
        if act is not None:
            rows.append(f'<tr><td colspan="{colspan}" bgcolor="white"><font point-size="14">'
                        f'Activation: <b>{_esc(act)}</b></font></td></tr>')
    if cols:
        rows.append("<tr>" + "".join(f'<td bgcolor="{bg}"><font point-size="14">{text}</font></td>'
                                     for bg, text in cols) + "</tr>")
    return ('<<table border="0" cellborder="1" cellspacing="0" cellpadding="8" bgcolor="white">'
            + "".join(rows) + "</table>>")


def _format_dtype(struct):
    if struct is None:
        return "?"
    if isinstance(struct, dict):
        return ", ".join(f"{k}: {_format_dtype(v)}" for k, v in struct.items())
    if isinstance(struct, list):
        return "[" + ", ".join(_format_dtype(v) for v in struct) + "]"
    return str(struct)


# -- IR graphs -------------------------------------------------------------------------------------
def _is_ir_graph(obj):
    try:
        import networkx as nx
    except ImportError:  # pragma: no cover - networkx is a dependency
        return False
    return isinstance(obj, nx.MultiDiGraph) and "inputs" in obj.graph and "outputs" in obj.graph


def _ir_shapes(specs):
    shapes = [tuple(s.shape) for s in specs]
    return _format_shape(shapes[0] if len(shapes) == 1 else shapes)


def _ir_notes(data):
    """What passes recorded on a node that changes how it computes (shown under its title)."""
    notes = []
    fold = data.get("fold")
    if fold is not None:
        notes.append(f"folded: {fold.expressions} weight-only expressions, {len(fold.residual_refs)} residuals")
    meta = data.get("meta") or {}
    if data.get("op") == "Constant":
        notes.append(f"constant (folded from {meta.get('constant_folding', {}).get('folded_from', '?')})")
    for key in ("fold_batchnorm", "fusion", "inlined_from"):
        if meta.get(key):
            value = meta[key]
            notes.append(f"{key}: {', '.join(value) if isinstance(value, (list, tuple)) else value}")
    return notes


def _ir_label(g, nid, opts):
    data = g.nodes[nid]
    op = data.get("op", "?")
    layer = data.get("layer")
    cols = []
    if opts["show_shapes"]:
        if data.get("kind") != "input":
            from .. import ir
            ins = [g.nodes[src]["output_specs"][i] for src, i in ir.input_edges(g, nid)]
            if ins:
                cols.append(("white", f'Input shape: <b>{_esc(_ir_shapes(ins))}</b>'))
        cols.append(("white", f'Output shape: <b>{_esc(_ir_shapes(data["output_specs"]))}</b>'))
    if opts["show_dtype"]:
        dtypes = [str(s.dtype) for s in data["output_specs"]]
        cols.append(("white", f'Output dtype: <b>{_esc(dtypes[0] if len(dtypes) == 1 else "[" + ", ".join(dtypes) + "]")}</b>'))
    if opts["show_trainable"] and layer is not None and getattr(layer, "weights", None):
        if layer.trainable:
            cols.append(("forestgreen", '<font color="white"><b>Trainable</b></font>'))
        else:
            cols.append(("firebrick", '<font color="white"><b>Non-trainable</b></font>'))
    colspan = max(1, len(cols))
    title = f"<b>{_esc(nid)}</b> ({_esc(op)})" if opts["show_layer_names"] else f"<b>{_esc(op)}</b>"
    rows = [f'<tr><td colspan="{colspan}" bgcolor="black"><font point-size="16" color="white">{title}'
            f'</font></td></tr>']
    extra = []
    if opts["show_layer_activations"] and layer is not None:
        act = _activation_name(layer)
        if act is not None:
            extra.append(f"Activation: <b>{_esc(act)}</b>")
    extra += [_esc(n) for n in _ir_notes(data)]
    for text in extra:
        rows.append(f'<tr><td colspan="{colspan}" bgcolor="white"><font point-size="14">{text}</font></td></tr>')
    if cols:
        rows.append("<tr>" + "".join(f'<td bgcolor="{bg}"><font point-size="14">{text}</font></td>'
                                     for bg, text in cols) + "</tr>")
    return ('<<table border="0" cellborder="1" cellspacing="0" cellpadding="8" bgcolor="white">'
            + "".join(rows) + "</table>>")


def _ir_to_dot(pydot, dot, g, opts):
    from .. import ir
    ids = {}
    order = ir.topo_order(g)
    for nid in order:
        ids[nid] = f"node_{len(ids)}"
        dot.add_node(pydot.Node(ids[nid], label=_ir_label(g, nid, opts)))
    seen = set()
    for nid in order:
        for src, index in ir.input_edges(g, nid):
            key = (src, nid, index if len(g.nodes[src]["output_specs"]) > 1 else 0)
            if key in seen:
                continue
            seen.add(key)
            attrs = {"label": f":{index}"} if len(g.nodes[src]["output_specs"]) > 1 else {}
            dot.add_edge(pydot.Edge(ids[src], ids[nid], **attrs))


# -- graph building --------------------------------------------------------------------------------
class _DotBuilder:
    def __init__(self, pydot, dot, opts):
        self.pydot = pydot
        self.dot = dot
        self.opts = opts
        self.ids = {}
        self.edges = set()
        self.edge_list = []
        self.n_clusters = 0

    def node_id(self, scope, layer):
        key = (scope, id(layer))
        if key not in self.ids:
            self.ids[key] = f"node_{len(self.ids)}"
        return self.ids[key]

    def expandable(self, layer):
        return self.opts["expand_nested"] and _has_graph(layer)

    def add_model(self, model, graph, scope):
        """Add `model`'s layers to `graph` (the root Dot or a cluster) and its edges to the root Dot."""
        nodes = _graph_nodes(model)
        relevant = {id(n) for n in nodes}
        layers = _drawn_layers(model)
        for layer in layers:
            if self.expandable(layer):
                self.n_clusters += 1
                cluster = self.pydot.Cluster(f"{self.n_clusters}", label=layer.name, style="dashed",
                                             labeljust="l", fontname="Helvetica")
                self.add_model(layer, cluster, scope + (id(layer),))
                graph.add_subgraph(cluster)
            else:
                calls = [n for n in layer._inbound_nodes if id(n) in relevant]
                graph.add_node(self.pydot.Node(self.node_id(scope, layer),
                                               label=_layer_label(layer, calls, self.opts)))
        drawn = {id(l) for l in layers}
        for node in nodes:
            if id(node.layer) not in drawn:
                continue
            for k, t in enumerate(node.input_tensors):
                for src in self.sources(model, scope, t, drawn, relevant):
                    for dst in self.targets(model, scope, node, k):
                        self.add_edge(src, dst)

    def sources(self, model, scope, tensor, drawn=None, relevant=None):
        """DOT ids of what produced `tensor` inside `model` (inside nested clusters when expanded)."""
        if drawn is None:
            drawn = {id(l) for l in _drawn_layers(model)}
            relevant = {id(n) for n in _graph_nodes(model)}
        node = tensor.node
        if node is None or id(node) not in relevant or id(node.layer) not in drawn:
            return []
        producer = node.layer
        if self.expandable(producer):
            outputs = _model_outputs(producer)
            if tensor.index < len(outputs):
                return self.sources(producer, scope + (id(producer),), outputs[tensor.index])
            return []
        return [self.node_id(scope, producer)]

    def targets(self, model, scope, node, k):
        """DOT ids of what reads input `k` of `node` (a call inside `model`)."""
        layer = node.layer
        if not self.expandable(layer):
            return [self.node_id(scope, layer)]
        inner_scope = scope + (id(layer),)
        inputs = _model_inputs(layer)
        if k >= len(inputs):
            return []
        inner_t = inputs[k]
        inner_drawn = {id(l) for l in _drawn_layers(layer)}
        if inner_t.node is not None and id(inner_t.node.layer) in inner_drawn:
            return [self.node_id(inner_scope, inner_t.node.layer)]
        # The nested model does not draw its input layer (Sequential): connect to the layers reading it.
        out = []
        for inner_node in _graph_nodes(layer):
            if id(inner_node.layer) not in inner_drawn:
                continue
            for j, t in enumerate(inner_node.input_tensors):
                if t is inner_t:
                    out.extend(self.targets(layer, inner_scope, inner_node, j))
        return out

    def add_edge(self, src, dst):
        if (src, dst) in self.edges:
            return
        self.edges.add((src, dst))
        self.edge_list.append((src, dst))

    def finish(self):
        """Add the edges after all nodes and clusters, so that the DOT source reads top-down."""
        for src, dst in self.edge_list:
            self.dot.add_edge(self.pydot.Edge(src, dst))


def model_to_dot(model, show_shapes=False, show_dtype=False, show_layer_names=True, rankdir="TB",
                 expand_nested=False, dpi=200, show_layer_activations=False, show_trainable=False, **kwargs):
    """A `pydot.Dot` graph of `model`'s layers (see the module docstring for what is drawn).

    Args:
        model: a Functional or Sequential model (a subclassed model is drawn as a single node), or an IR graph
            (`model.graph`, `compile_model(model).graph(stage)`): one node per IR node.
        show_shapes: add each layer's input and output shapes to its node.
        show_dtype: add each layer's output dtype.
        show_layer_names: title the nodes "name (Class)" rather than "Class".
        rankdir: Graphviz layout direction: "TB" (top to bottom) or "LR" (left to right), or "BT" / "RL".
        expand_nested: draw nested models as clusters of their layers instead of one node.
        dpi: image resolution in dots per inch.
        show_layer_activations: add the activation of layers that have one.
        show_trainable: mark layers that have weights as "Trainable" or "Non-trainable".
    """
    if kwargs:
        raise ValueError(f"Unrecognized keyword arguments: {sorted(kwargs)}")
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"rankdir must be one of 'TB', 'LR', 'BT', 'RL'; received {rankdir!r}.")
    from ..models.model import Model
    is_ir = _is_ir_graph(model)
    if not is_ir and not isinstance(model, Model):
        raise TypeError(f"model_to_dot expects a Model or an IR graph (fncompiler.ir / compiled.graph(stage)); "
                        f"received {type(model).__name__}: {model!r}.")
    if not is_ir and _is_sequential(model) and getattr(model, "_functional", None) is None:
        raise ValueError(f"This model ({model.name!r}) has not yet been built. Build the model first by calling "
                         "`build()`, by calling the model on a batch of data, or by starting it with "
                         "fncompiler.Input(shape=...).")
    pydot = _import_pydot()
    opts = dict(show_shapes=show_shapes, show_dtype=show_dtype, show_layer_names=show_layer_names,
                expand_nested=expand_nested, show_layer_activations=show_layer_activations,
                show_trainable=show_trainable)
    dot = pydot.Dot(graph_type="digraph")
    dot.set("rankdir", rankdir)
    dot.set("concentrate", True)
    dot.set("dpi", dpi)
    dot.set("splines", "ortho")
    dot.set_node_defaults(shape="plain", fontname="Helvetica", margin="0")
    if is_ir:
        _ir_to_dot(pydot, dot, model, opts)
        return dot
    builder = _DotBuilder(pydot, dot, opts)
    if _has_graph(model):
        builder.add_model(model, dot, ())
        builder.finish()
    else:  # a subclassed model: its layers' connections are not recorded, draw it as one node
        calls = list(getattr(model, "_inbound_nodes", []))
        dot.add_node(pydot.Node(builder.node_id((), model), label=_layer_label(model, calls, opts)))
    return dot


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False, show_layer_names=True,
               rankdir="TB", expand_nested=False, dpi=200, show_layer_activations=False, show_trainable=False,
               **kwargs):
    """Draw `model`'s layer graph (or an IR graph, e.g. `compile_model(model).graph("predict")`) to `to_file`;
    the format comes from its extension.

    PNG (also the default when there is no extension), SVG, PDF, JPG, ... are rendered by Graphviz's `dot`
    layout, through pygraphviz's bundled Graphviz (or the system `dot` program where pygraphviz is not
    installed); ``.dot`` / ``.gv`` files receive the DOT source. Arguments are those of `model_to_dot`.

    Raises:
        GraphvizNotFoundError (an OSError): neither pygraphviz nor a `dot` program on PATH is available.
        ImportError: the `pydot` package is not installed.
    Returns None (in an IPython kernel, an `IPython.display.Image` of PNG / JPG output).
    """
    if kwargs.pop("layer_range", None) is not None:
        raise ValueError("layer_range is not supported by plot_model.")
    if kwargs:
        raise ValueError(f"Unrecognized keyword arguments: {sorted(kwargs)}")
    to_file = os.fspath(to_file)
    _, extension = os.path.splitext(to_file)
    extension = extension[1:].lower() if extension else "png"
    dot = model_to_dot(model, show_shapes=show_shapes, show_dtype=show_dtype, show_layer_names=show_layer_names,
                       rankdir=rankdir, expand_nested=expand_nested, dpi=dpi,
                       show_layer_activations=show_layer_activations, show_trainable=show_trainable)
    if extension in _RAW_EXTENSIONS:
        with open(to_file, "w", encoding="utf-8") as f:
            f.write(dot.to_string())
        return None
    data = _render(dot, extension, to_file)
    with open(to_file, "wb") as f:
        f.write(data)
    return _notebook_image(to_file, extension)


def _render(dot, fmt, to_file=None, prog="dot"):
    """The bytes of `dot` rendered to `fmt`: by the Graphviz library bundled in the pygraphviz wheel, else
    by the system's Graphviz `prog` program."""
    from . import graphviz_render
    source = dot.to_string()
    if graphviz_render.have_pygraphviz():
        try:
            return graphviz_render.render_pygraphviz(source, fmt, prog)
        except graphviz_render.RenderError as exc:
            raise _render_failed(prog, fmt, to_file, exc) from None
    if shutil.which(prog) is None:
        raise _graphviz_missing(prog, to_file)
    try:
        return dot.create(prog=prog, format=fmt, encoding="utf-8")
    except FileNotFoundError as exc:
        raise _graphviz_missing(prog, to_file) from exc
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise _graphviz_missing(prog, to_file) from exc
        raise
    except AssertionError as exc:  # pydot: the program exited with an error (e.g. an unknown format)
        raise _render_failed(prog, fmt, to_file, exc) from exc


def _render_failed(prog, fmt, to_file, exc):
    return RuntimeError(f"Graphviz's `{prog}` could not render the model graph as {fmt!r} ({to_file!r}): {exc}. "
                        "Supported formats include png, svg, pdf, jpg, ps (see `dot -T?`); .dot / .gv files get "
                        "the DOT source.")


def _notebook_image(to_file, extension):
    """An IPython Image of the file when running in an IPython kernel (as Keras returns), else None."""
    if extension not in ("png", "jpg", "jpeg") or "IPython" not in sys.modules:
        return None
    try:
        from IPython import get_ipython
        from IPython import display
        shell = get_ipython()
        if shell is None or not hasattr(shell, "kernel"):
            return None
        return display.Image(filename=to_file)
    except Exception:  # pragma: no cover - IPython missing pieces
        return None
