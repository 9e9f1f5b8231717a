"""Masking: marks the time steps whose features all equal `mask_value` as padding for the layers downstream."""
import jax.numpy as jnp

from .layer import Layer


class Masking(Layer):
    """A step (a position along axis -2 of (batch, steps, features)) is masked when every feature equals
    `mask_value`; the layer zeroes those steps and emits the mask `any(x != mask_value, axis=-1)` (batch, steps),
    which the interpreter hands to the layers after it (RNNs skip masked steps, attention ignores them)."""
    batch_independent = True
    random_in_training = False

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(mask_value, bool) or not isinstance(mask_value, (int, float)):
            raise TypeError(f"Masking: `mask_value` must be a number; received mask_value={mask_value!r}.")
        self.mask_value = mask_value
        self.supports_masking = True

    def _keep(self, inputs, keepdims):
        return jnp.any(jnp.not_equal(inputs, jnp.asarray(self.mask_value, inputs.dtype)), axis=-1,
                       keepdims=keepdims)

    def call(self, inputs):
        return jnp.where(self._keep(inputs, True), inputs, jnp.zeros((), inputs.dtype))

    def compute_mask(self, inputs, previous_mask=None):
        return self._keep(inputs, False)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}
