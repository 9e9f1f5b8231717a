"""Convolution layers: Conv1D/2D/3D, their transposes, depthwise and separable convolutions.

Weights have Keras 3's shapes, names and order, so weights trained in Keras load with `set_weights`:

- ``Conv*D``: ``kernel`` ``(*kernel_size, in_channels // groups, filters)``, then ``bias`` ``(filters,)``;
- ``Conv*DTranspose``: ``kernel`` ``(*kernel_size, filters, in_channels)``, then ``bias``;
- ``DepthwiseConv*D``: ``kernel`` ``(*kernel_size, in_channels, depth_multiplier)`` (Keras 3's name; also
  reachable as ``layer.depthwise_kernel``), then ``bias`` ``(in_channels * depth_multiplier,)``;
- ``SeparableConv*D``: ``depthwise_kernel``, ``pointwise_kernel`` ``(1, ..., in * depth_multiplier, filters)``,
  then ``bias``.

The math is one ``jax.lax.conv_general_dilated`` (or ``lax.conv_transpose``) per layer; on CPU a transposed
convolution whose padding exceeds half its window pads its input with ``lax.pad`` first (``_pad_explicitly``:
XLA:CPU's kernel gradient of such a padded convolution measured 6-9x slower). The shape helpers at
the top (`conv_output_length`, `conv_padding`, ...) are shared with the pooling, spatial and ConvLSTM layers.
"""
import jax
from jax import lax

from .. import activations, constraints, initializers, regularizers
from .input_spec import InputSpec
from .layer import Layer


# ----------------------------------------------------------------------------------------------- helpers
def _ser(module, obj):
    return None if obj is None else module.serialize(obj)


def standardize_tuple(value, n, name, allow_zero=False):
    """An int or a sequence of `n` ints as a tuple of `n` non-negative (positive unless allow_zero) ints."""
    if isinstance(value, (int,)) and not isinstance(value, bool):
        values = (value,) * n
    else:
        try:
            values = tuple(value)
        except TypeError:
            raise ValueError(f"The `{name}` argument must be a tuple of {n} integers. Received {name}={value!r}")
        if len(values) != n:
            raise ValueError(f"The `{name}` argument must be a tuple of {n} integers. Received {name}={value!r}")
    out = []
    for v in values:
        try:
            iv = int(v)
        except (TypeError, ValueError):
            raise ValueError(f"The `{name}` argument must be a tuple of {n} integers. Received {name}={value!r} "
                             f"including element {v!r} of type {type(v).__name__}")
        if iv != v or iv < 0 or (iv == 0 and not allow_zero):
            req = ">= 0" if allow_zero else "> 0"
            raise ValueError(f"The `{name}` argument must be a tuple of {n} integers. Received {name}={value!r} "
                             f"including values {{{v}}} that do not satisfy `value {req}`")
        out.append(iv)
    return tuple(out)


def standardize_padding(value, allow_causal=False):
    padding = str(value).lower()
    allowed = ("valid", "same", "causal") if allow_causal else ("valid", "same")
    if padding not in allowed:
        raise ValueError(f"The `padding` argument must be a string, one of {set(allowed)}. Received: {value!r}")
    return padding


def standardize_data_format(value):
    if value is None:
        return "channels_last"
    fmt = str(value).lower()
    if fmt not in ("channels_last", "channels_first"):
        raise ValueError("The `data_format` argument must be one of {'channels_first', 'channels_last'}. "
                         f"Received: data_format={value!r}")
    return fmt


def spatial_axes(rank, data_format):
    """Indices of the spatial axes of a (rank + 2)-D batch."""
    return tuple(range(1, rank + 1)) if data_format == "channels_last" else tuple(range(2, rank + 2))


def channel_axis(data_format):
    return -1 if data_format == "channels_last" else 1


def conv_output_length(length, kernel_size, stride, padding, dilation=1):
    """Output length of a convolution or pooling window (None when the input length is unknown)."""
    if length is None:
        return None
    if padding == "valid":
        effective = (kernel_size - 1) * dilation + 1
        return (length - effective) // stride + 1
    return (length - 1) // stride + 1   # "same" and "causal"


def conv_padding(length, kernel_size, stride, padding, dilation=1):
    """Explicit (before, after) padding of one spatial axis, as TensorFlow / Keras pad it."""
    effective = (kernel_size - 1) * dilation + 1
    if padding == "valid":
        return (0, 0)
    if padding == "causal":
        return (effective - 1, 0)
    out = (length + stride - 1) // stride
    total = max((out - 1) * stride + effective - length, 0)
    return (total // 2, total - total // 2)


def conv_transpose_output_length(length, kernel_size, stride, padding, output_padding=None, dilation=1):
    """Keras 3's `compute_conv_transpose_output_shape` for one spatial axis."""
    if length is None:
        return None
    effective = (kernel_size - 1) * dilation + 1
    if padding == "valid":
        if output_padding is None:
            output_padding = max(effective, stride) - effective
        return (length - 1) * stride + effective + output_padding
    if output_padding is None:
        return length * stride
    return (length - 1) * stride + effective % 2 + output_padding


def conv_transpose_padding(kernel_size, stride, padding, output_padding=None, dilation=1):
    """Padding of the stride-dilated input that gives Keras's transpose-conv output (JAX convention)."""
    effective = (kernel_size - 1) * dilation + 1
    if padding == "valid":
        if output_padding is None:
            output_padding = max(effective, stride) - effective
        return (effective - 1, effective - 1 + output_padding)
    if output_padding is None:
        pad_len = stride + effective - 2
    else:
        pad_len = effective + effective % 2 - 2 + output_padding
    left = min(pad_len // 2 + pad_len % 2, effective - 1)
    return (left, pad_len - left)


def dimension_numbers(rank, data_format):
    spatial = "DHW"[3 - rank:] if rank <= 3 else None
    if spatial is None:
        raise ValueError(f"Convolutions of rank {rank} are not supported (1, 2 or 3).")
    lhs = "N" + spatial + "C" if data_format == "channels_last" else "NC" + spatial
    return (lhs, spatial + "IO", lhs)


def _pad_explicitly(pads, kernel_size, dilation_rate):
    """Whether a transposed convolution pads its input itself (`_conv_transpose_padded`) instead of leaving
    the padding to the convolution: on XLA:CPU, when a side's padding exceeds half the (dilated) window, as
    'valid' transposed convolutions' k - 1 does. There the kernel gradient of the padded convolution took a
    slow path: (64, 24, 24, 32) -> 16 filters, 3x3, padding 2: 100.6 ms forward + backward, 15.5 ms with the
    input padded first (a 'valid' convolution); with padding <= half the window ('same') the convolution's own
    padding measured as fast or faster (9.9 vs 12.8 ms at padding 1), so it keeps it."""
    if jax.default_backend() != "cpu":
        return False
    return any(max(lo, hi) > ((k - 1) * d) // 2 for (lo, hi), k, d in zip(pads, kernel_size, dilation_rate))


def _conv_transpose_padded(inputs, kernel, strides, pads, dilation_rate, rank, data_format):
    """`lax.conv_transpose(..., transpose_kernel=True)` with its input dilation and padding done by `lax.pad`
    (interior padding = stride - 1; negative padding crops), followed by a 'valid' convolution: the same
    values."""
    spatial = list(spatial_axes(rank, data_format))
    config = [(0, 0, 0)] * inputs.ndim
    for axis, (lo, hi), s in zip(spatial, pads, strides):
        config[axis] = (lo, hi, s - 1)
    x = lax.pad(inputs, lax.convert_element_type(0, inputs.dtype), config)
    # Keras's (*kernel, filters, in) kernel, flipped in space and read as (*kernel, in, filters) = "...OI".
    kernel = lax.rev(kernel, tuple(range(rank)))
    lhs, rhs, out = dimension_numbers(rank, data_format)
    return lax.conv_general_dilated(x, kernel, (1,) * rank, [(0, 0)] * rank, rhs_dilation=dilation_rate,
                                    dimension_numbers=(lhs, rhs[:-2] + "OI", out))


def conv_nd(inputs, kernel, strides, padding, dilation_rate, data_format, groups=1):
    """Cross-correlation of `inputs` with a (*kernel_size, in // groups, out) kernel, Keras padding rules."""
    rank = kernel.ndim - 2
    axes = spatial_axes(rank, data_format)
    pads = [conv_padding(inputs.shape[a], k, s, padding, d)
            for a, k, s, d in zip(axes, kernel.shape[:rank], strides, dilation_rate)]
    return lax.conv_general_dilated(inputs, kernel, window_strides=tuple(strides), padding=pads,
                                    rhs_dilation=tuple(dilation_rate),
                                    dimension_numbers=dimension_numbers(rank, data_format),
                                    feature_group_count=groups)


def _add_bias(outputs, bias, rank, data_format):
    bias = bias.astype(outputs.dtype)
    if data_format == "channels_last":
        return outputs + bias
    return outputs + bias.reshape((1, -1) + (1,) * rank)


def _check_output_positive(layer, input_shape, out_spatial, what="kernel_size"):
    if any(d is not None and d <= 0 for d in out_spatial):
        raise ValueError(
            f"Layer {layer.name!r} ({type(layer).__name__}): computed output size would be zero or negative: "
            f"input shape {tuple(input_shape)} is too small for {what}={getattr(layer, what)}"
            + (f", dilation_rate={layer.dilation_rate}" if hasattr(layer, "dilation_rate") else "")
            + f" with padding={layer.padding!r}.")


def _input_channels(layer, input_shape):
    axis = channel_axis(layer.data_format)
    channels = input_shape[axis]
    if channels is None:
        raise ValueError(f"Layer {layer.name!r} ({type(layer).__name__}) needs the channel dimension of its input "
                         f"to be known (data_format={layer.data_format!r}); received input shape "
                         f"{tuple(input_shape)}.")
    return int(channels)


# ----------------------------------------------------------------------------------------------- BaseConv
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
        channels = _input_channels(self, input_shape)
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
            outputs = _add_bias(outputs, self.bias.value, self.rank, self.data_format)
        return self.activation(outputs)

    def compute_output_shape(self, input_shape):
        axes = spatial_axes(self.rank, self.data_format)
        out = [conv_output_length(input_shape[a], k, s, self.padding, d)
               for a, k, s, d in zip(axes, self.kernel_size, self.strides, self.dilation_rate)]
        _check_output_positive(self, input_shape, out)
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


# ----------------------------------------------------------------------------------------------- transpose
class BaseConvTranspose(Layer):
    """N-D transposed convolution (the gradient of a convolution wrt its input) + bias + activation."""
    batch_independent = True
    random_in_training = False

    rank = None

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None, data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        rank = self.rank
        if isinstance(filters, bool) or not isinstance(filters, int) or filters <= 0:
            raise ValueError("Invalid value for argument `filters`. Expected a strictly positive value. "
                             f"Received filters={filters!r}.")
        self.filters = filters
        self.kernel_size = standardize_tuple(kernel_size, rank, "kernel_size")
        self.strides = standardize_tuple(strides, rank, "strides")
        self.dilation_rate = standardize_tuple(dilation_rate, rank, "dilation_rate")
        self.padding = standardize_padding(padding)
        self.output_padding = None if output_padding is None else standardize_tuple(
            output_padding, rank, "output_padding", allow_zero=True)
        self.data_format = standardize_data_format(data_format)
        if self.output_padding is not None:
            for op, s in zip(self.output_padding, self.strides):
                if op >= s:
                    raise ValueError(f"`output_padding` must be < `strides`. output_padding={self.output_padding}, "
                                     f"strides={self.strides}")
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

    def _output_padding(self, i):
        return None if self.output_padding is None else self.output_padding[i]

    def build(self, input_shape):
        channels = _input_channels(self, input_shape)
        self.compute_output_shape(input_shape)
        self.kernel = self.add_weight(shape=self.kernel_size + (self.filters, channels),
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
        pads = [conv_transpose_padding(k, s, self.padding, self._output_padding(i), d)
                for i, (k, s, d) in enumerate(zip(self.kernel_size, self.strides, self.dilation_rate))]
        dn = dimension_numbers(self.rank, self.data_format)
        if _pad_explicitly(pads, self.kernel_size, self.dilation_rate):
            outputs = _conv_transpose_padded(inputs, kernel, self.strides, pads, self.dilation_rate,
                                             self.rank, self.data_format)
        else:
            # transpose_kernel=True flips the spatial axes and swaps the (filters, in) axes of Keras's layout.
            outputs = lax.conv_transpose(inputs, kernel, strides=self.strides, padding=pads,
                                         rhs_dilation=self.dilation_rate, dimension_numbers=dn,
                                         transpose_kernel=True)
        if self.bias is not None:
            outputs = _add_bias(outputs, self.bias.value, self.rank, self.data_format)
        return self.activation(outputs)

    def compute_output_shape(self, input_shape):
        axes = spatial_axes(self.rank, self.data_format)
        out = [conv_transpose_output_length(input_shape[a], k, s, self.padding, self._output_padding(i), d)
               for i, (a, k, s, d) in enumerate(zip(axes, self.kernel_size, self.strides, self.dilation_rate))]
        _check_output_positive(self, input_shape, out)
        if self.data_format == "channels_last":
            return (input_shape[0],) + tuple(out) + (self.filters,)
        return (input_shape[0], self.filters) + tuple(out)

    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters, "kernel_size": self.kernel_size, "strides": self.strides,
            "padding": self.padding, "output_padding": self.output_padding, "data_format": self.data_format,
            "dilation_rate": self.dilation_rate, "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": _ser(regularizers, self.kernel_regularizer),
            "bias_regularizer": _ser(regularizers, self.bias_regularizer),
            "activity_regularizer": _ser(regularizers, self.activity_regularizer),
            "kernel_constraint": _ser(constraints, self.kernel_constraint),
            "bias_constraint": _ser(constraints, self.bias_constraint),
        })
        return config


class Conv1DTranspose(BaseConvTranspose):
    rank = 1

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None, data_format=None,
                 dilation_rate=1, **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding, output_padding=output_padding,
                         data_format=data_format, dilation_rate=dilation_rate, **kwargs)


class Conv2DTranspose(BaseConvTranspose):
    rank = 2

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", output_padding=None,
                 data_format=None, dilation_rate=(1, 1), **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding, output_padding=output_padding,
                         data_format=data_format, dilation_rate=dilation_rate, **kwargs)


class Conv3DTranspose(BaseConvTranspose):
    rank = 3

    def __init__(self, filters, kernel_size, strides=(1, 1, 1), padding="valid", output_padding=None,
                 data_format=None, dilation_rate=(1, 1, 1), **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding, output_padding=output_padding,
                         data_format=data_format, dilation_rate=dilation_rate, **kwargs)


# ----------------------------------------------------------------------------------------------- depthwise
def _depthwise(inputs, depthwise_kernel, strides, padding, dilation_rate, data_format):
    """Per-channel convolution: output channel c * depth_multiplier + m uses depthwise_kernel[..., c, m]."""
    rank = depthwise_kernel.ndim - 2
    channels, multiplier = depthwise_kernel.shape[-2:]
    kernel = depthwise_kernel.reshape(depthwise_kernel.shape[:rank] + (1, channels * multiplier))
    return conv_nd(inputs, kernel, strides, padding, dilation_rate, data_format, groups=channels)


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
        channels = _input_channels(self, input_shape)
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
        outputs = _depthwise(inputs, kernel, self.strides, self.padding, self.dilation_rate, self.data_format)
        if self.bias is not None:
            outputs = _add_bias(outputs, self.bias.value, self.rank, self.data_format)
        return self.activation(outputs)

    def compute_output_shape(self, input_shape):
        axes = spatial_axes(self.rank, self.data_format)
        out = [conv_output_length(input_shape[a], k, s, self.padding, d)
               for a, k, s, d in zip(axes, self.kernel_size, self.strides, self.dilation_rate)]
        _check_output_positive(self, input_shape, out)
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


# ----------------------------------------------------------------------------------------------- separable
class BaseSeparableConv(Layer):
    batch_independent = True
    random_in_training = False

    rank = None

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 depth_multiplier=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 pointwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        rank = self.rank
        if isinstance(filters, bool) or not isinstance(filters, int) or filters <= 0:
            raise ValueError("Invalid value for argument `filters`. Expected a strictly positive value. "
                             f"Received filters={filters!r}.")
        if isinstance(depth_multiplier, bool) or not isinstance(depth_multiplier, int) or depth_multiplier <= 0:
            raise ValueError("Invalid value for argument `depth_multiplier`. Expected a strictly positive value. "
                             f"Received depth_multiplier={depth_multiplier!r}.")
        self.filters = filters
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
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)
        self.pointwise_constraint = constraints.get(pointwise_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.depthwise_kernel = None
        self.pointwise_kernel = None
        self.bias = None
        self.input_spec = InputSpec(ndim=rank + 2)

    def build(self, input_shape):
        channels = _input_channels(self, input_shape)
        self.compute_output_shape(input_shape)
        self.depthwise_kernel = self.add_weight(
            shape=self.kernel_size + (channels, self.depth_multiplier), initializer=self.depthwise_initializer,
            regularizer=self.depthwise_regularizer, constraint=self.depthwise_constraint, name="depthwise_kernel")
        self.pointwise_kernel = self.add_weight(
            shape=(1,) * self.rank + (channels * self.depth_multiplier, self.filters),
            initializer=self.pointwise_initializer, regularizer=self.pointwise_regularizer,
            constraint=self.pointwise_constraint, name="pointwise_kernel")
        if self.use_bias:
            self.bias = self.add_weight(shape=(self.filters,), initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                                        name="bias")
        self.input_spec = InputSpec(ndim=self.rank + 2, axes={channel_axis(self.data_format): channels})
        self.built = True

    def call(self, inputs):
        depthwise = self.depthwise_kernel.value.astype(inputs.dtype)
        pointwise = self.pointwise_kernel.value.astype(inputs.dtype)
        outputs = _depthwise(inputs, depthwise, self.strides, self.padding, self.dilation_rate, self.data_format)
        ones = (1,) * self.rank
        outputs = conv_nd(outputs, pointwise, ones, "valid", ones, self.data_format)
        if self.bias is not None:
            outputs = _add_bias(outputs, self.bias.value, self.rank, self.data_format)
        return self.activation(outputs)

    def compute_output_shape(self, input_shape):
        axes = spatial_axes(self.rank, self.data_format)
        out = [conv_output_length(input_shape[a], k, s, self.padding, d)
               for a, k, s, d in zip(axes, self.kernel_size, self.strides, self.dilation_rate)]
        _check_output_positive(self, input_shape, out)
        if self.data_format == "channels_last":
            return (input_shape[0],) + tuple(out) + (self.filters,)
        return (input_shape[0], self.filters) + tuple(out)

    def get_config(self):
        config = super().get_config()
        config.update({
            "depth_multiplier": self.depth_multiplier, "filters": self.filters, "kernel_size": self.kernel_size,
            "strides": self.strides, "padding": self.padding, "data_format": self.data_format,
            "dilation_rate": self.dilation_rate, "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
            "pointwise_initializer": initializers.serialize(self.pointwise_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "depthwise_regularizer": _ser(regularizers, self.depthwise_regularizer),
            "pointwise_regularizer": _ser(regularizers, self.pointwise_regularizer),
            "bias_regularizer": _ser(regularizers, self.bias_regularizer),
            "activity_regularizer": _ser(regularizers, self.activity_regularizer),
            "depthwise_constraint": _ser(constraints, self.depthwise_constraint),
            "pointwise_constraint": _ser(constraints, self.pointwise_constraint),
            "bias_constraint": _ser(constraints, self.bias_constraint),
        })
        return config


class SeparableConv1D(BaseSeparableConv):
    rank = 1

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 depth_multiplier=1, **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
                         dilation_rate=dilation_rate, depth_multiplier=depth_multiplier, **kwargs)


class SeparableConv2D(BaseSeparableConv):
    rank = 2

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), depth_multiplier=1, **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
                         dilation_rate=dilation_rate, depth_multiplier=depth_multiplier, **kwargs)


# Keras's aliases (subclasses would break `type(layer).__name__`-based registries, so plain names).
Convolution1D = Conv1D
Convolution2D = Conv2D
Convolution3D = Conv3D
Convolution1DTranspose = Conv1DTranspose
Convolution2DTranspose = Conv2DTranspose
Convolution3DTranspose = Conv3DTranspose
SeparableConvolution1D = SeparableConv1D
SeparableConvolution2D = SeparableConv2D
