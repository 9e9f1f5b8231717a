"""TimeDistributed: applies one layer to every time step (axis 1) of its input, with one set of weights."""
import inspect

import jax.numpy as jnp

from .layer import Layer
from . import nested_layers


def _call_params(layer):
    try:
        return inspect.signature(type(layer).call).parameters
    except (TypeError, ValueError):
        return {}


class TimeDistributed(Layer):
    """`TimeDistributed(layer)` on a (batch, time, ...) input applies `layer` to each (batch, ...) slice.

    The steps are folded into the batch (one call on (batch * time, ...)) instead of Keras's loop over
    steps, so the result is the same for every per-sample layer; a layer that mixes samples (BatchNormalization
    in training) sees the statistics of all steps together rather than one step at a time. The weights are the
    wrapped layer's. A mask (batch, time, ...) is passed to the wrapped layer folded the same way, and passes
    through unchanged."""
    # per sample (time folded into the batch) exactly when the wrapped layer is
    batch_independent = property(lambda self: getattr(self.layer, "batch_independent", False))
    random_in_training = property(lambda self: getattr(self.layer, "random_in_training", True))

    def is_batch_independent(self, arguments=((), {}), input_ranks=(), training=False):
        inner = getattr(self.layer, "is_batch_independent", None)
        return bool(inner(arguments, input_ranks, training)) if inner else False

    def __init__(self, layer, **kwargs):
        if isinstance(layer, dict):
            layer = nested_layers.deserialize_layer(layer, "TimeDistributed")
        if not isinstance(layer, Layer):
            raise ValueError("Please initialize `TimeDistributed` layer with a `keras.layers.Layer` instance. "
                             f"Received: {layer}")
        super().__init__(**kwargs)
        self.layer = layer
        self.supports_masking = True

    def _child_shape(self, input_shape):
        if not isinstance(input_shape, (tuple, list)) or len(input_shape) < 3:
            raise ValueError(f"Layer {self.name!r} (TimeDistributed) needs an input with at least 3 dimensions "
                             f"(batch, time, ...); received input shape {input_shape}.")
        return (input_shape[0],) + tuple(input_shape[2:])

    def build(self, input_shape):
        child = self._child_shape(tuple(input_shape))
        if not self.layer.built:
            self.layer.build(child)
            self.layer.built = True

    def call(self, inputs, training=None, mask=None):
        self._child_shape(tuple(inputs.shape))
        batch, steps = inputs.shape[0], inputs.shape[1]
        params = _call_params(self.layer)
        kwargs = {}
        if "training" in params:
            kwargs["training"] = training
        if mask is not None and "mask" in params:
            mask = jnp.asarray(mask)
            if mask.ndim < 2 or tuple(mask.shape[:2]) != (batch, steps):
                raise ValueError(f"Layer {self.name!r} (TimeDistributed): the mask of shape {tuple(mask.shape)} does "
                                 f"not start with the (batch, time) dimensions ({batch}, {steps}) of the input.")
            kwargs["mask"] = mask.reshape((batch * steps,) + tuple(mask.shape[2:]))
        folded = inputs.reshape((batch * steps,) + tuple(inputs.shape[2:]))
        outputs = self.layer(folded, **kwargs)
        if not hasattr(outputs, "shape"):
            raise ValueError(f"Layer {self.name!r} (TimeDistributed): the wrapped layer {self.layer.name!r} must "
                             f"return one tensor; it returned {type(outputs).__name__}.")
        return outputs.reshape((batch, steps) + tuple(outputs.shape[1:]))

    def get_config(self):
        return {**super().get_config(), "layer": nested_layers.serialize_layer(self.layer)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = nested_layers.deserialize_layer(config["layer"], "TimeDistributed")
        return cls(**config)
