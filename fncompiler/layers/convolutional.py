"""Convolution layers: Conv1D/2D/3D here; their transposes (conv_transpose.py), depthwise (depthwise_conv.py) and
separable (separable_conv.py) convolutions and the shared helpers (conv_utils.py) are re-exported, so every
name keeps this module's path.

Weights have Keras 3's shapes, names and order, so weights trained in Keras load with `set_weights`:

- ``Conv*D``: ``kernel`` ``(*kernel_size, in_channels // groups, filters)``, then ``bias`` ``(filters,)``;
- ``Conv*DTranspose``: ``kernel`` ``(*kernel_size, filters, in_channels)``, then ``bias``;
- ``DepthwiseConv*D``: ``kernel`` ``(*kernel_size, in_channels, depth_multiplier)`` (Keras 3's name; also
  reachable as ``layer.depthwise_kernel``), then ``bias`` ``(in_channels * depth_multiplier,)``;
- ``SeparableConv*D``: ``depthwise_kernel``, ``pointwise_kernel`` ``(1, ..., in * depth_multiplier, filters)``,
  then ``bias``.

The math is one ``jax.lax.conv_general_dilated`` (or ``lax.conv_transpose``) per layer (conv_utils.py).
"""
from .. import activations, constraints, initializers, regularizers
from .conv_utils import (standardize_tuple, standardize_padding, standardize_data_format, spatial_axes, channel_axis,
                         conv_output_length, conv_padding, conv_transpose_output_length, conv_transpose_padding,
                         dimension_numbers, pad_explicitly, conv_transpose_padded, conv_nd, depthwise_conv, add_bias,
                         check_output_positive, input_channels)
from .conv_transpose import BaseConvTranspose, Conv1DTranspose, Conv2DTranspose, Conv3DTranspose
from .depthwise_conv import BaseDepthwiseConv, DepthwiseConv1D, DepthwiseConv2D
from .input_spec import InputSpec
from .layer import Layer
from .separable_conv import BaseSeparableConv, SeparableConv1D, SeparableConv2D


def _ser(module, obj):
    return None if obj is None else module.serialize(obj)


class BaseConv(Layer):
    """N-D convolution (cross-correlation) + bias + activation, as keras.layers.Conv{1,2,3}D."""
    batch_independent = True
    random_in_training = False

    rank = None

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, lora_rank=None, lora_alpha=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        rank = self.rank
        if lora_rank:
            raise NotImplementedError(f"{type(self).__name__}: LoRA (lora_rank) is not supported by fncompiler.")
        if isinstance(filters, bool) or not isinstance(filters, int) or filters <= 0:
            raise ValueError("Invalid value for argument `filters`. Expected a strictly positive value. "
                             f"Received filters={filters!r}.")
        if isinstance(groups, bool) or not isinstance(groups, int) or groups <= 0:
            raise ValueError(f"The number of groups must be a positive integer. Received: groups={groups!r}.")
        if filters % groups:
            raise ValueError("The number of filters must be evenly divisible by the number of groups. "
                             f"Received: groups={groups}, filters={filters}.")
        self.filters = filters
        self.groups = groups
        self.kernel_size = standardize_tuple(kernel_size, rank, "kernel_size")
        self.strides = standardize_tuple(strides, rank, "strides")
        self.dilation_rate = standardize_tuple(dilation_rate, rank, "dilation_rate")
        self.padding = standardize_padding(padding, allow_causal=rank == 1)
        self.data_format = standardize_data_format(data_format)
        if self.padding == "causal" and self.data_format == "channels_first":
            raise ValueError("Causal padding is only supported for `data_format='channels_last'`.")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError("`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
                             f"Received: strides={self.strides} and dilation_rate={self.dilation_rate}")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.kernel = None
        self.bias = None
        self.input_spec = InputSpec(ndim=rank + 2)

    def build(self, input_shape):
        channels = input_channels(self, input_shape)
        if channels % self.groups:
            raise ValueError(f"Layer {self.name!r}: the number of input channels must be evenly divisible by the "
                             f"number of groups. Received groups={self.groups}, but the input has {channels} "
                             f"channels (full input shape is {tuple(input_shape)}).")
        self.compute_output_shape(input_shape)
        self.kernel = self.add_weight(shape=self.kernel_size + (channels // self.groups, self.filters),
                                      initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint, name="kernel")
        if self.use_bias:
            self.bias = self.add_weight(shape=(self.filters,), initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                                        name="bias")
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={channel_axis(self.data_format): channels})
        self.built = True

    def call(self, inputs):
        kernel = self.kernel.value.astype(inputs.dtype)
        outputs = conv_nd(inputs, kernel, self.strides, self.padding, self.dilation_rate, self.data_format,
                          self.groups)
        if self.bias is not None:
            outputs = add_bias(outputs, self.bias.value, self.rank, self.data_format)
        return self.activation(outputs)

    def compute_output_shape(self, input_shape):
        axes = spatial_axes(self.rank, self.data_format)
        out = [conv_output_length(input_shape[a], k, s, self.padding, d)
               for a, k, s, d in zip(axes, self.kernel_size, self.strides, self.dilation_rate)]
        check_output_positive(self, input_shape, out)
        if self.data_format == "channels_last":
            return (input_shape[0],) + tuple(out) + (self.filters,)
        return (input_shape[0], self.filters) + tuple(out)

    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters, "kernel_size": self.kernel_size, "strides": self.strides,
            "padding": self.padding, "data_format": self.data_format, "dilation_rate": self.dilation_rate,
            "groups": self.groups, "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": _ser(regularizers, self.kernel_regularizer),
            "bias_regularizer": _ser(regularizers, self.bias_regularizer),
            "activity_regularizer": _ser(regularizers, self.activity_regularizer),
            "kernel_constraint": _ser(constraints, self.kernel_constraint),
            "bias_constraint": _ser(constraints, self.bias_constraint),
        })
        return config


class Conv1D(BaseConv):
    """1D convolution over (batch, steps, channels); padding "valid", "same" or "causal" (left-padded)."""
    rank = 1

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 groups=1, **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
                         dilation_rate=dilation_rate, groups=groups, **kwargs)


class Conv2D(BaseConv):
    """2D convolution over (batch, height, width, channels) (or channels_first)."""
    rank = 2

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), groups=1, **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
                         dilation_rate=dilation_rate, groups=groups, **kwargs)


class Conv3D(BaseConv):
    """3D convolution over (batch, depth, height, width, channels) (or channels_first)."""
    rank = 3

    def __init__(self, filters, kernel_size, strides=(1, 1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1, 1), groups=1, **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
                         dilation_rate=dilation_rate, groups=groups, **kwargs)


# Keras's aliases (subclasses would break `type(layer).__name__`-based registries, so plain names).
Convolution1D = Conv1D
Convolution2D = Conv2D
Convolution3D = Conv3D
Convolution1DTranspose = Conv1DTranspose
Convolution2DTranspose = Conv2DTranspose
Convolution3DTranspose = Conv3DTranspose
SeparableConvolution1D = SeparableConv1D
SeparableConvolution2D = SeparableConv2D


# The transposed convolution's padding choice under its names from before conv_utils.py (tests/test_layers_conv.py)
_pad_explicitly = pad_explicitly
_conv_transpose_padded = conv_transpose_padded

__all__ = ["BaseConv", "Conv1D", "Conv2D", "Conv3D", "BaseConvTranspose", "Conv1DTranspose", "Conv2DTranspose",
           "Conv3DTranspose", "BaseDepthwiseConv", "DepthwiseConv1D", "DepthwiseConv2D", "BaseSeparableConv",
           "SeparableConv1D", "SeparableConv2D", "Convolution1D", "Convolution2D", "Convolution3D",
           "Convolution1DTranspose", "Convolution2DTranspose", "Convolution3DTranspose", "SeparableConvolution1D",
           "SeparableConvolution2D", "standardize_tuple", "standardize_padding", "standardize_data_format",
           "spatial_axes", "channel_axis", "conv_output_length", "conv_padding", "conv_transpose_output_length",
           "conv_transpose_padding", "dimension_numbers", "pad_explicitly", "conv_transpose_padded", "conv_nd",
           "depthwise_conv", "add_bias", "check_output_positive", "input_channels"]
