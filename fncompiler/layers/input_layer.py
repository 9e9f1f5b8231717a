"""`InputLayer` and `Input`: the entry points of a functional graph."""
from .. import dtypes
from ..symbolic import Node, SymbolicTensor
from .layer import Layer


class InputLayer(Layer):
    _is_input_layer = True
    batch_independent = True
    random_in_training = False
    keep_float32 = True

    def __init__(self, shape=None, batch_size=None, dtype=None, sparse=False, batch_shape=None, name=None,
                 input_tensor=None, optional=False, **kwargs):
        # Keras 2 configs name these differently
        batch_shape = kwargs.pop("batch_input_shape", batch_shape)
        kwargs.pop("ragged", None)
        if "input_shape" in kwargs:
            shape = kwargs.pop("input_shape")
        super().__init__(name=name, **kwargs)
        if shape is not None and batch_shape is not None:
            raise ValueError("InputLayer: give either `shape` or `batch_shape`, not both.")
        if batch_shape is None:
            if shape is None:
                raise ValueError("Input needs a `shape` (without the batch dimension), e.g. Input(shape=(784,)), "
                                 "or a `batch_shape`.")
            if isinstance(shape, int):
                shape = (shape,)
            try:
                batch_shape = (batch_size,) + tuple(shape)
            except TypeError as exc:
                raise TypeError(f"Input shape must be a tuple of ints or None; received {shape!r}.") from exc
        for d in batch_shape:
            if d is not None and (not isinstance(d, int) or d < 0):
                raise ValueError(f"Input shape dimensions must be non-negative ints or None; received {batch_shape}.")
        self._batch_shape = tuple(batch_shape)
        self._input_dtype = dtypes.standardize(dtype)
        self.sparse = sparse
        self.optional = optional
        self.built = True
        if input_tensor is None:
            input_tensor = SymbolicTensor(self._batch_shape, self._input_dtype, name=self.name)
        Node(self, (), {}, input_tensor)

    @property
    def batch_shape(self):
        return self._batch_shape

    @property
    def dtype(self):
        return self._input_dtype

    def call(self, inputs):
        return inputs

    def get_config(self):
        return {"batch_shape": list(self._batch_shape), "dtype": self._input_dtype, "sparse": self.sparse,
                "name": self.name}


def Input(shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, name=None, tensor=None,
          optional=False):
    """A symbolic input of the given shape (without batch dimension) and dtype (default float32)."""
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, sparse=bool(sparse), batch_shape=batch_shape,
                       name=name, input_tensor=tensor, optional=optional)
    return layer.output
