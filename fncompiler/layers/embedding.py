"""Embedding: integer indices -> dense vectors, with Keras 3's weight layout and mask_zero."""
import warnings

import jax.numpy as jnp
import numpy as np

from .. import constraints, initializers, regularizers
from .layer import Layer


def _ser(module, obj):
    return None if obj is None else module.serialize(obj)


class Embedding(Layer):
    """Looks up rows of `embeddings` (input_dim, output_dim). `mask_zero=True` makes index 0 padding: the layer
    then emits the mask `inputs != 0` for the layers downstream (RNNs skip those steps)."""
    batch_independent = True
    random_in_training = False
    index_input = True

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", embeddings_regularizer=None,
                 embeddings_constraint=None, mask_zero=False, weights=None, lora_rank=None, **kwargs):
        input_length = kwargs.pop("input_length", None)
        if input_length is not None:
            warnings.warn("Argument `input_length` is deprecated. Just remove it.", stacklevel=2)
        super().__init__(**kwargs)
        for arg, v in (("input_dim", input_dim), ("output_dim", output_dim)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"Embedding: `{arg}` must be a positive int; received {arg}={v!r}.")
        if lora_rank:
            raise ValueError("Embedding: lora_rank is not supported by fncompiler.")
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        if embeddings_initializer == "uniform":  # Keras's alias of RandomUniform(-0.05, 0.05)
            embeddings_initializer = "random_uniform"
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero
        self.lora_rank = None
        self._initial_weights = weights

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(shape=(self.input_dim, self.output_dim),
                                          initializer=self.embeddings_initializer, name="embeddings",
                                          regularizer=self.embeddings_regularizer,
                                          constraint=self.embeddings_constraint, trainable=True)
        self.built = True
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def call(self, inputs):
        if not jnp.issubdtype(inputs.dtype, jnp.integer):
            inputs = inputs.astype("int32")
        return jnp.take(self.embeddings.value, inputs, axis=0).astype(self.compute_dtype)

    def compute_mask(self, inputs, previous_mask=None):
        if not self.mask_zero:
            return None
        return jnp.not_equal(inputs, 0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                "embeddings_regularizer": _ser(regularizers, self.embeddings_regularizer),
                "embeddings_constraint": _ser(constraints, self.embeddings_constraint),
                "mask_zero": self.mask_zero}
