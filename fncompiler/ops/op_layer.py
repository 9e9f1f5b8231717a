"""`OpLayer`: one `fncompiler.ops` function applied to symbolic tensors, recorded as a graph node.

Its config names the op; loading resolves that name only in fncompiler's own op table (a closed set).
"""
from ..layers.layer import Layer


class OpLayer(Layer):
    def __init__(self, op, **kwargs):
        from . import numpy_ops
        if op not in numpy_ops.OPS:
            raise ValueError(f"Unknown op {op!r}: not one of fncompiler.ops' functions.")
        kwargs.setdefault("name", None)
        kwargs["autocast"] = False
        super().__init__(**kwargs)
        self.op = op
        self._fn = numpy_ops.OPS[op]
        self.built = True

    def call(self, *args, **kwargs):
        return self._fn(*args, **kwargs)

    def get_config(self):
        return {"name": self.name, "op": self.op}
