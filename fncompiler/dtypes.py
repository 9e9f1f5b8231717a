"""Dtype names: one canonical string per dtype, and the default float type."""
import jax.numpy as jnp
import numpy as np

_FLOATX = "float32"

ALLOWED = (
    "float16", "bfloat16", "float32", "float64",
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool",
    "complex64", "complex128",
)


def floatx():
    """The default float dtype ("float32")."""
    return _FLOATX


def standardize(dtype):
    """Return the canonical dtype name for `dtype` (a string, numpy/jax dtype or Python type)."""
    if dtype is None:
        return _FLOATX
    if dtype is float:
        return _FLOATX
    if dtype is int:
        return "int32"
    if dtype is bool:
        return "bool"
    if hasattr(dtype, "name") and not isinstance(dtype, str):
        name = dtype.name
    else:
        try:
            name = jnp.dtype(dtype).name
        except TypeError as exc:
            raise TypeError(f"Unknown dtype {dtype!r}. Expected one of {', '.join(ALLOWED)}.") from exc
    if name not in ALLOWED:
        raise TypeError(f"Unsupported dtype {name!r}. Expected one of {', '.join(ALLOWED)}.")
    return name


def is_float(dtype):
    return standardize(dtype) in ("float16", "bfloat16", "float32", "float64")


def is_int(dtype):
    return np.issubdtype(jnp.dtype(standardize(dtype)), np.integer)


def result_type(*dtypes):
    """The promoted dtype of several dtypes, following JAX's promotion lattice (weak float -> floatx)."""
    return standardize(jnp.result_type(*[jnp.dtype(standardize(d)) for d in dtypes]))
