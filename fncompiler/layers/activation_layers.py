"""Activation layers: ReLU, LeakyReLU, PReLU, ELU, Softmax (with mask), as in Keras 3."""
import jax
import jax.numpy as jnp

from .. import constraints, initializers, regularizers
from .layer import Layer


def _ser(module, obj):
    return None if obj is None else module.serialize(obj)


def _large_negative(dtype):
    """Keras's additive mask value: -3e4 for float16, -1e9 otherwise."""
    return -3e4 if jnp.dtype(dtype) == jnp.float16 else -1e9


def keras_relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Keras 3's relu: x above `threshold` (else 0), clipped to [0, max_value], plus
    `negative_slope * (x - threshold)` below the threshold."""
    if negative_slope != 0.0 and max_value is None and threshold == 0:
        return jax.nn.leaky_relu(x, negative_slope)
    if negative_slope != 0.0:
        negative_part = jax.nn.relu(threshold - x) if threshold != 0 else jax.nn.relu(-x)
    if threshold != 0:
        y = x * (x > jnp.asarray(threshold, x.dtype)).astype(x.dtype)
    else:
        y = jax.nn.relu(x)
    if max_value is not None:
        y = jnp.clip(y, jnp.zeros((), x.dtype), jnp.asarray(max_value, x.dtype))
    if negative_slope != 0.0:
        y = y - negative_slope * negative_part
    return y


class _Elementwise(Layer):
    batch_independent = True
    random_in_training = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_output_shape(self, input_shape):
        return input_shape


class ReLU(_Elementwise):
    """`max(x, 0)` with Keras's optional `max_value`, `negative_slope` and `threshold`."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if max_value is not None and max_value < 0.0:
            raise ValueError(f"max_value of a ReLU layer cannot be a negative value. Received: {max_value}")
        if negative_slope is None or negative_slope < 0.0:
            raise ValueError(f"negative_slope of a ReLU layer cannot be a negative value. Received: {negative_slope}")
        if threshold is None or threshold < 0.0:
            raise ValueError(f"threshold of a ReLU layer cannot be a negative value. Received: {threshold}")
        self.max_value = max_value
        self.negative_slope = negative_slope
        self.threshold = threshold

    def call(self, inputs):
        return keras_relu(inputs, self.negative_slope, self.max_value, self.threshold)

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value, "negative_slope": self.negative_slope,
                "threshold": self.threshold}


class LeakyReLU(_Elementwise):
    """`x` for x >= 0, `negative_slope * x` otherwise (Keras 3 default slope 0.3; `alpha` is the legacy name)."""

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        if negative_slope is None or negative_slope < 0:
            raise ValueError("The negative_slope value of a Leaky ReLU layer cannot be None or negative value. "
                             f"Expected a float. Received: negative_slope={negative_slope}")
        self.negative_slope = negative_slope

    def call(self, inputs):
        return jax.nn.leaky_relu(inputs, self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(_Elementwise):
    """`x` for x > 0, `alpha * (exp(x) - 1)` otherwise."""

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = alpha

    def call(self, inputs):
        return jax.nn.elu(inputs, self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class PReLU(_Elementwise):
    """`relu(x) - alpha * relu(-x)` with a learned `alpha` of shape input_shape[1:] (1 along `shared_axes`)."""

    def __init__(self, alpha_initializer="Zeros", alpha_regularizer=None, alpha_constraint=None, shared_axes=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is None:
            self.shared_axes = None
        elif isinstance(shared_axes, (list, tuple)):
            self.shared_axes = list(shared_axes)
        else:
            self.shared_axes = [shared_axes]

    def build(self, input_shape):
        param_shape = list(input_shape[1:])
        if self.shared_axes is not None:
            for i in self.shared_axes:
                if not 1 <= i < len(input_shape) and not -len(param_shape) <= i < 0:
                    raise ValueError(f"Layer {self.name!r} (PReLU): shared axis {i} is out of range for input shape "
                                     f"{tuple(input_shape)}.")
                param_shape[(i - 1) if i > 0 else i] = 1
        if any(d is None for d in param_shape):
            raise ValueError(f"Layer {self.name!r} (PReLU) needs every non-batch dimension of its input to be known "
                             f"(or listed in shared_axes); received input shape {tuple(input_shape)}.")
        self.alpha = self.add_weight(shape=tuple(param_shape), name="alpha", initializer=self.alpha_initializer,
                                     regularizer=self.alpha_regularizer, constraint=self.alpha_constraint)

    def call(self, inputs):
        alpha = self.alpha.value.astype(inputs.dtype)
        return jax.nn.relu(inputs) - alpha * jax.nn.relu(-inputs)

    def get_config(self):
        return {**super().get_config(), "alpha_initializer": initializers.serialize(self.alpha_initializer),
                "alpha_regularizer": _ser(regularizers, self.alpha_regularizer),
                "alpha_constraint": _ser(constraints, self.alpha_constraint), "shared_axes": self.shared_axes}


def masked_softmax(x, mask=None, axis=-1):
    """Keras 3's Softmax layer math: masked positions get a large negative logit, then a zero output."""
    if mask is not None:
        mask = jnp.asarray(mask)
        if mask.ndim < x.ndim and tuple(mask.shape) == tuple(x.shape[:mask.ndim]):
            # A (batch, time) mask propagated from an upstream layer masks whole time steps.
            mask = mask.reshape(mask.shape + (1,) * (x.ndim - mask.ndim))
        x = x + (1.0 - mask.astype(x.dtype)) * _large_negative(x.dtype)
    if isinstance(axis, (tuple, list)):
        axis = tuple(axis)
        out = jnp.exp(x - jax.scipy.special.logsumexp(x, axis=axis, keepdims=True)) if len(axis) > 1 \
            else jax.nn.softmax(x, axis=axis[0])
    else:
        out = jax.nn.softmax(x, axis=axis)
    if mask is not None:
        out = out * mask.astype(out.dtype)
    return out


class Softmax(_Elementwise):
    """Softmax over `axis` (an int or a tuple); `mask` (broadcastable to the input) zeroes masked positions."""
    keep_float32 = True

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, inputs, mask=None):
        return masked_softmax(inputs, mask, self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
