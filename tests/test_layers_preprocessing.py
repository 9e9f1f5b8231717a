"""Numeric preprocessing layers (Normalization, Resizing, CenterCrop, RandomCrop, Discretization,
CategoryEncoding, IntegerLookup) vs NumPy references; adapt statistics; config round trips; in compiled models."""

import jax
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import layers as L
from layer_config_check import round_trip


@pytest.fixture
def data():
    return np.random.default_rng(0).normal(loc=3.0, scale=2.0, size=(64, 5)).astype("float32")


# ------------------------------------------------------------------ Normalization
def test_normalization_adapt_array_and_batches(data):
    layer = L.Normalization()
    layer.adapt(data)
    assert [w.path for w in layer.weights] == ["normalization/mean", "normalization/variance",
                                               "normalization/count"]
    assert layer.non_trainable_weights == layer.weights and not layer.trainable_weights
    np.testing.assert_allclose(np.asarray(layer.adapt_mean.value), data.mean(0), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(layer.adapt_variance.value), data.var(0), rtol=1e-5)
    assert int(layer.count.value) == 64
    np.testing.assert_allclose(np.asarray(layer(data)), (data - data.mean(0)) / data.std(0), rtol=1e-4, atol=1e-5)
    batched = L.Normalization()
    batched.adapt(iter([data[:10], data[10:37], data[37:]]))        # unequal batches: combined exactly
    np.testing.assert_allclose(np.asarray(batched.adapt_mean.value), data.mean(0), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(batched.adapt_variance.value), data.var(0), rtol=1e-5)
    with_labels = L.Normalization()
    with_labels.adapt([(data[:32], np.zeros(32)), (data[32:], np.zeros(32))])
    np.testing.assert_allclose(np.asarray(with_labels.adapt_mean.value), data.mean(0), rtol=1e-5)


def test_normalization_axes_invert_and_given_stats():
    x = np.random.default_rng(1).uniform(0, 10, size=(6, 4, 3)).astype("float32")
    scalar = L.Normalization(axis=None)
    scalar.adapt(x)
    assert scalar.adapt_mean.shape == ()
    np.testing.assert_allclose(np.asarray(scalar(x)), (x - x.mean()) / x.std(), rtol=1e-4, atol=1e-5)
    two = L.Normalization(axis=(1, 2))
    two.adapt(x)
    assert two.adapt_mean.shape == (4, 3)
    np.testing.assert_allclose(np.asarray(two.adapt_variance.value), x.var(0), rtol=1e-5)
    given = L.Normalization(mean=[1.0, 2.0, 3.0], variance=[4.0, 1.0, 0.0])
    expected = (x - np.array([1, 2, 3])) / np.maximum(np.sqrt([4.0, 1.0, 0.0]), 1e-7)
    np.testing.assert_allclose(np.asarray(given(x)), expected, rtol=1e-5)
    assert not given.weights
    inverse = L.Normalization(mean=[1.0, 2.0, 3.0], variance=[4.0, 1.0, 9.0], invert=True)
    np.testing.assert_allclose(np.asarray(inverse(x)), x * np.array([2, 1, 3]) + np.array([1, 2, 3]), rtol=1e-6)
    clone = round_trip(inverse)
    assert clone.invert and clone.get_config()["mean"] == [1.0, 2.0, 3.0]
    sym = L.Normalization()(keras.Input(shape=(None, 3)))
    assert sym.shape == (None, None, 3) and sym.dtype == "float32"
    with pytest.raises(ValueError, match="both `mean` and `variance`"):
        L.Normalization(mean=1.0)
    with pytest.raises(ValueError, match="built for inputs"):
        n = L.Normalization()
        n.adapt(x[:, 0])
        n.adapt(x[:, :, 0])


def test_normalization_in_a_compiled_model_reads_adapted_weights(data):
    norm = L.Normalization()
    inp = keras.Input(shape=(5,))
    model = keras.Model(inp, L.Dense(1)(norm(inp)))
    model.compile("sgd", "mse")
    norm.adapt(data)                          # after compile: the step reads the new weights
    dense = model.layers[-1]
    kernel, bias = np.asarray(dense.kernel.value), np.asarray(dense.bias.value)
    ref = ((data - data.mean(0)) / data.std(0)) @ kernel + bias
    np.testing.assert_allclose(model.predict(data, verbose=0), ref, rtol=1e-4, atol=1e-4)
    model.fit(data, np.zeros((64, 1), "float32"), epochs=1, batch_size=32, verbose=0)
    np.testing.assert_allclose(np.asarray(norm.adapt_mean.value), data.mean(0), rtol=1e-5)   # not trained


# ------------------------------------------------------------------ image sizing
def np_bilinear_resize(img, out_h, out_w):
    """Half-pixel-centre bilinear resize with clamped edges (upsampling reference)."""
    h, w = img.shape[:2]

    def coords(n_out, n_in):
        c = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
        c = np.clip(c, 0, n_in - 1)
        lo = np.floor(c).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, c - lo
    y0, y1, fy = coords(out_h, h)
    x0, x1, fx = coords(out_w, w)
    top = img[y0][:, x0] * (1 - fx)[None, :, None] + img[y0][:, x1] * fx[None, :, None]
    bottom = img[y1][:, x0] * (1 - fx)[None, :, None] + img[y1][:, x1] * fx[None, :, None]
    return top * (1 - fy)[:, None, None] + bottom * fy[:, None, None]


def test_resizing_values_shapes_and_config():
    img = np.random.default_rng(2).uniform(size=(2, 4, 5, 3)).astype("float32")
    out = np.asarray(L.Resizing(8, 10)(img))
    np.testing.assert_allclose(out, np.stack([np_bilinear_resize(i, 8, 10) for i in img]), atol=1e-5)
    nearest = np.asarray(L.Resizing(8, 10, interpolation="nearest")(img))
    np.testing.assert_array_equal(nearest, img.repeat(2, 1).repeat(2, 2))
    crop = np.asarray(L.Resizing(4, 4, crop_to_aspect_ratio=True, interpolation="nearest")(img))
    np.testing.assert_array_equal(crop, img[:, :, :4])          # the central 4x4 window of the 4x5 image
    padded = np.asarray(L.Resizing(6, 5, pad_to_aspect_ratio=True, interpolation="nearest")(img[:, :4, :5]))
    assert padded.shape == (2, 6, 5, 3)
    np.testing.assert_allclose(padded[:, 1:5], img)
    np.testing.assert_array_equal(padded[:, 0], 0)
    cf = np.asarray(L.Resizing(8, 10, data_format="channels_first")(np.moveaxis(img, -1, 1)))
    np.testing.assert_allclose(np.moveaxis(cf, 1, -1), out, atol=1e-6)
    assert L.Resizing(8, 10)(keras.Input(shape=(None, None, 3))).shape == (None, 8, 10, 3)
    assert L.Resizing(8, 10)(np.zeros((4, 5, 3), "uint8")).dtype == np.float32
    assert round_trip(L.Resizing(3, 4, interpolation="bicubic", antialias=True)).antialias
    with pytest.raises(ValueError, match="interpolation"):
        L.Resizing(3, 3, interpolation="cubic")


def test_center_crop_and_random_crop():
    img = np.arange(2 * 8 * 6, dtype="float32").reshape(2, 8, 6, 1)
    np.testing.assert_array_equal(np.asarray(L.CenterCrop(4, 4)(img)), img[:, 2:6, 1:5])
    small = np.asarray(L.CenterCrop(10, 4)(img))      # larger than the input: smart_resize (crop 8x3, resize)
    np.testing.assert_allclose(small, np.stack([np_bilinear_resize(i[:, 1:4], 10, 4) for i in img]), atol=1e-4)
    assert L.CenterCrop(3, 3)(keras.Input(shape=(8, 6, 1))).shape == (None, 3, 3, 1)
    assert round_trip(L.CenterCrop(3, 2)).width == 2

    layer = L.RandomCrop(4, 3, seed=7)
    key = jax.random.key(7)
    k_h, k_w = jax.random.split(key)
    top = int(jax.random.randint(k_h, (), 0, 8 - 4 + 1))
    left = int(jax.random.randint(k_w, (), 0, 6 - 3 + 1))
    np.testing.assert_array_equal(np.asarray(layer(img, training=True)), img[:, top:top + 4, left:left + 3])
    starts = set()
    for seed in range(40):
        out = np.asarray(L.RandomCrop(4, 3, seed=seed)(img, training=True))
        assert out.shape == (2, 4, 3, 1)
        np.testing.assert_array_equal(out[1] - out[0], 48)      # the same window for every image of the batch
        starts.add(float(out[0, 0, 0, 0]))
    assert len(starts) > 5
    # inference: the largest central window with the target aspect ratio (8x6 for 4x3), resized
    inference = np.asarray(layer(img, training=False))
    np.testing.assert_allclose(inference, np.stack([np_bilinear_resize(i, 4, 3) for i in img]), atol=1e-4)
    assert round_trip(layer).seed == 7


# ------------------------------------------------------------------ Discretization / CategoryEncoding
def test_discretization_boundaries_modes_and_adapt():
    x = np.array([[-1.5, 1.0, 3.4, 0.5], [0.0, 3.0, 1.3, 0.0]], "float32")
    layer = L.Discretization(bin_boundaries=[0.0, 1.0, 2.0])
    out = np.asarray(layer(x))
    np.testing.assert_array_equal(out, np.digitize(x, [0.0, 1.0, 2.0]))
    assert out.dtype == np.int32
    hot = np.asarray(L.Discretization(bin_boundaries=[0.0, 1.0, 2.0], output_mode="multi_hot")(x))
    np.testing.assert_array_equal(hot, [[1, 1, 1, 1], [0, 1, 1, 1]])
    counts = np.asarray(L.Discretization(bin_boundaries=[0.0, 1.0, 2.0], output_mode="count")(x))
    np.testing.assert_array_equal(counts, [[1, 1, 1, 1], [0, 2, 1, 1]])
    values = np.random.default_rng(3).uniform(0, 100, size=(1000, 1))
    adapted = L.Discretization(num_bins=4)
    adapted.adapt(values)
    np.testing.assert_allclose(adapted.bin_boundaries, np.quantile(values, [0.25, 0.5, 0.75]), atol=0.2)
    ids = np.asarray(adapted(values.astype("float32")))
    np.testing.assert_array_equal(ids, np.digitize(values.astype("float32"), np.float32(adapted.bin_boundaries)))
    assert np.abs(np.bincount(ids.ravel()) - 250).max() <= 1          # quartiles: a quarter of the data each
    clone = round_trip(layer)
    assert clone.bin_boundaries == [0.0, 1.0, 2.0]
    assert L.Discretization(bin_boundaries=[0.0], output_mode="one_hot")(keras.Input(shape=(1,))).shape == (None, 2)
    with pytest.raises(ValueError, match="not both"):
        L.Discretization(bin_boundaries=[0.0], num_bins=3)


def test_category_encoding_modes():
    ids = np.array([[0, 1, 1], [3, 3, 2]])
    np.testing.assert_array_equal(np.asarray(L.CategoryEncoding(4, "count")(ids)), [[1, 2, 0, 0], [0, 0, 1, 2]])
    np.testing.assert_array_equal(np.asarray(L.CategoryEncoding(4)(ids)), [[1, 1, 0, 0], [0, 0, 1, 1]])
    np.testing.assert_array_equal(np.asarray(L.CategoryEncoding(4, "one_hot")(np.array([3, 2, 0, 1]))),
                                  np.eye(4)[[3, 2, 0, 1]])
    np.testing.assert_array_equal(np.asarray(L.CategoryEncoding(4, "one_hot")(np.array([[3], [0]]))),
                                  np.eye(4)[[3, 0]])
    weights = np.array([[0.5, 1.0, 2.0], [1.0, 1.0, 0.25]], "float32")
    np.testing.assert_allclose(np.asarray(L.CategoryEncoding(4, "count")(ids, count_weights=weights)),
                               [[0.5, 3.0, 0, 0], [0, 0, 0.25, 2.0]])
    assert L.CategoryEncoding(5, "one_hot")(keras.Input(shape=(1,), dtype="int32")).shape == (None, 5)
    assert L.CategoryEncoding(5)(keras.Input(shape=(3,), dtype="int32")).shape == (None, 5)
    assert round_trip(L.CategoryEncoding(6, "binary")).output_mode == "multi_hot"
    with pytest.raises(ValueError, match="num_tokens"):
        L.CategoryEncoding()


# ------------------------------------------------------------------ IntegerLookup
def test_integer_lookup_vocabulary_oov_mask_and_invert():
    layer = L.IntegerLookup(vocabulary=[12, 36, 1138, 42])
    data = np.array([[12, 1138, 42], [42, 1000, 36]])
    np.testing.assert_array_equal(np.asarray(layer(data)), [[1, 3, 4], [4, 0, 2]])
    assert layer.get_vocabulary() == [-1, 12, 36, 1138, 42] and layer.vocabulary_size() == 5
    two_oov = L.IntegerLookup(vocabulary=[12, 36, 1138, 42], num_oov_indices=2)
    np.testing.assert_array_equal(np.asarray(two_oov(np.array([[12, 1138, 42], [37, 1000, 36]]))),
                                  [[2, 4, 5], [1, 0, 3]])       # 37 % 2 = 1, 1000 % 2 = 0
    masked = L.IntegerLookup(vocabulary=[12, 36], mask_token=0)
    np.testing.assert_array_equal(np.asarray(masked(np.array([0, 12, 7, 36]))), [0, 2, 1, 3])
    inverse = L.IntegerLookup(vocabulary=[12, 36, 1138, 42], invert=True)
    np.testing.assert_array_equal(np.asarray(inverse(np.array([[1, 3, 4], [4, 0, 2]]))),
                                  [[12, 1138, 42], [42, -1, 36]])
    multi = L.IntegerLookup(vocabulary=[12, 36, 1138, 42], output_mode="multi_hot")
    np.testing.assert_array_equal(np.asarray(multi(data)), [[0, 1, 0, 1, 1], [1, 0, 1, 0, 1]])
    adapted = L.IntegerLookup()
    adapted.adapt(np.array([[12, 1138, 42], [42, 1000, 36], [42, 12, 7]]))
    # by frequency, ties broken by the larger value first (Keras's reversed lexsort)
    assert adapted.get_vocabulary() == [-1, 42, 12, 1138, 1000, 36, 7]
    capped = L.IntegerLookup(max_tokens=3)
    capped.adapt(np.array([5, 5, 5, 6, 6, 7]))
    assert capped.get_vocabulary() == [-1, 5, 6]
    clone = round_trip(adapted)
    np.testing.assert_array_equal(np.asarray(clone(data)), np.asarray(adapted(data)))
    assert L.IntegerLookup(vocabulary=[1, 2], output_mode="one_hot")(
        keras.Input(shape=(1,), dtype="int32")).shape == (None, 3)


def test_integer_lookup_and_category_encoding_inside_a_compiled_model():
    rng = np.random.default_rng(4)
    codes = rng.choice([3, 10, 25, 99], size=(32, 1)).astype("int32")
    lookup = L.IntegerLookup(output_mode="one_hot")
    lookup.adapt(codes)
    inp = keras.Input(shape=(1,), dtype="int32")
    model = keras.Model(inp, L.Dense(1)(lookup(inp)))
    model.compile("sgd", "mse")
    model.fit(codes, np.ones((32, 1), "float32"), epochs=2, batch_size=16, verbose=0)
    assert model._trainer.compiled.trace_counts["train"] == 1
    dense = model.layers[-1]
    table = {v: i for i, v in enumerate(lookup.get_vocabulary())}
    onehot = np.eye(5)[[table[int(c)] for c in codes.ravel()]]
    ref = onehot @ np.asarray(dense.kernel.value) + np.asarray(dense.bias.value)
    np.testing.assert_allclose(model.predict(codes, verbose=0), ref, rtol=1e-5, atol=1e-5)
