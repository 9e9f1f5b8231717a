"""Runs an IR graph node by node by calling each node's layer (with arrays or tracers).

This is the body of the lowered step functions (traced once under jax.jit) and of the eager mode
(run op by op). Masks produced by layers (e.g. Embedding(mask_zero=True)) flow along with the values.
"""
import functools
import inspect

import jax

from fncompiler import ir
from fncompiler.layers.layer import Layer
from fncompiler.passes.partial_eval import NOT_APPLIED as _NOT_APPLIED
from fncompiler.symbolic import fill_arguments


@functools.lru_cache(maxsize=None)
def _signature(cls):
    try:
        return inspect.signature(cls.call)
    except (TypeError, ValueError):
        return None


@functools.lru_cache(maxsize=None)
def _accepts(cls, name):
    try:
        return name in inspect.signature(cls.call).parameters
    except (TypeError, ValueError):
        return False


def _produces_masks(layer):
    return type(layer).compute_mask is not Layer.compute_mask


def _call_node(g, nid, data, values, masks, training, residuals=None):
    layer = data["layer"]
    keys = ir.input_edges(g, nid)
    vals = [values[k] for k in keys]
    in_masks = [masks.get(k) for k in keys]
    args, kwargs = fill_arguments(data["arguments"], vals)
    cls = type(layer)
    has_mask = any(m is not None for m in in_masks)
    if has_mask:
        _fill_masks(cls, args, kwargs, vals, in_masks)
    if training is not None and kwargs.get("training") is None and _accepts(cls, "training"):
        kwargs["training"] = training
    out = _NOT_APPLIED
    fold = data.get("fold")
    if fold is not None and residuals is not None and nid in residuals:
        out = fold.apply(layer, args, kwargs, residuals[nid])   # the weight-only part comes precomputed
    if out is _NOT_APPLIED:
        out = layer(*args, **kwargs)
    leaves = jax.tree_util.tree_leaves(out)
    out_masks = [None] * len(leaves)
    if _produces_masks(layer) or (has_mask and layer.supports_masking):
        first = args[0] if args else None
        prev = in_masks if isinstance(first, (list, tuple)) else in_masks[0]
        m = layer.compute_mask(first, prev)
        if isinstance(m, (list, tuple)):
            out_masks[: len(m)] = list(m)
        else:
            out_masks[0] = m
    return leaves, out_masks


def execute(g, inputs, training=None, order=None, residuals=None):
    """Run the graph on a flat list of input arrays; return the flat list of outputs.

    residuals: {node id: values} from `fold.residuals()` for nodes whose `fold` plan (constant_folding) splits
    off their weight-only part; those nodes then evaluate only the rest of their call."""
    values, masks = {}, {}
    if len(inputs) != len(g.graph["inputs"]):
        raise ValueError(f"Graph {g.name!r} expects {len(g.graph['inputs'])} inputs, received {len(inputs)}.")
    for nid, x in zip(g.graph["inputs"], inputs):
        values[(nid, 0)] = x
    for nid in order or g.graph.get("order") or ir.topo_order(g):
        data = g.nodes[nid]
        if data["kind"] == "input":
            continue
        layer_name = getattr(data["layer"], "name", None) or str(nid)
        with jax.named_scope(str(layer_name)):      # the layer's name in the HLO metadata and profiles
            try:
                leaves, out_masks = _call_node(g, nid, data, values, masks, training, residuals)
            except Exception as error:
                named = _naming_the_node(error, nid, data, layer_name)
                if named is error:
                    raise
                raise named from error
        for i, (v, m) in enumerate(zip(leaves, out_masks)):
            values[(nid, i)] = v
            if m is not None:
                masks[(nid, i)] = m
    return [values[k] for k in g.graph["outputs"]]


def _naming_the_node(error, nid, data, layer_name):
    """The error re-raised with the IR node and the layer named (same type where it can be built from a
    message; the original stays as __cause__). An error already naming a node (a nested graph) passes as is."""
    if getattr(error, "fncompiler_node", None) is not None:
        return error
    specs = [tuple(s.shape) for s in data.get("output_specs") or []]
    message = (f"Layer {layer_name!r} ({data.get('op')}, IR node {nid!r}, expected output shapes {specs}) "
               f"failed while running the model's step: {type(error).__name__}: {error}")
    try:
        new = type(error)(message)
        if str(new) != message:
            raise TypeError
    except Exception:      # a type that cannot be rebuilt (callers may catch it by type): keep it, add a note
        error.add_note(message)
        error.fncompiler_node, error.fncompiler_layer = nid, layer_name
        return error
    new.fncompiler_node, new.fncompiler_layer = nid, layer_name
    return new


def _fill_masks(cls, args, kwargs, vals, in_masks):
    """Pass upstream masks: `mask=` for the first argument, and `<arg>_mask=` for each argument whose call
    signature has such a parameter (e.g. MultiHeadAttention's query_mask / value_mask / key_mask)."""
    mask_of = {id(v): m for v, m in zip(vals, in_masks) if m is not None}
    sig = _signature(cls)
    params = sig.parameters if sig is not None else {}
    if "mask" in params and "mask" not in kwargs:
        first = args[0] if args else None
        if isinstance(first, (list, tuple)):
            kwargs["mask"] = [mask_of.get(id(x)) for x in first]
        elif first is not None and id(first) in mask_of:
            kwargs["mask"] = mask_of[id(first)]
    if sig is None:
        return
    try:
        bound = sig.bind_partial(None, *args, **kwargs).arguments
    except TypeError:
        return
    for name, value in bound.items():
        key = f"{name}_mask"
        if key in params and kwargs.get(key) is None and id(value) in mask_of:
            kwargs[key] = mask_of[id(value)]
