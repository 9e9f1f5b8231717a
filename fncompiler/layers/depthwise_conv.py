"""Depthwise convolutions: DepthwiseConv1D, DepthwiseConv2D. Weights as Keras 3: ``kernel``
``(*kernel_size, in_channels, depth_multiplier)`` (also reachable as ``layer.depthwise_kernel``), then ``bias``
``(in_channels * depth_multiplier,)``."""
from .. import activations, constraints, initializers, regularizers
from .conv_utils import (standardize_tuple, standardize_padding, standardize_data_format, spatial_axes, channel_axis,
                         conv_output_length, depthwise_conv, add_bias, check_output_positive, input_channels)
from .input_spec import InputSpec
from .layer import Layer


def _ser(module, obj):
    return None if obj is None else module.serialize(obj)


class BaseDepthwiseConv(Layer):
    batch_independent = True
    random_in_training = False

    rank = None

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        rank = self.rank
        if isinstance(depth_multiplier, bool) or not isinstance(depth_multiplier, int) or depth_multiplier <= 0:
            raise ValueError("Invalid value for argument `depth_multiplier`. Expected a strictly positive value. "
                             f"Received depth_multiplier={depth_multiplier!r}.")
        self.depth_multiplier = depth_multiplier
        self.kernel_size = standardize_tuple(kernel_size, rank, "kernel_size")
        self.strides = standardize_tuple(strides, rank, "strides")
        self.dilation_rate = standardize_tuple(dilation_rate, rank, "dilation_rate")
        self.padding = standardize_padding(padding)
        self.data_format = standardize_data_format(data_format)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError("`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
                             f"Received: strides={self.strides} and dilation_rate={self.dilation_rate}")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.kernel = None
        self.bias = None
        self.input_spec = InputSpec(ndim=rank + 2)

    def build(self, input_shape):
        channels = input_channels(self, input_shape)
        self.compute_output_shape(input_shape)
        # Keras 3 names this weight "kernel" (Keras 2 called it "depthwise_kernel"; see the alias below).
        self.kernel = self.add_weight(
            shape=self.kernel_size + (channels, self.depth_multiplier), initializer=self.depthwise_initializer,
            regularizer=self.depthwise_regularizer, constraint=self.depthwise_constraint, name="kernel")
        if self.use_bias:
            self.bias = self.add_weight(shape=(channels * self.depth_multiplier,), initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                                        name="bias")
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={channel_axis(self.data_format): channels})
        self.built = True

    @property
    def depthwise_kernel(self):
        """Keras 2's name of the (*kernel_size, in_channels, depth_multiplier) kernel."""
        return self.kernel

    def call(self, inputs):
        kernel = self.kernel.value.astype(inputs.dtype)
        outputs = depthwise_conv(inputs, kernel, self.strides, self.padding, self.dilation_rate, self.data_format)
        if self.bias is not None:
            outputs = add_bias(outputs, self.bias.value, self.rank, self.data_format)
        return self.activation(outputs)

    def compute_output_shape(self, input_shape):
        axes = spatial_axes(self.rank, self.data_format)
        out = [conv_output_length(input_shape[a], k, s, self.padding, d)
               for a, k, s, d in zip(axes, self.kernel_size, self.strides, self.dilation_rate)]
        check_output_positive(self, input_shape, out)
        channels = input_shape[channel_axis(self.data_format)]
        channels = None if channels is None else channels * self.depth_multiplier
        if self.data_format == "channels_last":
            return (input_shape[0],) + tuple(out) + (channels,)
        return (input_shape[0], channels) + tuple(out)

    def get_config(self):
        config = super().get_config()
        config.update({
            "depth_multiplier": self.depth_multiplier, "kernel_size": self.kernel_size, "strides": self.strides,
            "padding": self.padding, "data_format": self.data_format, "dilation_rate": self.dilation_rate,
            "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
            "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "depthwise_regularizer": _ser(regularizers, self.depthwise_regularizer),
            "bias_regularizer": _ser(regularizers, self.bias_regularizer),
            "activity_regularizer": _ser(regularizers, self.activity_regularizer),
            "depthwise_constraint": _ser(constraints, self.depthwise_constraint),
            "bias_constraint": _ser(constraints, self.bias_constraint),
        })
        return config


class DepthwiseConv1D(BaseDepthwiseConv):
    rank = 1

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=1, **kwargs):
        super().__init__(kernel_size, strides=strides, padding=padding, depth_multiplier=depth_multiplier,
                         data_format=data_format, dilation_rate=dilation_rate, **kwargs)


class DepthwiseConv2D(BaseDepthwiseConv):
    rank = 2

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=(1, 1), **kwargs):
        super().__init__(kernel_size, strides=strides, padding=padding, depth_multiplier=depth_multiplier,
                         data_format=data_format, dilation_rate=dilation_rate, **kwargs)
