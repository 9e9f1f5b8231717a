"""Weights and optimizer state as msgpack (flax.serialization), checked against the architecture.

msgpack holds only plain data: arrays are (shape, dtype name, raw bytes) and are rebuilt with np.frombuffer, so
an array can never be larger than the bytes the file really holds, and object dtypes (pickles) are impossible.
"""
import math

import numpy as np

from .errors import ModelFileError

ALLOWED_DTYPES = {"float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
                  "uint32", "uint64", "bool"}


def _flax():
    """flax.serialization, imported on first use: importing flax takes ~0.1 s (it loads flax.linen), which a
    fit that never saves should not pay."""
    from flax import serialization
    return serialization


def weights_to_bytes(variables):
    return _flax().msgpack_serialize({"paths": [v.path for v in variables],
                                      "arrays": {str(i): np.asarray(v.value) for i, v in enumerate(variables)}})


def _restore(data, what):
    try:
        return _flax().msgpack_restore(data)
    except Exception as exc:  # noqa: BLE001 - msgpack/numpy raise many types on corrupt input
        raise ModelFileError(f"{what} is corrupt: {type(exc).__name__}: {exc}") from exc


def _check_array(arr, what, label):
    if not isinstance(arr, np.ndarray):
        raise ModelFileError(f"{what}: {label} is missing or not an array (found {type(arr).__name__}).")
    if arr.dtype.hasobject or arr.dtype.name not in ALLOWED_DTYPES:
        raise ModelFileError(f"{what}: {label} has dtype {arr.dtype}, which is not allowed (allowed: "
                             f"{', '.join(sorted(ALLOWED_DTYPES))}).")
    return arr


class WeightsTable:
    """The checked contents of weights.msgpack: saved paths and arrays, in the model's weight order."""

    def __init__(self, paths, arrays):
        self.paths = paths
        self.arrays = arrays

    @property
    def num_elements(self):
        return sum(int(a.size) for a in self.arrays)

    def __len__(self):
        return len(self.arrays)


def read_table(data, what="weights.msgpack"):
    """Parse weights.msgpack into a WeightsTable; every array is a real, numeric ndarray."""
    tree = _restore(data, what)
    if not isinstance(tree, dict) or not isinstance(tree.get("arrays"), dict):
        raise ModelFileError(f"{what} does not hold a weights table (a map with 'paths' and 'arrays').")
    raw_arrays, raw_paths = tree["arrays"], tree.get("paths")
    n = len(raw_arrays)
    if set(raw_arrays) != {str(i) for i in range(n)}:
        raise ModelFileError(f"{what}: the weights table's keys must be '0'..'{n - 1}'.")
    if raw_paths is None:
        raw_paths = ["?"] * n
    if not isinstance(raw_paths, list) or len(raw_paths) != n or not all(isinstance(p, str) for p in raw_paths):
        raise ModelFileError(f"{what}: 'paths' must be a list of {n} strings, one per array.")
    arrays = [_check_array(raw_arrays[str(i)], what, f"weight {i} ({raw_paths[i]!r})") for i in range(n)]
    return WeightsTable(raw_paths, arrays)


def _fmt_shape(shape):
    return str(tuple(int(d) for d in shape))


def match_weights(table, variables, what="weights.msgpack", skip_mismatch=False):
    """Arrays for `variables` (None where skipped), after checking count and shapes in order.

    Weights are matched by position (the model's weight order), as in Keras; paths are reported, not required to
    be equal, because auto-generated layer names differ between sessions. The error names the first difference.
    """
    out = []
    n_model, n_file = len(variables), len(table)
    for i, var in enumerate(variables):
        if i >= n_file:
            if skip_mismatch:
                out.append(None)
                continue
            raise ModelFileError(
                f"{what} holds {n_file} weights, but the model has {n_model}: the first weight with no counterpart "
                f"in the file is weight {i}, the model's {var.path!r} with shape {_fmt_shape(var.shape)}. The file "
                "was saved from a different architecture.")
        arr = table.arrays[i]
        if tuple(arr.shape) != tuple(var.shape):
            if skip_mismatch:
                out.append(None)
                continue
            raise ModelFileError(
                f"Weight {i} differs: the model's {var.path!r} has shape {_fmt_shape(var.shape)} and dtype "
                f"{var.dtype}, the file's {table.paths[i]!r} has shape {_fmt_shape(arr.shape)} and dtype "
                f"{arr.dtype}. The file was saved from a different architecture.")
        out.append(arr.astype(var.dtype) if arr.dtype.name != var.dtype else arr)
    if n_file > n_model and not skip_mismatch:
        raise ModelFileError(
            f"{what} holds {n_file} weights, but the model has {n_model}: the first weight with no counterpart in the "
            f"model is the file's weight {n_model}, {table.paths[n_model]!r} with shape "
            f"{_fmt_shape(table.arrays[n_model].shape)}. The file was saved from a different architecture.")
    return out


def read_weights(data, variables, what="weights.msgpack", skip_mismatch=False):
    """Arrays for `variables` from msgpack bytes, after checking count, shapes and dtypes."""
    return match_weights(read_table(data, what), variables, what=what, skip_mismatch=skip_mismatch)


def state_to_bytes(state):
    return _flax().msgpack_serialize(_flax().to_state_dict(state))


def read_state(data, target, what="optimizer.msgpack"):
    """Restore a pytree shaped like `target` (e.g. a fresh optimizer state), checking every leaf.

    Each restored leaf must be a numeric array (or number) of the target leaf's shape; it is cast to the target
    leaf's dtype, so the step function sees exactly the types it was traced with.
    """
    import jax
    raw = _restore(data, what)
    try:
        restored = _flax().from_state_dict(target, raw)
    except Exception as exc:  # noqa: BLE001 - flax raises ValueError/KeyError/TypeError on a mismatched tree
        raise ModelFileError(f"{what} does not match this model's optimizer state: {type(exc).__name__}: {exc}") \
            from exc
    target_leaves, treedef = jax.tree_util.tree_flatten(target)
    try:
        restored_leaves, restored_def = jax.tree_util.tree_flatten(restored)
    except Exception as exc:  # noqa: BLE001
        raise ModelFileError(f"{what} does not match this model's optimizer state: {exc}") from exc
    if restored_def != treedef:
        raise ModelFileError(f"{what} does not match this model's optimizer state (its structure differs: "
                             f"{len(restored_leaves)} entries, expected {len(target_leaves)}).")
    leaves = []
    for i, (a, b) in enumerate(zip(target_leaves, restored_leaves)):
        if isinstance(b, (bool, int, float)) and not isinstance(b, np.ndarray):
            b = np.asarray(b)
        if isinstance(b, np.generic):
            b = np.asarray(b)
        b = _check_array(b, what, f"state entry {i}")
        if tuple(np.shape(a)) != tuple(b.shape):
            raise ModelFileError(f"{what}: state entry {i} has shape {_fmt_shape(b.shape)}, expected "
                                 f"{_fmt_shape(np.shape(a))}.")
        dtype = getattr(a, "dtype", None)
        leaves.append(b.astype(dtype) if dtype is not None and b.dtype != dtype else b)
    return jax.tree_util.tree_unflatten(treedef, leaves)


def elements(shape):
    return math.prod(int(d) for d in shape)
