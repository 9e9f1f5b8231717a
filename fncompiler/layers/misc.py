"""Rescaling, GaussianNoise, GaussianDropout, AlphaDropout, SpatialDropout1D/2D and ActivityRegularization (Keras 3
math)."""
import math

import jax
import jax.numpy as jnp
import numpy as np

from .. import regularizers
from .. import scope as scope_lib
from ..utils import random as random_utils
from .input_spec import InputSpec
from .layer import Layer, batch_independent_unless_training


def _rng(seed):
    """The training step's key folded with the layer's seed, or a key from the seed alone outside a step."""
    scope = scope_lib.current()
    key = scope.next_rng() if scope is not None else None
    if key is None:
        return jax.random.key(seed % (2 ** 31))
    return jax.random.fold_in(key, seed % (2 ** 31))


def _to_config_value(v):
    if isinstance(v, (np.ndarray, jnp.ndarray)):
        return np.asarray(v).tolist()
    if isinstance(v, tuple):
        return list(v)
    return v


class Rescaling(Layer):
    """`inputs * scale + offset`, computed in the layer's compute dtype (integer images become floats)."""
    batch_independent = True
    random_in_training = False

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale
        self.offset = offset
        self.supports_masking = True

    def call(self, inputs):
        dtype = self.compute_dtype
        scale = jnp.asarray(self.scale, dtype)
        offset = jnp.asarray(self.offset, dtype)
        return inputs.astype(dtype) * scale + offset

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "scale": _to_config_value(self.scale),
                "offset": _to_config_value(self.offset)}


class _RandomLayer(Layer):
    batch_independent = True
    random_in_training = True
    identity_in = ("eval", "predict", "export")
    is_batch_independent = batch_independent_unless_training     # its noise is drawn for the batch's shape

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed if seed is not None else random_utils.next_seed()
        self.supports_masking = True

    def compute_output_shape(self, input_shape):
        return input_shape


class GaussianNoise(_RandomLayer):
    """Adds zero-centred Gaussian noise of standard deviation `stddev` in training; identity otherwise."""

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if not 0 <= stddev <= 1:
            raise ValueError(f"Invalid value received for argument `stddev`. Expected a float value between 0 and "
                             f"1. Received: stddev={stddev}")
        self.stddev = stddev

    def call(self, inputs, training=False):
        if training and self.stddev > 0:
            noise = jax.random.normal(_rng(self.seed), inputs.shape, inputs.dtype) * self.stddev
            return inputs + noise
        return inputs

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(_RandomLayer):
    """Multiplies inputs by Gaussian noise of mean 1 and stddev sqrt(rate / (1 - rate)) in training."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if not 0 <= rate <= 1:
            raise ValueError(f"Invalid value received for argument `rate`. Expected a float value between 0 and 1. "
                             f"Received: rate={rate}")
        self.rate = rate

    def call(self, inputs, training=False):
        if training and 0 < self.rate < 1:
            stddev = math.sqrt(self.rate / (1.0 - self.rate))
            noise = 1.0 + stddev * jax.random.normal(_rng(self.seed), inputs.shape, inputs.dtype)
            return inputs * noise
        return inputs

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


# SELU's constants (Klambauer et al. 2017): the value a dropped unit takes is SELU's negative saturation.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


class AlphaDropout(_RandomLayer):
    """Dropout for SELU networks, in training only: a dropped unit is set to SELU's negative saturation
    `-alpha * scale`, then `a * x + b` restores the mean and variance the inputs had (Keras 3's formula).
    `noise_shape` (None entries take the input's size) shares one draw along its size-1 axes. `rate=1` gives
    zeros (Keras divides by zero)."""

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if not 0 <= rate <= 1:
            raise ValueError(f"Invalid value received for argument `rate`. Expected a float value between 0 and 1. "
                             f"Received: rate={rate}")
        self.rate = rate
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)

    def call(self, inputs, training=False):
        if not training or self.rate <= 0:
            return inputs
        if self.rate >= 1:   # Keras divides by zero here; everything is dropped
            return jnp.zeros_like(inputs)
        shape = inputs.shape if self.noise_shape is None else tuple(
            inputs.shape[i] if d is None else d for i, d in enumerate(self.noise_shape))
        kept = (jax.random.uniform(_rng(self.seed), shape) >= self.rate).astype(inputs.dtype)
        alpha_p = -_SELU_ALPHA * _SELU_SCALE
        a = ((1 - self.rate) * (1 + self.rate * alpha_p ** 2)) ** -0.5
        b = -a * alpha_p * self.rate
        return a * (inputs * kept + alpha_p * (1 - kept)) + b

    def get_config(self):
        noise_shape = None if self.noise_shape is None else list(self.noise_shape)
        return {**super().get_config(), "rate": self.rate, "seed": self.seed, "noise_shape": noise_shape}


class _SpatialDropout(_RandomLayer):
    _ndim = None

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if not 0 <= rate <= 1:
            raise ValueError(f"Invalid value received for argument `rate`. Expected a float value between 0 and 1. "
                             f"Received: rate={rate}")
        self.rate = rate
        self.input_spec = InputSpec(ndim=self._ndim)

    def _noise_shape(self, shape):
        raise NotImplementedError

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        if self.rate == 1:
            return jnp.zeros_like(inputs)
        keep = jax.random.bernoulli(_rng(self.seed), 1.0 - self.rate, self._noise_shape(inputs.shape))
        return jnp.where(keep, inputs / (1.0 - self.rate), jnp.zeros((), inputs.dtype))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class SpatialDropout1D(_SpatialDropout):
    """Dropout of whole feature channels of a (batch, steps, channels) input: one draw per sample and channel."""

    _ndim = 3

    def _noise_shape(self, shape):
        return (shape[0], 1, shape[2])


class SpatialDropout2D(_SpatialDropout):
    """Dropout of whole feature maps of a 4D input (channels_last by default, or channels_first)."""

    _ndim = 4

    def __init__(self, rate, data_format=None, seed=None, **kwargs):
        super().__init__(rate, seed=seed, **kwargs)
        data_format = data_format or "channels_last"
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(f"`data_format` must be 'channels_last' or 'channels_first'; received {data_format!r}.")
        self.data_format = data_format

    def _noise_shape(self, shape):
        if self.data_format == "channels_first":
            return (shape[0], shape[1], 1, 1)
        return (shape[0], 1, 1, shape[3])

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class ActivityRegularization(Layer):
    """Identity that adds `l1 * sum(|x|) + l2 * sum(x**2)` of its output to the training loss."""
    batch_independent = True
    random_in_training = False
    identity_in = ("predict", "export")

    def __init__(self, l1=0.0, l2=0.0, **kwargs):
        kwargs.pop("activity_regularizer", None)
        super().__init__(activity_regularizer=regularizers.L1L2(l1=l1, l2=l2), **kwargs)
        self.supports_masking = True
        self.l1 = l1
        self.l2 = l2

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.pop("activity_regularizer", None)
        return {**config, "l1": self.l1, "l2": self.l2}
