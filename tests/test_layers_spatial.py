"""UpSampling, ZeroPadding and Cropping layers vs NumPy references (index arithmetic, interpolation matrices)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fncompiler as K
from fncompiler.layers.spatial import (Cropping1D, Cropping2D, Cropping3D, UpSampling1D, UpSampling2D, UpSampling3D,
                                       ZeroPadding1D, ZeroPadding2D, ZeroPadding3D)

RNG = np.random.default_rng(2)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def spatial_axes(rank, data_format):
    return tuple(range(1, rank + 1)) if data_format == "channels_last" else tuple(range(2, rank + 2))


def input_grad(layer, x, w):
    """d sum(w * layer(x)) / dx."""
    return np.asarray(jax.grad(lambda a: jnp.sum(jnp.asarray(w) * layer(a)))(jnp.asarray(x)))


def check_unknown_dims(layer, shape, none_axes):
    sym = layer(K.Input(shape=tuple(None if i + 1 in none_axes else d for i, d in enumerate(shape[1:]))))
    y = layer(rand(*shape))
    assert sym.dtype == "float32"
    assert sym.shape == tuple(None if i == 0 or i in none_axes else d for i, d in enumerate(y.shape))


def roundtrip(layer, x):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == {**config, "name": clone.name}
    np.testing.assert_array_equal(np.asarray(clone(x)), np.asarray(layer(x)))


# ----------------------------------------------------------------------------------------------- UpSampling
def ref_nearest(x, sizes, axes):
    """out[..., i, ...] = x[..., i // size, ...] along each upsampled axis."""
    for a, s in zip(axes, sizes):
        x = np.take(x, np.arange(x.shape[a] * s) // s, axis=a)
    return x


def nearest_adjoint(w, sizes, axes):
    """Sum each size-long block of w along the upsampled axes (the transpose of repetition)."""
    for a, s in zip(axes, sizes):
        shape = list(w.shape)
        shape[a:a + 1] = [shape[a] // s, s]
        w = w.reshape(shape).sum(axis=a + 1)
    return w


@pytest.mark.parametrize("cls,size,shape,data_format", [
    (UpSampling1D, 2, (2, 4, 3), "channels_last"),
    (UpSampling1D, 3, (2, 3, 2), "channels_last"),
    (UpSampling2D, 2, (2, 3, 4, 2), "channels_last"),
    (UpSampling2D, (3, 2), (2, 2, 3, 2), "channels_first"),
    (UpSampling3D, 2, (1, 2, 3, 2, 2), "channels_last"),
    (UpSampling3D, (1, 2, 3), (1, 2, 2, 3, 2), "channels_first"),
])
def test_upsampling_nearest(cls, size, shape, data_format):
    rank = len(shape) - 2
    sizes = (size,) * rank if isinstance(size, int) else size
    layer = cls(size) if cls is UpSampling1D else cls(size, data_format=data_format)
    x = rand(*shape)
    y = np.asarray(layer(x))
    axes = spatial_axes(rank, data_format)
    np.testing.assert_array_equal(y, ref_nearest(x, sizes, axes))
    assert layer(K.Input(shape=shape[1:])).shape == (None,) + y.shape[1:]
    w = rand(*y.shape)
    np.testing.assert_allclose(input_grad(layer, x, w), nearest_adjoint(w, sizes, axes), atol=1e-5)
    roundtrip(layer, x)
    check_unknown_dims(layer, shape, axes[:1])


def bilinear_matrix(n_in, scale):
    """Rows: output pixels; half-pixel centres, source clamped to [0, n_in - 1] (TF2 / jax.image.resize)."""
    n_out = n_in * scale
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        src = min(max((i + 0.5) / scale - 0.5, 0.0), n_in - 1)
        lo = int(np.floor(src))
        hi = min(lo + 1, n_in - 1)
        frac = src - lo
        m[i, lo] += 1 - frac
        m[i, hi] += frac
    return m


@pytest.mark.parametrize("size,shape,data_format", [
    (2, (2, 3, 4, 2), "channels_last"),
    ((3, 2), (1, 4, 3, 2), "channels_last"),
    ((2, 4), (2, 2, 3, 5), "channels_first"),
])
def test_upsampling2d_bilinear(size, shape, data_format):
    sizes = (size, size) if isinstance(size, int) else size
    layer = UpSampling2D(size, data_format=data_format, interpolation="bilinear")
    x = rand(*shape)
    y = np.asarray(layer(x))
    xl = x if data_format == "channels_last" else np.moveaxis(x, 1, -1)
    mh = bilinear_matrix(xl.shape[1], sizes[0])
    mw = bilinear_matrix(xl.shape[2], sizes[1])
    ref = np.einsum("ih,jw,nhwc->nijc", mh, mw, xl)
    ref = ref if data_format == "channels_last" else np.moveaxis(ref, -1, 1)
    np.testing.assert_allclose(y, ref, atol=1e-5)
    assert not np.allclose(y, ref_nearest(x, sizes, spatial_axes(2, data_format)))
    assert layer(K.Input(shape=shape[1:])).shape == (None,) + y.shape[1:]
    w = rand(*y.shape)
    wl = w if data_format == "channels_last" else np.moveaxis(w, 1, -1)
    gref = np.einsum("ih,jw,nijc->nhwc", mh, mw, wl)
    gref = gref if data_format == "channels_last" else np.moveaxis(gref, -1, 1)
    np.testing.assert_allclose(input_grad(layer, x, w), gref, atol=1e-4)
    roundtrip(layer, x)
    check_unknown_dims(layer, shape, (1,))


def test_upsampling2d_other_interpolations_and_errors():
    x = np.full((1, 3, 3, 2), 1.5, np.float32)
    for method in ("bicubic", "lanczos3", "lanczos5"):
        y = np.asarray(UpSampling2D(2, interpolation=method)(x))
        assert y.shape == (1, 6, 6, 2)
        np.testing.assert_allclose(y, 1.5, atol=1e-5)   # interpolating a constant gives the constant
    with pytest.raises(ValueError, match="interpolation"):
        UpSampling2D(2, interpolation="area")


def test_guide_upsampling_shape():
    layer = UpSampling2D(3)
    assert layer(K.Input(shape=(8, 8, 32))).shape == (None, 24, 24, 32)
    assert layer.size == (3, 3) and layer.count_params() == 0
    assert UpSampling1D(4)(K.Input(shape=(5, 2))).shape == (None, 20, 2)
    assert UpSampling3D((1, 2, 3))(K.Input(shape=(2, 2, 2, 1))).shape == (None, 2, 4, 6, 1)


# ----------------------------------------------------------------------------------------------- ZeroPadding
def pairs_of(value, rank):
    if isinstance(value, int):
        return ((value, value),) * rank
    return tuple((v, v) if isinstance(v, int) else tuple(v) for v in value)


def ref_zero_pad(x, pads, axes):
    """A zero array of the padded shape with x written at offset `before` on each padded axis."""
    shape = list(x.shape)
    index = [slice(None)] * x.ndim
    for a, (lo, hi) in zip(axes, pads):
        shape[a] += lo + hi
        index[a] = slice(lo, lo + x.shape[a])
    out = np.zeros(shape, x.dtype)
    out[tuple(index)] = x
    return out, tuple(index)


@pytest.mark.parametrize("cls,padding,shape,data_format", [
    (ZeroPadding1D, 2, (2, 4, 3), "channels_last"),
    (ZeroPadding1D, (0, 3), (2, 4, 3), "channels_last"),
    (ZeroPadding2D, 1, (2, 3, 4, 2), "channels_last"),
    (ZeroPadding2D, (2, 0), (2, 3, 4, 2), "channels_first"),
    (ZeroPadding2D, ((1, 2), (0, 3)), (1, 3, 2, 2), "channels_last"),
    (ZeroPadding3D, 1, (1, 2, 3, 2, 2), "channels_last"),
    (ZeroPadding3D, ((0, 1), (2, 0), (1, 1)), (1, 2, 2, 3, 2), "channels_first"),
])
def test_zero_padding(cls, padding, shape, data_format):
    rank = len(shape) - 2
    layer = cls(padding, data_format=data_format)
    x = rand(*shape)
    y = np.asarray(layer(x))
    axes = spatial_axes(rank, data_format)
    pads = (pairs_of(padding, 1)[0],) if rank == 1 and isinstance(padding, int) else \
        ((tuple(padding),) if rank == 1 else pairs_of(padding, rank))
    ref, index = ref_zero_pad(x, pads, axes)
    np.testing.assert_array_equal(y, ref)
    assert layer(K.Input(shape=shape[1:])).shape == (None,) + y.shape[1:]
    w = rand(*y.shape)
    np.testing.assert_allclose(input_grad(layer, x, w), w[index], atol=1e-6)
    roundtrip(layer, x)
    check_unknown_dims(layer, shape, axes[-1:])


# ----------------------------------------------------------------------------------------------- Cropping
@pytest.mark.parametrize("cls,cropping,shape,data_format", [
    (Cropping1D, (1, 2), (2, 6, 3), "channels_last"),
    (Cropping1D, 2, (2, 6, 3), "channels_last"),
    (Cropping2D, 1, (2, 5, 4, 2), "channels_last"),
    (Cropping2D, ((2, 0), (1, 2)), (2, 2, 5, 6), "channels_first"),
    (Cropping2D, (0, 1), (1, 3, 4, 2), "channels_last"),
    (Cropping3D, 1, (1, 4, 3, 5, 2), "channels_last"),
    (Cropping3D, ((0, 1), (2, 0), (1, 2)), (1, 2, 3, 4, 5), "channels_first"),
])
def test_cropping(cls, cropping, shape, data_format):
    rank = len(shape) - 2
    layer = cls(cropping) if cls is Cropping1D else cls(cropping, data_format=data_format)
    x = rand(*shape)
    y = np.asarray(layer(x))
    axes = spatial_axes(rank, data_format)
    crops = ((cropping, cropping),) if rank == 1 and isinstance(cropping, int) else \
        ((tuple(cropping),) if rank == 1 else pairs_of(cropping, rank))
    ref = x
    for a, (lo, hi) in zip(axes, crops):     # keep indices lo .. size - hi - 1, by index list
        ref = np.take(ref, np.arange(lo, x.shape[a] - hi), axis=a)
    np.testing.assert_array_equal(y, ref)
    assert layer(K.Input(shape=shape[1:])).shape == (None,) + y.shape[1:]
    # the gradient of cropping is zero-padding of the upstream gradient
    w = rand(*y.shape)
    gref, _ = ref_zero_pad(w, crops, axes)
    np.testing.assert_allclose(input_grad(layer, x, w), gref, atol=1e-6)
    roundtrip(layer, x)
    check_unknown_dims(layer, shape, axes[:1])


def test_cropping_too_much_names_layer():
    layer = Cropping2D(((2, 2), (0, 0)))
    with pytest.raises(ValueError, match=layer.name) as err:
        layer(K.Input(shape=(4, 5, 1)))
    assert "(None, 4, 5, 1)" in str(err.value)
    layer1 = Cropping1D((3, 3))
    with pytest.raises(ValueError, match=layer1.name):
        layer1(np.zeros((1, 5, 2), np.float32))
    with pytest.raises(ValueError, match="cropping"):
        Cropping2D(((1, 2, 3), (0, 0)))
    with pytest.raises(ValueError, match="padding"):
        ZeroPadding2D((1, 2, 3))
    with pytest.raises(ValueError, match="padding"):
        ZeroPadding2D(-1)


@pytest.mark.parametrize("layer,bad_shape,expect", [
    (lambda: UpSampling2D(2), (5, 5), "ndim=4"),
    (lambda: UpSampling1D(2), (5, 5, 5), "ndim=3"),
    (lambda: UpSampling3D(2), (5, 5, 5), "ndim=5"),
    (lambda: ZeroPadding2D(1), (5,), "ndim=4"),
    (lambda: ZeroPadding1D(1), (5, 5, 5), "ndim=3"),
    (lambda: Cropping3D(1), (5, 5, 5), "ndim=5"),
    (lambda: Cropping2D(1), (5, 5), "ndim=4"),
])
def test_wrong_rank_error_names_layer(layer, bad_shape, expect):
    lay = layer()
    with pytest.raises(ValueError) as err:
        lay(K.Input(shape=bad_shape))
    assert lay.name in str(err.value) and expect in str(err.value) and str((None,) + bad_shape) in str(err.value)


def test_spatial_layers_in_a_model():
    inputs = K.Input(shape=(6, 6, 2))
    x = ZeroPadding2D(1)(inputs)                 # 8 x 8
    x = Cropping2D(((1, 0), (0, 1)))(x)          # 7 x 7
    outputs = UpSampling2D(2, interpolation="bilinear")(x)
    model = K.Model(inputs, outputs)
    assert outputs.shape == (None, 14, 14, 2)
    data = rand(2, 6, 6, 2)
    h = np.pad(data, ((0, 0), (1, 1), (1, 1), (0, 0)))[:, 1:, :-1]
    ref = np.einsum("ih,jw,nhwc->nijc", bilinear_matrix(7, 2), bilinear_matrix(7, 2), h)
    np.testing.assert_allclose(np.asarray(model(data)), ref, atol=1e-5)
