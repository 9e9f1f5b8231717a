"""Helpers shared by the preprocessing layers: iterating `adapt` data and encoding integer ids."""
import itertools

import numpy as np

_ENCODING_MODES = ("int", "one_hot", "multi_hot", "count")


def batches(data, layer):
    """`adapt` data -> an iterator of NumPy batches (an array is one batch; an iterable yields batches, or
    (x, y[, w]) tuples whose x is used)."""
    if _is_array(data) or isinstance(data, (list, tuple)) and data and not _is_batch_like(data[0]):
        return iter([np.asarray(data)])
    if isinstance(data, (str, bytes)) or not hasattr(data, "__iter__"):
        raise TypeError(f"{layer}.adapt() expects a NumPy array or an iterable of batches (a list of arrays, a "
                        f"generator, a PyDataset); received {type(data).__name__}.")
    if hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(data, (list, tuple)):
        data = (data[i] for i in range(len(data)))       # a PyDataset / keras.utils.Sequence

    def gen():
        for item in data:
            if isinstance(item, tuple):
                item = item[0]
            yield np.asarray(item)
    it = gen()
    first = next(it, None)
    if first is None:
        raise ValueError(f"{layer}.adapt() received an empty iterable (no batches). Pass at least one batch, "
                         "e.g. layer.adapt([x]).")
    return itertools.chain([first], it)


def _is_array(x):
    return hasattr(x, "shape") and hasattr(x, "dtype")


def _is_batch_like(x):
    return _is_array(x) or isinstance(x, (list, tuple))


def check_output_mode(layer, output_mode, allowed=_ENCODING_MODES):
    if output_mode == "binary":          # Keras 2 name
        output_mode = "multi_hot"
    if output_mode not in allowed:
        raise ValueError(f"{layer}: unknown `output_mode` {output_mode!r}; expected one of "
                         f"{', '.join(repr(m) for m in allowed)}.")
    return output_mode


def encode(xp, ids, output_mode, depth, dtype, count_weights=None):
    """Keras's encode_categorical_inputs with `xp` = numpy or jax.numpy: ids of rank <= 2 (rank 1 = one id per
    sample) -> int ids cast to `dtype`, or (..., depth) one_hot / multi_hot / count vectors. Ids outside
    [0, depth) contribute nothing."""
    if output_mode == "int":
        return ids.astype(dtype)
    if ids.ndim == 0:
        ids = ids[None]
    if output_mode == "one_hot":
        if ids.ndim > 1 and ids.shape[-1] == 1:
            ids = ids[..., 0]
        return (ids[..., None] == xp.arange(depth)).astype(dtype)
    if ids.ndim == 1:
        ids = ids[:, None]
    hot = (ids[..., None] == xp.arange(depth))
    if output_mode == "multi_hot":
        return xp.any(hot, axis=-2).astype(dtype)
    if count_weights is not None:
        weights = xp.asarray(count_weights)
        weights = weights[:, None] if weights.ndim == 1 else weights
        return xp.sum(hot * weights[..., None], axis=-2).astype(weights.dtype)
    return xp.sum(hot, axis=-2).astype(dtype)


def encoded_shape(input_shape, output_mode, depth):
    input_shape = tuple(input_shape)
    if output_mode == "int":
        return input_shape
    if not input_shape:
        return (depth,)
    if output_mode == "one_hot":
        if len(input_shape) > 1 and input_shape[-1] == 1:
            return input_shape[:-1] + (depth,)
        return input_shape + (depth,)
    if len(input_shape) == 1:
        return input_shape + (depth,)
    return input_shape[:-1] + (depth,)
