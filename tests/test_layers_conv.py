"""Convolution layers (Conv*D, Conv*DTranspose, DepthwiseConv*D, SeparableConv*D, ConvLSTM*D) vs NumPy references.

The references below are written from the definitions (zero padding + sliding-window sums, scatter for the
transposed convolution, an explicit time loop for ConvLSTM), never with the layers' own code or `lax`.
They take an array module `xp` so the same code gives gradients under `jax.grad` with `xp=jnp`.
"""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fncompiler as K
from fncompiler.layers.conv_lstm import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D
from fncompiler.layers.convolutional import (Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose, Conv3D,
                                             Conv3DTranspose, DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D,
                                             SeparableConv2D)

ATOL = 1e-4
RNG = np.random.default_rng(0)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def to_last(x, data_format, lead=1):
    """channels_first -> channels_last (channel axis right after `lead` leading axes)."""
    return x if data_format == "channels_last" else np.moveaxis(x, lead, -1)


def from_last(x, data_format, lead=1):
    return x if data_format == "channels_last" else np.moveaxis(x, -1, lead)


class NpInit:
    """A NumPy-backed initializer: jax.random initializers compile one XLA program per new shape (~0.7 s on
    a small CPU), which would dominate this file's run time."""

    def __call__(self, shape, dtype="float32"):
        return (RNG.standard_normal(shape) * 0.5).astype(dtype)


_INIT_ARGS = ("kernel_initializer", "bias_initializer", "depthwise_initializer", "pointwise_initializer",
              "recurrent_initializer")


def fast(cls, *args, init=None, **kwargs):
    """cls(*args, **kwargs) with every weight initializer it takes set to `init` (NumPy random by default)."""
    import inspect
    params = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            params |= set(inspect.signature(klass.__init__).parameters)
    for name in _INIT_ARGS:
        if name in params and name not in kwargs:
            kwargs[name] = NpInit() if init is None else init
    return cls(*args, **kwargs)


def randomize(layer):
    layer.set_weights([rand(*w.shape) * 0.5 for w in layer.weights])
    return layer


def tup(v, n):
    return (v,) * n if isinstance(v, int) else tuple(v)


# ----------------------------------------------------------------------------------------------- references
def same_pads(length, k, s, d):
    """TensorFlow 'SAME': output ceil(L / s), total padding split with the extra element after."""
    eff = (k - 1) * d + 1
    out = -(-length // s)
    total = max((out - 1) * s + eff - length, 0)
    return total // 2, total - total // 2


def ref_conv(xp, x, kernel, strides, padding, dilation, groups=1):
    """Cross-correlation, channels_last. x: (N, *L, C); kernel: (*k, C // groups, F)."""
    rank = x.ndim - 2
    ks = kernel.shape[:rank]
    pads = [(0, 0)]
    for i in range(rank):
        eff = (ks[i] - 1) * dilation[i] + 1
        if padding == "valid":
            pads.append((0, 0))
        elif padding == "causal":
            pads.append((eff - 1, 0))
        else:
            pads.append(same_pads(x.shape[1 + i], ks[i], strides[i], dilation[i]))
    pads.append((0, 0))
    xpad = xp.pad(x, pads)
    out_len = [(xpad.shape[1 + i] - ((ks[i] - 1) * dilation[i] + 1)) // strides[i] + 1 for i in range(rank)]
    n, c = x.shape[0], x.shape[-1]
    f = kernel.shape[-1]
    total = 0
    for offs in itertools.product(*[range(k) for k in ks]):
        sl = tuple(slice(o * d, o * d + (m - 1) * s + 1, s) for o, d, m, s in zip(offs, dilation, out_len, strides))
        patch = xpad[(slice(None),) + sl + (slice(None),)]                      # (N, *out, C)
        patch = patch.reshape(patch.shape[:-1] + (groups, c // groups))
        w = kernel[offs].reshape(c // groups, groups, f // groups)             # (Cg, G, Fg)
        total = total + xp.einsum("...gc,cgf->...gf", patch, w).reshape((n,) + tuple(out_len) + (f,))
    return total


def ref_depthwise(xp, x, dkernel, strides, padding, dilation):
    """out[..., c * dm + m] = conv of channel c with dkernel[..., c, m]."""
    c, dm = dkernel.shape[-2:]
    outs = []
    for ch in range(c):
        outs.append(ref_conv(xp, x[..., ch:ch + 1], dkernel[..., ch:ch + 1, :], strides, padding, dilation))
    return xp.concatenate(outs, axis=-1)


def transpose_out_len(length, k, s, padding, op, d):
    eff = (k - 1) * d + 1
    if padding == "valid":
        return (length - 1) * s + eff + (max(eff, s) - eff if op is None else op)
    return length * s if op is None else (length - 1) * s + eff % 2 + op


def ref_conv_transpose(xp, x, kernel, strides, padding, output_padding, dilation):
    """Scatter every input pixel times the kernel into a full buffer, then crop it as TensorFlow does.

    x: (N, *L, C); kernel: (*k, F, C). "valid" keeps the buffer from 0; "same" drops
    floor((full - out) / 2) elements before (the smaller half of the TF padding goes first).
    """
    rank = x.ndim - 2
    ks = kernel.shape[:rank]
    ops_ = [None] * rank if output_padding is None else list(output_padding)
    in_len = x.shape[1:-1]
    out_len = [transpose_out_len(in_len[i], ks[i], strides[i], padding, ops_[i], dilation[i]) for i in range(rank)]
    full = [(in_len[i] - 1) * strides[i] + (ks[i] - 1) * dilation[i] + 1 for i in range(rank)]
    start = [0 if padding == "valid" else max(full[i] - out_len[i], 0) // 2 for i in range(rank)]
    size = [max(full[i], start[i] + out_len[i]) for i in range(rank)]
    n, f = x.shape[0], kernel.shape[-2]
    buf = xp.zeros((n,) + tuple(size) + (f,), x.dtype)
    for offs in itertools.product(*[range(k) for k in ks]):
        contrib = xp.einsum("...c,fc->...f", x, kernel[offs])
        sl = (slice(None),) + tuple(slice(o * d, o * d + (m - 1) * s + 1, s)
                                    for o, d, m, s in zip(offs, dilation, in_len, strides)) + (slice(None),)
        if xp is np:
            buf[sl] += contrib
        else:
            buf = buf.at[sl].add(contrib)
    crop = (slice(None),) + tuple(slice(a, a + m) for a, m in zip(start, out_len)) + (slice(None),)
    return buf[crop]


# ----------------------------------------------------------------------------------------------- helpers
def check_symbolic(layer_cls, kwargs, concrete_input_shape, none_axes=()):
    """Output shape through Input with None batch (and `none_axes` unknown) matches the concrete call."""
    shape = list(concrete_input_shape[1:])
    for a in none_axes:
        shape[a - 1] = None
    layer = fast(layer_cls, **kwargs)
    sym = layer(K.Input(shape=tuple(shape)))
    y = layer(rand(*concrete_input_shape))
    assert sym.dtype == "float32" and y.dtype == jnp.float32
    assert sym.shape[0] is None
    for i, (s, c) in enumerate(zip(sym.shape, y.shape)):
        if i == 0 or i in none_axes:
            assert s is None
        else:
            assert s == c
    assert len(sym.shape) == y.ndim
    return layer


def roundtrip(layer, x):
    clone = type(layer).from_config(layer.get_config())
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(np.asarray(clone(x)), np.asarray(layer(x)), atol=1e-6)
    assert clone.get_config() == {**layer.get_config(), "name": clone.name}
    return clone


def kernel_grad(layer, x, index=0):
    """d sum(layer(x)) / d trainable_weights[index], through stateless_call."""
    values = [w.value for w in layer.trainable_weights]

    def f(v):
        vals = list(values)
        vals[index] = v
        out, _ = layer.stateless_call(vals, [w.value for w in layer.non_trainable_weights], x)
        return jnp.sum(out if not isinstance(out, list) else out[0])
    return np.asarray(jax.grad(f)(values[index]))


# ----------------------------------------------------------------------------------------------- Conv*D
CONV_CASES = [
    # cls, spatial, kernel, strides, padding, dilation, groups, data_format
    (Conv1D, (9,), 3, 1, "valid", 1, 1, "channels_last"),
    (Conv1D, (9,), 3, 2, "same", 1, 1, "channels_last"),
    (Conv1D, (8,), 4, 2, "same", 1, 1, "channels_first"),
    (Conv1D, (9,), 3, 1, "causal", 2, 1, "channels_last"),
    (Conv1D, (10,), 2, 3, "causal", 1, 1, "channels_last"),
    (Conv1D, (9,), 3, 1, "same", 2, 2, "channels_first"),
    (Conv1D, (9,), 3, 3, "valid", 1, 1, "channels_first"),
    (Conv2D, (7, 8), 3, 1, "valid", 1, 1, "channels_last"),
    (Conv2D, (7, 8), (3, 2), (2, 2), "same", 1, 1, "channels_last"),
    (Conv2D, (8, 7), 2, (2, 1), "same", 1, 1, "channels_first"),
    (Conv2D, (9, 9), 3, 1, "same", (2, 3), 1, "channels_last"),
    (Conv2D, (9, 8), 3, 1, "valid", 2, 2, "channels_first"),
    (Conv2D, (7, 7), (2, 3), (3, 2), "valid", 1, 3, "channels_last"),
    (Conv2D, (6, 6), 4, 2, "same", 1, 1, "channels_first"),
    (Conv3D, (5, 6, 4), 3, 1, "valid", 1, 1, "channels_last"),
    (Conv3D, (5, 6, 5), (2, 3, 2), (2, 1, 2), "same", 1, 2, "channels_first"),
    (Conv3D, (7, 5, 5), 2, 1, "same", (2, 1, 2), 1, "channels_last"),
]


def _conv_layer(cls, kernel, strides, padding, dilation, groups, data_format, filters=6):
    return fast(cls, filters, kernel, strides=strides, padding=padding, dilation_rate=dilation, groups=groups,
                data_format=data_format)


@pytest.mark.parametrize("cls,spatial,kernel,strides,padding,dilation,groups,data_format", CONV_CASES)
def test_conv_forward_matches_reference(cls, spatial, kernel, strides, padding, dilation, groups, data_format):
    rank = len(spatial)
    c = 3 * groups if groups > 1 else 2
    shape = (2,) + spatial + (c,) if data_format == "channels_last" else (2, c) + spatial
    x = rand(*shape)
    layer = _conv_layer(cls, kernel, strides, padding, dilation, groups, data_format)
    y = np.asarray(layer(x))
    k, b = layer.get_weights()
    assert k.shape == tup(kernel, rank) + (c // groups, 6) and b.shape == (6,)
    assert [w.name for w in layer.weights] == ["kernel", "bias"]
    ref = ref_conv(np, to_last(x, data_format), k, tup(strides, rank), padding, tup(dilation, rank), groups) + b
    np.testing.assert_allclose(y, from_last(ref, data_format), atol=ATOL, rtol=1e-4)
    # the symbolic shape is the concrete one
    sym = layer(K.Input(shape=shape[1:]))
    assert sym.shape == (None,) + y.shape[1:]


@pytest.mark.parametrize("case", [CONV_CASES[1], CONV_CASES[5], CONV_CASES[8], CONV_CASES[11], CONV_CASES[15]])
def test_conv_gradient_matches_reference(case):
    cls, spatial, kernel, strides, padding, dilation, groups, data_format = case
    rank = len(spatial)
    c = 3 * groups if groups > 1 else 2
    x = rand(*((2,) + spatial + (c,) if data_format == "channels_last" else (2, c) + spatial))
    layer = _conv_layer(cls, kernel, strides, padding, dilation, groups, data_format)
    layer(x)
    got = kernel_grad(layer, x)
    want = jax.jit(jax.grad(lambda k: jnp.sum(ref_conv(jnp, jnp.asarray(to_last(x, data_format)), k, tup(strides, rank),
                                               padding, tup(dilation, rank), groups))))(layer.kernel.value)
    np.testing.assert_allclose(got, np.asarray(want), atol=1e-3, rtol=1e-4)
    assert np.abs(got).sum() > 0
    bias_grad = kernel_grad(layer, x, index=1)   # d sum / d bias = number of output positions per filter
    np.testing.assert_allclose(bias_grad, np.full(6, np.prod(layer(x).shape) / 6), rtol=1e-6)


def test_conv_activation_and_no_bias():
    x = rand(2, 6, 6, 3)
    layer = fast(Conv2D, 4, 3, activation="relu", use_bias=False)
    y = np.asarray(layer(x))
    assert len(layer.weights) == 1
    ref = np.maximum(ref_conv(np, x, layer.get_weights()[0], (1, 1), "valid", (1, 1)), 0)
    np.testing.assert_allclose(y, ref, atol=ATOL)
    assert (y == 0).any() and (y > 0).any()


@pytest.mark.parametrize("cls,kwargs,shape,none_axes", [
    (Conv1D, dict(filters=4, kernel_size=3, padding="causal"), (2, 9, 3), (1,)),
    (Conv2D, dict(filters=4, kernel_size=3, strides=2, padding="same"), (2, 9, 7, 3), (1, 2)),
    (Conv2D, dict(filters=4, kernel_size=3, data_format="channels_first"), (2, 3, 9, 7), (3,)),
    (Conv3D, dict(filters=2, kernel_size=2, strides=(1, 2, 1)), (1, 4, 5, 6, 2), (2,)),
    (Conv2DTranspose, dict(filters=4, kernel_size=3, strides=2, padding="same"), (2, 4, 5, 3), (1, 2)),
    (Conv1DTranspose, dict(filters=4, kernel_size=3, strides=2, output_padding=1), (2, 4, 3), (1,)),
    (DepthwiseConv2D, dict(kernel_size=3, depth_multiplier=2), (2, 6, 7, 3), (1, 2)),
    (SeparableConv2D, dict(filters=5, kernel_size=3, padding="same"), (2, 6, 7, 3), (2,)),
    (SeparableConv1D, dict(filters=5, kernel_size=2, strides=2), (2, 7, 3), (1,)),
    (DepthwiseConv1D, dict(kernel_size=3, data_format="channels_first"), (2, 3, 7), (2,)),
])
def test_symbolic_shapes_with_unknown_dims(cls, kwargs, shape, none_axes):
    check_symbolic(cls, kwargs, shape, none_axes)


@pytest.mark.parametrize("layer,bad_shape,expect", [
    (lambda: Conv2D(4, 3), (5, 5), "ndim=4"),
    (lambda: Conv1D(4, 3), (5, 5, 5), "ndim=3"),
    (lambda: Conv3D(4, 3), (5, 5, 5), "ndim=5"),
    (lambda: Conv2DTranspose(4, 3), (5,), "ndim=4"),
    (lambda: DepthwiseConv2D(3), (5, 5), "ndim=4"),
    (lambda: SeparableConv2D(4, 3), (5, 5, 5, 5), "ndim=4"),
    (lambda: ConvLSTM2D(4, 3), (5, 5, 5), "ndim=5"),
])
def test_wrong_rank_error_names_layer(layer, bad_shape, expect):
    lay = layer()
    with pytest.raises(ValueError) as err:
        lay(K.Input(shape=bad_shape))
    msg = str(err.value)
    assert lay.name in msg and expect in msg and str((None,) + bad_shape) in msg


def test_wrong_channels_and_too_small_input_errors():
    layer = Conv2D(4, 3)
    layer(K.Input(shape=(8, 8, 3)))
    with pytest.raises(ValueError, match=layer.name):
        layer(K.Input(shape=(8, 8, 5)))
    small = Conv2D(4, 5)
    with pytest.raises(ValueError, match=small.name) as err:
        small(K.Input(shape=(3, 8, 1)))
    assert "(None, 3, 8, 1)" in str(err.value)
    with pytest.raises(ValueError, match="groups"):
        Conv2D(4, 3, groups=2)(K.Input(shape=(8, 8, 3)))
    with pytest.raises(ValueError, match="filters"):
        Conv2D(5, 3, groups=2)
    with pytest.raises(ValueError, match="dilation_rate"):
        Conv2D(5, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="padding"):
        Conv2D(5, 3, padding="causal")
    with pytest.raises(ValueError, match="kernel_size"):
        Conv2D(5, (3, 3, 3))
    with pytest.raises(ValueError, match="channel dimension"):
        Conv2D(4, 3)(K.Input(shape=(8, 8, None)))


def test_guide_param_counts_and_shapes():
    conv = Conv2D(16, 3)
    assert conv(K.Input(shape=(28, 28, 1))).shape == (None, 26, 26, 16)
    assert conv.count_params() == 160
    tconv = Conv2DTranspose(16, 3)
    assert tconv(K.Input(shape=(4, 4, 1))).shape == (None, 6, 6, 16)
    assert tconv.count_params() == 160
    assert tconv.kernel.shape == (3, 3, 16, 1)
    sep = SeparableConv2D(8, 3, depth_multiplier=2)
    sep(K.Input(shape=(10, 10, 4)))
    assert sep.count_params() == 3 * 3 * 4 * 2 + 8 * 8 + 8
    dw = DepthwiseConv2D(3, depth_multiplier=3)
    assert dw(K.Input(shape=(10, 10, 4))).shape == (None, 8, 8, 12)
    assert dw.count_params() == 3 * 3 * 4 * 3 + 12


def test_guide_cnn_model():
    inputs = K.Input(shape=(28, 28, 1))
    x = fast(Conv2D, 16, 3, activation="relu")(inputs)
    x = fast(Conv2D, 16, 3, activation="relu")(x)
    from fncompiler.layers.pooling import GlobalMaxPooling2D, MaxPooling2D
    x = MaxPooling2D(3)(x)
    x = fast(Conv2D, 8, 3, activation="relu", padding="same")(x)
    outputs = GlobalMaxPooling2D()(x)
    model = K.Model(inputs, outputs)
    assert outputs.shape == (None, 8)
    assert model.count_params() == 160 + (9 * 16 * 16 + 16) + (9 * 16 * 8 + 8)
    data = rand(2, 28, 28, 1)
    y = np.asarray(model(data))
    h = data
    for layer in model.layers[1:]:
        h = layer(h)
    np.testing.assert_allclose(y, np.asarray(h), atol=1e-5)
    assert y.shape == (2, 8)


@pytest.mark.parametrize("cls,kwargs,shape", [
    (Conv1D, dict(filters=4, kernel_size=3, strides=2, padding="causal", kernel_regularizer="l2",
                  activation="tanh"), (2, 9, 3)),
    (Conv2D, dict(filters=4, kernel_size=(3, 2), dilation_rate=2, groups=2, data_format="channels_first",
                  bias_initializer="ones", kernel_constraint={"class_name": "NonNeg", "config": {}}), (2, 4, 8, 7)),
    (Conv3D, dict(filters=2, kernel_size=2, padding="same", use_bias=False), (1, 4, 5, 3, 2)),
    (Conv2DTranspose, dict(filters=3, kernel_size=3, strides=2, output_padding=1, padding="same",
                           activation="relu"), (2, 4, 5, 2)),
    (Conv3DTranspose, dict(filters=3, kernel_size=2, strides=(1, 2, 1), data_format="channels_first"),
     (1, 2, 3, 3, 2)),
    (DepthwiseConv2D, dict(kernel_size=3, depth_multiplier=2, strides=2, padding="same"), (2, 6, 7, 3)),
    (SeparableConv2D, dict(filters=5, kernel_size=3, depth_multiplier=2, pointwise_regularizer="l1"), (2, 6, 7, 3)),
    (SeparableConv1D, dict(filters=5, kernel_size=2, data_format="channels_first"), (2, 3, 7)),
    (DepthwiseConv1D, dict(kernel_size=3, padding="same"), (2, 7, 3)),
    (ConvLSTM2D, dict(filters=3, kernel_size=3, padding="same", return_sequences=True, go_backwards=True,
                      unit_forget_bias=False, bias_initializer="ones"), (2, 3, 5, 5, 2)),
])
def test_config_roundtrip(cls, kwargs, shape):
    x = rand(*shape)
    layer = fast(cls, init="zeros", **kwargs)
    layer(x)
    randomize(layer)
    clone = roundtrip(layer, x)
    assert [w.shape for w in clone.weights] == [w.shape for w in layer.weights]
    assert [w.name for w in clone.weights] == [w.name for w in layer.weights]


# ----------------------------------------------------------------------------------------------- transposed
TRANSPOSE_CASES = [
    # cls, spatial, kernel, strides, padding, output_padding, dilation, data_format
    (Conv1DTranspose, (5,), 3, 1, "valid", None, 1, "channels_last"),
    (Conv1DTranspose, (5,), 3, 2, "same", None, 1, "channels_last"),
    (Conv1DTranspose, (4,), 2, 3, "valid", None, 1, "channels_first"),   # stride > kernel: zero tail
    (Conv1DTranspose, (5,), 3, 2, "valid", 1, 1, "channels_last"),
    (Conv1DTranspose, (5,), 3, 2, "same", 1, 1, "channels_first"),
    (Conv1DTranspose, (5,), 4, 2, "same", 0, 1, "channels_last"),
    (Conv1DTranspose, (5,), 1, 2, "same", 1, 1, "channels_last"),
    (Conv1DTranspose, (6,), 3, 1, "same", None, 2, "channels_last"),
    (Conv2DTranspose, (4, 5), 3, 2, "same", None, 1, "channels_last"),
    (Conv2DTranspose, (4, 3), (3, 2), (2, 3), "valid", None, 1, "channels_last"),
    (Conv2DTranspose, (4, 4), 4, 2, "same", (1, 0), 1, "channels_first"),
    (Conv2DTranspose, (5, 4), 3, 1, "valid", None, (2, 1), "channels_first"),
    (Conv2DTranspose, (3, 4), 5, 3, "same", (2, 1), 1, "channels_last"),
    (Conv2DTranspose, (4, 4), 2, 2, "valid", 1, 1, "channels_last"),
    (Conv3DTranspose, (3, 2, 3), 2, (2, 1, 2), "same", None, 1, "channels_last"),
    (Conv3DTranspose, (2, 3, 2), 3, 2, "valid", (1, 0, 1), 1, "channels_first"),
]


def _transpose_layer(cls, kernel, strides, padding, output_padding, dilation, data_format):
    return fast(cls, 4, kernel, strides=strides, padding=padding, output_padding=output_padding,
                dilation_rate=dilation, data_format=data_format)


@pytest.mark.parametrize("cls,spatial,kernel,strides,padding,output_padding,dilation,data_format", TRANSPOSE_CASES)
def test_conv_transpose_matches_scatter_reference(cls, spatial, kernel, strides, padding, output_padding, dilation,
                                                  data_format):
    rank = len(spatial)
    c = 3
    shape = (2,) + spatial + (c,) if data_format == "channels_last" else (2, c) + spatial
    x = rand(*shape)
    layer = _transpose_layer(cls, kernel, strides, padding, output_padding, dilation, data_format)
    y = np.asarray(layer(x))
    k, b = layer.get_weights()
    assert k.shape == tup(kernel, rank) + (4, c)
    op = None if output_padding is None else tup(output_padding, rank)
    ref = ref_conv_transpose(np, to_last(x, data_format), k, tup(strides, rank), padding, op, tup(dilation, rank)) + b
    np.testing.assert_allclose(y, from_last(ref, data_format), atol=ATOL, rtol=1e-4)
    # Keras 3 output-size formula, written out per case
    sym = layer(K.Input(shape=shape[1:]))
    assert sym.shape == (None,) + y.shape[1:]


@pytest.mark.parametrize("length,k,s,padding,op,d,expected", [
    (4, 3, 1, "valid", None, 1, 6), (4, 3, 2, "valid", None, 1, 9), (4, 2, 3, "valid", None, 1, 12),
    (4, 3, 2, "same", None, 1, 8), (4, 3, 2, "same", 1, 1, 8), (4, 3, 2, "same", 0, 1, 7),
    (4, 4, 2, "same", 1, 1, 7), (4, 3, 2, "valid", 1, 1, 10), (4, 3, 1, "valid", None, 2, 8),
])
def test_conv_transpose_output_size_formula(length, k, s, padding, op, d, expected):
    layer = Conv1DTranspose(2, k, strides=s, padding=padding, output_padding=op, dilation_rate=d)
    assert layer(K.Input(shape=(length, 1))).shape == (None, expected, 2)
    assert layer(rand(1, length, 1)).shape == (1, expected, 2)


@pytest.mark.parametrize("case", [TRANSPOSE_CASES[4], TRANSPOSE_CASES[8], TRANSPOSE_CASES[13]])
def test_conv_transpose_gradient(case):
    cls, spatial, kernel, strides, padding, output_padding, dilation, data_format = case
    rank = len(spatial)
    x = rand(*((2,) + spatial + (3,) if data_format == "channels_last" else (2, 3) + spatial))
    layer = fast(cls, 4, kernel, strides=strides, padding=padding, output_padding=output_padding,
                 dilation_rate=dilation, data_format=data_format, use_bias=False)
    layer(x)
    op = None if output_padding is None else tup(output_padding, rank)
    xl = jnp.asarray(to_last(x, data_format))

    # a non-linear readout, so the gradient depends on where each contribution lands
    def want(k):
        return jnp.sum(jnp.sin(3 * ref_conv_transpose(jnp, xl, k, tup(strides, rank), padding, op,
                                                      tup(dilation, rank))))

    def got(k):
        out, _ = layer.stateless_call([k], [], x)
        return jnp.sum(jnp.sin(3 * out))
    k0 = layer.kernel.value
    g = np.asarray(jax.grad(got)(k0))
    np.testing.assert_allclose(g, np.asarray(jax.jit(jax.grad(want))(k0)), atol=1e-3, rtol=1e-3)
    assert np.abs(g).sum() > 0


def test_conv_transpose_output_padding_must_be_below_stride():
    with pytest.raises(ValueError, match="output_padding"):
        Conv2DTranspose(3, 3, strides=2, output_padding=2)


# ----------------------------------------------------------------------------------------------- depthwise
DEPTHWISE_CASES = [
    # cls, spatial, kernel, strides, padding, dilation, depth_multiplier, data_format
    (DepthwiseConv2D, (7, 6), 3, 1, "valid", 1, 1, "channels_last"),
    (DepthwiseConv2D, (7, 6), (3, 2), 2, "same", 1, 2, "channels_last"),
    (DepthwiseConv2D, (8, 7), 3, 1, "same", (2, 1), 3, "channels_first"),
    (DepthwiseConv1D, (9,), 3, 2, "valid", 1, 2, "channels_last"),
    (DepthwiseConv1D, (9,), 2, 1, "same", 3, 1, "channels_first"),
]


@pytest.mark.parametrize("cls,spatial,kernel,strides,padding,dilation,dm,data_format", DEPTHWISE_CASES)
def test_depthwise_matches_reference(cls, spatial, kernel, strides, padding, dilation, dm, data_format):
    rank = len(spatial)
    c = 3
    x = rand(*((2,) + spatial + (c,) if data_format == "channels_last" else (2, c) + spatial))
    layer = fast(cls, kernel, strides=strides, padding=padding, dilation_rate=dilation, depth_multiplier=dm,
                 data_format=data_format)
    y = np.asarray(layer(x))
    dk, b = layer.get_weights()
    assert [w.name for w in layer.weights] == ["kernel", "bias"]      # Keras 3's names
    assert layer.depthwise_kernel is layer.kernel
    assert dk.shape == tup(kernel, rank) + (c, dm) and b.shape == (c * dm,)
    ref = ref_depthwise(np, to_last(x, data_format), dk, tup(strides, rank), padding, tup(dilation, rank)) + b
    np.testing.assert_allclose(y, from_last(ref, data_format), atol=ATOL, rtol=1e-4)
    want = jax.jit(jax.grad(lambda k: jnp.sum(ref_depthwise(jnp, jnp.asarray(to_last(x, data_format)), k,
                                                            tup(strides, rank), padding, tup(dilation, rank)) ** 2)))
    values = [w.value for w in layer.trainable_weights]

    def f(k):
        out, _ = layer.stateless_call([k, jnp.zeros_like(values[1])], [], x)
        return jnp.sum(out ** 2)
    np.testing.assert_allclose(np.asarray(jax.grad(f)(values[0])), np.asarray(want(values[0])), atol=1e-3,
                               rtol=1e-3)


SEPARABLE_CASES = [
    (SeparableConv2D, (7, 6), 3, 1, "valid", 1, 1, "channels_last"),
    (SeparableConv2D, (7, 8), 3, 2, "same", 1, 2, "channels_first"),
    (SeparableConv2D, (9, 8), (2, 3), 1, "same", 2, 1, "channels_last"),
    (SeparableConv1D, (9,), 3, 2, "same", 1, 2, "channels_last"),
    (SeparableConv1D, (9,), 3, 1, "valid", 2, 1, "channels_first"),
]


@pytest.mark.parametrize("cls,spatial,kernel,strides,padding,dilation,dm,data_format", SEPARABLE_CASES)
def test_separable_matches_reference(cls, spatial, kernel, strides, padding, dilation, dm, data_format):
    rank = len(spatial)
    c = 3
    x = rand(*((2,) + spatial + (c,) if data_format == "channels_last" else (2, c) + spatial))
    layer = fast(cls, 5, kernel, strides=strides, padding=padding, dilation_rate=dilation, depth_multiplier=dm,
                 data_format=data_format)
    y = np.asarray(layer(x))
    dk, pk, b = layer.get_weights()
    assert [w.name for w in layer.weights] == ["depthwise_kernel", "pointwise_kernel", "bias"]
    assert dk.shape == tup(kernel, rank) + (c, dm)
    assert pk.shape == (1,) * rank + (c * dm, 5) and b.shape == (5,)
    mid = ref_depthwise(np, to_last(x, data_format), dk, tup(strides, rank), padding, tup(dilation, rank))
    ref = np.einsum("...c,cf->...f", mid, pk.reshape(c * dm, 5)) + b
    np.testing.assert_allclose(y, from_last(ref, data_format), atol=ATOL, rtol=1e-4)
    # gradient wrt the pointwise kernel: sum over positions of the depthwise output
    got = kernel_grad(layer, x, index=1)
    want = np.broadcast_to(mid.reshape(-1, c * dm).sum(0)[:, None], (c * dm, 5)).reshape(pk.shape)
    np.testing.assert_allclose(got, want, atol=1e-3, rtol=1e-4)


# ----------------------------------------------------------------------------------------------- ConvLSTM
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def ref_conv_lstm(x, kernel, recurrent_kernel, bias, strides, padding, dilation, mask=None, go_backwards=False,
                  h0=None, c0=None):
    """x: (N, T, *L, C) channels_last. Returns (all outputs (N, T, ...), h, c) with Keras masking rules."""
    rank = x.ndim - 3
    f = recurrent_kernel.shape[-2]
    if go_backwards:
        x = x[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    ones = (1,) * rank
    h = c = None
    prev = None
    outs = []
    for t in range(x.shape[1]):
        zx = ref_conv(np, x[:, t], kernel, strides, padding, dilation) + bias
        if h is None:
            h = np.zeros(zx.shape[:-1] + (f,), np.float32) if h0 is None else h0
            c = np.zeros_like(h) if c0 is None else c0
            prev = np.zeros_like(h)
        z = zx + ref_conv(np, h, recurrent_kernel, ones, "same", ones)
        zi, zf, zc, zo = np.split(z, 4, axis=-1)
        c_new = _sigmoid(zf) * c + _sigmoid(zi) * np.tanh(zc)
        h_new = _sigmoid(zo) * np.tanh(c_new)
        if mask is not None:
            m = mask[:, t].reshape((-1,) + (1,) * (h.ndim - 1))
            h_new, c_new, out = np.where(m, h_new, h), np.where(m, c_new, c), np.where(m, h_new, prev)
        else:
            out = h_new
        h, c, prev = h_new, c_new, out
        outs.append(out)
    return np.stack(outs, 1), h, c


@pytest.mark.parametrize("kwargs,shape", [
    (dict(kernel_size=3, padding="same"), (2, 4, 5, 6, 2)),
    (dict(kernel_size=(3, 2), padding="valid", strides=(2, 1)), (2, 3, 7, 6, 2)),
    (dict(kernel_size=3, padding="same", dilation_rate=2, go_backwards=True), (2, 3, 6, 6, 3)),
    (dict(kernel_size=2, padding="valid", data_format="channels_first"), (1, 3, 2, 5, 4)),
])
def test_conv_lstm2d_matches_reference(kwargs, shape):
    df = kwargs.get("data_format", "channels_last")
    x = rand(*shape)
    layer = fast(ConvLSTM2D, 3, return_sequences=True, return_state=True, unit_forget_bias=False, **kwargs)
    seq, h, c = (np.asarray(a) for a in layer(x))
    k, rk, b = layer.get_weights()
    cin = shape[-1] if df == "channels_last" else shape[2]
    assert [w.name for w in layer.weights] == ["kernel", "recurrent_kernel", "bias"]
    assert k.shape == tup(kwargs["kernel_size"], 2) + (cin, 12)
    assert rk.shape == tup(kwargs["kernel_size"], 2) + (3, 12) and b.shape == (12,)
    ref_seq, ref_h, ref_c = ref_conv_lstm(to_last(x, df, lead=2), k, rk, b, tup(kwargs.get("strides", 1), 2),
                                          kwargs["padding"], tup(kwargs.get("dilation_rate", 1), 2),
                                          go_backwards=kwargs.get("go_backwards", False))
    np.testing.assert_allclose(seq, from_last(ref_seq, df, lead=2), atol=ATOL)
    np.testing.assert_allclose(h, from_last(ref_h, df), atol=ATOL)
    np.testing.assert_allclose(c, from_last(ref_c, df), atol=ATOL)
    # last output == last h; symbolic shapes equal concrete ones
    np.testing.assert_allclose(seq[:, -1], h, atol=1e-6)
    syms = fast(ConvLSTM2D, 3, return_sequences=True, return_state=True, **kwargs)(K.Input(shape=(None,) + shape[2:]))
    assert [s.shape for s in syms] == [(None, None) + seq.shape[2:], (None,) + h.shape[1:], (None,) + c.shape[1:]]


def test_conv_lstm_default_output_bias_and_mask():
    x = rand(2, 4, 5, 5, 2)
    layer = fast(ConvLSTM2D, 2, 3, padding="same", bias_initializer="zeros")
    y = np.asarray(layer(x))
    assert y.shape == (2, 5, 5, 2)
    np.testing.assert_array_equal(layer.bias.numpy(), [0, 0, 1, 1, 0, 0, 0, 0])   # unit_forget_bias
    k, rk, b = layer.get_weights()
    seq, h, _ = ref_conv_lstm(x, k, rk, b, (1, 1), "same", (1, 1))
    np.testing.assert_allclose(y, h, atol=ATOL)
    mask = np.array([[True, True, False, True], [True, False, False, False]])
    ym = np.asarray(layer(x, mask=mask))
    _, hm, _ = ref_conv_lstm(x, k, rk, b, (1, 1), "same", (1, 1), mask=mask)
    np.testing.assert_allclose(ym, hm, atol=ATOL)
    assert not np.allclose(ym, y)
    seq_layer = fast(ConvLSTM2D, 2, 3, padding="same", return_sequences=True)
    seq_layer(x)
    seq_layer.set_weights([k, rk, b])
    ref_seq, _, _ = ref_conv_lstm(x, k, rk, b, (1, 1), "same", (1, 1), mask=mask)
    np.testing.assert_allclose(np.asarray(seq_layer(x, mask=mask)), ref_seq, atol=ATOL)
    assert seq_layer.compute_mask(x, mask) is mask and layer.compute_mask(x, mask) is None


def test_conv_lstm_initial_state_and_gradient():
    x = rand(2, 3, 4, 4, 2)
    h0, c0 = rand(2, 4, 4, 3), rand(2, 4, 4, 3)
    layer = fast(ConvLSTM2D, 3, 3, padding="same", unit_forget_bias=False)
    y = np.asarray(layer(x, initial_state=[h0, c0]))
    k, rk, b = layer.get_weights()
    _, ref_h, _ = ref_conv_lstm(x, k, rk, b, (1, 1), "same", (1, 1), h0=h0, c0=c0)
    np.testing.assert_allclose(y, ref_h, atol=ATOL)
    # finite-difference check of d sum(out) / d recurrent_kernel at a few entries
    g = kernel_grad(layer, x, index=1)
    values = [w.value for w in layer.trainable_weights]

    def loss(rk_):
        out, _ = layer.stateless_call([values[0], rk_, values[2]], [], x)
        return float(jnp.sum(out))
    eps = 1e-2
    for idx in [(0, 0, 0, 0), (1, 2, 1, 5), (2, 1, 2, 11)]:
        plus = values[1].at[idx].add(eps)
        minus = values[1].at[idx].add(-eps)
        fd = (loss(plus) - loss(minus)) / (2 * eps)
        assert abs(fd - g[idx]) < 2e-2 * max(1.0, abs(fd)), (idx, fd, g[idx])
    assert np.abs(g).sum() > 0


def test_conv_lstm_1d_3d_and_dropout():
    x1 = rand(2, 3, 6, 2)
    l1 = fast(ConvLSTM1D, 2, 3, return_sequences=True)
    y1 = np.asarray(l1(x1))
    k, rk, b = l1.get_weights()
    assert k.shape == (3, 2, 8) and rk.shape == (3, 2, 8)
    np.testing.assert_allclose(y1, ref_conv_lstm(x1, k, rk, b, (1,), "valid", (1,))[0], atol=ATOL)
    x3 = rand(1, 2, 3, 4, 3, 1)
    l3 = fast(ConvLSTM3D, 2, 2, padding="same")
    y3 = np.asarray(l3(x3))
    k, rk, b = l3.get_weights()
    np.testing.assert_allclose(y3, ref_conv_lstm(x3, k, rk, b, (1, 1, 1), "same", (1, 1, 1))[1], atol=ATOL)
    drop = fast(ConvLSTM2D, 2, 3, padding="same", dropout=0.5, recurrent_dropout=0.5, seed=1)
    x = rand(2, 3, 4, 4, 2)
    inference = np.asarray(drop(x))
    trained = np.asarray(drop(x, training=True))
    assert not np.allclose(inference, trained)
    np.testing.assert_allclose(np.asarray(drop(x, training=False)), inference, atol=1e-6)
    with pytest.raises(NotImplementedError, match="stateful"):
        ConvLSTM2D(2, 3, stateful=True)


def test_conv_lstm_runs_under_jit():
    x = rand(2, 5, 4, 4, 2)
    layer = fast(ConvLSTM2D, 2, 3, padding="same", return_sequences=True)
    layer(x)
    values = [w.value for w in layer.trainable_weights]
    f = jax.jit(lambda v, x: layer.stateless_call(v, [], x)[0])
    np.testing.assert_allclose(np.asarray(f(values, x)), np.asarray(layer(x)), atol=1e-5)
    jaxpr = jax.make_jaxpr(lambda v: layer.stateless_call(v, [], x)[0])(values)
    assert _count_primitive(jaxpr.jaxpr, "scan") == 1


def _count_primitive(jaxpr, name):
    n = 0
    for eqn in jaxpr.eqns:
        n += eqn.primitive.name == name
        for v in eqn.params.values():
            inner = getattr(v, "jaxpr", v)
            if hasattr(inner, "eqns"):
                n += _count_primitive(inner, name)
    return n


# ------------------------------------------------------------- transposed convolutions padded explicitly
_TRANSPOSE_CASES = [(3, 1, 1, "valid", None), (3, 2, 1, "valid", None), (3, 2, 1, "same", 1), (4, 3, 1, "valid", 2),
                    (3, 1, 2, "valid", None), (2, 2, 1, "same", None), (5, 1, 1, "valid", None)]


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_explicitly_padded_transpose_matches_lax_conv_transpose(rank, data_format):
    """`_conv_transpose_padded` (lax.pad for the input dilation and padding, then a 'valid' convolution) computes
    what lax.conv_transpose(transpose_kernel=True) does: values and both gradients."""
    import jax
    from jax import lax
    from fncompiler.layers import convolutional as C
    rng = np.random.default_rng(rank)
    dn = C.dimension_numbers(rank, data_format)
    for ks, st, dil, padding, outpad in _TRANSPOSE_CASES:
        spatial = (5,) * rank
        shape = (2,) + spatial + (3,) if data_format == "channels_last" else (2, 3) + spatial
        x = jnp.asarray(rng.normal(size=shape).astype(np.float32))
        k = jnp.asarray(rng.normal(size=(ks,) * rank + (4, 3)).astype(np.float32))
        pads = [C.conv_transpose_padding(ks, st, padding, outpad, dil)] * rank
        strides, dilation = (st,) * rank, (dil,) * rank

        def ref(x, k):
            return lax.conv_transpose(x, k, strides=strides, padding=pads, rhs_dilation=dilation,
                                      dimension_numbers=dn, transpose_kernel=True)

        def got(x, k):
            return C._conv_transpose_padded(x, k, strides, pads, dilation, rank, data_format)
        np.testing.assert_allclose(np.asarray(got(x, k)), np.asarray(ref(x, k)), rtol=1e-5, atol=1e-5)
        loss = lambda f: (lambda x, k: jnp.sum(jnp.sin(f(x, k))))
        for g_got, g_ref in zip(jax.grad(loss(got), argnums=(0, 1))(x, k), jax.grad(loss(ref), argnums=(0, 1))(x, k)):
            np.testing.assert_allclose(np.asarray(g_got), np.asarray(g_ref), rtol=1e-4, atol=1e-4)


def test_transposed_convolution_pads_explicitly_only_where_it_measured_faster(monkeypatch):
    import jax
    from fncompiler.layers import convolutional as C
    if jax.default_backend() != "cpu":
        pytest.skip("an XLA:CPU choice")
    assert C._pad_explicitly([(2, 2), (2, 2)], (3, 3), (1, 1))         # 'valid': k - 1 > half the window
    assert not C._pad_explicitly([(1, 1), (1, 1)], (3, 3), (1, 1))     # 'same'
    assert not C._pad_explicitly([(2, 2)], (5,), (1,))
    assert C._pad_explicitly([(4, 4)], (3,), (2,))                    # dilated window 5: 4 > half of it
    assert not C._pad_explicitly([(2, 2)], (3,), (2,))
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert not C._pad_explicitly([(2, 2), (2, 2)], (3, 3), (1, 1))     # other backends pad in the convolution


def test_valid_conv2d_transpose_layer_uses_the_padded_form_and_matches_numpy():
    import jax
    layer = Conv2DTranspose(4, 3, padding="valid")
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 3)).astype(np.float32)
    y = np.asarray(layer(x))
    k = np.asarray(layer.kernel.value)                   # (3, 3, filters, in)
    expected = np.zeros((2, 7, 7, 4), np.float32)        # scatter form of the transposed convolution
    for i in range(5):
        for j in range(5):
            expected[:, i:i + 3, j:j + 3, :] += np.einsum("bc,hwfc->bhwf", x[:, i, j, :], k)
    np.testing.assert_allclose(y, expected + np.asarray(layer.bias.value), rtol=1e-5, atol=1e-5)
    prims = [e.primitive.name for e in jax.make_jaxpr(lambda a: layer(a))(x).jaxpr.eqns]
    assert ("pad" in prims) == (jax.default_backend() == "cpu")
