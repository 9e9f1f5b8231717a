"""`OpLayer`: one `fncompiler.ops` function applied to symbolic tensors, recorded as a graph node.

Its config names the op; loading resolves that name only in fncompiler's own op table (a closed set).
"""
from .. import naming
from ..layers.layer import Layer

# Keras 3 names an op node after its operation class (`Absolute`, `GetItem`): the op's own name except these.
_KERAS_NAMES = {"abs": "absolute", "conj": "conjugate", "getitem": "get_item"}


def default_name(op):
    """The next free Keras-style name for a node of `op` ("add", "add_1", ... shared with layer names)."""
    return naming.uniquify(_KERAS_NAMES.get(op, op))


class OpLayer(Layer):
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

    def call(self, *args, **kwargs):
        return self._fn(*args, **kwargs)

    def get_config(self):
        return {"name": self.name, "op": self.op}
