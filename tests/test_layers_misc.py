"""Activation layers (ReLU, LeakyReLU, PReLU, ELU, Softmax) and misc layers (Rescaling, GaussianNoise,
GaussianDropout, SpatialDropout1D/2D, ActivityRegularization) vs NumPy references of the Keras 3 formulas."""
import numpy as np
import pytest

import jax
import jax.numpy as jnp

import fncompiler as keras
from fncompiler import layers as L
from layer_config_check import round_trip


@pytest.fixture(autouse=True)
def _exact_matmuls():
    """float32 matmuls at full precision (GPUs may otherwise use TF32), so the tolerances hold anywhere."""
    with jax.default_matmul_precision("highest"):
        yield


@pytest.fixture
def x():
    # random values: no exact ties with thresholds
    return np.random.default_rng(0).normal(scale=3.0, size=(4, 5, 6)).astype("float32")


# ----------------------------------------------------------------------------- activation layers
def np_relu(x, max_value=None, negative_slope=0.0, threshold=0.0):
    """The Keras docstring: max_value if x >= max_value; x if threshold <= x < max_value;
    negative_slope * (x - threshold) otherwise."""
    out = np.where(x >= threshold, x, negative_slope * (x - threshold))
    if max_value is not None:
        out = np.where(x >= max_value, max_value, out)
    return out


@pytest.mark.parametrize("kwargs", [dict(), dict(max_value=6.0), dict(negative_slope=0.1), dict(threshold=0.5),
                                    dict(max_value=2.0, negative_slope=0.2, threshold=0.5),
                                    dict(max_value=4.0, threshold=1.0)])
def test_relu_matches_keras_formula(x, kwargs):
    layer = L.ReLU(**kwargs)
    np.testing.assert_allclose(np.asarray(layer(x)), np_relu(x.astype("float64"), **kwargs), atol=1e-6)
    assert round_trip(layer).get_config()["max_value"] == kwargs.get("max_value")


def test_relu_validation():
    for bad in (dict(max_value=-1.0), dict(negative_slope=-0.1), dict(threshold=-1.0)):
        with pytest.raises(ValueError):
            L.ReLU(**bad)


def test_leaky_relu_and_elu(x):
    np.testing.assert_allclose(np.asarray(L.LeakyReLU()(x)), np.where(x > 0, x, 0.3 * x), atol=1e-6)
    legacy = L.LeakyReLU(alpha=0.05)
    assert legacy.negative_slope == 0.05
    np.testing.assert_allclose(np.asarray(legacy(x)), np.where(x > 0, x, 0.05 * x), atol=1e-6)
    assert round_trip(legacy).negative_slope == 0.05
    with pytest.raises(ValueError):
        L.LeakyReLU(negative_slope=-1)
    elu = L.ELU(alpha=0.7)
    np.testing.assert_allclose(np.asarray(elu(x)), np.where(x > 0, x, 0.7 * (np.exp(x) - 1)), atol=1e-5)
    assert round_trip(elu).alpha == 0.7
    np.testing.assert_allclose(np.asarray(L.ELU()(x)), np.where(x > 0, x, np.exp(x) - 1), atol=1e-5)


def test_prelu_weights_values_and_gradient(x):
    layer = L.PReLU(shared_axes=[1])
    layer(keras.Input(shape=(5, 6)))
    assert [(w.name, w.shape) for w in layer.weights] == [("alpha", (1, 6))]
    np.testing.assert_array_equal(layer.get_weights()[0], 0)          # default: zeros, i.e. relu
    np.testing.assert_allclose(np.asarray(layer(x)), np.maximum(x, 0))
    alpha = np.random.default_rng(1).normal(size=(1, 6)).astype("float32")
    layer.set_weights([alpha])
    np.testing.assert_allclose(np.asarray(layer(x)), np.where(x >= 0, x, alpha * x), atol=1e-6)
    (g,) = jax.grad(lambda tv: jnp.sum(layer.stateless_call(tv, [], x)[0]))([jnp.asarray(alpha)])
    np.testing.assert_allclose(np.asarray(g), np.minimum(x, 0).sum(axis=(0, 1), keepdims=True)[0], rtol=1e-5)
    full = L.PReLU(alpha_initializer="ones")
    full(keras.Input(shape=(5, 6)))
    assert full.weights[0].shape == (5, 6)
    clone = round_trip(layer)
    assert clone.shared_axes == [1]


def np_softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def test_softmax_axis_and_mask(x):
    np.testing.assert_allclose(np.asarray(L.Softmax()(x)), np_softmax(x.astype("float64")), atol=1e-6)
    np.testing.assert_allclose(np.asarray(L.Softmax(axis=1)(x)), np_softmax(x.astype("float64"), 1), atol=1e-6)
    both = np.asarray(L.Softmax(axis=(1, 2))(x))
    flat = np_softmax(x.reshape(4, 30).astype("float64")).reshape(4, 5, 6)
    np.testing.assert_allclose(both, flat, atol=1e-6)
    scores = x[:, 0, :]                                            # (4, 6)
    mask = np.random.default_rng(2).random((4, 6)) > 0.4
    mask[:, 0] = True
    out = np.asarray(L.Softmax()(scores, mask=mask))
    assert np.all(out[~mask] == 0)
    want = np.where(mask, np.exp(scores - scores.max(-1, keepdims=True)), 0)
    np.testing.assert_allclose(out, want / want.sum(-1, keepdims=True), atol=1e-6)
    # a (batch, time) Keras mask on (batch, time, classes) inputs masks whole time steps
    seq_mask = np.array([[True, True, False, True, False]] * 4)
    out = np.asarray(L.Softmax()(x, mask=seq_mask))
    assert np.all(out[~seq_mask] == 0)
    np.testing.assert_allclose(out[seq_mask].sum(-1), 1.0, atol=1e-6)
    assert round_trip(L.Softmax(axis=[1, 2])).axis == [1, 2]


def test_activation_layers_symbolic_and_masking():
    inp = keras.Input(shape=(None, 8))
    for layer in (L.ReLU(), L.LeakyReLU(), L.PReLU(shared_axes=[1]), L.ELU(), L.Softmax()):
        out = layer(inp)
        assert out.shape == (None, None, 8)
        assert layer.supports_masking


# ----------------------------------------------------------------------------- Rescaling
def test_rescaling(x):
    np.testing.assert_allclose(np.asarray(L.Rescaling(0.5, offset=-1.0)(x)), x * 0.5 - 1.0, atol=1e-6)
    img = np.arange(24, dtype="uint8").reshape(1, 2, 4, 3)
    out = L.Rescaling(1.0 / 255)(img)
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(out), img / 255.0, atol=1e-7)
    per_channel = L.Rescaling([1.0, 2.0, 3.0], offset=[0.0, 1.0, 2.0])
    np.testing.assert_allclose(np.asarray(per_channel(img)), img * np.array([1, 2, 3]) + np.array([0, 1, 2]))
    clone = round_trip(per_channel)
    assert clone.scale == [1.0, 2.0, 3.0]
    assert L.Rescaling(2.0)(keras.Input(shape=(None, 8))).shape == (None, None, 8)


# ----------------------------------------------------------------------------- noise and dropout
def _train(layer, x, seed):
    return np.asarray(layer.stateless_call([], [], x, training=True, rng=jax.random.key(seed))[0])


def test_gaussian_noise():
    big = np.full((200, 100), 2.0, "float32")
    layer = L.GaussianNoise(0.3, seed=1)
    np.testing.assert_array_equal(np.asarray(layer(big)), big)                  # inference: identity
    noisy = _train(layer, big, 0)
    assert abs((noisy - 2.0).mean()) < 0.01 and abs((noisy - 2.0).std() - 0.3) < 0.01
    np.testing.assert_array_equal(noisy, _train(layer, big, 0))
    assert not np.allclose(noisy, _train(layer, big, 1))
    assert round_trip(layer).stddev == 0.3
    with pytest.raises(ValueError):
        L.GaussianNoise(-1)


def test_gaussian_dropout():
    ones = np.ones((200, 100), "float32")
    layer = L.GaussianDropout(0.2, seed=2)
    np.testing.assert_array_equal(np.asarray(layer(ones)), ones)
    out = _train(layer, ones, 0)
    assert abs(out.mean() - 1.0) < 0.01 and abs(out.std() - np.sqrt(0.2 / 0.8)) < 0.01
    assert round_trip(layer).rate == 0.2
    with pytest.raises(ValueError):
        L.GaussianDropout(1.5)


def test_spatial_dropout_1d_drops_whole_channels():
    x = np.random.default_rng(3).uniform(1, 2, size=(64, 7, 16)).astype("float32")
    layer = L.SpatialDropout1D(0.25, seed=3)
    np.testing.assert_array_equal(np.asarray(layer(x)), x)
    out = _train(layer, x, 0)
    dropped = np.all(out == 0, axis=1)                                     # (batch, channels)
    kept = np.all(np.isclose(out, x / 0.75, rtol=1e-6), axis=1)
    assert np.all(dropped | kept)
    assert abs(dropped.mean() - 0.25) < 0.05
    with pytest.raises(ValueError, match="ndim=3"):
        L.SpatialDropout1D(0.5)(keras.Input(shape=(4,)))
    assert round_trip(layer).rate == 0.25


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_spatial_dropout_2d(data_format):
    x = np.random.default_rng(4).uniform(1, 2, size=(32, 8, 3, 3)).astype("float32")
    layer = L.SpatialDropout2D(0.5, data_format=data_format, seed=4)
    out = _train(layer, x, 1)
    spatial = (2, 3) if data_format == "channels_first" else (1, 2)
    dropped = np.all(out == 0, axis=spatial)
    kept = np.all(np.isclose(out, 2 * x), axis=spatial)
    assert np.all(dropped | kept) and 0.3 < dropped.mean() < 0.7
    assert round_trip(layer).data_format == data_format
    with pytest.raises(ValueError, match="ndim=4"):
        layer(keras.Input(shape=(4, 4)))


def test_noise_layers_are_identity_in_a_compiled_predict():
    inp = keras.Input(shape=(None, 8))
    out = L.SpatialDropout1D(0.5)(L.GaussianDropout(0.3)(L.GaussianNoise(0.5)(inp)))
    model = keras.Model(inp, out)
    x = np.random.default_rng(5).normal(size=(2, 3, 8)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), x, atol=1e-6)


# ----------------------------------------------------------------------------- ActivityRegularization
def test_activity_regularization_adds_l1_l2_of_its_output(x):
    layer = L.ActivityRegularization(l1=0.01, l2=0.002)
    out, _, losses = layer.stateless_call([], [], x, return_losses=True)
    np.testing.assert_array_equal(np.asarray(out), x)
    expected = 0.01 * np.abs(x).sum() + 0.002 * (x.astype("float64") ** 2).sum()
    (loss,) = losses
    # Keras 3 (layer.py, __call__) divides an activity penalty by the output's batch size.
    assert np.isclose(float(loss) * x.shape[0], expected, rtol=1e-5)
    config = layer.get_config()
    assert "activity_regularizer" not in config
    clone = round_trip(layer)
    assert (clone.l1, clone.l2) == (0.01, 0.002)
    _, _, none = L.ActivityRegularization().stateless_call([], [], x, return_losses=True)
    assert all(float(v) == 0 for v in none)
