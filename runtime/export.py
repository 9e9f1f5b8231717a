"""Ahead-of-time export: a model's predict step as one serialized `jax.export` module in one artifact file.

    fncompiler.export(model, "model.fnexport")                       # any batch size, CPU
    fncompiler.export(model, "m.fnexport", platforms=("cpu", "cuda", "tpu"), batch_size=None, fold_weights=True)
    predict = fncompiler.runtime.load_exported("model.fnexport")     # needs only jax, numpy, msgpack
    y = predict(x)

The artifact is a zip written atomically (saving.file_format.atomic_write) with:
    signature.json      inputs/outputs (names, shapes with None for the batch, dtypes), output structure,
                        weight paths/shapes/dtypes, platforms, endpoint, versions (fncompiler, jax, jax.export
                        calling convention), the artifact format version
    module.jax_export   `jax.export.export(jax.jit(fn), platforms=...)(*specs).serialize()`, where fn takes
                        (weights..., inputs...) -> [outputs...]  or, with fold_weights=True, (inputs...)
    weights.msgpack     the weights in fn's argument order (flax msgpack, as saving.weights_io), unless folded
    hashes.json         sha256 of every other member

The function exported is the predict step lowered from the IR after the "export" pass pipeline
(`compile_model(model).lowered("export")`: inference specialization, dead-code elimination, CSE,
BatchNormalization folding...). See docs/export.md.
"""
import collections
import datetime
import json
import os
import re

import jax
import jax.numpy as jnp
import numpy as np

from . import exported_loader, steps

ARTIFACT_FORMAT = exported_loader.FORMAT
ARTIFACT_FORMAT_VERSION = exported_loader.FORMAT_VERSION
KNOWN_PLATFORMS = ("cpu", "cuda", "rocm", "tpu")
_CALLBACK_PRIMITIVES = ("pure_callback", "io_callback", "debug_callback", "debug_print", "callback")
_SCOPE = "fncompiler_layer"

__all__ = ["export", "ExportError", "export_function", "ARTIFACT_FORMAT", "ARTIFACT_FORMAT_VERSION"]


class ExportError(ValueError):
    """The model (or one of its layers) cannot be exported as asked; the message says what and why."""


# -- arguments -------------------------------------------------------------------------------------
def _compiled(model_or_compiled):
    from .compiled import CompiledModel, compile_model
    if isinstance(model_or_compiled, CompiledModel):
        return model_or_compiled
    if not hasattr(model_or_compiled, "trainable_weights") or not hasattr(model_or_compiled, "predict"):
        raise TypeError(f"export() takes a fncompiler Model or a CompiledModel (fncompiler.compile_model(model)); "
                        f"received {type(model_or_compiled).__name__}.")
    return compile_model(model_or_compiled)


def _check_platforms(platforms):
    if isinstance(platforms, str):
        platforms = (platforms,)
    try:
        platforms = tuple(str(p).lower() for p in platforms)
    except TypeError:
        raise TypeError(f"platforms must be a tuple of platform names; received {platforms!r}.") from None
    if not platforms:
        raise ValueError(f"platforms must name at least one of {KNOWN_PLATFORMS}.")
    platforms = tuple("cuda" if p == "gpu" else p for p in platforms)
    unknown = [p for p in platforms if p not in KNOWN_PLATFORMS]
    if unknown:
        raise ValueError(f"Unknown platform(s) {unknown}; expected names from {KNOWN_PLATFORMS} ('gpu' means "
                         "'cuda').")
    if len(set(platforms)) != len(platforms):
        raise ValueError(f"platforms {platforms} names a platform twice.")
    return platforms


def _input_specs(low, names, batch_size):
    """jax.ShapeDtypeStruct per input: the batch is the symbol `b` (or batch_size), other unknown dims get
    their own symbols. Returns (specs, recorded shapes with None for the symbolic dimensions)."""
    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int or None (any batch size); received {batch_size!r}.")
        batch_size = int(batch_size)
    symbols = ["b"]
    for i, spec in enumerate(low.input_specs):
        symbols += [f"d{i}_{j}" for j, d in enumerate(spec.shape) if j > 0 and d is None]
    # One scope for every symbol, so the inputs share the same batch dimension `b`.
    values = dict(zip(symbols, jax.export.symbolic_shape(", ".join(symbols))))
    specs, recorded = [], []
    for i, spec in enumerate(low.input_specs):
        shape, rec = [], []
        for j, d in enumerate(spec.shape):
            if j == 0:
                if d is not None and batch_size is not None and d != batch_size:
                    raise ExportError(f'Input {i} ("{names[i]}") has a fixed batch size of {d}; export() was asked '
                                      f"for batch_size={batch_size}.")
                fixed = d if d is not None else batch_size
                shape.append(values["b"] if fixed is None else fixed)
                rec.append(fixed)
            elif d is None:
                shape.append(values[f"d{i}_{j}"])
                rec.append(None)
            else:
                shape.append(int(d))
                rec.append(int(d))
        specs.append(jax.ShapeDtypeStruct(tuple(shape), jnp.dtype(spec.dtype)))
        recorded.append(rec)
    return specs, recorded


def _encode_structure(output_tree, n):
    """The model's output structure as JSON: an int (index into the flat outputs), {"list": [...]},
    {"tuple": [...]} or {"dict": [[key, ...], ...]}."""
    if output_tree is None:
        return 0 if n == 1 else {"list": list(range(n))}
    tree = jax.tree_util.tree_unflatten(output_tree, list(range(n)))

    def enc(node):
        if isinstance(node, int):
            return node
        if isinstance(node, dict) and all(isinstance(k, str) for k in node):
            return {"dict": [[k, enc(v)] for k, v in node.items()]}
        if type(node) is list:
            return {"list": [enc(v) for v in node]}
        if type(node) is tuple:
            return {"tuple": [enc(v) for v in node]}
        raise ExportError(f"export: the model's outputs are a {type(node).__name__}; only arrays, lists, tuples and "
                          "dicts with string keys can be recorded in the artifact's signature.")
    return enc(tree)


# -- what cannot be exported -----------------------------------------------------------------------
def _sub_jaxprs(value):
    if hasattr(value, "eqns"):
        yield value
    elif hasattr(value, "jaxpr") and hasattr(value.jaxpr, "eqns"):
        yield value.jaxpr
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _sub_jaxprs(v)


def _callback_eqns(jaxpr):
    stack = [jaxpr]
    while stack:
        j = stack.pop()
        for eqn in j.eqns:
            name = eqn.primitive.name
            if name in _CALLBACK_PRIMITIVES or "callback" in name:
                yield eqn
            for v in eqn.params.values():
                stack.extend(_sub_jaxprs(v))


def _graph_layers(graph):
    seen, out = set(), []
    stack = [data.get("layer") for _, data in graph.nodes(data=True)]
    while stack:
        layer = stack.pop()
        if layer is None or id(layer) in seen or not hasattr(layer, "call"):
            continue
        seen.add(id(layer))
        out.append(layer)
        for attr in ("_layers", "_chain"):
            stack.extend(getattr(layer, attr, None) or [])
        for attr in ("_linear", "_bn", "_after"):
            stack.append(getattr(layer, attr, None))
    return out


class _LayerScopes:
    """While active, every layer's `call` runs under `jax.named_scope("fncompiler_layer[<name>]")`, so an
    equation in a traced jaxpr tells which layer(s) produced it, and an exception names its layer."""

    def __init__(self, graph):
        self.layers = _graph_layers(graph)

    @staticmethod
    def _wrap(original, name):
        def call(*args, **kwargs):
            with jax.named_scope(f"{_SCOPE}[{name}]"):
                try:
                    return original(*args, **kwargs)
                except Exception as exc:
                    if not getattr(exc, "_fncompiler_layer", None):
                        exc._fncompiler_layer = name   # the innermost layer names the error
                    raise
        return call

    def __enter__(self):
        for layer in self.layers:
            # An instance attribute shadows the class's call for this trace only; Layer.__setattr__ is bypassed.
            object.__setattr__(layer, "call", self._wrap(layer.call, layer.name))
        return self

    def __exit__(self, *exc):
        for layer in self.layers:
            layer.__dict__.pop("call", None)
        return False


def _layer_path(name_stack):
    names = re.findall(re.escape(_SCOPE) + r"\[([^\]]*)\]", str(name_stack))
    return "/".join(names) if names else None


def _user_frame(eqn):
    try:
        from jax._src import source_info_util
        frame = source_info_util.user_frame(eqn.source_info.traceback)
        return f"{frame.file_name}:{frame.start_line} ({frame.function_name})" if frame else None
    except Exception:  # noqa: BLE001 - only a hint for the message
        return None


def _diagnose(graph, fn, specs, model_name):
    """Trace `fn` with every layer in a named scope: raise ExportError naming the layer of a host callback or of
    a tracing error; return normally when the function can be traced and has no callback."""
    with _LayerScopes(graph):
        try:
            jaxpr = jax.make_jaxpr(fn)(*specs)
        except Exception as exc:  # noqa: BLE001
            layer = getattr(exc, "_fncompiler_layer", None)
            where = f"layer {layer!r}" if layer else f"model {model_name!r}"
            hint = ""
            if "symbolic" in str(exc).lower() or "InconclusiveDimension" in type(exc).__name__ or \
                    "dimension" in str(exc).lower():
                hint = (" Its code needs a concrete batch (or other unknown) dimension: export with "
                        "batch_size=N and concrete input shapes, or make the layer shape-polymorphic.")
            msg = str(exc).strip()
            raise ExportError(f"Cannot export {model_name!r}: tracing the predict step failed in {where}.{hint} "
                              f"{type(exc).__name__}: {msg}") from exc
    bad = []
    for eqn in _callback_eqns(jaxpr.jaxpr):
        layer = _layer_path(eqn.source_info.name_stack)
        where = f"layer {layer!r}" if layer else "the model's own code"
        frame = _user_frame(eqn)
        bad.append(f"{where} calls {eqn.primitive.name}" + (f" at {frame}" if frame else ""))
    if bad:
        raise ExportError(f"Cannot export {model_name!r}: {'; '.join(sorted(set(bad)))}. A host callback "
                          "(jax.pure_callback, jax.experimental.io_callback, jax.debug.callback, jax.debug.print) "
                          "runs Python code that is not part of the compiled module, so it cannot be serialized. "
                          "Remove it from the layer's call() (or export a model without that layer).")


# -- export ----------------------------------------------------------------------------------------
def export_function(model_or_compiled, batch_size=None, fold_weights=False):
    """(fn, arg specs, info): the pure function that `export` serializes, for use with jax.export directly."""
    compiled = _compiled(model_or_compiled)
    model = compiled.model
    low = compiled.lowered("export")
    input_names = list(model.input_names)
    output_names = list(model.output_names)
    specs, recorded = _input_specs(low, input_names, batch_size)
    tvars, ntvars = list(low.trainable), list(low.non_trainable)
    variables = tvars + ntvars
    n_t, n_w = len(tvars), len(variables)
    predict = steps.make_predict_step(low, collections.Counter())
    if fold_weights:
        values = [np.asarray(v.value) for v in variables]

        def fn(*inputs):
            consts = [jnp.asarray(a) for a in values]
            return list(predict(consts[:n_t], consts[n_t:], list(inputs)))
        arg_specs = specs
    else:
        def fn(*args):
            return list(predict(list(args[:n_t]), list(args[n_t:n_w]), list(args[n_w:])))
        arg_specs = [jax.ShapeDtypeStruct(tuple(v.shape), jnp.dtype(v.dtype)) for v in variables] + specs
    graph = low.graph
    outputs = []
    for k, (nid, idx) in enumerate(graph.graph["outputs"]):
        spec = graph.nodes[nid]["output_specs"][idx]
        name = output_names[k] if k < len(output_names) else f"output_{k}"
        outputs.append({"name": name, "shape": [None if d is None else int(d) for d in spec.shape],
                        "dtype": str(spec.dtype)})
    if batch_size is not None:
        for o in outputs:
            if o["shape"] and o["shape"][0] is None:
                o["shape"][0] = int(batch_size)
    info = {
        "model": model, "graph": graph, "variables": variables, "fold_weights": bool(fold_weights),
        "inputs": [{"name": n, "shape": rec, "dtype": str(s.dtype)}
                   for n, rec, s in zip(input_names, recorded, low.input_specs)],
        "outputs": outputs,
        "output_structure": _encode_structure(low.output_tree, len(outputs)),
    }
    return fn, arg_specs, info


def export(model_or_compiled, path, endpoint="predict", platforms=("cpu",), batch_size=None, fold_weights=False):
    """Write the model's predict step as one ahead-of-time artifact at `path`; return its signature (a dict).

    model_or_compiled: a Model, or `fncompiler.compile_model(model)`.
    endpoint: "predict" (the only endpoint that can be exported today).
    platforms: the platforms the module is lowered for, e.g. ("cpu",) or ("cpu", "cuda", "tpu"); a multi-platform
        module picks the platform it runs on at load time. Lowering needs no device of that kind.
    batch_size: None for a symbolic batch dimension (one artifact runs any batch size), or an int to fix it.
    fold_weights: False: the module takes (weights..., inputs...) and weights.msgpack holds the weights.
        True: the weights are constants inside the module, which takes only the inputs (no weights.msgpack).

    Raises ExportError naming the layer when a layer cannot be exported (e.g. it calls jax.pure_callback or
    jax.debug.callback), and when tracing fails (e.g. code that needs a concrete batch size).
    """
    if endpoint != "predict":
        raise ValueError(f"export: endpoint {endpoint!r} cannot be exported; only 'predict' (inference) can. "
                         "Training is not exported: save the model (model.save) or a checkpoint to train on.")
    platforms = _check_platforms(platforms)
    path = os.fspath(path)
    compiled = _compiled(model_or_compiled)
    fn, arg_specs, info = export_function(compiled, batch_size=batch_size, fold_weights=fold_weights)
    model = info["model"]
    _diagnose(info["graph"], fn, arg_specs, model.name)
    try:
        exported = jax.export.export(jax.jit(fn), platforms=platforms)(*arg_specs)
        module = bytes(exported.serialize())
    except ImportError as exc:
        raise ExportError(f"Cannot serialize the exported module: {exc}. jax.export needs the 'flatbuffers' "
                          "package (pip install flatbuffers).") from exc
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"Cannot export {model.name!r} for platforms {list(platforms)}: {type(exc).__name__}: "
                          f"{exc}") from exc
    from fncompiler import __version__
    from fncompiler.saving import file_format, weights_io
    variables = [] if fold_weights else info["variables"]
    signature = {
        "format": ARTIFACT_FORMAT,
        "format_version": ARTIFACT_FORMAT_VERSION,
        "fncompiler_version": __version__,
        "jax_version": jax.__version__,
        "calling_convention_version": int(exported.calling_convention_version),
        "platforms": list(exported.platforms),
        "endpoint": endpoint,
        "model_name": model.name,
        "batch_size": None if batch_size is None else int(batch_size),
        "fold_weights": bool(fold_weights),
        "inputs": info["inputs"],
        "outputs": info["outputs"],
        "output_structure": info["output_structure"],
        "weights": [{"path": v.path, "shape": [int(d) for d in v.shape], "dtype": str(jnp.dtype(v.dtype))}
                    for v in variables],
        "arguments": "inputs" if fold_weights else "weights, inputs",
        "date_exported": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }
    members = {"signature.json": json.dumps(signature, indent=1).encode(), exported_loader.MODULE_MEMBER: module}
    if not fold_weights:
        members["weights.msgpack"] = weights_io.weights_to_bytes(variables)
    file_format.atomic_write(path, members)
    return signature


# -- command line: `fncompiler export MODEL_FILE ...` -----------------------------------------------
def configure_parser(parser):
    parser.add_argument("model_file", help="a model saved with model.save()")
    parser.add_argument("-o", "--output", help="write an exported artifact here (e.g. model.fnexport)")
    parser.add_argument("--mlir", action="store_true", help="print the StableHLO text of the model's predict step")
    parser.add_argument("--platforms", default="cpu", help="comma-separated platforms, e.g. cpu,cuda,tpu")
    parser.add_argument("--batch-size", type=int, default=None, help="fix the batch size (default: symbolic)")
    parser.add_argument("--fold-weights", action="store_true", help="embed the weights in the module")
    return parser


def cli_main(args):
    from fncompiler.models import load_model
    from .compiled import compile_model
    if not args.mlir and not args.output:
        print("fncompiler export: give --mlir (print StableHLO) and/or -o ARTIFACT (write an artifact).")
        return 2
    model = load_model(args.model_file, compile=False)
    compiled = compile_model(model)
    if args.mlir:
        print(compiled.as_text("predict", batch_size=args.batch_size or 1))
    if args.output:
        sig = export(compiled, args.output, platforms=tuple(p for p in args.platforms.split(",") if p),
                     batch_size=args.batch_size, fold_weights=args.fold_weights)
        ins = ", ".join(f"{e['name']}: {e['shape']} {e['dtype']}" for e in sig["inputs"])
        print(f"wrote {args.output} ({os.path.getsize(args.output)} bytes): predict({ins}) on {sig['platforms']}")
    return 0
