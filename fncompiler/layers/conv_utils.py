"""Shape and math helpers of the convolution layers (convolutional.py, conv_transpose.py, depthwise_conv.py,
separable_conv.py), shared with the pooling, spatial and ConvLSTM layers: argument standardization
(`standardize_tuple`, `standardize_padding`, `standardize_data_format`), output lengths and paddings
(`conv_output_length`, `conv_padding`, `conv_transpose_*`), and the convolutions themselves (`conv_nd`,
`depthwise_conv`, `conv_transpose_padded`).

On CPU a transposed convolution whose padding exceeds half its window pads its input with ``lax.pad`` first
(``pad_explicitly``: XLA:CPU's kernel gradient of such a padded convolution measured 6-9x slower).
"""
import jax
from jax import lax


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


def pad_explicitly(pads, kernel_size, dilation_rate):
    """Whether a transposed convolution pads its input itself (`conv_transpose_padded`) instead of leaving
    the padding to the convolution: on XLA:CPU, when a side's padding exceeds half the (dilated) window, as
    'valid' transposed convolutions' k - 1 does. There the kernel gradient of the padded convolution took a
    slow path: (64, 24, 24, 32) -> 16 filters, 3x3, padding 2: 100.6 ms forward + backward, 15.5 ms with the
    input padded first (a 'valid' convolution); with padding <= half the window ('same') the convolution's own
    padding measured as fast or faster (9.9 vs 12.8 ms at padding 1), so it keeps it."""
    if jax.default_backend() != "cpu":
        return False
    return any(max(lo, hi) > ((k - 1) * d) // 2 for (lo, hi), k, d in zip(pads, kernel_size, dilation_rate))


def conv_transpose_padded(inputs, kernel, strides, pads, dilation_rate, rank, data_format):
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


def depthwise_conv(inputs, depthwise_kernel, strides, padding, dilation_rate, data_format):
    """Per-channel convolution: output channel c * depth_multiplier + m uses depthwise_kernel[..., c, m]."""
    rank = depthwise_kernel.ndim - 2
    channels, multiplier = depthwise_kernel.shape[-2:]
    kernel = depthwise_kernel.reshape(depthwise_kernel.shape[:rank] + (1, channels * multiplier))
    return conv_nd(inputs, kernel, strides, padding, dilation_rate, data_format, groups=channels)


def add_bias(outputs, bias, rank, data_format):
    bias = bias.astype(outputs.dtype)
    if data_format == "channels_last":
        return outputs + bias
    return outputs + bias.reshape((1, -1) + (1,) * rank)


def check_output_positive(layer, input_shape, out_spatial, what="kernel_size"):
    if any(d is not None and d <= 0 for d in out_spatial):
        raise ValueError(
            f"Layer {layer.name!r} ({type(layer).__name__}): computed output size would be zero or negative: "
            f"input shape {tuple(input_shape)} is too small for {what}={getattr(layer, what)}"
            + (f", dilation_rate={layer.dilation_rate}" if hasattr(layer, "dilation_rate") else "")
            + f" with padding={layer.padding!r}.")


def input_channels(layer, input_shape):
    axis = channel_axis(layer.data_format)
    channels = input_shape[axis]
    if channels is None:
        raise ValueError(f"Layer {layer.name!r} ({type(layer).__name__}) needs the channel dimension of its input "
                         f"to be known (data_format={layer.data_format!r}); received input shape "
                         f"{tuple(input_shape)}.")
    return int(channels)
