"""Augmentation layers (RandomFlip, RandomRotation, RandomZoom, RandomTranslation, RandomContrast,
RandomBrightness) vs NumPy references of Keras 3's transforms for the sampled parameters; identity at inference;
random draws inside the compiled train step."""
import math

import jax
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import layers as L
from layer_config_check import round_trip


@pytest.fixture
def images():
    return np.random.default_rng(0).uniform(0, 255, size=(3, 7, 9, 2)).astype("float32")


# ------------------------------------------------------------------ NumPy reference of an affine warp
def _fix(i, n, mode):
    if mode == "nearest":
        return np.clip(i, 0, n - 1), np.ones_like(i, bool)
    if mode == "wrap":
        return np.mod(i, n), np.ones_like(i, bool)
    if mode == "reflect":                 # half-sample symmetric: d c b a | a b c d | d c b a
        j = np.mod(i, 2 * n)
        return np.where(j >= n, 2 * n - 1 - j, j), np.ones_like(i, bool)
    valid = (i >= 0) & (i < n)
    return np.clip(i, 0, n - 1), valid


def np_warp(image, src_y, src_x, mode, fill, order):
    """Sample a (h, w, c) image at real coordinates, bilinear (order 1) or nearest (order 0)."""
    h, w, _ = image.shape
    if order == 0:
        iy, vy = _fix(np.floor(src_y + 0.5).astype(int), h, mode)
        ix, vx = _fix(np.floor(src_x + 0.5).astype(int), w, mode)
        return np.where((vy & vx)[..., None], image[iy, ix], fill)
    y0, x0 = np.floor(src_y).astype(int), np.floor(src_x).astype(int)
    fy, fx = src_y - y0, src_x - x0
    out = 0.0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            iy, vy = _fix(y0 + dy, h, mode)
            ix, vx = _fix(x0 + dx, w, mode)
            out = out + (wy * wx)[..., None] * np.where((vy & vx)[..., None], image[iy, ix], fill)
    return out


def np_affine(images, inverse_map, mode, fill, order=1):
    """inverse_map(b, y, x) -> (src_y, src_x) for output pixel grids."""
    b, h, w, _ = images.shape
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    return np.stack([np_warp(images[i].astype(np.float64), *inverse_map(i, ys, xs), mode, fill, order)
                     for i in range(b)])


# ------------------------------------------------------------------ flips
def test_random_flip_matches_reference_and_is_identity_at_inference(images):
    for mode in ("horizontal", "vertical", "horizontal_and_vertical"):
        layer = L.RandomFlip(mode, seed=3)
        flips = np.array([True, False, True])
        out = np.asarray(layer.transform(images, flips))
        ref = images.copy()
        for i in np.flatnonzero(flips):
            if mode != "vertical":
                ref[i] = ref[i][:, ::-1]
            if mode != "horizontal":
                ref[i] = ref[i][::-1]
        np.testing.assert_array_equal(out, ref)
        np.testing.assert_array_equal(np.asarray(layer(images, training=False)), images)
    # called directly, training defaults to True (Keras's call(data, training=True)): it augments
    assert not np.array_equal(np.asarray(L.RandomFlip(seed=0)(images[:1].repeat(20, 0))), images[:1].repeat(20, 0))
    layer = L.RandomFlip(seed=5)
    expected = layer.transform(images, layer.sample(jax.random.key(5), 3, images))
    np.testing.assert_array_equal(np.asarray(layer(images, training=True)), np.asarray(expected))
    many = np.random.default_rng(1).normal(size=(400, 2, 2, 1)).astype("float32")
    flipped = np.mean(np.any(np.asarray(L.RandomFlip("horizontal", seed=1)(many, training=True)) != many,
                             axis=(1, 2, 3)))
    assert 0.4 < flipped < 0.6
    assert round_trip(L.RandomFlip("vertical", seed=2)).mode == "vertical"
    with pytest.raises(ValueError, match="mode"):
        L.RandomFlip("diagonal")


# ------------------------------------------------------------------ affine layers
@pytest.mark.parametrize("mode", ["reflect", "wrap", "constant", "nearest"])
def test_random_rotation_matches_reference(images, mode):
    layer = L.RandomRotation(0.2, fill_mode=mode, fill_value=7.0, seed=1)
    angles = np.array([30.0, -50.0, 72.0], np.float32)
    out = np.asarray(layer.transform(images, angles))
    h, w = images.shape[1:3]
    cy, cx = (h - 1) / 2, (w - 1) / 2

    def inverse(i, ys, xs):     # output pixel reads the input rotated back about the centre
        t = math.radians(angles[i])
        return (math.sin(t) * (xs - cx) + math.cos(t) * (ys - cy) + cy,
                math.cos(t) * (xs - cx) - math.sin(t) * (ys - cy) + cx)
    np.testing.assert_allclose(out, np_affine(images, inverse, mode, 7.0), atol=2e-3)
    sampled = np.asarray(layer.sample(jax.random.key(0), 1000, images))
    assert sampled.min() >= -72.0 and sampled.max() <= 72.0 and sampled.std() > 30


def test_random_rotation_nearest_interpolation_and_inference(images):
    layer = L.RandomRotation((0.25, 0.25), interpolation="nearest", fill_mode="constant", seed=0)
    square = images[:, :7, :7]
    out = np.asarray(layer(square, training=True))          # factor (0.25, 0.25): 90 degrees counter-clockwise
    np.testing.assert_allclose(out, np.rot90(square, k=1, axes=(1, 2)), atol=1e-3)
    np.testing.assert_array_equal(np.asarray(layer(images, training=False)), images)
    clone = round_trip(layer)
    assert clone.factor == (0.25, 0.25) and clone.interpolation == "nearest"
    with pytest.raises(ValueError, match="factor"):
        L.RandomRotation(2.0)
    with pytest.raises(ValueError, match="fill_mode"):
        L.RandomRotation(0.1, fill_mode="mirror")


@pytest.mark.parametrize("mode", ["reflect", "constant"])
def test_random_zoom_matches_reference(images, mode):
    layer = L.RandomZoom((-0.3, 0.4), (0.1, 0.2), fill_mode=mode, seed=2)
    zooms = np.array([[0.8, 1.1], [1.3, 1.2], [1.0, 1.0]], np.float32)       # (height zoom, width zoom)
    out = np.asarray(layer.transform(images, zooms))
    h, w = images.shape[1:3]

    def inverse(i, ys, xs):
        zy, zx = zooms[i]
        return zy * (ys - (h - 1) / 2) + (h - 1) / 2, zx * (xs - (w - 1) / 2) + (w - 1) / 2
    np.testing.assert_allclose(out, np_affine(images, inverse, mode, 0.0), atol=2e-3)
    sampled = np.asarray(layer.sample(jax.random.key(1), 500, images))
    assert sampled[:, 0].min() >= 0.7 and sampled[:, 0].max() <= 1.4
    assert sampled[:, 1].min() >= 1.1 and sampled[:, 1].max() <= 1.2
    same = np.asarray(L.RandomZoom(0.2, seed=0).sample(jax.random.key(1), 50, images))
    np.testing.assert_array_equal(same[:, 0], same[:, 1])      # width_factor=None: the vertical zoom
    assert round_trip(layer).height_factor == [-0.3, 0.4]


def test_random_translation_matches_reference(images):
    layer = L.RandomTranslation(0.3, (-0.2, 0.1), fill_mode="wrap", seed=4)
    shifts = np.array([[1.3, -0.6], [-2.2, 0.4], [0.0, 0.0]], np.float32)      # (rows, columns)
    out = np.asarray(layer.transform(images, shifts))
    np.testing.assert_allclose(out, np_affine(images, lambda i, ys, xs: (ys - shifts[i, 0], xs - shifts[i, 1]),
                                              "wrap", 0.0), atol=2e-3)
    np.testing.assert_allclose(np.asarray(layer.transform(images, np.array([[2.0, 3.0]] * 3, np.float32))),
                               np.roll(images, (2, 3), axis=(1, 2)), atol=1e-4)
    sampled = np.asarray(layer.sample(jax.random.key(2), 500, images))
    assert np.abs(sampled[:, 0]).max() <= 0.3 * 7 and sampled[:, 1].min() >= -0.2 * 9 and sampled[:, 1].max() <= 0.9
    assert round_trip(layer).width_factor == [-0.2, 0.1]


def test_channels_first_and_unbatched(images):
    layer = L.RandomTranslation(0.2, 0.2, fill_mode="constant", data_format="channels_first", seed=0)
    shifts = np.array([[1.0, 2.0]], np.float32)
    cf = np.moveaxis(images[:1], -1, 1)
    ref = np.asarray(L.RandomTranslation(0.2, 0.2, fill_mode="constant").transform(images[:1], shifts))
    np.testing.assert_allclose(np.moveaxis(np.asarray(layer.transform(cf, shifts)), 1, -1), ref, atol=1e-5)
    single = np.asarray(L.RandomTranslation(0.2, 0.2, fill_mode="constant").transform(images[0], shifts))
    np.testing.assert_allclose(single, ref[0], atol=1e-5)


# ------------------------------------------------------------------ colour layers
def test_random_contrast_matches_reference(images):
    layer = L.RandomContrast(0.5, seed=1)
    factors = np.array([0.5, 1.2, 1.5], np.float32)
    mean = images.mean(axis=(1, 2), keepdims=True)
    ref = np.clip((images - mean) * factors[:, None, None, None] + mean, 0, 255)
    np.testing.assert_allclose(np.asarray(layer.transform(images, factors)), ref, rtol=1e-5, atol=1e-3)
    sampled = np.asarray(layer.sample(jax.random.key(0), 1000, images))
    assert sampled.min() >= 0.5 and sampled.max() <= 1.5
    assert L.RandomContrast((0.1, 0.3), value_range=(0, 1)).factor == (0.1, 0.3)
    clone = round_trip(L.RandomContrast(0.2, value_range=(0, 1), seed=3))
    assert clone.value_range == [0.0, 1.0]
    with pytest.raises(ValueError, match="factor"):
        L.RandomContrast(1.5)


def test_random_brightness_matches_reference(images):
    layer = L.RandomBrightness((-0.2, 0.4), value_range=(0, 255), seed=1)
    deltas = np.array([-30.0, 10.0, 90.0], np.float32)
    ref = np.clip(images + deltas[:, None, None, None], 0, 255)
    np.testing.assert_allclose(np.asarray(layer.transform(images, deltas)), ref, rtol=1e-6)
    sampled = np.asarray(layer.sample(jax.random.key(0), 1000, images))
    assert sampled.min() >= -0.2 * 255 - 1e-3 and sampled.max() <= 0.4 * 255 + 1e-3
    np.testing.assert_array_equal(np.asarray(layer(images, training=False)), images)
    assert L.RandomBrightness(0.3).factor == (-0.3, 0.3)
    assert round_trip(layer).factor == (-0.2, 0.4)


# ------------------------------------------------------------------ in a compiled model
def test_augmentation_in_fit_is_random_per_step_and_absent_in_predict():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(16, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 2, size=(16,)).astype("float32")
    inp = keras.Input(shape=(8, 8, 1))
    aug = keras.Sequential([L.RandomFlip("horizontal", seed=1), L.RandomRotation(0.1, seed=2),
                            L.RandomZoom(0.1, seed=3), L.RandomTranslation(0.1, 0.1, seed=4),
                            L.RandomContrast(0.2, value_range=(0, 1), seed=5),
                            L.RandomBrightness(0.1, value_range=(0, 1), seed=6)], name="augment")
    h = aug(inp)
    out = L.Dense(1, activation="sigmoid")(L.Flatten()(h))
    model = keras.Model(inp, out)
    model.compile("sgd", "binary_crossentropy")
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
    assert model._trainer.compiled.trace_counts["train"] == 1
    plain = keras.Model(inp, out)     # the same layers; predict must skip the augmentation
    dense = model.layers[-1]
    flat = x.reshape(16, -1)
    ref = 1 / (1 + np.exp(-(flat @ np.asarray(dense.kernel.value) + np.asarray(dense.bias.value))))
    np.testing.assert_allclose(model.predict(x, verbose=0), ref, rtol=1e-4, atol=1e-5)
    del plain
    # inside a training scope two steps draw different transforms
    outs = [np.asarray(aug.stateless_call([], [], x, training=True, rng=jax.random.key(k))[0]) for k in (0, 1)]
    assert not np.allclose(outs[0], outs[1])
