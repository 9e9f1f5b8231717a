"""`print_summary`: the table that `Model.summary()` prints, in Keras 3's format.

The layout follows Keras 3 (``keras/src/utils/summary_utils.py``): a `rich` table with heavy header
borders, one row per layer, and a footer with parameter counts and their memory size::

    Model: "mnist_model"
    ┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━┓
    ┃ Layer (type)                         ┃ Output Shape                ┃         Param # ┃
    ┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━┩
    │ input_layer (InputLayer)             │ (None, 784)                 │               0 │
    ├──────────────────────────────────────┼─────────────────────────────┼─────────────────┤
    │ dense (Dense)                        │ (None, 64)                  │          50,240 │
    ...
    └──────────────────────────────────────┴─────────────────────────────┴─────────────────┘
     Total params: 55,050 (215.04 KB)
     Trainable params: 55,050 (215.04 KB)
     Non-trainable params: 0 (0.00 B)

Models whose graph is a plain chain ("sequential-like") get 3 columns (default width 88, column
boundaries at 45% / 80% / 100%); other functional models get a 4th "Connected to" column (default width
108, boundaries 30% / 56% / 74% / 100%). As in Keras, the default width is capped at the terminal width
minus 4 (``shutil.get_terminal_size()``, which is 80 columns when there is no terminal and the
``COLUMNS`` environment variable is unset).
"""
import math
import re
import shutil
import sys

import numpy as np
import rich.console
import rich.table
import rich.text

__all__ = ["print_summary", "readable_memory_size", "weight_memory_size", "count_params",
           "format_shape", "is_sequential_like"]

# Styles used when printing to a terminal (ignored when rendering plain text).
_NUMBER_STYLE = "color(34)"
_NONE_STYLE = "color(45)"
_SYMBOL_STYLE = "color(33)"


# -- sizes -----------------------------------------------------------------------------------------
def _dtype_bits(dtype):
    """Size in bits of one element of `dtype`, as Keras's `dtype_utils.dtype_size` (bool counts 1 bit)."""
    name = str(getattr(dtype, "name", dtype))
    if name == "bool":
        return 1
    try:
        import jax.numpy as jnp
        return jnp.dtype(name).itemsize * 8
    except TypeError:
        return np.dtype(name).itemsize * 8


def count_params(weights):
    """Number of scalars in `weights` (each weight counted once)."""
    unique = {id(w): w for w in weights}.values()
    return int(sum(math.prod(tuple(w.shape)) for w in unique))


def weight_memory_size(weights):
    """Memory, in bytes, that `weights` take (each weight counted once, by its dtype's size)."""
    unique = {id(w): w for w in weights}.values()
    total = 0
    for w in unique:
        total += math.prod(tuple(w.shape)) * _dtype_bits(w.dtype) / 8
    return total


def readable_memory_size(weight_memory_size):
    """'215.04 KB' style: units B, KB, MB, GB, TB, PB with a base of 1024 and 2 decimals."""
    units = ["B", "KB", "MB", "GB", "TB", "PB"]
    scale = 1024
    for unit in units:
        if weight_memory_size / scale < 1:
            return "{:.2f} {}".format(weight_memory_size, unit)
        weight_memory_size /= scale
    return "{:.2f} {}".format(weight_memory_size, units[-1])


# -- graph access ----------------------------------------------------------------------------------
def _graph_nodes(model):
    """The Nodes (layer calls) that belong to `model`'s own graph, in creation order ([] if none)."""
    functional = getattr(model, "_functional", None)
    if functional is not None and hasattr(functional, "_nodes"):  # Sequential
        return list(functional._nodes)
    nodes = model.__dict__.get("_nodes") if hasattr(model, "__dict__") else None
    return list(nodes) if nodes else []


def _is_sequential(model):
    from ..models.sequential import Sequential
    return isinstance(model, Sequential)


def _nodes_by_depth(nodes):
    """Depth of each node as Keras computes it: output nodes are at depth 0, and a node is one deeper than
    the deepest node that reads one of its outputs. Returns {depth: [nodes]}."""
    in_graph = {id(n) for n in nodes}
    depth = {id(n): 0 for n in nodes}
    for node in reversed(nodes):  # nodes are in creation order: consumers come after producers
        for t in node.input_tensors:
            parent = t.node
            if parent is not None and id(parent) in in_graph:
                depth[id(parent)] = max(depth[id(parent)], depth[id(node)] + 1)
    by_depth = {}
    for n in nodes:
        by_depth.setdefault(depth[id(n)], []).append(n)
    return by_depth


def is_sequential_like(model):
    """True when the summary uses the 3-column layout (Keras's rule): Sequential and non-graph models, or a
    functional model with one node per depth, each reading at most one tensor, and no layer called twice."""
    if _is_sequential(model):
        return True
    nodes = _graph_nodes(model)
    if not nodes:
        return True
    for v in _nodes_by_depth(nodes).values():
        if len(v) > 1 or len(v[0].input_tensors) > 1:
            return False
    seen = set()
    for n in nodes:
        if id(n.layer) in seen:
            return False
        seen.add(id(n.layer))
    return True


def _layer_nodes(layer, relevant):
    """The layer's calls that belong to the model being summarized."""
    return [n for n in layer._inbound_nodes if id(n) in relevant]


# -- cells -----------------------------------------------------------------------------------------
def _text(s, style=None):
    return rich.text.Text(str(s), style=style or "")


def format_shape(shape):
    """'(None, 784)': the dimensions joined by ', ' in parentheses (Keras writes (None,) as '(None)')."""
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _shape_text(shape):
    out = rich.text.Text("(")
    for i, d in enumerate(shape):
        if i:
            out.append(", ")
        out.append(str(d), style=_NONE_STYLE if d is None else _NUMBER_STYLE)
    out.append(")")
    return out


def _output_shape_cell(layer, relevant):
    nodes = _layer_nodes(layer, relevant) or list(getattr(layer, "_inbound_nodes", []))
    if not nodes:
        return _text("?")
    shapes = [tuple(t.shape) for t in nodes[-1].output_tensors]
    if not shapes:
        return _text("?")
    if len(shapes) == 1:
        return _shape_text(shapes[0])
    out = rich.text.Text("[")
    for i, s in enumerate(shapes):
        if i:
            out.append(", ")
        out.append_text(_shape_text(s))
    out.append("]")
    return out


def _params_cell(layer):
    if not getattr(layer, "built", True):
        return rich.text.Text.assemble(("0", _NUMBER_STYLE), " (unbuilt)")
    try:
        n = layer.count_params()
    except ValueError:
        return rich.text.Text.assemble(("0", _NUMBER_STYLE), " (unbuilt)")
    return _text(f"{n:,}", _NUMBER_STYLE)


def _connections_cell(layer, relevant):
    out = rich.text.Text()
    for node in _layer_nodes(layer, relevant):
        for t in node.input_tensors:
            producer = t.node.layer if t.node is not None else None
            if out.plain:
                out.append(", ")
            if producer is None:
                out.append(str(getattr(t, "name", None) or "?"))
                continue
            node_index = producer._inbound_nodes.index(t.node)
            out.append(producer.name)
            out.append("[")
            out.append(str(node_index), style=_NUMBER_STYLE)
            out.append("][")
            out.append(str(t.index), style=_NUMBER_STYLE)
            out.append("]")
    if not out.plain:
        out = _text("-")
    return out


def _trainable_cell(layer):
    if getattr(layer, "weights", None):
        return _text("Y", "bold color(34)") if layer.trainable else _text("N", "bold color(9)")
    return _text("-", "bold")


def _sub_layers(layer):
    """The layers a nested model shows with expand_nested (its own `layers`), or []."""
    from ..models.model import Model
    if not isinstance(layer, Model):
        return []
    try:
        return list(layer.layers)
    except Exception:  # pragma: no cover - a model whose layers cannot be listed
        return []


# -- layer range -----------------------------------------------------------------------------------
def _layer_index_bounds(layers, layer_range):
    """[start, stop) of the layers to print: `layer_range` is a pair of regexes matched (re.match) against
    layer names; the range runs from the first match of the first to the last match of the second."""
    if layer_range is None:
        return 0, len(layers)
    if not isinstance(layer_range, (list, tuple)) or len(layer_range) != 2:
        raise ValueError("layer_range must be a list or tuple of length 2. Received: "
                         f"layer_range = {layer_range!r}")
    if not isinstance(layer_range[0], str) or not isinstance(layer_range[1], str):
        raise ValueError(f"layer_range should contain string type only. Received: {layer_range!r}")
    lower = [i for i, l in enumerate(layers) if re.match(layer_range[0], l.name)]
    upper = [i for i, l in enumerate(layers) if re.match(layer_range[1], l.name)]
    if not lower or not upper:
        raise ValueError("Passed layer_names do not match the layer names in the model. "
                         f"Received: {layer_range!r}; layer names are {[l.name for l in layers]}.")
    if min(lower) > max(upper):
        return min(upper), max(lower) + 1
    return min(lower), max(upper) + 1


# -- optimizer state -------------------------------------------------------------------------------
def _optimizer_state_leaves(model):
    """Arrays of the optimizer state held after training (empty when not compiled or never trained)."""
    if not getattr(model, "compiled", False):
        return []
    trainer = model.__dict__.get("_trainer") if hasattr(model, "__dict__") else None
    state = getattr(trainer, "opt_state", None)
    if state is None:
        return []
    import jax
    return [x for x in jax.tree_util.tree_leaves(state) if hasattr(x, "shape") and hasattr(x, "dtype")]


# -- main entry point ------------------------------------------------------------------------------
def _layout_lines(model):
    """Under a distribution: one line per weight the layout map shards (replicated weights are not listed)."""
    import sys
    dist_mod = sys.modules.get("fncompiler.distribution")
    if dist_mod is None or dist_mod.get_distribution() is None:
        return []
    sharded = [(w.path, str(dist_mod.layout_of(w))) for w in model.weights]
    sharded = [(p, l) for p, l in sharded if l != "replicated"]
    header = rich.text.Text.assemble((" Weight layouts: ", "bold"),
                                     f"{len(sharded)} sharded, {len(model.weights) - len(sharded)} replicated")
    return [header] + [rich.text.Text(f"   {p}: {l}") for p, l in sharded]


def print_summary(model, line_length=None, positions=None, print_fn=None, expand_nested=False,
                  show_trainable=False, layer_range=None):
    """Print a summary of `model` as Keras 3's `model.summary()` does.

    Args:
        model: a Functional, Sequential or subclassed model.
        line_length: total width of the table in characters. Default: 88 for sequential-like models, 108
            otherwise (+12 with `show_trainable`), capped at the terminal width minus 4.
        positions: relative (<= 1) or absolute right edges of the columns. Default: [0.45, 0.80, 1.0] for
            sequential-like models, [0.3, 0.56, 0.74, 1.0] otherwise.
        print_fn: called once with the whole summary as one string (rendered as plain text, without the
            final newline). Default: print to stdout, in colour when stdout is a terminal.
        expand_nested: also list the layers of nested models, below the model's row, prefixed with "└ ".
        show_trainable: add a "Trainable" column: Y / N for layers with weights, "-" for the others.
        layer_range: a pair of layer-name regexes: only print the layers from the first match of the first
            to the last match of the second (`re.match` against names).

    A model, or a layer, that has no weights yet is not an error: unbuilt layers show "0 (unbuilt)" as
    their parameter count and "?" as their output shape (as Keras does), and the totals count the weights
    that exist.
    """
    layers = list(getattr(model, "operations", None) or model.layers)   # Keras lists a graph's ops too
    relevant_nodes = _graph_nodes(model)
    sequential_like = is_sequential_like(model)

    if sequential_like:
        default_line_length = 88
        positions = list(positions or [0.45, 0.80, 1.0])
        header = ["Layer (type)", "Output Shape", "Param #"]
        alignment = ["left", "left", "right"]
    else:
        default_line_length = 108
        positions = list(positions or [0.3, 0.56, 0.74, 1.0])
        header = ["Layer (type)", "Output Shape", "Param #", "Connected to"]
        alignment = ["left", "left", "right", "left"]
    if show_trainable:
        default_line_length += 12
        positions = [p * 0.90 for p in positions] + [1.0]
        header.append("Trainable")
        alignment.append("center")

    default_line_length = min(default_line_length, shutil.get_terminal_size().columns - 4)
    line_length = int(line_length or default_line_length)
    if positions[-1] <= 1:
        positions = [int(line_length * p) for p in positions]
    column_widths = []
    current = 0
    for pos in positions:
        width = int(pos) - current
        if width < 4:
            raise ValueError(f"Insufficient console width to print summary: line_length={line_length} gives "
                             f"a column of width {width} (positions {positions}). Pass a larger line_length.")
        column_widths.append(width)
        current += width

    columns = [rich.table.Column(name, justify=alignment[i], width=column_widths[i])
               for i, name in enumerate(header)]
    table = rich.table.Table(*columns, width=line_length, show_lines=True)

    def layer_rows(layer, relevant, nested_level=0):
        prefix = ("   " * nested_level + "└ ") if nested_level else ""
        name = rich.text.Text(prefix + layer.name + " (")
        name.append(type(layer).__name__, style=_SYMBOL_STYLE)
        name.append(")")
        fields = [name, _output_shape_cell(layer, relevant), _params_cell(layer)]
        if not sequential_like:
            fields.append(_connections_cell(layer, relevant))
        if show_trainable:
            fields.append(_trainable_cell(layer))
        rows = [fields]
        if expand_nested:
            sub = _sub_layers(layer)
            if sub:
                inner = {id(n) for n in _graph_nodes(layer)}
                for sub_layer in sub:
                    rows.extend(layer_rows(sub_layer, inner, nested_level + 1))
        return rows

    relevant = {id(n) for n in relevant_nodes}
    start, stop = _layer_index_bounds(layers, layer_range)
    for layer in layers[start:stop]:
        for row in layer_rows(layer, relevant):
            table.add_row(*row)

    trainable_weights = list(model.trainable_weights)
    non_trainable_weights = list(model.non_trainable_weights)
    trainable_count = count_params(trainable_weights)
    trainable_size = weight_memory_size(trainable_weights)
    non_trainable_count = count_params(non_trainable_weights)
    non_trainable_size = weight_memory_size(non_trainable_weights)
    opt_leaves = _optimizer_state_leaves(model)
    opt_count = count_params(opt_leaves)
    opt_size = weight_memory_size(opt_leaves)
    total_count = trainable_count + non_trainable_count + opt_count
    total_size = trainable_size + non_trainable_size + opt_size

    def footer(label, count, size):
        return rich.text.Text.assemble((label, "bold"), (f"{count:,}", _NUMBER_STYLE),
                                       f" ({readable_memory_size(size)})")

    lines = [rich.text.Text.assemble(("Model: ", "bold"), (f'"{model.name}"', "bold")), table,
             footer(" Total params: ", total_count, total_size),
             footer(" Trainable params: ", trainable_count, trainable_size),
             footer(" Non-trainable params: ", non_trainable_count, non_trainable_size)]
    if opt_leaves:
        lines.append(footer(" Optimizer params: ", opt_count, opt_size))
    lines.extend(_layout_lines(model))

    interactive = print_fn is None and _stdout_is_terminal()
    if interactive:
        console = rich.console.Console(highlight=False, width=line_length)
        for item in lines:
            console.print(item, soft_wrap=not isinstance(item, rich.table.Table))
        return
    console = rich.console.Console(highlight=False, force_terminal=False, color_system=None, width=line_length,
                                   legacy_windows=False)
    with console.capture() as capture:
        for item in lines:
            console.print(item, soft_wrap=not isinstance(item, rich.table.Table))
    text = capture.get()
    if text.endswith("\n"):
        text = text[:-1]
    (print_fn or print)(text)


def _stdout_is_terminal():
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False
