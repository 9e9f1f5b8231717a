"""`OpLayer`: one `fncompiler.ops` function applied to symbolic tensors, recorded as a graph node.

Its config names the op; loading resolves that name only in fncompiler's own op table (a closed set).
Whether padding the batch is safe is answered per op and axis (`is_batch_independent`).
"""
from .. import naming
from ..layers.layer import Layer

# Keras 3 names an op node after its operation class (`Absolute`, `GetItem`): the op's own name except these.
_KERAS_NAMES = {"abs": "absolute", "conj": "conjugate", "getitem": "get_item"}


def default_name(op):
    """The next free Keras-style name for a node of `op` ("add", "add_1", ... shared with layer names)."""
    return naming.uniquify(_KERAS_NAMES.get(op, op))


# Ops that act on each element alone (broadcasting keeps the batch axis aligned).
ELEMENTWISE = frozenset({
    "add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "power", "mod", "less", "less_equal",
    "greater", "greater_equal", "equal", "not_equal", "maximum", "minimum", "logical_and", "logical_or",
    "logical_not", "logical_xor", "negative", "abs", "absolute", "exp", "expm1", "log", "log1p", "log2", "log10",
    "sqrt", "square", "sign", "floor", "ceil", "round", "sin", "cos", "tan", "arctan", "tanh", "sinh", "cosh",
    "reciprocal", "clip", "where", "isnan", "isinf", "isfinite", "erf", "sigmoid", "relu", "relu6", "softplus",
    "silu", "gelu", "elu", "selu", "leaky_relu", "log_sigmoid", "nan_to_num", "real", "imag", "conj",
    "zeros_like", "ones_like", "full_like", "cast", "one_hot"})
# Ops along one `axis` (name -> (position of axis among the arguments, default axis)): per sample unless the
# axis is the batch axis 0, or None (all axes).
ALONG_AXIS = {
    "sum": (1, None), "mean": (1, None), "max": (1, None), "min": (1, None), "prod": (1, None),
    "std": (1, None), "var": (1, None), "all": (1, None), "any": (1, None), "argmax": (1, None),
    "argmin": (1, None), "argsort": (1, -1), "sort": (1, -1), "cumsum": (1, None), "cumprod": (1, None),
    "logsumexp": (1, None), "softmax": (1, -1), "log_softmax": (1, -1), "count_nonzero": (1, None),
    "average": (1, None), "median": (1, None), "norm": (2, None), "concatenate": (1, 0), "stack": (1, 0),
    "expand_dims": (1, None), "squeeze": (1, None), "flip": (1, None)}
# axis of an output rank one larger than the input (a new axis inserted)
_NEW_AXIS = frozenset({"expand_dims", "stack"})


class OpLayer(Layer):
    batch_independent = False   # answered per op by is_batch_independent
    random_in_training = False  # every op in the table is deterministic

    def __init__(self, op, **kwargs):
        from . import numpy_ops
        if op not in numpy_ops.OPS:
            raise ValueError(f"Unknown op {op!r}: not one of fncompiler.ops' functions.")
        if kwargs.get("name") is None:
            kwargs["name"] = default_name(op)
        kwargs["autocast"] = False
        super().__init__(**kwargs)
        self.op = op
        self._fn = numpy_ops.OPS[op]
        self.built = True

    def is_batch_independent(self, arguments=((), {}), input_ranks=(), training=False):
        """Element-wise ops are; ops along an axis are unless it is axis 0 or None (all axes); every other op
        (reshape, transpose, matmul, indexing, shape, ...) may move rows across the batch and is not."""
        if self.op in ELEMENTWISE:
            return True
        if self.op not in ALONG_AXIS:
            return False
        args, kwargs = arguments
        position, default = ALONG_AXIS[self.op]
        axis = kwargs["axis"] if "axis" in kwargs else (args[position] if len(args) > position else default)
        if axis is None or not input_ranks:
            return False
        rank = input_ranks[0] + (1 if self.op in _NEW_AXIS else 0)
        axes = axis if isinstance(axis, (tuple, list)) else (axis,)
        return all(isinstance(a, int) and a % rank != 0 for a in axes)

    def call(self, *args, **kwargs):
        return self._fn(*args, **kwargs)

    def get_config(self):
        return {"name": self.name, "op": self.op}
