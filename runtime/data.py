"""Data adapters: user data (arrays, lists, dicts, generators) -> flat lists of host arrays and batches."""
import functools

import numpy as np

from fncompiler import dtypes
from fncompiler.models import host_prefix


def adjust_input_rank(value, expected_shape):
    """Keras 3's rank adjustment of one input: data one rank short of an input whose last dimension is 1 gets
    that axis ((n,) -> (n, 1)); data one rank over, ending in 1, loses it. Anything else is returned as is."""
    ndim, rank = len(getattr(value, "shape", ())), len(expected_shape)
    if ndim == rank - 1 and expected_shape[-1] == 1:
        return value[..., None]
    if ndim == rank + 1 and ndim and value.shape[-1] == 1:
        return value[..., 0]
    return value


def _is_array(x):
    return hasattr(x, "shape") and hasattr(x, "dtype")


def to_host(x, name):
    """A NumPy array for one input/target, with float64 -> float32 and int64 -> int32 (JAX runs x64 off)."""
    if _is_array(x):
        arr = np.asarray(x)
    elif isinstance(x, (list, tuple)) and x and not isinstance(x[0], (list, tuple, np.ndarray)) or \
            isinstance(x, (int, float)):
        arr = np.asarray(x)
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:
            raise TypeError(f"{name}: cannot convert {type(x).__name__} to an array: {exc}") from exc
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    elif arr.dtype == np.int64:
        arr = arr.astype(np.int32)
    elif arr.dtype == np.uint64:
        arr = arr.astype(np.uint32)
    elif arr.dtype == object:
        raise TypeError(f"{name}: received an object array (ragged or mixed data); expected a numeric array.")
    return arr


@functools.lru_cache(maxsize=None)
def _kind(dtype_name):
    """("float" | "int" | "other", the NumPy dtype to convert to or None) for an input spec's dtype."""
    if dtypes.is_float(dtype_name):
        return "float", (None if dtype_name == "bfloat16" else np.dtype(dtype_name))
    if dtypes.is_int(dtype_name):
        return "int", np.dtype(dtype_name)
    return "other", None


def _single_input(model):
    """(shape without the batch axis, NumPy dtype) of a model's one input when that shape is fully known and its
    dtype is a NumPy one, else None; kept on the model for its current input tensor (a Sequential model rebuilt
    for another shape gets a new one)."""
    specs = model.inputs
    if specs is None or len(specs) != 1:
        return None
    cached = model.__dict__.get("_flat_single_input")
    if cached is not None and cached[0] is specs[0]:
        return cached[1]
    single = None
    if all(d is not None for d in specs[0].shape[1:]):
        target = _kind(str(specs[0].dtype))[1]
        if target is not None:
            single = (tuple(specs[0].shape[1:]), target)
    model.__dict__["_flat_single_input"] = (specs[0], single)
    return single


def flatten_x(model, x):
    """User inputs -> list of host arrays in the model's flat input order, shape-checked."""
    if type(x) is np.ndarray:     # the common case, one NumPy array of the right shape and dtype: nothing to do
        single = _single_input(model)
        if single is not None and x.shape[1:] == single[0] and x.dtype == single[1] and x.ndim == len(single[0]) + 1:
            return [x]
    flat = model.flatten_inputs(x)
    names = model.input_names
    specs = [t for t in model.inputs]
    prefix = host_prefix.of(model)
    if prefix is not None:        # host preprocessing (strings...) runs here, before the compiled step
        for i, (value, spec) in enumerate(zip(flat, specs)):
            if dtypes.is_string(spec.dtype) and not (hasattr(value, "shape") and hasattr(value, "dtype")):
                flat[i] = np.asarray(value)
            if dtypes.is_string(spec.dtype):
                flat[i] = adjust_input_rank(flat[i], spec.shape)   # (n,) strings -> (n, 1) as Keras
        flat = prefix.run(flat)
        specs = prefix.device_inputs
        names = [t.node.layer.name if t.node.is_input else f"{t.node.layer.name} output" for t in specs]
    out = []
    for i, (value, spec) in enumerate(zip(flat, specs)):
        arr = adjust_input_rank(to_host(value, f'Input {i} ("{names[i]}")'), spec.shape)   # (n,) -> (n, 1)
        shape = arr.shape
        if len(shape) != len(spec.shape) or any(a is not None and a != b for a, b in zip(spec.shape[1:], shape[1:])):
            raise ValueError(f'Input {i} ("{names[i]}") of model "{model.name}" has the wrong shape: expected '
                             f"{spec.shape} (batch first), received {shape}. Reshape the data, e.g. "
                             f"x.reshape(-1, {', '.join(str(d) for d in spec.shape[1:])}).")
        kind, target = _kind(str(spec.dtype))
        if target is not None and arr.dtype == target:      # the common case: nothing to check or convert
            out.append(arr)
            continue
        if kind == "float" and arr.dtype.kind not in "biufc" and arr.dtype.name != "bfloat16":
            raise TypeError(f'Input {i} ("{names[i]}") of model "{model.name}" expects {spec.dtype} data, '
                            f"received dtype {arr.dtype}.")
        if kind == "int" and arr.dtype.kind == "f":
            if not np.all(np.equal(np.mod(arr, 1), 0)):
                raise TypeError(f'Input {i} ("{names[i]}") of model "{model.name}" expects integer ids '
                                f"({spec.dtype}); received non-integral floats.")
        if target is not None and arr.dtype != target:
            arr = arr.astype(target)
        out.append(arr)
    return out


def flatten_y(output_names, has_loss, y):
    """User targets -> list aligned with the model's flat outputs (None where an output has no target)."""
    n = len(output_names)
    if y is None:
        return [None] * n
    if isinstance(y, dict):
        unknown = sorted(set(y) - set(output_names))
        if unknown:
            raise ValueError(f"Targets given for unknown outputs {unknown}; the model's outputs are {output_names}.")
        return [None if k not in y else to_host(y[k], f'Target "{k}"') for k in output_names]
    if isinstance(y, (list, tuple)) and n > 1:
        if len(y) != n:
            raise ValueError(f"The model has {n} outputs {output_names}, but {len(y)} targets were given.")
        return [to_host(v, f'Target "{k}"') for k, v in zip(output_names, y)]
    if n > 1:
        targets = [i for i in range(n) if has_loss[i]]
        if len(targets) == 1:
            out = [None] * n
            out[targets[0]] = to_host(y, f'Target "{output_names[targets[0]]}"')
            return out
        raise ValueError(f"The model has {n} outputs {output_names}; pass targets as a list or a dict keyed by "
                         "output name.")
    return [to_host(y, "Target")]


def num_samples(arrays, what="x"):
    sizes = {a.shape[0] for a in arrays if a is not None and a.ndim}
    if len(sizes) > 1:
        raise ValueError(f"All arrays in {what} must have the same number of samples; received sizes {sorted(sizes)}.")
    return sizes.pop() if sizes else 0


def check_lengths(xs, ys, sw):
    nx = num_samples(xs, "x")
    ny = num_samples([y for y in ys if y is not None], "y")
    if ys and any(y is not None for y in ys) and nx != ny:
        raise ValueError(f"Data cardinality is ambiguous: x has {nx} samples but y has {ny}. Make sure all arrays "
                         "contain the same number of samples.")
    if sw is not None and sw.shape[0] != nx:
        raise ValueError(f"sample_weight has {sw.shape[0]} samples but x has {nx}.")
    return nx


def split(arrays, at):
    return [None if a is None else a[:at] for a in arrays], [None if a is None else a[at:] for a in arrays]


def take(arrays, idx):
    return [None if a is None else a[idx] for a in arrays]


def is_generator_like(x):
    """True for Python generators / iterables of batches (not arrays, lists of arrays or dicts)."""
    if x is None or _is_array(x) or isinstance(x, (list, tuple, dict, str, bytes)):
        return False
    return hasattr(x, "__iter__") or hasattr(x, "__next__")


def unpack_batch(item):
    """A generator item -> (x, y, sample_weight)."""
    if isinstance(item, tuple):
        if len(item) == 1:
            return item[0], None, None
        if len(item) == 2:
            return item[0], item[1], None
        if len(item) == 3:
            return item
        raise ValueError(f"A data generator must yield (x,), (x, y) or (x, y, sample_weight); received a tuple of "
                         f"{len(item)} items.")
    return item, None, None
