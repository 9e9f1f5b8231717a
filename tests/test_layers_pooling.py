"""Pooling layers vs NumPy references (explicit window loops over a NaN-padded input)."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fncompiler as K
from fncompiler.layers.layer import Layer
from fncompiler.layers.pooling import (AveragePooling1D, AveragePooling2D, AveragePooling3D, GlobalAveragePooling1D,
                                       GlobalAveragePooling2D, GlobalAveragePooling3D, GlobalMaxPooling1D,
                                       GlobalMaxPooling2D, GlobalMaxPooling3D, MaxPooling1D, MaxPooling2D,
                                       MaxPooling3D)

RNG = np.random.default_rng(1)


def rand(*shape):
    # distinct values, so the max of every window is unique and the max-pool gradient is well defined
    return RNG.permutation(np.prod(shape)).reshape(shape).astype(np.float32) / np.prod(shape) - 0.5


def tup(v, n):
    return (v,) * n if isinstance(v, int) else tuple(v)


def to_last(x, data_format):
    return x if data_format == "channels_last" else np.moveaxis(x, 1, -1)


def from_last(x, data_format):
    return x if data_format == "channels_last" else np.moveaxis(x, -1, 1)


def windows(spatial, pool, strides, padding):
    """For each output position: the per-axis index ranges of its window, clipped to the input."""
    rank = len(spatial)
    if padding == "valid":
        out = [(spatial[i] - pool[i]) // strides[i] + 1 for i in range(rank)]
        before = [0] * rank
    else:
        out = [-(-spatial[i] // strides[i]) for i in range(rank)]
        before = [max((out[i] - 1) * strides[i] + pool[i] - spatial[i], 0) // 2 for i in range(rank)]
    result = {}
    for pos in itertools.product(*[range(o) for o in out]):
        ranges = []
        for i, p in enumerate(pos):
            lo = p * strides[i] - before[i]
            ranges.append([j for j in range(lo, lo + pool[i]) if 0 <= j < spatial[i]])
        result[pos] = ranges
    return out, result


def ref_pool(x, pool, strides, padding, mode):
    """x channels_last (N, *L, C). Padding never takes part: max ignores it, average divides by real inputs."""
    spatial = x.shape[1:-1]
    out_shape, wins = windows(spatial, pool, strides, padding)
    out = np.zeros((x.shape[0],) + tuple(out_shape) + (x.shape[-1],), np.float32)
    for pos, ranges in wins.items():
        block = x[(slice(None),) + np.ix_(*ranges) + (slice(None),)] if len(ranges) > 1 else \
            x[:, ranges[0], :]
        block = block.reshape(x.shape[0], -1, x.shape[-1])
        out[(slice(None),) + pos + (slice(None),)] = block.max(1) if mode == "max" else block.mean(1)
    return out


def ref_pool_grad(x, pool, strides, padding, mode):
    """d sum(pool(x)) / dx: +1 at each window's argmax (max), +1/count over each window (average)."""
    spatial = x.shape[1:-1]
    _, wins = windows(spatial, pool, strides, padding)
    grad = np.zeros_like(x)
    for ranges in wins.values():
        idx = list(itertools.product(*ranges))
        for n in range(x.shape[0]):
            for c in range(x.shape[-1]):
                if mode == "max":
                    vals = [x[(n,) + p + (c,)] for p in idx]
                    grad[(n,) + idx[int(np.argmax(vals))] + (c,)] += 1
                else:
                    for p in idx:
                        grad[(n,) + p + (c,)] += 1.0 / len(idx)
    return grad


POOL_CASES = [
    # cls, spatial, pool, strides, padding, data_format
    (MaxPooling1D, (9,), 2, None, "valid", "channels_last"),
    (MaxPooling1D, (9,), 3, 2, "same", "channels_first"),
    (AveragePooling1D, (8,), 3, 1, "same", "channels_last"),
    (AveragePooling1D, (9,), 2, 3, "valid", "channels_first"),
    (MaxPooling2D, (7, 6), 2, None, "valid", "channels_last"),
    (MaxPooling2D, (7, 6), (3, 2), (2, 1), "same", "channels_last"),
    (MaxPooling2D, (5, 7), 3, 2, "same", "channels_first"),
    (AveragePooling2D, (7, 6), 2, None, "valid", "channels_first"),
    (AveragePooling2D, (7, 5), 3, 2, "same", "channels_last"),
    (AveragePooling2D, (6, 6), (2, 3), (1, 2), "same", "channels_first"),
    (MaxPooling3D, (4, 5, 4), 2, None, "valid", "channels_last"),
    (MaxPooling3D, (3, 5, 4), (2, 3, 2), (1, 2, 2), "same", "channels_first"),
    (AveragePooling3D, (4, 5, 3), 2, (2, 1, 1), "same", "channels_last"),
    (AveragePooling3D, (4, 4, 5), (2, 2, 3), None, "valid", "channels_first"),
]


@pytest.mark.parametrize("cls,spatial,pool,strides,padding,data_format", POOL_CASES)
def test_pooling_matches_reference(cls, spatial, pool, strides, padding, data_format):
    rank = len(spatial)
    shape = (2,) + spatial + (3,) if data_format == "channels_last" else (2, 3) + spatial
    x = rand(*shape)
    layer = cls(pool, strides=strides, padding=padding, data_format=data_format)
    y = np.asarray(layer(x))
    mode = "max" if "Max" in cls.__name__ else "average"
    p = tup(pool, rank)
    s = p if strides is None else tup(strides, rank)
    xl = to_last(x, data_format)
    np.testing.assert_allclose(y, from_last(ref_pool(xl, p, s, padding, mode), data_format), atol=1e-6)
    assert layer.weights == [] and y.dtype == np.float32
    # symbolic shape == concrete shape; strides default to pool_size
    assert layer(K.Input(shape=shape[1:])).shape == (None,) + y.shape[1:]
    assert layer.strides == s
    # gradient wrt the input
    g = np.asarray(jax.grad(lambda a: jnp.sum(layer(a)))(jnp.asarray(x)))
    np.testing.assert_allclose(to_last(g, data_format), ref_pool_grad(xl, p, s, padding, mode), atol=1e-5)


def test_average_same_padding_excludes_padding():
    x = np.ones((1, 5, 5, 1), np.float32)
    y = np.asarray(AveragePooling2D(3, strides=2, padding="same")(x))
    np.testing.assert_allclose(y, np.ones((1, 3, 3, 1)), atol=1e-6)   # zeros in the padding would lower the edges
    y = np.asarray(MaxPooling2D(3, strides=2, padding="same")(-x))
    np.testing.assert_allclose(y, -np.ones((1, 3, 3, 1)))             # padding never wins a max


@pytest.mark.parametrize("cls,kwargs,shape,none_axes", [
    (MaxPooling1D, dict(pool_size=3, padding="same"), (2, 10, 3), (1,)),
    (AveragePooling2D, dict(pool_size=2), (2, 9, 7, 3), (1, 2)),
    (MaxPooling2D, dict(pool_size=2, strides=1, data_format="channels_first"), (2, 3, 9, 7), (2,)),
    (AveragePooling3D, dict(pool_size=2, padding="same"), (1, 5, 4, 3, 2), (1, 3)),
])
def test_pooling_unknown_dims(cls, kwargs, shape, none_axes):
    sym_shape = [None if i + 1 in none_axes else d for i, d in enumerate(shape[1:])]
    layer = cls(**kwargs)
    sym = layer(K.Input(shape=tuple(sym_shape)))
    y = layer(rand(*shape))
    assert sym.dtype == "float32"
    assert sym.shape == tuple(None if i == 0 or i in none_axes else d for i, d in enumerate(y.shape))


def test_guide_pooling_shapes():
    assert MaxPooling2D(3)(K.Input(shape=(24, 24, 32))).shape == (None, 8, 8, 32)
    assert MaxPooling2D()(K.Input(shape=(24, 24, 32))).shape == (None, 12, 12, 32)
    assert GlobalMaxPooling2D()(K.Input(shape=(8, 8, 32))).shape == (None, 32)
    assert GlobalAveragePooling2D()(K.Input(shape=(8, 8, 32))).shape == (None, 32)
    assert GlobalAveragePooling2D(keepdims=True)(K.Input(shape=(8, 8, 32))).shape == (None, 1, 1, 32)
    assert GlobalMaxPooling2D(data_format="channels_first", keepdims=True)(
        K.Input(shape=(32, 8, 8))).shape == (None, 32, 1, 1)
    layer = MaxPooling2D(3)
    layer(K.Input(shape=(24, 24, 32)))
    assert layer.count_params() == 0


@pytest.mark.parametrize("layer,bad_shape,expect", [
    (lambda: MaxPooling2D(2), (5, 5), "ndim=4"),
    (lambda: AveragePooling1D(2), (5, 5, 5), "ndim=3"),
    (lambda: MaxPooling3D(2), (5, 5, 5), "ndim=5"),
    (lambda: GlobalAveragePooling2D(), (5, 5), "ndim=4"),
    (lambda: GlobalMaxPooling1D(), (5,), "ndim=3"),
    (lambda: GlobalAveragePooling3D(), (5, 5, 5), "ndim=5"),
])
def test_wrong_rank_error_names_layer(layer, bad_shape, expect):
    lay = layer()
    with pytest.raises(ValueError) as err:
        lay(K.Input(shape=bad_shape))
    assert lay.name in str(err.value) and expect in str(err.value) and str((None,) + bad_shape) in str(err.value)


def test_pool_too_large_and_bad_arguments():
    layer = MaxPooling2D(4)
    with pytest.raises(ValueError, match=layer.name) as err:
        layer(K.Input(shape=(3, 8, 1)))
    assert "(None, 3, 8, 1)" in str(err.value)
    assert MaxPooling2D(4, padding="same")(K.Input(shape=(3, 8, 1))).shape == (None, 1, 2, 1)
    with pytest.raises(ValueError, match="padding"):
        MaxPooling2D(2, padding="causal")
    with pytest.raises(ValueError, match="pool_size"):
        MaxPooling2D((2, 2, 2))
    with pytest.raises(ValueError, match="data_format"):
        MaxPooling2D(2, data_format="NHWC")


GLOBAL_CASES = [
    (GlobalMaxPooling1D, (2, 5, 3)), (GlobalAveragePooling1D, (2, 5, 3)),
    (GlobalMaxPooling2D, (2, 4, 5, 3)), (GlobalAveragePooling2D, (2, 4, 5, 3)),
    (GlobalMaxPooling3D, (2, 3, 4, 2, 3)), (GlobalAveragePooling3D, (2, 3, 4, 2, 3)),
]


@pytest.mark.parametrize("cls,shape", GLOBAL_CASES)
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling(cls, shape, data_format, keepdims):
    x = rand(*shape)
    layer = cls(data_format=data_format, keepdims=keepdims)
    y = np.asarray(layer(x))
    rank = len(shape) - 2
    axes = tuple(range(1, rank + 1)) if data_format == "channels_last" else tuple(range(2, rank + 2))
    reduce = np.max if "Max" in cls.__name__ else np.mean
    ref = x
    for a in sorted(axes, reverse=True):        # one axis at a time, by hand
        ref = reduce(ref, axis=a, keepdims=keepdims)
    np.testing.assert_allclose(y, ref, atol=1e-6)
    sym = layer(K.Input(shape=tuple(None if i + 1 in axes else d for i, d in enumerate(shape[1:]))))
    assert sym.shape == (None,) + y.shape[1:]
    clone = cls.from_config(layer.get_config())
    np.testing.assert_allclose(np.asarray(clone(x)), y)
    assert clone.keepdims == keepdims and clone.data_format == data_format


def test_global_pooling_gradients():
    x = rand(2, 4, 3)
    g = np.asarray(jax.grad(lambda a: jnp.sum(GlobalAveragePooling1D()(a)))(jnp.asarray(x)))
    np.testing.assert_allclose(g, np.full_like(x, 1 / 4))
    g = np.asarray(jax.grad(lambda a: jnp.sum(GlobalMaxPooling1D()(a)))(jnp.asarray(x)))
    ref = (x == x.max(1, keepdims=True)).astype(np.float32)
    np.testing.assert_allclose(g, ref)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_global_average_pooling1d_mask(data_format):
    x = rand(3, 5, 4)
    mask = np.array([[1, 1, 0, 1, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]], bool)
    layer = GlobalAveragePooling1D(data_format=data_format)
    xin = x if data_format == "channels_last" else np.moveaxis(x, 1, 2)
    y = np.asarray(layer(xin, mask=mask))
    ref = np.stack([x[i][mask[i]].mean(0) for i in range(3)])
    np.testing.assert_allclose(y, ref, atol=1e-6)
    assert not np.allclose(y[:2], x[:2].mean(1))
    keep = np.asarray(GlobalAveragePooling1D(data_format=data_format, keepdims=True)(xin, mask=mask))
    assert keep.shape == ((3, 1, 4) if data_format == "channels_last" else (3, 4, 1))
    np.testing.assert_allclose(keep.reshape(3, 4), ref, atol=1e-6)
    assert layer.supports_masking and layer.compute_mask(xin, mask) is None


class _ZeroMask(Layer):
    """Test helper: masks the time steps whose features are all zero (like keras.layers.Masking)."""

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_mask(self, inputs, previous_mask):
        return jnp.any(inputs != 0, axis=-1)


def test_global_average_pooling1d_mask_in_model():
    inputs = K.Input(shape=(None, 3))
    outputs = GlobalAveragePooling1D()(_ZeroMask()(inputs))
    model = K.Model(inputs, outputs)
    x = rand(2, 4, 3)
    x[0, 2:] = 0
    y = np.asarray(model(x))
    np.testing.assert_allclose(y[0], x[0, :2].mean(0), atol=1e-6)
    np.testing.assert_allclose(y[1], x[1].mean(0), atol=1e-6)


@pytest.mark.parametrize("cls,kwargs", [
    (MaxPooling1D, dict(pool_size=3, strides=2, padding="same", data_format="channels_first")),
    (AveragePooling2D, dict(pool_size=(2, 3), strides=(1, 2), padding="same")),
    (MaxPooling3D, dict(pool_size=2, name="pool3")),
])
def test_pooling_config_roundtrip(cls, kwargs):
    layer = cls(**kwargs)
    config = layer.get_config()
    clone = cls.from_config(config)
    assert clone.get_config() == {**config, "name": clone.name}
    assert clone.pool_size == layer.pool_size and clone.strides == layer.strides
    assert clone.padding == layer.padding and clone.data_format == layer.data_format
    if "name" in kwargs:
        assert clone.name == "pool3"
