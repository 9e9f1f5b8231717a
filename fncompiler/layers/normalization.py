"""Normalization layers: BatchNormalization, LayerNormalization, GroupNormalization, UnitNormalization,
RMSNormalization.

Weights, names and order follow Keras 3 (BatchNormalization: gamma, beta, moving_mean, moving_variance;
Layer/GroupNormalization: gamma, beta). Statistics are computed in float32 even for float16/bfloat16 inputs.
"""
import jax
import jax.numpy as jnp

from .. import constraints, initializers, regularizers
from .input_spec import InputSpec
from .layer import Layer, batch_independent_unless_training

_KERAS_EPSILON = 1e-7  # keras.config.epsilon(), used by the masked moments


def _ser(module, obj):
    return None if obj is None else module.serialize(obj)


def _upcast(x):
    """Half-precision inputs are normalized in float32 (as Keras does)."""
    if x.dtype in (jnp.float16, jnp.bfloat16):
        return x.astype(jnp.float32)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        return x.astype(jnp.float32)
    return x


def _normalize_axis(axis, ndim, who):
    if not -ndim <= axis < ndim:
        raise ValueError(f"{who}: axis {axis} is out of bounds for an input of rank {ndim}.")
    return axis % ndim


def _sorted_axes(layer, ndim):
    """`layer.axis` (an int or a list) as sorted non-negative axes of an input of rank `ndim`."""
    who = f"Layer {layer.name!r} ({type(layer).__name__})"
    axes = layer.axis if isinstance(layer.axis, list) else [layer.axis]
    return sorted(_normalize_axis(a, ndim, who) for a in axes)


def _prepare(layer, inputs):
    """(upcast input, its normalized axes, the shape that broadcasts a per-axes weight against it)."""
    x = _upcast(inputs)
    axes = layer._axes(x.ndim)
    bshape = [1] * x.ndim
    for a in axes:
        bshape[a] = x.shape[a]
    return x, axes, bshape


class BatchNormalization(Layer):
    """Normalizes with batch statistics in training (updating the moving statistics with
    `moving = moving * momentum + batch * (1 - momentum)`), with the moving statistics in inference."""
    batch_independent = True
    random_in_training = False
    keep_float32 = True

    is_batch_independent = batch_independent_unless_training     # batch statistics mix the samples

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 synchronized=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            if len(axis) != 1:
                raise ValueError(f"BatchNormalization: `axis` must be a single int; received axis={axis!r}.")
            axis = axis[0]
        self.axis = int(axis)
        self.synchronized = bool(synchronized)  # one device: nothing to synchronize
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = center
        self.scale = scale
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.supports_masking = True
        self.gamma = None
        self.beta = None

    def build(self, input_shape):
        who = f"Layer {self.name!r} (BatchNormalization)"
        ndim = len(input_shape)
        axis = _normalize_axis(self.axis, ndim, who)
        dim = input_shape[axis]
        if dim is None:
            raise ValueError(f"{who}: axis {self.axis} of the input must have a known size; received input shape "
                             f"{tuple(input_shape)}.")
        shape = (dim,)
        if self.scale:
            self.gamma = self.add_weight(shape=shape, name="gamma", initializer=self.gamma_initializer,
                                         regularizer=self.gamma_regularizer, constraint=self.gamma_constraint,
                                         trainable=True)
        if self.center:
            self.beta = self.add_weight(shape=shape, name="beta", initializer=self.beta_initializer,
                                        regularizer=self.beta_regularizer, constraint=self.beta_constraint,
                                        trainable=True)
        self.moving_mean = self.add_weight(shape=shape, name="moving_mean", initializer=self.moving_mean_initializer,
                                           trainable=False)
        self.moving_variance = self.add_weight(shape=shape, name="moving_variance",
                                               initializer=self.moving_variance_initializer, trainable=False)
        self.input_spec = InputSpec(ndim=ndim, axes={self.axis: dim})
        self._axis = axis
        self._reduction_axes = tuple(i for i in range(ndim) if i != axis)

    def _moments(self, x, mask):
        if mask is None:
            mean = jnp.mean(x, axis=self._reduction_axes)
            variance = jnp.mean(jnp.square(x - jnp.expand_dims(mean, self._reduction_axes)), axis=self._reduction_axes)
            return mean, variance
        w = jnp.broadcast_to(jnp.expand_dims(mask.astype(x.dtype), -1), x.shape)
        count = jnp.sum(w, axis=self._reduction_axes, keepdims=True) + _KERAS_EPSILON
        mean = jnp.sum(w * x, axis=self._reduction_axes, keepdims=True) / count
        variance = jnp.sum(w * jnp.square(w * x - mean), axis=self._reduction_axes, keepdims=True) / count
        dim = x.shape[self._axis]
        return mean.reshape(dim), variance.reshape(dim)

    def call(self, inputs, training=None, mask=None):
        if mask is not None and mask.ndim != inputs.ndim - 1:
            raise ValueError(f"Layer {self.name!r} (BatchNormalization): the mask provided should be one dimension "
                             f"less than the inputs. Received: mask.shape={mask.shape}, inputs.shape={inputs.shape}")
        x = _upcast(inputs)
        moving_mean = self.moving_mean.value.astype(x.dtype)
        moving_variance = self.moving_variance.value.astype(x.dtype)
        if training and self.trainable:
            mean, variance = self._moments(x, mask)
            self.moving_mean.assign(moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(moving_variance * self.momentum + variance * (1.0 - self.momentum))
        else:
            mean, variance = moving_mean, moving_variance
        shape = [1] * x.ndim
        shape[self._axis] = x.shape[self._axis]
        inv = jax.lax.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            inv = inv * self.gamma.value.astype(x.dtype)
        res = -mean * inv
        if self.beta is not None:
            res = res + self.beta.value.astype(x.dtype)
        out = x * inv.reshape(shape) + res.reshape(shape)
        return out.astype(self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
                "moving_variance_initializer": initializers.serialize(self.moving_variance_initializer),
                "beta_regularizer": _ser(regularizers, self.beta_regularizer),
                "gamma_regularizer": _ser(regularizers, self.gamma_regularizer),
                "beta_constraint": _ser(constraints, self.beta_constraint),
                "gamma_constraint": _ser(constraints, self.gamma_constraint),
                "synchronized": self.synchronized}


class LayerNormalization(Layer):
    """Normalizes each sample over `axis` (an int or a list): `(x - mean) / sqrt(var + eps) * gamma + beta`.
    With `rms_scaling=True`: `x / sqrt(mean(x**2) + eps) * gamma` and no beta."""
    batch_independent = True
    random_in_training = False
    keep_float32 = True

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, rms_scaling=False, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            self.axis = [int(a) for a in axis]
        elif isinstance(axis, int) and not isinstance(axis, bool):
            self.axis = axis
        else:
            raise TypeError(f"Expected an int or a list/tuple of ints for the argument 'axis', but received: {axis!r}")
        self.epsilon = float(epsilon)
        self.center = center
        self.scale = scale
        self.rms_scaling = rms_scaling
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.supports_masking = True
        self.gamma = None
        self.beta = None

    def _axes(self, ndim):
        return _sorted_axes(self, ndim)

    def build(self, input_shape):
        axes = self._axes(len(input_shape))
        shape = tuple(input_shape[a] for a in axes)
        if any(d is None for d in shape):
            raise ValueError(f"Layer {self.name!r} (LayerNormalization): the normalized axes {self.axis} must have "
                             f"known sizes; received input shape {tuple(input_shape)}.")
        if self.scale or self.rms_scaling:
            self.gamma = self.add_weight(shape=shape, name="gamma", initializer=self.gamma_initializer,
                                         regularizer=self.gamma_regularizer, constraint=self.gamma_constraint)
        if self.center and not self.rms_scaling:
            self.beta = self.add_weight(shape=shape, name="beta", initializer=self.beta_initializer,
                                        regularizer=self.beta_regularizer, constraint=self.beta_constraint)

    def call(self, inputs):
        x, axes, bshape = _prepare(self, inputs)
        gamma = None if self.gamma is None else self.gamma.value.astype(x.dtype).reshape(bshape)
        if self.rms_scaling:
            inv = jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=tuple(axes), keepdims=True) + self.epsilon)
            out = x * inv * gamma
        else:
            mean = jnp.mean(x, axis=tuple(axes), keepdims=True)
            variance = jnp.mean(jnp.square(x - mean), axis=tuple(axes), keepdims=True)
            inv = jax.lax.rsqrt(variance + self.epsilon)
            if gamma is not None:
                inv = inv * gamma
            res = -mean * inv
            if self.beta is not None:
                res = res + self.beta.value.astype(x.dtype).reshape(bshape)
            out = x * inv + res
        return out.astype(self.compute_dtype)

    def compute_output_shape(self, input_shape):
        self._axes(len(input_shape))
        return input_shape

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon, "center": self.center,
                "scale": self.scale, "rms_scaling": self.rms_scaling,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "beta_regularizer": _ser(regularizers, self.beta_regularizer),
                "gamma_regularizer": _ser(regularizers, self.gamma_regularizer),
                "beta_constraint": _ser(constraints, self.beta_constraint),
                "gamma_constraint": _ser(constraints, self.gamma_constraint)}


class GroupNormalization(Layer):
    """Splits the channels (`axis`) into `groups` and normalizes each group of each sample over the group's
    channels and all other non-batch axes; per-channel gamma and beta. `groups=-1` means one per channel."""
    batch_independent = True
    random_in_training = False
    keep_float32 = True

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.groups = int(groups)
        self.axis = int(axis)
        self.epsilon = float(epsilon)
        self.center = center
        self.scale = scale
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.gamma = None
        self.beta = None

    def build(self, input_shape):
        who = f"Layer {self.name!r} (GroupNormalization)"
        axis = _normalize_axis(self.axis, len(input_shape), who)
        dim = input_shape[axis]
        if dim is None:
            raise ValueError(f"{who}: axis {self.axis} of input tensor should have a defined dimension but the layer "
                             f"received an input with shape {tuple(input_shape)}.")
        if self.groups == -1:
            self.groups = dim
        if dim < self.groups:
            raise ValueError(f"{who}: number of groups ({self.groups}) cannot be more than the number of channels "
                             f"({dim}).")
        if dim % self.groups != 0:
            raise ValueError(f"{who}: number of groups ({self.groups}) must be a multiple of the number of channels "
                             f"({dim}).")
        self.input_spec = InputSpec(ndim=len(input_shape), axes={self.axis: dim})
        if self.scale:
            self.gamma = self.add_weight(shape=(dim,), name="gamma", initializer=self.gamma_initializer,
                                         regularizer=self.gamma_regularizer, constraint=self.gamma_constraint)
        if self.center:
            self.beta = self.add_weight(shape=(dim,), name="beta", initializer=self.beta_initializer,
                                        regularizer=self.beta_regularizer, constraint=self.beta_constraint)

    def call(self, inputs):
        x = _upcast(inputs)
        axis = self.axis % x.ndim
        dim = x.shape[axis]
        gshape = x.shape[:axis] + (self.groups, dim // self.groups) + x.shape[axis + 1:]
        xg = x.reshape(gshape)
        red = tuple(i for i in range(1, xg.ndim) if i != axis)
        mean = jnp.mean(xg, axis=red, keepdims=True)
        variance = jnp.mean(jnp.square(xg - mean), axis=red, keepdims=True)
        bshape = [1] * xg.ndim
        bshape[axis], bshape[axis + 1] = self.groups, dim // self.groups
        inv = jax.lax.rsqrt(variance + self.epsilon)
        if self.gamma is not None:
            inv = inv * self.gamma.value.astype(x.dtype).reshape(bshape)
        res = -mean * inv
        if self.beta is not None:
            res = res + self.beta.value.astype(x.dtype).reshape(bshape)
        out = (xg * inv + res).reshape(x.shape)
        return out.astype(self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "beta_regularizer": _ser(regularizers, self.beta_regularizer),
                "gamma_regularizer": _ser(regularizers, self.gamma_regularizer),
                "beta_constraint": _ser(constraints, self.beta_constraint),
                "gamma_constraint": _ser(constraints, self.gamma_constraint)}


class UnitNormalization(Layer):
    """Scales each sample to unit L2 norm along `axis`: `x * min(1/||x||, 1e12)`."""
    batch_independent = True
    random_in_training = False
    keep_float32 = True

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            self.axis = [int(a) for a in axis]
        elif isinstance(axis, int) and not isinstance(axis, bool):
            self.axis = axis
        else:
            raise TypeError(f"Invalid value for `axis` argument: expected an int or a list/tuple of ints. "
                            f"Received: axis={axis!r}")
        self.supports_masking = True

    def call(self, inputs):
        x = _upcast(inputs)
        axis = tuple(self.axis) if isinstance(self.axis, list) else self.axis
        inv = jnp.minimum(jax.lax.rsqrt(jnp.sum(jnp.square(x), axis=axis, keepdims=True)), 1e12)
        return (x * inv).astype(self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class RMSNormalization(Layer):
    """Root-mean-square normalization (Zhang & Sennrich 2019): `x / sqrt(mean(x**2, axis) + epsilon) * scale`,
    computed in at least float32; one weight `scale` (ones) with the sizes of the normalized axes."""
    batch_independent = True
    random_in_training = False
    keep_float32 = True

    def __init__(self, axis=-1, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            axis = [int(a) for a in axis]
        elif not isinstance(axis, int) or isinstance(axis, bool):
            raise TypeError(f"RMSNormalization: `axis` must be an int or a list of ints; received axis={axis!r}.")
        self.axis = axis
        self.epsilon = float(epsilon)
        self.supports_masking = True

    def _axes(self, ndim):
        return _sorted_axes(self, ndim)

    def build(self, input_shape):
        shape = tuple(input_shape[a] for a in self._axes(len(input_shape)))
        if any(d is None for d in shape):
            raise ValueError(f"Layer {self.name!r} (RMSNormalization): the normalized axes {self.axis} must have "
                             f"known sizes; received input shape {tuple(input_shape)}.")
        self.scale = self.add_weight(shape=shape, name="scale", initializer="ones")

    def call(self, inputs):
        x, axes, bshape = _prepare(self, inputs)
        inv = jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=tuple(axes), keepdims=True) + self.epsilon)
        out = x * inv * self.scale.value.astype(x.dtype).reshape(bshape)
        return out.astype(self.compute_dtype)

    def compute_output_shape(self, input_shape):
        self._axes(len(input_shape))
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}
