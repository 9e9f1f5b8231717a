"""``to_categorical`` and ``normalize``, as in ``keras.utils``."""

from __future__ import annotations

import numpy as np


def to_categorical(x, num_classes=None):
    """One-hot encode integer class labels, like Keras 3.

    A trailing axis of size 1 is dropped first, so labels of shape ``(n, 1)``
    give ``(n, num_classes)``; in general the output shape is
    ``x.shape (minus a trailing 1) + (num_classes,)``. Returns float32.
    ``num_classes`` defaults to ``max(x) + 1``.
    """
    arr = np.asarray(x)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError("to_categorical: labels must be whole numbers, got non-integer floats")
    elif arr.dtype.kind not in "uib":
        raise ValueError(f"to_categorical: labels must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    shape = arr.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    flat = arr.reshape(-1)
    if not num_classes:
        if flat.size == 0:
            raise ValueError("to_categorical: cannot infer num_classes from empty labels; pass num_classes")
        num_classes = int(flat.max()) + 1
    num_classes = int(num_classes)
    if flat.size and (flat.min() < 0 or flat.max() >= num_classes):
        raise ValueError(f"to_categorical: labels must be in [0, {num_classes - 1}] for "
                         f"num_classes={num_classes}, got min {flat.min()}, max {flat.max()}")
    out = np.zeros((flat.size, num_classes), dtype=np.float32)
    out[np.arange(flat.size), flat] = 1.0
    return out.reshape(shape + (num_classes,))


def normalize(x, axis=-1, order=2):
    """Scale ``x`` to unit ``order``-norm along ``axis``; zero vectors are left as zeros.

    NumPy (and list) input gives a NumPy result; a JAX array gives a JAX array.
    """
    if type(x).__module__.startswith(("jax", "jaxlib")):
        import jax.numpy as jnp

        norm = jnp.linalg.norm(x, ord=order, axis=axis, keepdims=True)
        return x / jnp.where(norm == 0, 1, norm)
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32 if x.dtype.itemsize <= 4 else np.float64)
    norm = np.linalg.norm(x, ord=order, axis=axis, keepdims=True)
    norm = np.where(norm == 0, 1, norm).astype(x.dtype)
    return x / norm
