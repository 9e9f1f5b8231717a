"""Embedding and recurrent layers (SimpleRNN, LSTM, GRU, RNN(cell), Bidirectional) vs NumPy references.

The references are explicit per-time-step loops over the Keras 3 gate equations (LSTM gates i, f, c, o;
GRU gates z, r, h with reset_after), with Keras's masking rule: a masked step keeps the states and
repeats the previous output (or outputs zeros with zero_output_for_mask).
"""
import json
import warnings

import numpy as np
import pytest

import jax
import jax.numpy as jnp

import fncompiler as keras
from fncompiler import layers as L


@pytest.fixture(autouse=True)
def _exact_matmuls():
    """float32 matmuls at full precision (GPUs may otherwise use TF32), so the tolerances hold anywhere."""
    with jax.default_matmul_precision("highest"):
        yield

B, T, F, U = 3, 5, 8, 6
ATOL = 3e-5


# ----------------------------------------------------------------------------- NumPy references
def _sigmoid(x, xp=np):
    return 1.0 / (1.0 + xp.exp(-x))


def ref_simple_step(W, R, b, xp=np):
    def step(x, states):
        h = xp.tanh(x @ W + states[0] @ R + (0 if b is None else b))
        return h, [h]
    return step


def ref_lstm_step(W, R, b, xp=np):
    u = R.shape[0]

    def step(x, states):
        h, c = states
        z = x @ W + h @ R + b
        i = _sigmoid(z[:, :u], xp)
        f = _sigmoid(z[:, u:2 * u], xp)
        g = xp.tanh(z[:, 2 * u:3 * u])
        o = _sigmoid(z[:, 3 * u:], xp)
        c = f * c + i * g
        h = o * xp.tanh(c)
        return h, [h, c]
    return step


def ref_gru_step(W, R, b, reset_after, xp=np):
    u = R.shape[0]

    def step(x, states):
        h = states[0]
        if reset_after:
            gx = x @ W + b[0]
            gh = h @ R + b[1]
            z = _sigmoid(gx[:, :u] + gh[:, :u], xp)
            r = _sigmoid(gx[:, u:2 * u] + gh[:, u:2 * u], xp)
            hh = xp.tanh(gx[:, 2 * u:] + r * gh[:, 2 * u:])
        else:
            gx = x @ W + b
            z = _sigmoid(gx[:, :u] + h @ R[:, :u], xp)
            r = _sigmoid(gx[:, u:2 * u] + h @ R[:, u:2 * u], xp)
            hh = xp.tanh(gx[:, 2 * u:] + (r * h) @ R[:, 2 * u:])
        h = z * h + (1 - z) * hh
        return h, [h]
    return step


def ref_rnn(step, x, states, mask=None, go_backwards=False, zero_output_for_mask=False, xp=np):
    """Keras's time loop, one explicit step at a time.

    Returns (outputs in processing order (batch, time, units), last output, final states)."""
    steps = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
    outs = []
    for t in steps:
        out, new = step(x[:, t], states)
        if mask is not None:
            m = mask[:, t][:, None]
            out = xp.where(m, out, 0.0 * out if zero_output_for_mask else states[0])
            new = [xp.where(m, n, s) for n, s in zip(new, states)]
        states = new
        outs.append(out)
    return xp.stack(outs, axis=1), outs[-1], states


KINDS = {
    "simple": (lambda **kw: L.SimpleRNN(U, **kw), 1),
    "lstm": (lambda **kw: L.LSTM(U, **kw), 2),
    "gru": (lambda **kw: L.GRU(U, **kw), 1),
    "gru_reset_before": (lambda **kw: L.GRU(U, reset_after=False, **kw), 1),
}


def ref_step_for(kind, weights, xp=np):
    W, R = weights[0], weights[1]
    b = weights[2] if len(weights) > 2 else None
    if kind == "simple":
        return ref_simple_step(W, R, b, xp)
    if kind == "lstm":
        return ref_lstm_step(W, R, b, xp)
    return ref_gru_step(W, R, b, kind == "gru", xp)


def build(layer, shape=(T, F)):
    """Build through a symbolic call (no eager trace of the time loop)."""
    layer(keras.Input(shape=shape))
    return layer


def randomize(layer, rng, scale=0.5):
    values = [rng.normal(scale=scale, size=w.shape).astype("float32") for w in layer.weights]
    layer.set_weights(values)
    return [v.astype("float64") for v in values]


def make_mask(rng):
    mask = rng.random((B, T)) > 0.35
    mask[0, 0] = False          # first step masked: the output is the initial state
    mask[1, -1] = False         # last step masked: the output is carried from the step before
    mask[2, :] = True
    return mask


def outputs_list(y):
    return y if isinstance(y, (list, tuple)) else [y]


# ----------------------------------------------------------------------------- Embedding
def test_embedding_lookup_matches_numpy_take():
    rng = np.random.default_rng(0)
    layer = L.Embedding(11, 3)
    ids = rng.integers(0, 11, size=(4, 6)).astype("int32")
    out = layer(ids)
    table = layer.get_weights()[0]
    assert table.shape == (11, 3) and [w.name for w in layer.weights] == ["embeddings"]
    np.testing.assert_allclose(np.asarray(out), table[ids], rtol=0, atol=0)
    assert out.dtype == jnp.float32
    # float indices are cast to int (as Keras does)
    np.testing.assert_allclose(np.asarray(layer(ids.astype("float32"))), table[ids])
    # Keras's default "uniform" initializer: RandomUniform(-0.05, 0.05)
    assert np.all(np.abs(table) <= 0.05) and table.std() > 0


def test_embedding_mask_zero_and_weights_argument():
    table = np.arange(20, dtype="float32").reshape(5, 4)
    layer = L.Embedding(5, 4, mask_zero=True, weights=[table])
    ids = np.array([[1, 2, 0], [4, 0, 0]])
    np.testing.assert_array_equal(np.asarray(layer(ids)), table[ids])
    np.testing.assert_array_equal(np.asarray(layer.compute_mask(jnp.asarray(ids), None)), ids != 0)
    assert layer.supports_masking
    plain = L.Embedding(5, 4)
    assert plain.compute_mask(jnp.asarray(ids), None) is None


def test_embedding_symbolic_shapes_config_and_input_length():
    sym = L.Embedding(100, 8)(keras.Input(shape=(None,), dtype="int32"))
    assert sym.shape == (None, None, 8) and sym.dtype == "float32"
    assert L.Embedding(100, 8)(keras.Input(shape=(7,), dtype="int32")).shape == (None, 7, 8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer = L.Embedding(10, 4, input_length=5, mask_zero=True, name="emb_cfg")
    assert any("input_length" in str(w.message) for w in caught)
    config = layer.get_config()
    json.dumps(config)
    assert "input_length" not in config
    clone = L.Embedding.from_config(config)
    assert (clone.input_dim, clone.output_dim, clone.mask_zero, clone.name) == (10, 4, True, "emb_cfg")
    with pytest.raises(ValueError, match="input_dim"):
        L.Embedding(0, 4)


def test_ticket_model_parameter_counts():
    """The Keras functional-API guide's ticket model: embedding and LSTM parameter counts."""
    title = keras.Input(shape=(None,), name="title")
    body = keras.Input(shape=(None,), name="body")
    emb_t, emb_b = L.Embedding(10000, 64), L.Embedding(10000, 64)
    lstm_t, lstm_b = L.LSTM(128), L.LSTM(32)
    t = lstm_t(emb_t(title))
    b = lstm_b(emb_b(body))
    assert emb_t.count_params() == 640000 and emb_b.count_params() == 640000
    assert lstm_t.count_params() == 4 * (64 * 128 + 128 * 128 + 128) == 98816
    assert lstm_b.count_params() == 4 * (64 * 32 + 32 * 32 + 32) == 12416
    assert t.shape == (None, 128) and b.shape == (None, 32)
    model = keras.Model([title, body], [t, b])
    assert model.count_params() == 2 * 640000 + 98816 + 12416


# ----------------------------------------------------------------------------- weights layout
def test_recurrent_weight_shapes_names_and_order():
    lstm, gru, gru0, rnn = L.LSTM(U), L.GRU(U), L.GRU(U, reset_after=False), L.SimpleRNN(U)
    for layer in (lstm, gru, gru0, rnn):
        layer(keras.Input(shape=(None, F)))
    assert [(w.name, w.shape) for w in lstm.weights] == [
        ("kernel", (F, 4 * U)), ("recurrent_kernel", (U, 4 * U)), ("bias", (4 * U,))]
    assert [(w.name, w.shape) for w in gru.weights] == [
        ("kernel", (F, 3 * U)), ("recurrent_kernel", (U, 3 * U)), ("bias", (2, 3 * U))]
    assert gru0.weights[2].shape == (3 * U,)
    assert [(w.name, w.shape) for w in rnn.weights] == [
        ("kernel", (F, U)), ("recurrent_kernel", (U, U)), ("bias", (U,))]
    assert lstm.weights[0].path == f"{lstm.name}/lstm_cell/kernel"
    # unit_forget_bias: the forget gate's bias starts at 1, the others at 0
    np.testing.assert_array_equal(lstm.get_weights()[2], np.r_[np.zeros(U), np.ones(U), np.zeros(2 * U)])
    assert np.allclose(L.LSTM(U, unit_forget_bias=False).cell.bias_initializer((4,)), 0)
    # recurrent kernel default: orthogonal
    rk = gru.get_weights()[1]
    np.testing.assert_allclose(rk @ rk.T, np.eye(U), atol=1e-5)


def test_bidirectional_weights_forward_then_backward():
    bi = L.Bidirectional(L.LSTM(U, name="enc"))
    bi(keras.Input(shape=(T, F)))
    paths = [w.path for w in bi.weights]
    # Keras 3's paths: the wrapper's name, then the copy's
    assert paths == [f"{bi.name}/forward_enc/lstm_cell/{n}" for n in ("kernel", "recurrent_kernel", "bias")] + \
        [f"{bi.name}/backward_enc/lstm_cell/{n}" for n in ("kernel", "recurrent_kernel", "bias")]
    assert bi.count_params() == 2 * 4 * (F * U + U * U + U)
    assert bi.backward_layer.go_backwards and not bi.forward_layer.go_backwards


# ----------------------------------------------------------------------------- forward values
OPTIONS = [
    dict(),
    dict(go_backwards=True, return_sequences=True, return_state=True),
    dict(masked=True, return_sequences=True),
    dict(masked=True, go_backwards=True, return_state=True),
    dict(masked=True, zero_output_for_mask=True, return_sequences=True, return_state=True),
]


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: "-".join(sorted(o)) or "default")
@pytest.mark.parametrize("kind", list(KINDS))
def test_rnn_forward_matches_numpy_loop(kind, opts):
    rng = np.random.default_rng(abs(hash((kind, tuple(sorted(opts))))) % 2 ** 32)
    opts = dict(opts)
    masked = opts.pop("masked", False)
    factory, n_states = KINDS[kind]
    layer = factory(**opts)
    x = rng.normal(size=(B, T, F)).astype("float32")
    mask = make_mask(rng) if masked else None
    build(layer)
    weights = randomize(layer, rng)
    y = outputs_list(layer(x, mask=mask) if masked else layer(x))

    seq, last, states = ref_rnn(ref_step_for(kind, weights), x.astype("float64"),
                                [np.zeros((B, U))] * n_states, mask=mask, go_backwards=opts.get("go_backwards", False),
                                zero_output_for_mask=opts.get("zero_output_for_mask", False))
    expected = [seq if opts.get("return_sequences") else last]
    if opts.get("return_state"):
        expected += states
    assert len(y) == len(expected)
    for got, want in zip(y, expected):
        assert got.shape == want.shape and got.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(got), want, atol=ATOL, rtol=1e-4)
    if masked and not opts.get("zero_output_for_mask"):
        # a masked step repeats the previous output: row 1's last step is masked
        if opts.get("return_sequences") and not opts.get("go_backwards"):
            np.testing.assert_array_equal(np.asarray(y[0])[1, -1], np.asarray(y[0])[1, -2])


@pytest.mark.parametrize("kind", list(KINDS))
def test_rnn_initial_state_list(kind):
    rng = np.random.default_rng(7)
    factory, n_states = KINDS[kind]
    layer = factory(return_sequences=True, return_state=True)
    x = rng.normal(size=(B, T, F)).astype("float32")
    init = [rng.normal(size=(B, U)).astype("float32") for _ in range(n_states)]
    build(layer)
    weights = randomize(layer, rng)
    y = layer(x, initial_state=init if n_states > 1 else init[0])
    seq, _, states = ref_rnn(ref_step_for(kind, weights), x.astype("float64"), [s.astype("float64") for s in init])
    np.testing.assert_allclose(np.asarray(y[0]), seq, atol=ATOL, rtol=1e-4)
    for got, want in zip(y[1:], states):
        np.testing.assert_allclose(np.asarray(got), want, atol=ATOL, rtol=1e-4)
    with pytest.raises(ValueError, match="initial_state"):
        layer(x, initial_state=init + [init[0]])


def test_cells_single_step_and_rnn_of_cell():
    rng = np.random.default_rng(3)
    x_t = rng.normal(size=(B, F)).astype("float32")
    h = rng.normal(size=(B, U)).astype("float32")
    c = rng.normal(size=(B, U)).astype("float32")
    cell = L.LSTMCell(U)
    cell(x_t, [h, c])
    w = randomize(cell, rng)
    out, (h1, c1) = cell(x_t, [h, c])
    ref_out, (ref_h, ref_c) = ref_lstm_step(*w)(x_t.astype("float64"), [h.astype("float64"), c.astype("float64")])
    np.testing.assert_allclose(np.asarray(out), ref_out, atol=ATOL)
    np.testing.assert_allclose(np.asarray(c1), ref_c, atol=ATOL)
    gcell = L.GRUCell(U)
    gcell(x_t, h)
    wg = randomize(gcell, rng)
    out, state = gcell(x_t, h)   # a single state may be passed bare, as in Keras
    np.testing.assert_allclose(np.asarray(state), ref_gru_step(*wg, True)(x_t.astype("float64"), [h])[0], atol=ATOL)
    # RNN(cell) runs the same math as the dedicated layer
    rnn = L.RNN(L.LSTMCell(U), return_sequences=True)
    lstm = L.LSTM(U, return_sequences=True)
    x = rng.normal(size=(B, T, F)).astype("float32")
    build(rnn), build(lstm)
    lstm.set_weights([np.asarray(v, "float32") for v in randomize(rnn, rng)])
    np.testing.assert_allclose(np.asarray(rnn(x)), np.asarray(lstm(x)), atol=1e-6)


class MinimalRNNCell(keras.Layer):
    """The Keras RNN docstring's custom cell."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), name="recurrent_kernel")

    def call(self, inputs, states):
        prev_output = states[0]
        output = inputs @ self.kernel.value + prev_output @ self.recurrent_kernel.value
        return output, [output]


def test_rnn_with_user_defined_cell():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(B, T, F)).astype("float32")
    mask = make_mask(rng)
    layer = L.RNN(MinimalRNNCell(U), return_sequences=True, go_backwards=True)
    build(layer)
    W, R = randomize(layer, rng, scale=0.3)
    seq, _, _ = ref_rnn(lambda xt, s: (xt @ W + s[0] @ R, [xt @ W + s[0] @ R]), x.astype("float64"),
                        [np.zeros((B, U))], mask=mask, go_backwards=True)
    np.testing.assert_allclose(np.asarray(layer(x, mask=mask)), seq, atol=ATOL, rtol=1e-4)


def test_time_loop_is_one_scan():
    layer = L.LSTM(U, return_sequences=True)
    short = np.zeros((B, 4, F), "float32")
    long = np.zeros((B, 40, F), "float32")
    layer(short)
    j_short = jax.make_jaxpr(lambda x: layer(x))(short).jaxpr
    j_long = jax.make_jaxpr(lambda x: layer(x))(long).jaxpr
    assert [e.primitive.name for e in j_short.eqns].count("scan") == 1
    assert len(j_short.eqns) == len(j_long.eqns)   # no unrolling: the program does not grow with time


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("kind", list(KINDS))
def test_inference_projecting_inside_the_loop_matches_numpy(kind, masked, monkeypatch):
    """Inference on CPU with a large input projection (over UP_FRONT_PROJECTION_MAX_BYTES, here forced to 0)
    projects each step's input inside the scan: same values as the NumPy loop. Training projects inside the scan
    while the cell has at least as many gate units as features (LSTM, GRU here), else up front (SimpleRNN here:
    6 units < 8 features; the matmul over all steps stays outside the scan)."""
    from fncompiler.layers import recurrent
    if jax.default_backend() != "cpu":
        pytest.skip("the in-loop projection is a CPU choice")
    monkeypatch.setattr(recurrent, "UP_FRONT_PROJECTION_MAX_BYTES", 0)
    rng = np.random.default_rng(7)
    factory, n_states = KINDS[kind]
    layer = factory(return_sequences=True)
    x = rng.normal(size=(B, T, F)).astype("float32")
    mask = make_mask(rng) if masked else None
    build(layer)
    weights = randomize(layer, rng)
    y = outputs_list(layer(x, mask=mask) if masked else layer(x))
    seq, _, _ = ref_rnn(ref_step_for(kind, weights), x.astype("float64"), [np.zeros((B, U))] * n_states,
                        mask=mask)
    np.testing.assert_allclose(np.asarray(y[0]), seq, atol=ATOL, rtol=1e-4)

    def dots_outside_scan(training):
        jaxpr = jax.make_jaxpr(lambda a: layer(a, training=training))(x).jaxpr
        return [e.primitive.name for e in jaxpr.eqns].count("dot_general")
    assert dots_outside_scan(training=False) == 0
    gates, features = layer.cell.kernel.shape[-1], layer.cell.kernel.shape[0]
    assert dots_outside_scan(training=True) == (1 if gates < features else 0)


# ----------------------------------------------------------------------------- masking through a model
@pytest.mark.parametrize("go_backwards", [False, True])
def test_embedding_lstm_mask_zero_padding_does_not_change_final_state(go_backwards):
    inp = keras.Input(shape=(None,), dtype="int32")
    emb = L.Embedding(20, 4, mask_zero=True)
    lstm = L.LSTM(U, return_state=True, go_backwards=go_backwards)
    model = keras.Model(inp, lstm(emb(inp)))
    rng = np.random.default_rng(11)
    randomize(lstm, rng)
    padded = np.array([[3, 7, 2, 0, 0], [5, 1, 9, 4, 0]], "int32")
    got = model.predict(padded, verbose=0)
    for row, n in ((0, 3), (1, 4)):
        alone = model.predict(padded[row:row + 1, :n], verbose=0)
        for g, a in zip(got, alone):
            np.testing.assert_allclose(g[row], a[0], atol=1e-5)
    # without the mask, the padding would change the result
    lstm_nomask = model.predict(np.array([[3, 7, 2, 9, 9]], "int32"), verbose=0)
    assert not np.allclose(lstm_nomask[0][0], got[0][0], atol=1e-3)


def test_rnn_mask_propagation_return_sequences():
    rnn_seq = L.GRU(U, return_sequences=True)
    rnn_last = L.GRU(U, return_state=True)
    ids = jnp.asarray([[1, 0], [2, 3]])
    mask = ids != 0
    np.testing.assert_array_equal(np.asarray(rnn_seq.compute_mask(ids, mask)), np.asarray(mask))
    assert rnn_last.compute_mask(ids, mask) == [None, None]
    assert L.LSTM(U).compute_mask(ids, mask) is None


# ----------------------------------------------------------------------------- Bidirectional
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "ave", "mul", None])
def test_bidirectional_matches_two_numpy_loops(merge_mode):
    rng = np.random.default_rng(13)
    x = rng.normal(size=(B, T, F)).astype("float32")
    mask = make_mask(rng)
    bi = L.Bidirectional(L.GRU(U, return_sequences=True), merge_mode=merge_mode)
    build(bi)
    w = randomize(bi, rng)
    got = bi(x, mask=mask)
    fwd, _, _ = ref_rnn(ref_gru_step(*w[:3], True), x.astype("float64"), [np.zeros((B, U))], mask=mask,
                        zero_output_for_mask=True)
    bwd, _, _ = ref_rnn(ref_gru_step(*w[3:], True), x.astype("float64"), [np.zeros((B, U))], mask=mask,
                        go_backwards=True, zero_output_for_mask=True)
    bwd = bwd[:, ::-1]   # back to time order
    want = {"concat": lambda: np.concatenate([fwd, bwd], -1), "sum": lambda: fwd + bwd,
            "ave": lambda: (fwd + bwd) / 2, "mul": lambda: fwd * bwd, None: lambda: [fwd, bwd]}[merge_mode]()
    for g, e in zip(outputs_list(got), outputs_list(want)):
        np.testing.assert_allclose(np.asarray(g), e, atol=ATOL, rtol=1e-4)
    # masked steps give zero outputs in both directions (Keras forces zero_output_for_mask)
    assert np.all(np.asarray(outputs_list(got)[0])[~mask] == 0)


def test_bidirectional_return_state_and_initial_state():
    rng = np.random.default_rng(17)
    x = rng.normal(size=(B, T, F)).astype("float32")
    bi = L.Bidirectional(L.LSTM(U, return_state=True))
    build(bi)
    w = randomize(bi, rng)
    init = [rng.normal(size=(B, U)) for _ in range(4)]
    out = bi(x, initial_state=[s.astype("float32") for s in init])
    assert len(out) == 5 and out[0].shape == (B, 2 * U)
    _, last_f, st_f = ref_rnn(ref_lstm_step(*w[:3]), x.astype("float64"), init[:2])
    _, last_b, st_b = ref_rnn(ref_lstm_step(*w[3:]), x.astype("float64"), init[2:], go_backwards=True)
    for g, e in zip(out, [np.concatenate([last_f, last_b], -1)] + st_f + st_b):
        np.testing.assert_allclose(np.asarray(g), e, atol=ATOL, rtol=1e-4)
    sym = L.Bidirectional(L.LSTM(U, return_state=True, return_sequences=True))(keras.Input(shape=(None, F)))
    assert [s.shape for s in sym] == [(None, None, 2 * U)] + [(None, U)] * 4


# ----------------------------------------------------------------------------- gradients
def _ref_loss(kind, ws, x, mask, proj, go_backwards=False):
    seq, _, _ = ref_rnn(ref_step_for(kind, ws, jnp), x, [jnp.zeros((B, U))] * (2 if kind == "lstm" else 1),
                        mask=mask, go_backwards=go_backwards, xp=jnp)
    return jnp.sum(seq * proj)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_rnn_gradients_match_reference(kind):
    rng = np.random.default_rng(19)
    factory, _ = KINDS[kind]
    layer = factory(return_sequences=True, go_backwards=kind == "gru")
    x = rng.normal(size=(B, T, F)).astype("float32")
    mask = jnp.asarray(make_mask(rng))
    proj = jnp.asarray(rng.normal(size=(B, T, U)).astype("float32"))
    build(layer)
    randomize(layer, rng)
    tv = [jnp.asarray(w.value) for w in layer.trainable_weights]

    def loss(tv, x):
        out, _ = layer.stateless_call(tv, [], x, mask=mask)
        return jnp.sum(out * proj)

    g_w, g_x = jax.jit(jax.grad(loss, argnums=(0, 1)))(tv, jnp.asarray(x))
    r_w, r_x = jax.jit(jax.grad(lambda ws, xx: _ref_loss(kind, ws, xx, mask, proj, go_backwards=kind == "gru"),
                                argnums=(0, 1)))(tv, jnp.asarray(x))
    for g, r in zip(g_w + [g_x], r_w + [r_x]):
        assert float(jnp.max(jnp.abs(r))) > 0
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), atol=1e-4, rtol=1e-4)


# ----------------------------------------------------------------------------- dropout
def test_rnn_dropout_only_in_training():
    rng = np.random.default_rng(23)
    x = rng.normal(size=(B, T, F)).astype("float32")
    layer = L.LSTM(U, dropout=0.5, recurrent_dropout=0.5, return_sequences=True, seed=3)
    plain = L.LSTM(U, return_sequences=True)
    build(layer), build(plain)
    w = randomize(layer, rng)
    plain.set_weights([v.astype("float32") for v in w])
    tv = [w_.value for w_ in layer.trainable_weights]
    infer, _ = layer.stateless_call(tv, [], x, training=False)
    np.testing.assert_allclose(np.asarray(infer), np.asarray(plain(x)), atol=1e-6)
    train = jax.jit(lambda tv, x, key: layer.stateless_call(tv, [], x, training=True, rng=key)[0])
    t1 = train(tv, x, jax.random.key(1))
    t1b = train(tv, x, jax.random.key(1))
    t2 = train(tv, x, jax.random.key(2))
    assert not np.allclose(np.asarray(t1), np.asarray(infer), atol=1e-3)
    np.testing.assert_array_equal(np.asarray(t1), np.asarray(t1b))
    assert not np.allclose(np.asarray(t1), np.asarray(t2), atol=1e-3)


# ----------------------------------------------------------------------------- shapes and errors
def test_symbolic_shapes_with_unknown_batch_and_time():
    inp = keras.Input(shape=(None, F))
    seq = L.LSTM(U, return_sequences=True)(inp)
    assert seq.shape == (None, None, U) and seq.dtype == "float32"
    out, h = L.GRU(U, return_state=True)(inp)
    assert out.shape == (None, U) and h.shape == (None, U)
    out, h, c = L.LSTM(U, return_state=True, return_sequences=True)(inp)
    assert (out.shape, h.shape, c.shape) == ((None, None, U), (None, U), (None, U))
    assert L.Bidirectional(L.SimpleRNN(U, return_sequences=True))(inp).shape == (None, None, 2 * U)
    assert L.LSTM(U)(keras.Input(shape=(T, F), batch_size=2)).shape == (2, U)
    model = keras.Model(inp, seq)
    assert model.predict(np.zeros((2, 7, F), "float32"), verbose=0).shape == (2, 7, U)
    assert model.predict(np.zeros((3, 2, F), "float32"), verbose=0).shape == (3, 2, U)


def test_bad_inputs_raise_at_graph_construction():
    with pytest.raises(ValueError, match=r'lstm_on_2d.*expected ndim=3'):
        L.LSTM(4, name="lstm_on_2d")(keras.Input(shape=(8,)))
    with pytest.raises(ValueError, match="gru_unknown_features"):
        L.GRU(4, name="gru_unknown_features")(keras.Input(shape=(None, None)))
    shared = L.LSTM(4, name="lstm_reused")
    shared(keras.Input(shape=(None, 8)))
    with pytest.raises(ValueError, match="lstm_reused"):
        shared(keras.Input(shape=(None, 5)))
    with pytest.raises(ValueError, match="units"):
        L.SimpleRNN(0)
    with pytest.raises(ValueError, match="merge mode"):
        L.Bidirectional(L.LSTM(2), merge_mode="max")
    with pytest.raises(ValueError, match="stateful"):
        L.LSTM(2, stateful=True)


# ----------------------------------------------------------------------------- config round trips
@pytest.mark.parametrize("make", [
    lambda: L.SimpleRNN(U, activation="relu", return_sequences=True, dropout=0.1),
    lambda: L.LSTM(U, return_state=True, go_backwards=True, unit_forget_bias=False, recurrent_activation="hard_sigmoid"),
    lambda: L.GRU(U, reset_after=False, use_bias=False, kernel_regularizer="l2"),
    lambda: L.RNN(L.GRUCell(U), return_sequences=True),
    lambda: L.Bidirectional(L.LSTM(U, return_sequences=True), merge_mode="sum"),
], ids=["simple_rnn", "lstm", "gru", "rnn_cell", "bidirectional"])
def test_recurrent_config_round_trip(make):
    rng = np.random.default_rng(29)
    x = rng.normal(size=(B, T, F)).astype("float32")
    layer = make()
    build(layer)
    randomize(layer, rng)
    config = layer.get_config()
    json.dumps(config)
    clone = type(layer).from_config(config)
    build(clone)
    assert [w.shape for w in clone.weights] == [w.shape for w in layer.weights]
    clone.set_weights(layer.get_weights())
    for a, b in zip(outputs_list(layer(x)), outputs_list(clone(x))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    assert clone.get_config() == config


def test_masked_lstm_model_trains():
    rng = np.random.default_rng(31)
    inp = keras.Input(shape=(None,), dtype="int32")
    h = L.LSTM(U)(L.Embedding(30, F, mask_zero=True)(inp))
    model = keras.Model(inp, L.Dense(1)(h))
    model.compile(optimizer="adam", loss="mse")
    x = rng.integers(1, 30, size=(32, 6)).astype("int32")
    x[:, 4:] = 0
    y = (x[:, :1] > 15).astype("float32")
    hist = model.fit(x, y, epochs=5, batch_size=32, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
