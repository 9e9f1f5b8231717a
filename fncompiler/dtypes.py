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
    if _is_string_dtype(dtype):
        return "string"
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


def _is_string_dtype(dtype):
    """Text data ("string", "str", str, NumPy unicode/bytes/object dtypes): only host preprocessing layers take it
    (see fncompiler/layers/preprocessing/host.py); it never enters a compiled step."""
    if dtype is str or dtype is bytes or isinstance(dtype, str) and dtype in ("string", "str"):
        return True
    try:
        return not isinstance(dtype, str) and np.dtype(dtype).kind in "USO"
    except TypeError:
        return False


def is_string(dtype):
    return _is_string_dtype(dtype)


def is_float(dtype):
    return standardize(dtype) in ("float16", "bfloat16", "float32", "float64")


def is_int(dtype):
    if is_string(dtype):
        return False
    return np.issubdtype(jnp.dtype(standardize(dtype)), np.integer)


def result_type(*dtypes):
    """The promoted dtype of several dtypes, following JAX's promotion lattice (weak float -> floatx)."""
    return standardize(jnp.result_type(*[jnp.dtype(standardize(d)) for d in dtypes]))
