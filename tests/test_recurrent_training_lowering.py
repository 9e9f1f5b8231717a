"""The recurrent layers' training lowering (fncompiler/layers/recurrent.py, `_project_up_front`): on CPU a cell
with at least as many gate units as input features projects each step's input inside the scan, one with fewer
projects all steps up front. Both lowerings against a plain jax.numpy loop over Keras 3's gate equations (values
and gradients, training=True), with masks, go_backwards, initial states / return_state and GRU reset_after; with
dropout the two lowerings against each other (same masks, drawn once outside the loop)."""
import numpy as np
import pytest

import jax
import jax.numpy as jnp

import fncompiler as keras
from fncompiler import layers as L
from fncompiler.layers import recurrent


@pytest.fixture(autouse=True)
def _exact_matmuls():
    with jax.default_matmul_precision("highest"):
        yield


B, T, U = 3, 6, 5
SMALL_F, LARGE_F = 4, 40      # 4 <= gate units of every cell (5, 15, 20): in the loop; 40 > all: up front


def _sigmoid(x):
    return 1.0 / (1.0 + jnp.exp(-x))


def ref_step(kind, ws):
    W, R = ws[0], ws[1]
    b = ws[2] if len(ws) > 2 else None
    u = R.shape[0]

    def simple(x, s):
        h = jnp.tanh(x @ W + s[0] @ R + b)
        return h, [h]

    def lstm(x, s):
        h, c = s
        z = x @ W + h @ R + b
        i, f, g, o = _sigmoid(z[:, :u]), _sigmoid(z[:, u:2 * u]), jnp.tanh(z[:, 2 * u:3 * u]), _sigmoid(z[:, 3 * u:])
        c = f * c + i * g
        h = o * jnp.tanh(c)
        return h, [h, c]

    def gru(x, s):
        h = s[0]
        if kind == "gru":        # reset_after=True: bias (2, 3u)
            gx, gh = x @ W + b[0], h @ R + b[1]
            z = _sigmoid(gx[:, :u] + gh[:, :u])
            r = _sigmoid(gx[:, u:2 * u] + gh[:, u:2 * u])
            hh = jnp.tanh(gx[:, 2 * u:] + r * gh[:, 2 * u:])
        else:
            gx = x @ W + b
            z = _sigmoid(gx[:, :u] + h @ R[:, :u])
            r = _sigmoid(gx[:, u:2 * u] + h @ R[:, u:2 * u])
            hh = jnp.tanh(gx[:, 2 * u:] + (r * h) @ R[:, 2 * u:])
        h = z * h + (1 - z) * hh
        return h, [h]
    return {"simple": simple, "lstm": lstm}.get(kind, gru)


def ref_rnn(kind, ws, x, states, mask, go_backwards):
    """Keras's loop one step at a time: outputs in processing order (batch, time, units), final states."""
    step = ref_step(kind, ws)
    outs = []
    for t in (range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])):
        out, new = step(x[:, t], states)
        if mask is not None:
            m = mask[:, t][:, None]
            out = jnp.where(m, out, states[0])
            new = [jnp.where(m, n, s) for n, s in zip(new, states)]
        states = new
        outs.append(out)
    return jnp.stack(outs, axis=1), states


MAKERS = {
    "simple": (lambda **kw: L.SimpleRNN(U, **kw), 1),
    "lstm": (lambda **kw: L.LSTM(U, **kw), 2),
    "gru": (lambda **kw: L.GRU(U, **kw), 1),
    "gru_reset_before": (lambda **kw: L.GRU(U, reset_after=False, **kw), 1),
}


def _layer(kind, features, rng, **kw):
    make, n_states = MAKERS[kind]
    layer = make(return_sequences=True, return_state=True, **kw)
    layer(keras.Input(shape=(T, features)))
    layer.set_weights([rng.normal(scale=0.5, size=w.shape).astype("float32") for w in layer.weights])
    return layer, n_states


def _mask(rng):
    mask = rng.random((B, T)) > 0.35
    mask[0, 0] = False
    mask[1, -1] = False
    return jnp.asarray(mask)


def _dots_outside_scan(layer, x, training):
    jaxpr = jax.make_jaxpr(lambda a: layer(a, training=training))(x).jaxpr
    return [e.primitive.name for e in jaxpr.eqns].count("dot_general")


@pytest.mark.parametrize("features", [SMALL_F, LARGE_F])
@pytest.mark.parametrize("kind", list(MAKERS))
@pytest.mark.parametrize("masked,go_backwards", [(False, False), (True, True)])
def test_training_values_and_gradients_match_jnp_loop(kind, features, masked, go_backwards):
    rng = np.random.default_rng(3)
    layer, n_states = _layer(kind, features, rng, go_backwards=go_backwards)
    x = jnp.asarray(rng.normal(size=(B, T, features)).astype("float32"))
    s0 = [jnp.asarray(rng.normal(scale=0.5, size=(B, U)).astype("float32")) for _ in range(n_states)]
    mask = _mask(rng) if masked else None
    w_out = jnp.asarray(rng.normal(size=(B, T, U)).astype("float32"))
    w_states = [jnp.asarray(rng.normal(size=(B, U)).astype("float32")) for _ in range(n_states)]
    tv = [jnp.asarray(w.value) for w in layer.trainable_weights]

    def loss(tv, x, s0):
        outs, _ = layer.stateless_call(tv, [], x, initial_state=list(s0), mask=mask, training=True)
        seq, states = outs[0], outs[1:]
        return jnp.sum(seq * w_out) + sum(jnp.sum(s * w) for s, w in zip(states, w_states))

    def ref_loss(tv, x, s0):
        seq, states = ref_rnn(kind, tv, x, list(s0), mask, go_backwards)
        return jnp.sum(seq * w_out) + sum(jnp.sum(s * w) for s, w in zip(states, w_states))

    traces = []

    def counted(tv, x, s0):
        traces.append(1)
        return loss(tv, x, s0)
    got, g = jax.jit(jax.value_and_grad(counted, argnums=(0, 1, 2)))(tv, x, s0)
    want, r = jax.value_and_grad(ref_loss, argnums=(0, 1, 2))(tv, x, s0)
    assert len(traces) == 1
    np.testing.assert_allclose(float(got), float(want), rtol=1e-5, atol=1e-4)
    for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(r)):
        assert float(jnp.max(jnp.abs(b))) > 0
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-4, rtol=1e-4)

    if jax.default_backend() == "cpu":      # the lowering the rule picked: in the loop iff gate units >= features
        gates = layer.cell.kernel.shape[-1]
        assert _dots_outside_scan(layer, x, training=True) == (1 if gates < features else 0)


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple"])
def test_training_with_dropout_same_in_both_lowerings(kind, monkeypatch):
    """Dropout masks are drawn once outside the loop: projecting inside the scan gives the values and gradients
    of projecting up front (the lowering before), for the same key."""
    rng = np.random.default_rng(5)
    layer, n_states = _layer(kind, SMALL_F, rng, dropout=0.3, recurrent_dropout=0.3, seed=7)
    x = jnp.asarray(rng.normal(size=(B, T, SMALL_F)).astype("float32"))
    w_out = jnp.asarray(rng.normal(size=(B, T, U)).astype("float32"))
    tv = [jnp.asarray(w.value) for w in layer.trainable_weights]

    def loss(tv, x):
        outs, _ = layer.stateless_call(tv, [], x, training=True, rng=jax.random.key(11))
        return jnp.sum(outs[0] * w_out)
    value_grad = jax.value_and_grad(loss, argnums=(0, 1))
    in_loop = value_grad(tv, x)
    if jax.default_backend() == "cpu":
        assert _dots_outside_scan(layer, x, training=True) == 0
    monkeypatch.setattr(recurrent, "_project_up_front", lambda cell, seq, training: True)
    up_front = value_grad(tv, x)
    assert _dots_outside_scan(layer, x, training=True) == 1
    no_dropout = jax.value_and_grad(lambda tv, x: jnp.sum(layer.stateless_call(tv, [], x)[0][0] * w_out))(tv, x)
    assert not np.allclose(float(in_loop[0]), float(no_dropout[0]), atol=1e-3)   # dropout did act
    for a, b in zip(jax.tree_util.tree_leaves(in_loop), jax.tree_util.tree_leaves(up_front)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-5)
