"""Host layers: preprocessing that runs in NumPy on the host, before the jitted step (strings cannot enter JAX).

A host layer's `call` takes and returns NumPy arrays. Called on data it runs at once; called on symbolic tensors
it records a node like any layer. A functional model whose host layers read only model inputs (or other host
layers) splits there (`fncompiler.models.host_prefix`): fit / evaluate / predict / model(x) run that prefix in
NumPy on each batch and feed its integer/float outputs to the compiled step. A host layer that reads the output
of a device layer cannot run inside a compiled step and is refused with the reason.
"""
import jax
import numpy as np

from ...symbolic import SymbolicTensor
from ..layer import Layer


def to_numpy(x, layer):
    if isinstance(x, jax.core.Tracer):
        raise TypeError(f"Layer {layer.name!r} ({type(layer).__name__}) runs on the host (NumPy, string data) and "
                        "cannot be called inside a jitted/compiled function. Put it first in the model, fed by "
                        "model inputs (the model then runs it before the compiled step), or apply it to the data "
                        "beforehand (x = layer(x)).")
    if isinstance(x, (list, tuple)) or isinstance(x, (str, bytes)):
        x = np.asarray(x)
    arr = np.asarray(x)
    if arr.dtype.kind == "S":
        arr = np.char.decode(arr, "utf-8")
    elif arr.dtype.kind == "O":
        arr = np.vectorize(lambda v: v.decode("utf-8") if isinstance(v, bytes) else v, otypes=[object])(arr)
        if all(isinstance(v, str) for v in arr.ravel()):
            arr = arr.astype(str)
    return arr


class HostLayer(Layer):
    """Base of the preprocessing layers that run in NumPy on the host (see the module docstring)."""
    batch_independent = True
    random_in_training = False

    runs_on_host = True

    def _concrete_call(self, args, kwargs):
        x = to_numpy(args[0], self)
        self._maybe_build((x,), {})
        return self.call(x, **{k: v for k, v in kwargs.items() if k != "training"})

    def output_dtype(self, input_dtype):
        raise NotImplementedError

    def compute_output_spec(self, inputs, *args, **kwargs):
        return SymbolicTensor(self.compute_output_shape(tuple(inputs.shape)), self.output_dtype(inputs.dtype))
