"""Pooling layers: Max/Average pooling over 1/2/3 spatial axes (windowed) and their global versions.

Windowed pooling is one ``jax.lax.reduce_window``. "same" padding pads as TensorFlow / Keras do (the extra
row/column goes after); average pooling with "same" padding divides by the number of real (unpadded) inputs
in each window, as Keras 3 does.
"""
import numpy as np

import jax.numpy as jnp
from jax import lax

from .conv_utils import (check_output_positive, conv_output_length, conv_padding, spatial_axes,
                         standardize_data_format, standardize_padding, standardize_tuple)
from .input_spec import InputSpec
from .layer import Layer


def _lowest(dtype):
    dtype = jnp.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.floating):
        return np.array(-np.inf, dtype)
    if jnp.issubdtype(dtype, jnp.integer):
        return np.array(jnp.iinfo(dtype).min, dtype)
    return np.array(False, dtype)


class BasePooling(Layer):
    batch_independent = True
    random_in_training = False

    rank = None
    pool_mode = None   # "max" or "average"

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        rank = self.rank
        self.pool_size = standardize_tuple(pool_size, rank, "pool_size")
        self.strides = self.pool_size if strides is None else standardize_tuple(strides, rank, "strides")
        self.padding = standardize_padding(padding)
        self.data_format = standardize_data_format(data_format)
        self.input_spec = InputSpec(ndim=rank + 2)

    def _window(self, shape):
        axes = spatial_axes(self.rank, self.data_format)
        dims, strides, pads = [1] * len(shape), [1] * len(shape), [(0, 0)] * len(shape)
        for a, p, s in zip(axes, self.pool_size, self.strides):
            dims[a], strides[a] = p, s
            pads[a] = conv_padding(shape[a], p, s, self.padding)
        return tuple(dims), tuple(strides), tuple(pads)

    def call(self, inputs):
        dims, strides, pads = self._window(inputs.shape)
        if self.pool_mode == "max":
            return lax.reduce_window(inputs, _lowest(inputs.dtype), lax.max, dims, strides, pads)
        zero = np.array(0, inputs.dtype)
        total = lax.reduce_window(inputs, zero, lax.add, dims, strides, pads)
        if self.padding == "valid":
            return total / np.array(np.prod(self.pool_size), inputs.dtype)
        # Divide by the number of real inputs under each window (padding does not count).
        axes = spatial_axes(self.rank, self.data_format)
        count_shape = tuple(d if i in axes else 1 for i, d in enumerate(inputs.shape))
        counts = lax.reduce_window(np.ones(count_shape, inputs.dtype), zero, lax.add, dims, strides, pads)
        return total / counts

    def compute_output_shape(self, input_shape):
        axes = spatial_axes(self.rank, self.data_format)
        out = list(input_shape)
        for a, p, s in zip(axes, self.pool_size, self.strides):
            out[a] = conv_output_length(input_shape[a], p, s, self.padding)
        check_output_positive(self, input_shape, [out[a] for a in axes], what="pool_size")
        return tuple(out)

    def build(self, input_shape):
        self.compute_output_shape(input_shape)
        self.built = True

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "padding": self.padding,
                "strides": self.strides, "data_format": self.data_format}


class MaxPooling1D(BasePooling):
    rank, pool_mode = 1, "max"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides=strides, padding=padding, data_format=data_format, **kwargs)


class MaxPooling2D(BasePooling):
    rank, pool_mode = 2, "max"

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides=strides, padding=padding, data_format=data_format, **kwargs)


class MaxPooling3D(BasePooling):
    rank, pool_mode = 3, "max"

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides=strides, padding=padding, data_format=data_format, **kwargs)


class AveragePooling1D(BasePooling):
    rank, pool_mode = 1, "average"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides=strides, padding=padding, data_format=data_format, **kwargs)


class AveragePooling2D(BasePooling):
    rank, pool_mode = 2, "average"

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides=strides, padding=padding, data_format=data_format, **kwargs)


class AveragePooling3D(BasePooling):
    rank, pool_mode = 3, "average"

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides=strides, padding=padding, data_format=data_format, **kwargs)


# ----------------------------------------------------------------------------------------------- global
class BaseGlobalPooling(Layer):
    batch_independent = True
    random_in_training = False

    rank = None

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format)
        self.keepdims = bool(keepdims)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def _axes(self):
        return spatial_axes(self.rank, self.data_format)

    def compute_output_shape(self, input_shape):
        axes = self._axes()
        if self.keepdims:
            return tuple(1 if i in axes else d for i, d in enumerate(input_shape))
        return tuple(d for i, d in enumerate(input_shape) if i not in axes)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


class _GlobalMax(BaseGlobalPooling):
    def call(self, inputs):
        return jnp.max(inputs, axis=self._axes(), keepdims=self.keepdims)


class _GlobalAverage(BaseGlobalPooling):
    def call(self, inputs):
        return jnp.mean(inputs, axis=self._axes(), keepdims=self.keepdims)


class GlobalMaxPooling1D(_GlobalMax):
    rank = 1


class GlobalMaxPooling2D(_GlobalMax):
    rank = 2


class GlobalMaxPooling3D(_GlobalMax):
    rank = 3


class GlobalAveragePooling1D(_GlobalAverage):
    """Mean over the steps axis; with a (batch, steps) mask, the mean of the unmasked steps only."""
    rank = 1

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(data_format=data_format, keepdims=keepdims, **kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return super().call(inputs)
        steps_axis = self._axes()[0]
        mask = jnp.expand_dims(jnp.asarray(mask).astype(bool), 2 if self.data_format == "channels_last" else 1)
        total = jnp.sum(jnp.where(mask, inputs, jnp.zeros((), inputs.dtype)), axis=steps_axis,
                        keepdims=self.keepdims)
        count = jnp.sum(mask.astype(inputs.dtype), axis=steps_axis, keepdims=self.keepdims)
        return total / count

    def compute_mask(self, inputs, previous_mask):
        return None


class GlobalAveragePooling2D(_GlobalAverage):
    rank = 2


class GlobalAveragePooling3D(_GlobalAverage):
    rank = 3


# Keras's aliases.
MaxPool1D, MaxPool2D, MaxPool3D = MaxPooling1D, MaxPooling2D, MaxPooling3D
AvgPool1D, AvgPool2D, AvgPool3D = AveragePooling1D, AveragePooling2D, AveragePooling3D
GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D = GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D
GlobalAvgPool1D, GlobalAvgPool2D, GlobalAvgPool3D = (GlobalAveragePooling1D, GlobalAveragePooling2D,
                                                     GlobalAveragePooling3D)
