"""EinsumDense, TimeDistributed, Masking, AdditiveAttention, RMSNormalization and AlphaDropout vs NumPy
references of the Keras 3 formulas; weight names/shapes (in order) and output shapes recorded from Keras 3.15.1."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import layers as L
from test_layers_embedding_rnn import randomize
from test_layers_misc import _exact_matmuls, round_trip  # noqa: F401  (autouse fixture: full-precision matmuls)


def weight_layout(layer):
    return [(w.name, tuple(w.shape)) for w in layer.weights]


# ----------------------------------------------------------------------------- EinsumDense
# (equation, output_shape, bias_axes, input shape without batch) -> (Keras weights, Keras output shape); Keras
# gives (None, None, 6) for the first two (an output_shape None stays unknown there); fncompiler takes the size
# from the input. For "...b,bc->...c" on (None, 5, 3, 4) Keras's static shape is (None, 3, 5, 7) (the elided
# axes reversed), while its einsum gives (None, 5, 3, 7) as here.
EINSUM_CASES = [
    ("abc,cd->abd", (None, 6), "d", (5, 4), [("kernel", (4, 6)), ("bias", (6,))], (None, 5, 6)),
    ("abc,cde->abde", (None, 3, 2), "de", (5, 4), [("kernel", (4, 3, 2)), ("bias", (3, 2))], (None, 5, 3, 2)),
    ("ab,bc->ac", 7, "c", (4,), [("kernel", (4, 7)), ("bias", (7,))], (None, 7)),
    ("...b,bc->...c", 7, "c", (5, 3, 4), [("kernel", (4, 7)), ("bias", (7,))], (None, 5, 3, 7)),
    ("abc...,cd->abd...", (3, 6), "b", (3, 4, 2), [("kernel", (4, 6)), ("bias", (3, 1, 1))], (None, 3, 6, 2)),
    ("abc,cd->abd", (5, 6), None, (5, 4), [("kernel", (4, 6))], (None, 5, 6)),
]


@pytest.mark.parametrize("equation,output_shape,bias_axes,shape,weights,out_shape", EINSUM_CASES)
def test_einsum_dense_weights_shapes_and_values(equation, output_shape, bias_axes, shape, weights, out_shape):
    layer = L.EinsumDense(equation, output_shape=output_shape, bias_axes=bias_axes, activation="relu")
    y = layer(keras.Input(shape))
    assert y.shape == out_shape and weight_layout(layer) == weights
    rng = np.random.default_rng(0)
    ws = randomize(layer, rng)
    x = rng.normal(size=(2,) + shape).astype("float32")
    ref = np.einsum(equation, x.astype("float64"), ws[0])
    if bias_axes:
        ref = ref + ws[1]
    np.testing.assert_allclose(np.asarray(layer(x)), np.maximum(ref, 0), atol=1e-5)
    clone = round_trip(layer)
    assert clone.get_config()["output_shape"] == list(np.atleast_1d(output_shape)) or output_shape == 7


def test_einsum_dense_gradient_and_glorot_fans():
    layer = L.EinsumDense("abc,cde->abde", output_shape=(None, 16, 32), bias_axes="de",
                          kernel_initializer=keras.initializers.GlorotUniform(seed=1))
    layer(keras.Input((3, 64)))
    k = np.asarray(layer.kernel.value)
    # glorot over fan_in = 64 and fan_out = 16 * 32 (Keras's input/output axes), not a receptive field
    limit = np.sqrt(6.0 / (64 + 16 * 32))
    assert np.abs(k).max() <= limit and np.abs(k).max() > 0.9 * limit
    x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 3, 64)).astype("float32"))
    g = jax.grad(lambda tv: jnp.sum(layer.stateless_call(tv, [], x)[0] ** 2))([w.value for w in layer.weights])
    y = np.einsum("abc,cde->abde", np.asarray(x, "float64"), k)
    np.testing.assert_allclose(np.asarray(g[0]), np.einsum("abc,abde->cde", np.asarray(x, "float64"), 2 * y),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(g[1]), (2 * y).sum(axis=(0, 1)), rtol=1e-4, atol=1e-4)


def test_einsum_dense_errors_name_the_problem():
    with pytest.raises(ValueError, match="invalid einsum equation"):
        L.EinsumDense("ab->b", 3)(keras.Input((4,)))
    with pytest.raises(ValueError, match="bias dimension 'x'"):
        L.EinsumDense("ab,bc->ac", 3, bias_axes="x")(keras.Input((4,)))
    with pytest.raises(ValueError, match="do not match at shared dimension 'b'"):
        L.EinsumDense("abc,cd->abd", (6, 2))(keras.Input((5, 4)))


# ----------------------------------------------------------------------------- TimeDistributed
def test_time_distributed_dense_and_conv_match_per_step_numpy():
    rng = np.random.default_rng(2)
    td = L.TimeDistributed(L.Dense(3, activation="tanh"))
    assert td(keras.Input((None, 4))).shape == (None, None, 3)
    assert weight_layout(td) == [("kernel", (4, 3)), ("bias", (3,))]
    w, b = randomize(td, rng)
    x = rng.normal(size=(2, 5, 4)).astype("float32")
    ref = np.stack([np.tanh(x[:, t] @ w + b) for t in range(5)], axis=1)
    np.testing.assert_allclose(np.asarray(td(x)), ref, atol=1e-5)
    clone = round_trip(td)
    assert isinstance(clone.layer, L.Dense) and clone.layer.units == 3

    conv = L.TimeDistributed(L.Conv2D(2, 3))
    assert conv(keras.Input((4, 8, 8, 3))).shape == (None, 4, 6, 6, 2)
    assert weight_layout(conv) == [("kernel", (3, 3, 3, 2)), ("bias", (2,))]


def test_time_distributed_in_a_trained_model_traces_once():
    rng = np.random.default_rng(3)
    inp = keras.Input((6, 4))
    h = L.TimeDistributed(L.Dense(8, activation="relu"))(inp)
    out = L.GlobalAveragePooling1D()(h)
    model = keras.Model(inp, L.Dense(1)(out))
    model.compile("adam", "mse", steps_per_execution=1)
    x, y = rng.normal(size=(64, 6, 4)).astype("float32"), rng.normal(size=(64, 1)).astype("float32")
    hist = model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert model._trainer.compiled.trace_counts["train"] == 1


def test_time_distributed_rejects_non_layers_and_low_rank():
    with pytest.raises(ValueError, match="Layer` instance"):
        L.TimeDistributed(lambda x: x)
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        L.TimeDistributed(L.Dense(2))(keras.Input((4,)))


# ----------------------------------------------------------------------------- Masking
# Keras 3.15.1 (jax backend): Masking -> LSTM(3, return_sequences=True), weights and x from default_rng(0) as below.
KERAS_MASKED_LSTM = np.array([
    [[-0.1069337, 0.1096341, 0.1327945], [-0.2868080, -0.0722878, -0.0901361],
     [-0.2747801, -0.0205645, -0.1803422], [-0.2747801, -0.0205645, -0.1803422],
     [-0.2747801, -0.0205645, -0.1803422]],
    [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [-0.2333939, -0.0555756, -0.0550602],
     [-0.3302450, -0.1886173, -0.0509372], [-0.4803686, -0.3005548, -0.2286319]]])


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _np_masked_lstm(x, mask, w, r, b):
    u = r.shape[0]
    h = c = np.zeros((x.shape[0], u))
    outs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ w + h @ r + b
        i, f, g, o = (z[:, k * u:(k + 1) * u] for k in range(4))
        c_new = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h_new = _sigmoid(o) * np.tanh(c_new)
        m = mask[:, t][:, None]
        h, c = np.where(m, h_new, h), np.where(m, c_new, c)
        outs.append(h)
    return np.stack(outs, axis=1)


def test_masking_feeds_lstm_like_keras():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 4)).astype("float32")
    x[0, 3:] = 0
    x[1, :2] = 0
    model = keras.Sequential([keras.Input((5, 4)), L.Masking(), L.LSTM(3, return_sequences=True)])
    ws = [rng.normal(size=w.shape).astype("float32") * 0.5 for w in model.weights]
    model.set_weights(ws)
    y = model.predict(x, verbose=0)
    np.testing.assert_allclose(y, KERAS_MASKED_LSTM, atol=1e-6)
    mask = np.any(x != 0, axis=-1)
    np.testing.assert_allclose(y, _np_masked_lstm(x.astype("float64"), mask, *[w.astype("float64") for w in ws]),
                               atol=1e-5)


def test_masking_values_mask_and_config():
    layer = L.Masking(mask_value=-1.0)
    x = np.array([[[1.0, -1.0], [-1.0, -1.0], [0.0, 0.0]]], "float32")
    np.testing.assert_array_equal(np.asarray(layer(x)), [[[1.0, -1.0], [0.0, 0.0], [0.0, 0.0]]])
    np.testing.assert_array_equal(np.asarray(layer.compute_mask(jnp.asarray(x))), [[True, False, True]])
    assert round_trip(layer).mask_value == -1.0
    assert layer(keras.Input((None, 2))).shape == (None, None, 2)
    with pytest.raises(TypeError, match="mask_value"):
        L.Masking(mask_value="pad")


def test_masking_through_time_distributed_to_gru_final_state():
    """Zero steps appended after the data do not change a GRU's final state when Masking marks them (the mask
    passes through TimeDistributed); without Masking they do."""
    rng = np.random.default_rng(4)
    inp = keras.Input((None, 3))
    td, gru = L.TimeDistributed(L.Dense(4)), L.GRU(5)
    model = keras.Model(inp, gru(td(L.Masking()(inp))))
    no_mask = keras.Model(inp, gru(td(inp)))
    x = rng.normal(size=(2, 4, 3)).astype("float32")
    padded = np.concatenate([x, np.zeros((2, 2, 3), "float32")], axis=1)
    short = model.predict(x, verbose=0)
    np.testing.assert_allclose(model.predict(padded, verbose=0), short, atol=1e-6)
    np.testing.assert_allclose(no_mask.predict(x, verbose=0), short, atol=1e-6)
    assert not np.allclose(no_mask.predict(padded, verbose=0), short, atol=1e-4)


# ----------------------------------------------------------------------------- AdditiveAttention
def _np_additive(q, v, k, scale, v_mask=None, causal=False):
    s = np.tanh(q[:, :, None, :] + k[:, None, :, :])
    scores = (s * (1.0 if scale is None else scale)).sum(-1)
    keep = np.ones(scores.shape, bool)
    if v_mask is not None:
        keep &= v_mask[:, None, :]
    if causal:
        keep &= np.tril(np.ones(scores.shape[-2:], bool))[None]
    scores = np.where(keep, scores, scores - 1e9)
    w = np.exp(scores - scores.max(-1, keepdims=True))
    w = w / w.sum(-1, keepdims=True)
    return w @ v, w


@pytest.mark.parametrize("use_scale,causal", [(True, False), (False, False), (True, True)])
def test_additive_attention_matches_numpy(use_scale, causal):
    rng = np.random.default_rng(5)
    layer = L.AdditiveAttention(use_scale=use_scale)
    q_in, v_in = keras.Input((3, 4)), keras.Input((5, 4))
    assert layer([q_in, v_in]).shape == (None, 3, 4)
    assert weight_layout(layer) == ([("scale", (4,))] if use_scale else [])
    scale = randomize(layer, rng)[0] if use_scale else None
    q, v, k = (rng.normal(size=(2, n, 4)).astype("float32") for n in (3, 5, 5))
    v_mask = np.array([[True] * 5, [True, True, False, True, False]])
    q_mask = np.array([[True, False, True], [True, True, True]])
    out, w = layer([q, v, k], mask=[q_mask, v_mask], return_attention_scores=True, use_causal_mask=causal)
    ref_out, ref_w = _np_additive(*(a.astype("float64") for a in (q, v, k)), scale, v_mask, causal)
    np.testing.assert_allclose(np.asarray(w), ref_w, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out), ref_out * q_mask[..., None], atol=1e-5)
    config = round_trip(layer).get_config()
    assert "score_mode" not in config and config["use_scale"] is use_scale


def test_additive_attention_scale_gradient():
    rng = np.random.default_rng(6)
    layer = L.AdditiveAttention()
    q, v = (jnp.asarray(rng.normal(size=(2, n, 4)).astype("float32")) for n in (3, 5))
    layer([keras.Input((3, 4)), keras.Input((5, 4))])
    scale = jnp.asarray(randomize(layer, rng)[0], "float32")
    g = jax.grad(lambda tv: jnp.sum(layer.stateless_call(tv, [], [q, v])[0] ** 2))([scale])[0]

    def ref(sc):
        s = jnp.sum(sc * jnp.tanh(q[:, :, None] + v[:, None]), -1)
        return jnp.sum((jax.nn.softmax(s, -1) @ v) ** 2)
    np.testing.assert_allclose(np.asarray(g), np.asarray(jax.grad(ref)(scale)), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- RMSNormalization
@pytest.mark.parametrize("axis,scale_shape", [(-1, (4,)), ([1, 2], (5, 4)), (1, (5,))])
def test_rms_normalization_matches_numpy(axis, scale_shape):
    rng = np.random.default_rng(7)
    layer = L.RMSNormalization(axis=axis)
    assert layer(keras.Input((None, 4) if axis == -1 else (5, 4))).shape[1:] in ((None, 4), (5, 4))
    assert weight_layout(layer) == [("scale", scale_shape)]
    scale = randomize(layer, rng)[0]
    x = rng.normal(size=(3, 5, 4)).astype("float32")
    axes = tuple(np.atleast_1d(axis) % 3)
    bshape = [1, 1, 1]
    for a in axes:
        bshape[a] = x.shape[a]
    xd = x.astype("float64")
    ref = xd / np.sqrt(np.mean(xd ** 2, axis=axes, keepdims=True) + 1e-6) * scale.reshape(bshape)
    np.testing.assert_allclose(np.asarray(layer(x)), ref, atol=1e-5)
    assert round_trip(layer).get_config()["epsilon"] == 1e-6


def test_rms_normalization_gradient_and_half_precision():
    rng = np.random.default_rng(8)
    x = jnp.asarray(rng.normal(size=(3, 6)).astype("float32"))
    layer = L.RMSNormalization(epsilon=1e-3)
    layer(keras.Input((6,)))
    g = jax.grad(lambda tv, x: jnp.sum(layer.stateless_call(tv, [], x)[0] ** 3), argnums=(0, 1))(
        [layer.scale.value], x)
    ref = jax.grad(lambda s, x: jnp.sum((x * jax.lax.rsqrt(jnp.mean(x * x, -1, keepdims=True) + 1e-3) * s) ** 3),
                   argnums=(0, 1))(layer.scale.value, x)
    np.testing.assert_allclose(np.asarray(g[0][0]), np.asarray(ref[0]), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(g[1]), np.asarray(ref[1]), rtol=1e-4, atol=1e-5)
    half = L.RMSNormalization(dtype="float16")
    out = half(x.astype("float16"))
    assert out.dtype == jnp.float16


# ----------------------------------------------------------------------------- AlphaDropout
def test_alpha_dropout_training_only_seeded_and_keras_formula():
    rate = 0.3
    layer = L.AlphaDropout(rate, seed=11)
    x = np.random.default_rng(9).normal(size=(200, 50)).astype("float32")
    np.testing.assert_array_equal(np.asarray(layer(x)), x)                       # inference: identity
    f = jax.jit(lambda x, key: layer.stateless_call([], [], x, training=True, rng=key)[0])
    y1, y1b, y2 = f(x, jax.random.key(1)), f(x, jax.random.key(1)), f(x, jax.random.key(2))
    np.testing.assert_array_equal(np.asarray(y1), np.asarray(y1b))
    assert not np.array_equal(np.asarray(y1), np.asarray(y2))
    alpha_p = -1.6732632423543772 * 1.0507009873554805
    a = ((1 - rate) * (1 + rate * alpha_p ** 2)) ** -0.5
    b = -a * alpha_p * rate
    y1 = np.asarray(y1, "float64")
    kept = np.isclose(y1, a * x + b, atol=1e-5)
    dropped = np.isclose(y1, a * alpha_p + b, atol=1e-5)
    assert np.all(kept | dropped)
    assert abs(dropped.mean() - rate) < 0.02
    # SELU-normalized inputs keep mean 0 and variance 1 (what the affine correction is for)
    z = np.random.default_rng(10).normal(size=(400, 400)).astype("float32")
    yz = np.asarray(f(z, jax.random.key(3)))
    assert abs(yz.mean()) < 0.02 and abs(yz.var() - 1) < 0.03


def test_alpha_dropout_noise_shape_and_config():
    layer = L.AlphaDropout(0.5, noise_shape=(None, 1, 4), seed=3)
    x = np.ones((8, 6, 4), "float32")
    y = np.asarray(layer.stateless_call([], [], x, training=True, rng=jax.random.key(0))[0])
    np.testing.assert_array_equal(y, np.broadcast_to(y[:, :1], y.shape))      # one draw shared along axis 1
    config = round_trip(layer).get_config()
    assert config["noise_shape"] == [None, 1, 4] and config["rate"] == 0.5 and config["seed"] == 3
    with pytest.raises(ValueError, match="rate"):
        L.AlphaDropout(1.5)
    np.testing.assert_array_equal(np.asarray(L.AlphaDropout(1.0).stateless_call([], [], x, training=True)[0]), 0)
    assert L.AlphaDropout(0.2)(keras.Input((None, 3))).shape == (None, None, 3)


# ----------------------------------------------------------------------------- all of them in one saved model
def test_new_layers_save_load_and_fit(tmp_path):
    rng = np.random.default_rng(12)
    inp = keras.Input((6, 4))
    x = L.Masking()(inp)
    x = L.TimeDistributed(L.EinsumDense("ab,bc->ac", 8, bias_axes="c"))(x)
    x = L.AlphaDropout(0.1)(L.RMSNormalization()(x))
    seq, s1, s2 = L.RNN([L.LSTMCell(5), L.GRUCell(3)], return_sequences=True, return_state=True)(x)
    att = L.AdditiveAttention()([seq, seq])
    model = keras.Model(inp, [L.Dense(1)(L.GlobalAveragePooling1D()(att)), s1[0], s2])
    assert [t.shape for t in model.outputs] == [(None, 1), (None, 5), (None, 3)]
    xs = rng.normal(size=(16, 6, 4)).astype("float32")
    xs[:, 4:] = 0
    before = model.predict(xs, verbose=0)
    model.save(str(tmp_path / "m.keras"))
    again = keras.models.load_model(str(tmp_path / "m.keras"))
    for a, b in zip(before, again.predict(xs, verbose=0)):
        np.testing.assert_array_equal(a, b)
    assert [type(l).__name__ for l in again.layers] == [type(l).__name__ for l in model.layers]
    model.compile("adam", ["mse", None, None], steps_per_execution=1)
    hist = model.fit(xs, [rng.normal(size=(16, 1)).astype("float32"), np.zeros((16, 5), "float32"),
                          np.zeros((16, 3), "float32")], batch_size=8, epochs=2, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()
    assert model._trainer.compiled.trace_counts["train"] == 1
