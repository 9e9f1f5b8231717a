"""The op table. Each op runs jax.numpy on arrays; on a symbolic tensor it records an OpLayer node."""
import builtins
import functools

import jax
import jax.numpy as jnp
import numpy as np

from ..symbolic import any_symbolic
from ..variables import Variable

OPS = {}   # name -> the array implementation (the closed set a model file may name)


def _value(x):
    return x.value if isinstance(x, Variable) else x


def _unwrap(args, kwargs):
    return jax.tree_util.tree_map(_value, (args, kwargs), is_leaf=lambda x: isinstance(x, Variable))


def op(fn, name=None):
    name = name or fn.__name__.rstrip("_")

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if any_symbolic((args, kwargs)):
            from .op_layer import OpLayer
            return OpLayer(name)(*args, **kwargs)
        args, kwargs = _unwrap(args, kwargs)
        return fn(*args, **kwargs)

    def impl(*args, **kwargs):
        args, kwargs = _unwrap(args, kwargs)
        return fn(*args, **kwargs)
    OPS[name] = impl
    wrapper.__name__ = name
    return wrapper


def _simple(name, jfn):
    return op(lambda *a, **k: jfn(*a, **k), name)


_ELEMENTWISE = {
    "add": jnp.add, "subtract": jnp.subtract, "multiply": jnp.multiply, "divide": jnp.true_divide,
    "true_divide": jnp.true_divide, "floor_divide": jnp.floor_divide, "power": jnp.power, "mod": jnp.mod,
    "less": jnp.less, "less_equal": jnp.less_equal, "greater": jnp.greater, "greater_equal": jnp.greater_equal,
    "equal": jnp.equal, "not_equal": jnp.not_equal, "maximum": jnp.maximum, "minimum": jnp.minimum,
    "logical_and": jnp.logical_and, "logical_or": jnp.logical_or, "logical_not": jnp.logical_not,
    "logical_xor": jnp.logical_xor, "negative": jnp.negative, "abs": jnp.abs, "absolute": jnp.abs,
    "exp": jnp.exp, "expm1": jnp.expm1, "log": jnp.log, "log1p": jnp.log1p, "log2": jnp.log2, "log10": jnp.log10,
    "sqrt": jnp.sqrt, "square": jnp.square, "sign": jnp.sign, "floor": jnp.floor, "ceil": jnp.ceil,
    "round": jnp.round, "sin": jnp.sin, "cos": jnp.cos, "tan": jnp.tan, "arctan": jnp.arctan, "tanh": jnp.tanh,
    "sinh": jnp.sinh, "cosh": jnp.cosh, "reciprocal": jnp.reciprocal, "clip": jnp.clip, "where": jnp.where,
    "isnan": jnp.isnan, "isinf": jnp.isinf, "isfinite": jnp.isfinite, "erf": jax.scipy.special.erf,
    "matmul": jnp.matmul, "dot": jnp.dot, "einsum": jnp.einsum, "tensordot": jnp.tensordot, "outer": jnp.outer,
    "sum": jnp.sum, "mean": jnp.mean, "max": jnp.max, "min": jnp.min, "prod": jnp.prod, "std": jnp.std,
    "var": jnp.var, "all": jnp.all, "any": jnp.any, "argmax": jnp.argmax, "argmin": jnp.argmin,
    "argsort": jnp.argsort, "sort": jnp.sort, "cumsum": jnp.cumsum, "cumprod": jnp.cumprod,
    "reshape": jnp.reshape, "transpose": jnp.transpose, "expand_dims": jnp.expand_dims, "squeeze": jnp.squeeze,
    "stack": jnp.stack, "concatenate": jnp.concatenate, "split": jnp.split, "tile": jnp.tile, "repeat": jnp.repeat,
    "broadcast_to": jnp.broadcast_to, "take": jnp.take, "take_along_axis": jnp.take_along_axis, "pad": jnp.pad,
    "flip": jnp.flip, "roll": jnp.roll, "swapaxes": jnp.swapaxes, "moveaxis": jnp.moveaxis, "triu": jnp.triu,
    "tril": jnp.tril, "diag": jnp.diag, "trace": jnp.trace, "zeros_like": jnp.zeros_like,
    "ones_like": jnp.ones_like, "full_like": jnp.full_like, "linspace": jnp.linspace, "eye": jnp.eye,
    "logsumexp": jax.nn.logsumexp, "sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu, "relu6": jax.nn.relu6,
    "softplus": jax.nn.softplus, "silu": jax.nn.silu, "gelu": jax.nn.gelu, "elu": jax.nn.elu,
    "selu": jax.nn.selu, "leaky_relu": jax.nn.leaky_relu, "log_sigmoid": jax.nn.log_sigmoid,
    "softmax": jax.nn.softmax, "log_softmax": jax.nn.log_softmax, "nan_to_num": jnp.nan_to_num,
    "real": jnp.real, "imag": jnp.imag, "conj": jnp.conj, "count_nonzero": jnp.count_nonzero,
    "average": jnp.average, "median": jnp.median, "quantile": jnp.quantile,
}
for _n, _f in _ELEMENTWISE.items():
    globals()[_n] = _simple(_n, _f)


@op
def getitem(x, key):
    return x[_decode_key(key)]


def _decode_key(key):
    if isinstance(key, dict) and "__slice__" in key:
        return builtins.slice(*key["__slice__"])
    if isinstance(key, dict) and key.get("__ellipsis__"):
        return Ellipsis
    if isinstance(key, list):
        return tuple(_decode_key(k) for k in key)
    if isinstance(key, tuple):
        return tuple(_decode_key(k) for k in key)
    return key


@op
def cast(x, dtype):
    return jnp.asarray(x).astype(dtype)


@op
def unstack(x, num=None, axis=0):
    return [jnp.squeeze(t, axis) for t in jnp.split(x, x.shape[axis], axis=axis)]


@op
def one_hot(x, num_classes, axis=-1, dtype="float32"):
    return jax.nn.one_hot(x, num_classes, axis=axis, dtype=dtype)


@op
def norm(x, ord=None, axis=None, keepdims=False):
    return jnp.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims)


@op
def top_k(x, k, sorted=True):
    return list(jax.lax.top_k(x, k))


@op
def slice(x, start_indices, shape):
    return jax.lax.dynamic_slice(x, start_indices, shape)


@op
def shape_op(x):
    return jnp.asarray(x.shape)


# -- constructors: never symbolic -------------------------------------------------------------------
def zeros(shape, dtype="float32"):
    return jnp.zeros(tuple(shape), dtype)


def ones(shape, dtype="float32"):
    return jnp.ones(tuple(shape), dtype)


def full(shape, fill_value, dtype=None):
    return jnp.full(tuple(shape), fill_value, dtype)


def arange(start, stop=None, step=1, dtype=None):
    return jnp.arange(start, stop, step, dtype=dtype)


def convert_to_tensor(x, dtype=None, sparse=None):
    return jnp.asarray(_value(x), dtype=dtype)


def convert_to_numpy(x):
    return np.asarray(_value(x))


def shape(x):
    """The shape of a tensor as a tuple (None for unknown dimensions of a symbolic tensor)."""
    return tuple(x.shape)


def is_tensor(x):
    return isinstance(x, jax.Array)


__all__ = sorted(set(_ELEMENTWISE) | {"getitem", "cast", "unstack", "one_hot", "norm", "top_k", "slice", "zeros",
                                       "ones", "full", "arange", "convert_to_tensor", "convert_to_numpy", "shape",
                                       "is_tensor", "OPS", "op"})
