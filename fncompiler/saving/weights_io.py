"""Weights and optimizer state as msgpack (flax.serialization), checked against the architecture."""
import numpy as np
from flax import serialization as flax_ser

from .errors import ModelFileError

ALLOWED_DTYPES = {"float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
                  "uint32", "uint64", "bool"}


def weights_to_bytes(variables):
    return flax_ser.msgpack_serialize({"paths": [v.path for v in variables],
                                       "arrays": {str(i): np.asarray(v.value) for i, v in enumerate(variables)}})


def _restore(data, what):
    try:
        return flax_ser.msgpack_restore(data)
    except Exception as exc:  # msgpack raises many types on corrupt input
        raise ModelFileError(f"{what} is corrupt: {type(exc).__name__}: {exc}") from exc


def read_weights(data, variables, what="weights.msgpack", skip_mismatch=False):
    """Arrays for `variables` from msgpack bytes, after checking count, paths, shapes and dtypes."""
    tree = _restore(data, what)
    if not isinstance(tree, dict) or not isinstance(tree.get("arrays"), dict):
        raise ModelFileError(f"{what} does not hold a weights table.")
    arrays, paths = tree["arrays"], tree.get("paths") or []
    if len(arrays) != len(variables):
        raise ModelFileError(f"{what} holds {len(arrays)} weights, but the model has {len(variables)}: the file was "
                             "saved from a different architecture.")
    out = []
    for i, var in enumerate(variables):
        arr = arrays.get(str(i))
        if not isinstance(arr, np.ndarray):
            raise ModelFileError(f"{what}: weight {i} ({var.path}) is missing or not an array.")
        if arr.dtype == object or arr.dtype.name not in ALLOWED_DTYPES:
            raise ModelFileError(f"{what}: weight {i} ({var.path}) has dtype {arr.dtype}, which is not allowed.")
        if tuple(arr.shape) != tuple(var.shape):
            if skip_mismatch:
                out.append(None)
                continue
            saved = paths[i] if i < len(paths) else "?"
            raise ModelFileError(f"Weight {i} differs: the model's {var.path!r} has shape {var.shape} and dtype "
                                 f"{var.dtype}, the file's {saved!r} has shape {tuple(arr.shape)} and dtype "
                                 f"{arr.dtype}.")
        out.append(arr.astype(var.dtype) if arr.dtype.name != var.dtype else arr)
    return out


def state_to_bytes(state):
    return flax_ser.msgpack_serialize(flax_ser.to_state_dict(state))


def read_state(data, target, what="optimizer.msgpack"):
    """Restore a pytree shaped like `target` (e.g. a fresh optimizer state), checking every leaf's shape."""
    import jax
    raw = _restore(data, what)
    try:
        restored = flax_ser.from_state_dict(target, raw)
    except Exception as exc:
        raise ModelFileError(f"{what} does not match this model's optimizer state: {exc}") from exc
    for a, b in zip(jax.tree_util.tree_leaves(target), jax.tree_util.tree_leaves(restored)):
        if np.shape(a) != np.shape(b):
            raise ModelFileError(f"{what}: a state entry has shape {np.shape(b)}, expected {np.shape(a)}.")
    return restored
