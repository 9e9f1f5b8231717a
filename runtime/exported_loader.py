"""Load and run an artifact written by `fncompiler.export`, without fncompiler's model-building code.

    from fncompiler.runtime import load_exported        # or: this file on its own, see below
    model = load_exported("model.fnexport")
    y = model(x)                                         # like model.predict(x): one array, list or dict
    model.signature                                      # names, shapes (None = any batch), dtypes, versions

This module imports only the standard library, NumPy, msgpack and JAX: nothing from fncompiler (no layers,
models, passes). A serving program can copy this one file and load it by path:

    import importlib.util
    spec = importlib.util.spec_from_file_location("exported_loader", "/path/to/exported_loader.py")
    loader = importlib.util.module_from_spec(spec); spec.loader.exec_module(loader)
    model = loader.load_exported("model.fnexport")

The artifact is a zip (see docs/export.md). It is read with the same kind of limits as a model file
(member names, sizes, compression ratio, sha256 of every member), its signature is checked against the
serialized `jax.export` module, and inputs are checked (names, ranks, dimensions, dtypes) before they run.
Every malformed artifact ends in `ExportedArtifactError` (a ValueError) naming what is wrong.
"""
import hashlib
import json
import math
import os
import re
import zipfile

import jax
import jax.numpy as jnp
import msgpack
import numpy as np

FORMAT = "fncompiler.exported"
FORMAT_VERSION = "1.0"
MODULE_MEMBER = "module.jax_export"
MEMBERS = ("signature.json", MODULE_MEMBER, "weights.msgpack", "hashes.json")
LIMITS = {
    "file_bytes": 8 * 1024 ** 3,
    "json_bytes": 16 * 1024 ** 2,
    "member_bytes": 8 * 1024 ** 3,
    "ratio": 200,
    "ratio_min_bytes": 1024 ** 2,
    "zip_entries": 16,
    "central_directory_bytes": 64 * 1024,
    "json_depth": 64,
    "io_entries": 10_000,              # inputs / outputs / weights listed in signature.json
}
ALLOWED_DTYPES = ("float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
                  "uint32", "uint64", "bool")

__all__ = ["load_exported", "ExportedModel", "ExportedArtifactError", "read_artifact", "FORMAT", "FORMAT_VERSION"]


class ExportedArtifactError(ValueError):
    """An exported artifact is missing parts, corrupt, too large, of an unknown version, or not an artifact."""


# -- reading the zip -------------------------------------------------------------------------------
def _check_name(name, path):
    parts = re.split(r"[/\\]", name)
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts or "\x00" in name:
        raise ExportedArtifactError(f"{path!r} contains a member with an unsafe path {name!r}: refusing the file.")


def _check_central_directory(fh, path):
    end_rec_data = getattr(zipfile, "_EndRecData", None)
    if end_rec_data is None:  # pragma: no cover - private CPython API; the other checks still apply
        return
    try:
        endrec = end_rec_data(fh)
    except Exception as exc:  # noqa: BLE001
        raise ExportedArtifactError(f"{path!r} is not an exported fncompiler artifact (damaged zip directory): "
                                    f"{exc}") from exc
    if not endrec:
        raise ExportedArtifactError(f"{path!r} is not an exported fncompiler artifact (not a zip archive, or "
                                    "truncated).")
    if endrec[zipfile._ECD_ENTRIES_TOTAL] > LIMITS["zip_entries"]:
        raise ExportedArtifactError(f"{path!r} has {endrec[zipfile._ECD_ENTRIES_TOTAL]} members; an artifact has at "
                                    f"most {len(MEMBERS)}.")
    if endrec[zipfile._ECD_SIZE] > LIMITS["central_directory_bytes"]:
        raise ExportedArtifactError(f"{path!r} has a {endrec[zipfile._ECD_SIZE]}-byte zip directory, over the "
                                    f"{LIMITS['central_directory_bytes']} byte limit.")


def _read_member(zf, info, path):
    name = info.filename
    limit = LIMITS["json_bytes"] if name.endswith(".json") else LIMITS["member_bytes"]
    if info.file_size > limit:
        raise ExportedArtifactError(f"Member {name!r} of {path!r} declares {info.file_size} bytes, over the {limit} "
                                    "byte limit.")
    if info.file_size > LIMITS["ratio_min_bytes"] and info.compress_size * LIMITS["ratio"] < info.file_size:
        raise ExportedArtifactError(f"Member {name!r} of {path!r} would expand more than {LIMITS['ratio']}x: "
                                    "refusing a likely zip bomb.")
    try:
        with zf.open(info) as fh:
            data = fh.read(limit + 1)
    except Exception as exc:  # noqa: BLE001 - BadZipFile, zlib.error, EOFError, ...
        raise ExportedArtifactError(f"Member {name!r} of {path!r} is corrupt or truncated: {type(exc).__name__}: "
                                    f"{exc}") from exc
    if len(data) != info.file_size:
        raise ExportedArtifactError(f"Member {name!r} of {path!r} does not match its declared size.")
    return data


def _parse_json(data, name, path):
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ExportedArtifactError(f"{name} of {path!r} is not valid JSON: {type(exc).__name__}: {exc}") from exc
    stack = [(obj, 0)]
    while stack:
        node, level = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        if children and level >= LIMITS["json_depth"]:
            raise ExportedArtifactError(f"{name} of {path!r} nests deeper than {LIMITS['json_depth']} levels.")
        stack.extend((c, level + 1) for c in children)
    return obj


def read_members(path):
    """{member name: bytes} of an artifact, after the zip, name, size and sha256 checks."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No exported artifact at {path!r}.")
    if os.path.isdir(path):
        raise ExportedArtifactError(f"{path!r} is a directory, not an exported fncompiler artifact.")
    size = os.path.getsize(path)
    if size > LIMITS["file_bytes"]:
        raise ExportedArtifactError(f"{path!r} is {size} bytes, over the {LIMITS['file_bytes']} byte limit.")
    members = {}
    with open(path, "rb") as raw:
        _check_central_directory(raw, path)
        raw.seek(0)
        try:
            zf = zipfile.ZipFile(raw)
        except Exception as exc:  # noqa: BLE001
            raise ExportedArtifactError(f"{path!r} is not an exported fncompiler artifact (not a zip archive, or "
                                        f"truncated): {type(exc).__name__}: {exc}") from exc
        with zf:
            infos = zf.infolist()
            names = [i.filename for i in infos]
            for name in names:
                _check_name(name, path)
            if len(set(names)) != len(names):
                raise ExportedArtifactError(f"{path!r} holds duplicate member names: refusing an ambiguous file.")
            for name in names:
                if name not in MEMBERS:
                    raise ExportedArtifactError(f"{path!r} contains an unexpected member {name!r}; an exported "
                                                f"artifact holds only {', '.join(MEMBERS)}.")
            for info in infos:
                members[info.filename] = _read_member(zf, info, path)
    for name in ("signature.json", MODULE_MEMBER, "hashes.json"):
        if name not in members:
            raise ExportedArtifactError(f"{path!r} is missing {name!r}: not a complete exported fncompiler artifact.")
    hashes = _parse_json(members["hashes.json"], "hashes.json", path)
    if not isinstance(hashes, dict) or not all(isinstance(v, str) for v in hashes.values()):
        raise ExportedArtifactError(f"hashes.json of {path!r} must map member names to sha256 hex digests.")
    for name in hashes:
        if name not in members or name == "hashes.json":
            raise ExportedArtifactError(f"hashes.json of {path!r} lists {name!r}, which the file does not hold.")
    for name, data in members.items():
        if name != "hashes.json" and hashes.get(name) != hashlib.sha256(data).hexdigest():
            raise ExportedArtifactError(f"Member {name!r} of {path!r} does not match its recorded sha256: the "
                                        "artifact is corrupt or was modified.")
    return members


# -- weights (flax's msgpack encoding, decoded without flax) ---------------------------------------
def _dtype(name):
    if not isinstance(name, str) or name not in ALLOWED_DTYPES:
        raise ExportedArtifactError(f"dtype {name!r} is not allowed (allowed: {', '.join(ALLOWED_DTYPES)}).")
    return jnp.dtype(name)   # jnp knows bfloat16


def _ndarray(data):
    try:
        shape, dtype_name, buffer = msgpack.unpackb(data, raw=True)
    except Exception as exc:  # noqa: BLE001
        raise ExportedArtifactError(f"weights.msgpack holds a malformed array: {exc}") from exc
    if isinstance(dtype_name, bytes):
        dtype_name = dtype_name.decode("ascii", "replace")
    dtype = _dtype(dtype_name)
    if not isinstance(shape, (list, tuple)) or not all(isinstance(d, int) and d >= 0 for d in shape) or \
            not isinstance(buffer, bytes):
        raise ExportedArtifactError("weights.msgpack holds an array with an invalid shape or buffer.")
    if math.prod(shape) * dtype.itemsize != len(buffer):
        raise ExportedArtifactError(f"weights.msgpack holds an array of shape {tuple(shape)} and dtype {dtype} whose "
                                    f"buffer has {len(buffer)} bytes: the file is corrupt.")
    return np.frombuffer(buffer, dtype=dtype).reshape(shape)


def _ext_hook(code, data):
    if code == 1:        # flax: ndarray
        return _ndarray(data)
    if code == 3:        # flax: numpy scalar
        return _ndarray(data)[()]
    raise ExportedArtifactError(f"weights.msgpack holds an unsupported msgpack extension type {code}.")


def read_weights(data):
    """(paths, arrays) from weights.msgpack as written by fncompiler.saving.weights_io."""
    try:
        tree = msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)
    except ExportedArtifactError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ExportedArtifactError(f"weights.msgpack is corrupt: {type(exc).__name__}: {exc}") from exc
    if not isinstance(tree, dict) or not isinstance(tree.get("arrays"), dict):
        raise ExportedArtifactError("weights.msgpack does not hold a weights table (a map with 'paths' and 'arrays').")
    arrays, paths = tree["arrays"], tree.get("paths")
    n = len(arrays)
    if set(arrays) != {str(i) for i in range(n)}:
        raise ExportedArtifactError(f"weights.msgpack: the weights table's keys must be '0'..'{n - 1}'.")
    if not isinstance(paths, list) or len(paths) != n or not all(isinstance(p, str) for p in paths):
        raise ExportedArtifactError(f"weights.msgpack: 'paths' must be a list of {n} strings.")
    out = []
    for i in range(n):
        a = arrays[str(i)]
        if not isinstance(a, np.ndarray):
            raise ExportedArtifactError(f"weights.msgpack: weight {i} ({paths[i]!r}) is not an array.")
        out.append(a)
    return paths, out


# -- signature -------------------------------------------------------------------------------------
def _tensor_entries(sig, key, path, allow_none_first=True):
    entries = sig.get(key)
    if not isinstance(entries, list) or len(entries) > LIMITS["io_entries"]:
        raise ExportedArtifactError(f"signature.json of {path!r}: {key!r} must be a list.")
    out = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise ExportedArtifactError(f"signature.json of {path!r}: {key}[{i}] must be an object.")
        name, shape, dtype = e.get("name", e.get("path")), e.get("shape"), e.get("dtype")
        if not isinstance(name, str):
            raise ExportedArtifactError(f"signature.json of {path!r}: {key}[{i}] has no name.")
        if not isinstance(shape, list) or not all(d is None or (isinstance(d, int) and not isinstance(d, bool)
                                                                and d >= 0) for d in shape):
            raise ExportedArtifactError(f"signature.json of {path!r}: {key}[{i}] ({name!r}) has an invalid shape "
                                        f"{shape!r}.")
        try:
            _dtype(dtype)
        except ExportedArtifactError as exc:
            raise ExportedArtifactError(f"signature.json of {path!r}: {key}[{i}] ({name!r}): {exc}") from None
        out.append({"name": name, "shape": tuple(shape), "dtype": dtype})
    return out


def _decode_structure(node, n, path, seen):
    if isinstance(node, int) and not isinstance(node, bool):
        if not 0 <= node < n or node in seen:
            raise ExportedArtifactError(f"signature.json of {path!r}: invalid output index {node} in "
                                        "'output_structure'.")
        seen.add(node)
        return node
    if isinstance(node, dict) and len(node) == 1:
        (kind, value), = node.items()
        if kind in ("list", "tuple") and isinstance(value, list):
            return (kind, [_decode_structure(v, n, path, seen) for v in value])
        if kind == "dict" and isinstance(value, list) and all(isinstance(kv, list) and len(kv) == 2 and
                                                             isinstance(kv[0], str) for kv in value):
            return ("dict", [(k, _decode_structure(v, n, path, seen)) for k, v in value])
    raise ExportedArtifactError(f"signature.json of {path!r}: cannot read 'output_structure' ({node!r:.80}).")


def _pack(node, flat):
    if isinstance(node, int):
        return flat[node]
    kind, value = node
    if kind == "dict":
        return {k: _pack(v, flat) for k, v in value}
    items = [_pack(v, flat) for v in value]
    return tuple(items) if kind == "tuple" else items


def check_signature(sig, path="the artifact"):
    if not isinstance(sig, dict) or sig.get("format") != FORMAT:
        found = sig.get("format") if isinstance(sig, dict) else type(sig).__name__
        raise ExportedArtifactError(f"{path!r} is not an exported fncompiler artifact (signature.json names format "
                                    f"{found!r}, expected {FORMAT!r}).")
    version = sig.get("format_version")
    if not isinstance(version, str) or not re.fullmatch(r"\d{1,6}(\.\d{1,6})*", version):
        raise ExportedArtifactError(f"{path!r} has an invalid format_version {version!r}.")
    if int(version.split(".")[0]) > int(FORMAT_VERSION.split(".")[0]):
        raise ExportedArtifactError(f"{path!r} uses artifact format {version}, newer than this loader reads "
                                    f"({FORMAT_VERSION.split('.')[0]}.x): upgrade fncompiler (or this file).")
    if sig.get("endpoint") != "predict":
        raise ExportedArtifactError(f"{path!r} exports endpoint {sig.get('endpoint')!r}; this loader runs 'predict'.")
    platforms = sig.get("platforms")
    if not isinstance(platforms, list) or not platforms or not all(isinstance(p, str) for p in platforms):
        raise ExportedArtifactError(f"signature.json of {path!r}: 'platforms' must be a non-empty list of names.")
    if not isinstance(sig.get("fold_weights"), bool):
        raise ExportedArtifactError(f"signature.json of {path!r}: 'fold_weights' must be true or false.")
    batch = sig.get("batch_size")
    if batch is not None and (not isinstance(batch, int) or isinstance(batch, bool) or batch < 1):
        raise ExportedArtifactError(f"signature.json of {path!r}: invalid 'batch_size' {batch!r}.")
    inputs = _tensor_entries(sig, "inputs", path)
    outputs = _tensor_entries(sig, "outputs", path)
    weights = _tensor_entries(sig, "weights", path)
    if not inputs or not outputs:
        raise ExportedArtifactError(f"signature.json of {path!r} lists no inputs or no outputs.")
    if len({e["name"] for e in inputs}) != len(inputs):
        raise ExportedArtifactError(f"signature.json of {path!r}: input names are not unique.")
    seen = set()
    structure = _decode_structure(sig.get("output_structure"), len(outputs), path, seen)
    if len(seen) != len(outputs):
        raise ExportedArtifactError(f"signature.json of {path!r}: 'output_structure' does not use every output.")
    return inputs, outputs, weights, structure


# -- the loaded model ------------------------------------------------------------------------------
_GPU = {"gpu": ("cuda", "rocm")}


class ExportedModel:
    """A callable over an exported predict step: `model(x)` like `Model.predict(x)` (NumPy results)."""

    def __init__(self, signature, exported, weights, path="<artifact>"):
        self.signature = signature
        self.path = path
        self._exported = exported
        self._inputs, self._outputs, self._weight_specs, self._structure = check_signature(signature, path)
        self._weights = [jnp.asarray(w) for w in weights]
        self._call = jax.jit(exported.call)

    # -- description -------------------------------------------------------------------------------
    @property
    def input_names(self):
        return [e["name"] for e in self._inputs]

    @property
    def output_names(self):
        return [e["name"] for e in self._outputs]

    @property
    def input_specs(self):
        """[(name, shape with None for any size, dtype name)] in input order."""
        return [(e["name"], e["shape"], e["dtype"]) for e in self._inputs]

    @property
    def output_specs(self):
        return [(e["name"], e["shape"], e["dtype"]) for e in self._outputs]

    @property
    def platforms(self):
        return tuple(self._exported.platforms)

    @property
    def exported(self):
        """The deserialized `jax.export.Exported` (its `.call` takes (weights..., inputs...) unless folded)."""
        return self._exported

    def mlir_module(self):
        """The StableHLO text of the exported module."""
        return self._exported.mlir_module()

    def __repr__(self):
        ins = ", ".join(f"{n}: {s} {d}" for n, s, d in self.input_specs)
        return f"<ExportedModel {self.signature.get('model_name')!r} ({ins}) on {list(self.platforms)}>"

    # -- running -----------------------------------------------------------------------------------
    def _flatten(self, x):
        names = self.input_names
        if isinstance(x, dict):
            unknown = sorted(set(x) - set(names))
            missing = [n for n in names if n not in x]
            if unknown or missing:
                raise ValueError(f"Exported model {self.signature.get('model_name')!r} takes inputs {names}; "
                                 + (f"missing {missing}" if missing else "") + ("; " if unknown and missing else "")
                                 + (f"unknown {unknown}" if unknown else "") + ".")
            return [x[n] for n in names]
        if isinstance(x, (list, tuple)) and (len(names) > 1 or (len(x) == 1 and hasattr(x[0], "shape"))):
            if len(x) != len(names):
                raise ValueError(f"Exported model {self.signature.get('model_name')!r} takes {len(names)} inputs "
                                 f"{names}; received {len(x)}.")
            return list(x)
        if len(names) != 1:
            raise ValueError(f"Exported model {self.signature.get('model_name')!r} takes {len(names)} inputs {names}; "
                             "pass a list in that order or a dict by name.")
        return [x]

    def _convert(self, i, value):
        name, shape, dtype_name = self._inputs[i]["name"], self._inputs[i]["shape"], self._inputs[i]["dtype"]
        label = f'Input {i} ("{name}")'
        try:
            arr = np.asarray(value)
        except Exception as exc:  # noqa: BLE001
            raise TypeError(f"{label}: cannot convert {type(value).__name__} to an array: {exc}") from exc
        want = _dtype(dtype_name)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
                                       or arr.dtype == want):
            raise TypeError(f"{label} expects {dtype_name} data; received dtype {arr.dtype}.")
        if np.issubdtype(want, np.integer) and np.issubdtype(arr.dtype, np.floating):
            if not np.all(np.equal(np.mod(arr, 1), 0)):
                raise TypeError(f"{label} expects integer ids ({dtype_name}); received non-integral floats.")
        if arr.ndim != len(shape) or any(d is not None and d != a for d, a in zip(shape[1:], arr.shape[1:])):
            spec = "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"
            raise ValueError(f"{label} has the wrong shape: the exported model expects {spec} (batch first; None "
                             f"is any size), received {arr.shape}.")
        return arr.astype(want) if arr.dtype != want else arr

    def _check_platform(self):
        backend = jax.default_backend()
        names = _GPU.get(backend, (backend,))
        if not any(p in self.platforms for p in names):
            raise RuntimeError(f"This artifact was exported for platforms {list(self.platforms)}; this process runs "
                               f"on {backend!r}. Export it again with platforms including "
                               f"{names[0]!r} (fncompiler.export(..., platforms=(...)).")

    def call_flat(self, arrays):
        """Run on a flat list of input arrays (checked and converted); return the flat list of outputs."""
        arrays = [self._convert(i, a) for i, a in enumerate(arrays)]
        batches = {a.shape[0] for a in arrays if a.ndim}
        if len(batches) > 1:
            raise ValueError(f"The inputs have different batch sizes {sorted(batches)}; all inputs share one batch "
                             "dimension.")
        fixed = self.signature.get("batch_size")
        if fixed is not None and batches and batches != {fixed}:
            raise ValueError(f"This artifact was exported with a fixed batch size of {fixed}; received a batch of "
                             f"{batches.pop()}. Export with batch_size=None for any batch size.")
        if batches == {0}:
            raise ValueError("Received an empty batch (0 samples).")
        self._check_platform()
        args = ([] if self.signature["fold_weights"] else self._weights) + [jnp.asarray(a) for a in arrays]
        out = self._call(*args)
        return [np.asarray(o) for o in jax.tree_util.tree_leaves(out)]

    def predict(self, x, batch_size=None):
        """`model.predict(x)`: the outputs in the model's structure (array, list or dict), as NumPy arrays.
        With `batch_size`, runs the inputs in slices of that size (each new size compiles once)."""
        flat_in = self._flatten(x)
        if batch_size is None:
            flat = self.call_flat(flat_in)
        else:
            arrays = [np.asarray(a) for a in flat_in]
            n = arrays[0].shape[0]
            parts = [self.call_flat([a[s:s + batch_size] for a in arrays]) for s in range(0, n, int(batch_size))]
            flat = [np.concatenate([p[k] for p in parts], axis=0) for k in range(len(parts[0]))]
        return _pack(self._structure, flat)

    __call__ = predict


def read_artifact(path):
    """(signature dict, jax.export.Exported, weight arrays) from an artifact, after every check."""
    path = os.fspath(path)
    members = read_members(path)
    sig = _parse_json(members["signature.json"], "signature.json", path)
    _, _, weight_specs, _ = check_signature(sig, path)
    ccv = sig.get("calling_convention_version")
    lo, hi = jax.export.minimum_supported_calling_convention_version, \
        jax.export.maximum_supported_calling_convention_version
    if isinstance(ccv, int) and not lo <= ccv <= hi:
        raise ExportedArtifactError(f"{path!r} uses jax.export calling convention version {ccv}; this jax "
                                    f"({jax.__version__}) runs versions {lo}..{hi}. It was exported by jax "
                                    f"{sig.get('jax_version')!r}.")
    try:
        exported = jax.export.deserialize(bytearray(members[MODULE_MEMBER]))
    except Exception as exc:  # noqa: BLE001 - flatbuffers/MLIR raise many types on bad bytes
        raise ExportedArtifactError(f"{MODULE_MEMBER} of {path!r} cannot be deserialized by jax {jax.__version__}: "
                                    f"{type(exc).__name__}: {exc}") from exc
    if sorted(exported.platforms) != sorted(sig["platforms"]):
        raise ExportedArtifactError(f"{path!r}: signature.json names platforms {sig['platforms']}, the module was "
                                    f"lowered for {list(exported.platforms)}.")
    if sig["fold_weights"]:
        if "weights.msgpack" in members or weight_specs:
            raise ExportedArtifactError(f"{path!r} has folded weights but also a weights table.")
        weights = []
    else:
        if "weights.msgpack" not in members:
            raise ExportedArtifactError(f"{path!r} is missing 'weights.msgpack' (its weights are not folded).")
        _, weights = read_weights(members["weights.msgpack"])
        if len(weights) != len(weight_specs):
            raise ExportedArtifactError(f"{path!r}: weights.msgpack holds {len(weights)} arrays, signature.json "
                                        f"lists {len(weight_specs)}.")
        for i, (w, spec) in enumerate(zip(weights, weight_specs)):
            if tuple(w.shape) != spec["shape"] or w.dtype != _dtype(spec["dtype"]):
                raise ExportedArtifactError(f"{path!r}: weight {i} ({spec['name']!r}) is {w.dtype}{list(w.shape)}, "
                                            f"signature.json says {spec['dtype']}{list(spec['shape'])}.")
    n_in = len(sig["inputs"])
    avals = exported.in_avals
    if len(avals) != len(weights) + n_in:
        raise ExportedArtifactError(f"{path!r}: the module takes {len(avals)} arguments, but the signature lists "
                                    f"{len(weights)} weights and {n_in} inputs.")
    for i, (w, aval) in enumerate(zip(weights, avals)):
        if tuple(w.shape) != tuple(aval.shape) or w.dtype != aval.dtype:
            raise ExportedArtifactError(f"{path!r}: weight {i} is {w.dtype}{list(w.shape)}, the module expects "
                                        f"{aval.dtype}{list(aval.shape)}.")
    if len(exported.out_avals) != len(sig["outputs"]):
        raise ExportedArtifactError(f"{path!r}: the module has {len(exported.out_avals)} outputs, signature.json "
                                    f"lists {len(sig['outputs'])}.")
    for kind, specs, module_avals in (("input", sig["inputs"], avals[len(weights):]),
                                      ("output", sig["outputs"], exported.out_avals)):
        for spec, aval in zip(specs, module_avals):
            # a concrete dimension must be recorded as itself, a symbolic one (any size) as None
            dims = [int(d) if isinstance(d, (int, np.integer)) else None for d in aval.shape]
            if list(spec["shape"]) != dims or str(aval.dtype) != spec["dtype"]:
                raise ExportedArtifactError(f"{path!r}: {kind} {spec['name']!r} is {spec['dtype']}"
                                            f"{list(spec['shape'])} in signature.json, {aval.dtype}{dims} in the "
                                            "module.")
    return sig, exported, weights


def load_exported(path):
    """Load an artifact written by `fncompiler.export` as a callable `ExportedModel` (see the module doc)."""
    sig, exported, weights = read_artifact(path)
    return ExportedModel(sig, exported, weights, path=os.fspath(path))
