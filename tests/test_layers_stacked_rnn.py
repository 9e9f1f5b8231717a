"""RNN with a list of cells / StackedRNNCells (nested states as Keras 3), seq2seq encoder/decoder with
return_state and initial_state, Bidirectional merge modes with return_state, Conv groups and Embedding
regularizer + mask_zero: NumPy references; weight layouts and output shapes recorded from Keras 3.15.1."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import layers as L
from test_layers_embedding_rnn import randomize, ref_gru_step, ref_lstm_step, ref_simple_step
from test_layers_misc import _exact_matmuls  # noqa: F401  (autouse fixture: full-precision matmuls)
from test_layers_more import weight_layout as layout


def np_stacked(steps, x, states, mask=None):
    """Keras's loop over a stack: each step runs the cells in order; a masked step keeps every state and
    outputs the last cell's previous first state. states: one list per cell."""
    outs = []
    for t in range(x.shape[1]):
        inp, new = x[:, t], []
        for step, s in zip(steps, states):
            inp, s2 = step(inp, s)
            new.append(s2)
        if mask is not None:
            m = mask[:, t][:, None]
            inp = np.where(m, inp, states[-1][0])
            new = [[np.where(m, a, b) for a, b in zip(n, s)] for n, s in zip(new, states)]
        states = new
        outs.append(inp)
    return np.stack(outs, 1), states


# Keras 3.15.1: RNN([LSTMCell(3), LSTMCell(2)]) and RNN(StackedRNNCells([GRUCell(3), SimpleRNNCell(2)])) on (None, 5, 4)
KERAS_STACKED_LSTM = [("kernel", (4, 12)), ("recurrent_kernel", (3, 12)), ("bias", (12,)),
                      ("kernel", (3, 8)), ("recurrent_kernel", (2, 8)), ("bias", (8,))]
KERAS_STACKED_GRU_SIMPLE = [("kernel", (4, 9)), ("recurrent_kernel", (3, 9)), ("bias", (2, 9)),
                            ("kernel", (3, 2)), ("recurrent_kernel", (2, 2)), ("bias", (2,))]
# Keras 3.15.1: Masking -> RNN([LSTMCell(3), GRUCell(2)], return_sequences=True), x and weights from default_rng(0)
KERAS_MASKED_STACKED = np.array([
    [[-0.4634080, -0.3420255], [-0.5609303, -0.4829715], [-0.5809830, -0.4444321], [-0.5809830, -0.4444321],
     [-0.5809830, -0.4444321]],
    [[0.0, 0.0], [0.0, 0.0], [-0.4435592, -0.2970237], [-0.5734285, -0.4443042], [-0.5533772, -0.4562255]]])


def test_stacked_weights_shapes_and_nested_states_like_keras():
    rnn = L.RNN([L.LSTMCell(3), L.LSTMCell(2)], return_state=True, return_sequences=True)
    out = rnn(keras.Input((5, 4)))
    assert isinstance(rnn.cell, L.StackedRNNCells) and layout(rnn) == KERAS_STACKED_LSTM
    assert out[0].shape == (None, 5, 2)
    assert [[s.shape for s in group] for group in out[1:]] == [[(None, 3), (None, 3)], [(None, 2), (None, 2)]]
    rnn2 = L.RNN(L.StackedRNNCells([L.GRUCell(3), L.SimpleRNNCell(2)]), return_state=True)
    assert [t.shape for t in rnn2(keras.Input((None, 4)))] == [(None, 2), (None, 3), (None, 2)]
    assert layout(rnn2) == KERAS_STACKED_GRU_SIMPLE
    assert rnn.cell.state_size == [[3, 3], [2, 2]] and rnn2.cell.state_size == [3, 2]


def test_stacked_matches_numpy_with_mask_and_keras_recorded_values():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 4)).astype("float32")
    x[0, 3:] = 0
    x[1, :2] = 0
    model = keras.Sequential([keras.Input((5, 4)), L.Masking(),
                              L.RNN([L.LSTMCell(3), L.GRUCell(2)], return_sequences=True)])
    _ = [rng.normal(size=s) for s in [(4, 12), (3, 12), (12,)]]   # the LSTM weights of the Keras recording
    ws = [rng.normal(size=w.shape).astype("float32") * 0.5 for w in model.weights]
    model.set_weights(ws)
    y = model.predict(x, verbose=0)
    np.testing.assert_allclose(y, KERAS_MASKED_STACKED, atol=1e-6)
    w = [v.astype("float64") for v in ws]
    ref, _ = np_stacked([ref_lstm_step(*w[:3]), ref_gru_step(*w[3:], True)], x.astype("float64"),
                        [[np.zeros((2, 3))] * 2, [np.zeros((2, 2))]], mask=np.any(x != 0, -1))
    np.testing.assert_allclose(y, ref, atol=1e-5)


def test_stacked_return_state_initial_state_nested_or_flat():
    rng = np.random.default_rng(1)
    rnn = L.RNN([L.SimpleRNNCell(3), L.LSTMCell(4)], return_state=True)
    rnn(keras.Input((6, 2)))
    w = randomize(rnn, rng)
    x = rng.normal(size=(3, 6, 2)).astype("float32")
    init = [rng.normal(size=(3, 3)).astype("float32"), [rng.normal(size=(3, 4)).astype("float32") for _ in "hc"]]
    out = rnn(x, initial_state=init)
    flat = rnn(x, initial_state=[init[0]] + init[1])
    seq, states = np_stacked([ref_simple_step(*w[:3]), ref_lstm_step(*w[3:])], x.astype("float64"),
                             [[init[0]], init[1]])
    np.testing.assert_allclose(np.asarray(out[0]), seq[:, -1], atol=1e-5)
    np.testing.assert_allclose(np.asarray(out[1]), states[0][0], atol=1e-5)
    for got, want in zip(out[2], states[1]):
        np.testing.assert_allclose(np.asarray(got), want, atol=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves(flat)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(ValueError, match="expected 3 state tensor"):
        rnn(x, initial_state=init[1])


def test_stacked_gradient_matches_jax_reference():
    rng = np.random.default_rng(2)
    rnn = L.RNN([L.GRUCell(3), L.GRUCell(2)], return_sequences=True)
    rnn(keras.Input((5, 4)))
    randomize(rnn, rng)
    x = jnp.asarray(rng.normal(size=(2, 5, 4)).astype("float32"))
    tv = [w.value for w in rnn.trainable_weights]

    def ref(ws, x):
        s1, s2, outs = jnp.zeros((2, 3)), jnp.zeros((2, 2)), []
        step1, step2 = ref_gru_step(*ws[:3], True, xp=jnp), ref_gru_step(*ws[3:], True, xp=jnp)
        for t in range(5):
            h1, [s1] = step1(x[:, t], [s1])
            h2, [s2] = step2(h1, [s2])
            outs.append(h2)
        return jnp.sum(jnp.stack(outs, 1) ** 2)
    g = jax.jit(jax.grad(lambda tv, x: jnp.sum(rnn.stateless_call(tv, [], x)[0] ** 2), argnums=(0, 1)))(tv, x)
    r = jax.jit(jax.grad(ref, argnums=(0, 1)))(tv, x)
    for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(r)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


def test_stacked_dropout_per_cell_only_in_training():
    rng = np.random.default_rng(3)
    rnn = L.RNN([L.LSTMCell(4, dropout=0.5, seed=1), L.LSTMCell(3, recurrent_dropout=0.5, seed=2)])
    rnn(keras.Input((5, 2)))
    randomize(rnn, rng)
    plain = L.RNN([L.LSTMCell(4), L.LSTMCell(3)])
    plain(keras.Input((5, 2)))
    plain.set_weights(rnn.get_weights())
    x = rng.normal(size=(3, 5, 2)).astype("float32")
    tv = [w.value for w in rnn.trainable_weights]
    np.testing.assert_allclose(np.asarray(rnn.stateless_call(tv, [], x, training=False)[0]),
                               np.asarray(plain(x)), atol=1e-6)
    f = jax.jit(lambda tv, x, k: rnn.stateless_call(tv, [], x, training=True, rng=k)[0])
    a, a2, b = f(tv, x, jax.random.key(0)), f(tv, x, jax.random.key(0)), f(tv, x, jax.random.key(1))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(a2))
    assert not np.allclose(np.asarray(a), np.asarray(b), atol=1e-4)
    assert not np.allclose(np.asarray(a), np.asarray(plain(x)), atol=1e-4)


def test_stacked_config_round_trip_and_fit_traces_once():
    rnn = L.RNN([L.LSTMCell(3, name="first"), L.GRUCell(2, name="second")], return_sequences=True, name="stack")
    config = rnn.get_config()
    json.dumps(config)
    assert config["cell"]["class_name"] == "StackedRNNCells"
    assert [c["class_name"] for c in config["cell"]["config"]["cells"]] == ["LSTMCell", "GRUCell"]
    clone = L.RNN.from_config(config)
    assert clone.get_config() == config
    inp = keras.Input((5, 4))
    model = keras.Model(inp, L.Dense(1)(L.GlobalAveragePooling1D()(clone(inp))))
    model.compile("adam", "mse", steps_per_execution=1)
    rng = np.random.default_rng(4)
    hist = model.fit(rng.normal(size=(32, 5, 4)).astype("float32"), rng.normal(size=(32, 1)).astype("float32"),
                     batch_size=8, epochs=2, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()
    assert model._trainer.compiled.trace_counts["train"] == 1
    with pytest.raises(ValueError, match="non-empty list"):
        L.StackedRNNCells([])


# ----------------------------------------------------------------------------- seq2seq with return_state
def test_seq2seq_encoder_states_into_decoder_and_inference_models():
    rng = np.random.default_rng(5)
    enc_in, dec_in = keras.Input((None, 4)), keras.Input((None, 3))
    encoder = L.LSTM(6, return_state=True)
    _, h, c = encoder(enc_in)
    decoder = L.LSTM(6, return_sequences=True, return_state=True)
    dec_seq, _, _ = decoder(dec_in, initial_state=[h, c])
    dense = L.Dense(3, activation="softmax")
    model = keras.Model([enc_in, dec_in], dense(dec_seq))
    assert model.output.shape == (None, None, 3)
    we, wd = randomize(encoder, rng), randomize(decoder, rng)
    xe, xd = rng.normal(size=(2, 7, 4)).astype("float32"), rng.normal(size=(2, 4, 3)).astype("float32")
    y = model.predict([xe, xd], verbose=0)
    step_e, step_d = ref_lstm_step(*we), ref_lstm_step(*wd)
    states = [np.zeros((2, 6))] * 2
    for t in range(7):
        _, states = step_e(xe[:, t].astype("float64"), states)
    enc_states, outs = states, []
    for t in range(4):
        o, states = step_d(xd[:, t].astype("float64"), states)
        outs.append(o)
    k, b = (np.asarray(v, "float64") for v in dense.get_weights())
    logits = np.stack(outs, 1) @ k + b
    ref = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(y, ref, atol=1e-5)
    # inference: a separate encoder model and a one-step decoder model fed its own states
    enc_model = keras.Model(enc_in, [h, c])
    s_h, s_c = keras.Input((6,)), keras.Input((6,))
    d_seq, d_h, d_c = decoder(dec_in, initial_state=[s_h, s_c])
    dec_model = keras.Model([dec_in, s_h, s_c], [dense(d_seq), d_h, d_c])
    got_h, got_c = enc_model.predict(xe, verbose=0)
    np.testing.assert_allclose(got_h, enc_states[0], atol=1e-5)
    state = [got_h, got_c]
    for t in range(4):
        p, sh, sc = dec_model.predict([xd[:, t:t + 1]] + state, verbose=0)
        np.testing.assert_allclose(p[:, 0], ref[:, t], atol=1e-5)
        state = [sh, sc]


# Keras 3.15.1: Bidirectional(LSTM(3, return_sequences=True, return_state=True), merge_mode) on (None, 5, 4)
KERAS_BIDI_SHAPES = {"concat": [(None, 5, 6)] + [(None, 3)] * 4, "sum": [(None, 5, 3)] + [(None, 3)] * 4,
                     "mul": [(None, 5, 3)] + [(None, 3)] * 4, "ave": [(None, 5, 3)] + [(None, 3)] * 4,
                     None: [(None, 5, 3), (None, 5, 3)] + [(None, 3)] * 4}


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional_merge_modes_with_return_state_shapes(merge_mode):
    bi = L.Bidirectional(L.LSTM(3, return_sequences=True, return_state=True), merge_mode=merge_mode)
    assert [t.shape for t in bi(keras.Input((5, 4)))] == KERAS_BIDI_SHAPES[merge_mode]
    assert L.Bidirectional.from_config(json.loads(json.dumps(bi.get_config()))).merge_mode == merge_mode


# ----------------------------------------------------------------------------- Conv groups, Embedding combos
@pytest.mark.parametrize("layer,shape,kernel", [(L.Conv1D(4, 3, groups=2), (8, 6), (3, 3, 4)),
                                                (L.Conv2D(6, 3, groups=3), (8, 8, 6), (3, 3, 2, 6)),
                                                (L.Conv3D(4, 2, groups=2), (4, 4, 4, 2), (2, 2, 2, 1, 4))])
def test_grouped_conv_kernel_layout_like_keras_and_groups_are_independent(layer, shape, kernel):
    layer(keras.Input(shape))
    assert layout(layer) == [("kernel", kernel), ("bias", (kernel[-1],))]
    rng = np.random.default_rng(6)
    randomize(layer, rng)
    x = rng.normal(size=(1,) + shape).astype("float32")
    base = np.asarray(layer(x))
    x2 = x.copy()
    x2[..., : shape[-1] // layer.groups] += 1.0        # change only group 0's input channels
    diff = np.abs(np.asarray(layer(x2)) - base).reshape(-1, kernel[-1]).max(0)
    per_group = kernel[-1] // layer.groups
    assert np.all(diff[:per_group] > 0) and np.all(diff[per_group:] == 0)


def test_embedding_regularizer_with_mask_zero_in_training():
    rng = np.random.default_rng(7)
    inp = keras.Input((None,), dtype="int32")
    emb = L.Embedding(10, 4, mask_zero=True, embeddings_regularizer=keras.regularizers.L2(0.01))
    pooled = L.GlobalAveragePooling1D()(emb(inp))
    model = keras.Model(inp, L.Dense(1, kernel_initializer="ones")(pooled))
    ids = np.array([[1, 2, 0, 0], [3, 0, 0, 0]], "int32")
    table = emb.get_weights()[0].astype("float64")
    reg = 0.01 * np.sum(table ** 2)
    np.testing.assert_allclose(float(sum(np.asarray(v) for v in model.losses)), reg, rtol=1e-5)
    # the mask reaches the pooling: padding ids (0) do not count in the mean
    want = np.stack([table[[1, 2]].mean(0), table[[3]].mean(0)]).sum(-1, keepdims=True)
    np.testing.assert_allclose(model.predict(ids, verbose=0), want, atol=1e-6)
    model.compile("sgd", "mse")
    y = np.zeros((2, 1), "float32")
    np.testing.assert_allclose(model.evaluate(ids, y, verbose=0), np.mean(want ** 2) + reg, rtol=1e-4)
    config = emb.get_config()
    clone = L.Embedding.from_config(config)
    assert clone.mask_zero and clone.get_config()["embeddings_regularizer"] == config["embeddings_regularizer"]
