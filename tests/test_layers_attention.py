"""MultiHeadAttention and Attention vs NumPy softmax-attention references (Keras 3 math and weights)."""
import json

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

B, T, S, D = 2, 4, 5, 6
H, K = 2, 3


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_masked_softmax(scores, mask):
    """Keras's Softmax layer with a mask: -1e9 on masked logits, then masked weights set to 0."""
    if mask is None:
        return np_softmax(scores)
    return np_softmax(scores + (1.0 - mask) * -1e9) * mask


def np_mha(query, value, key, w, key_dim, mask=None):
    """Multi-head attention written per head: w = [qk, qb, kk, kb, vk, vb, ok, ob]."""
    qk, qb, kk, kb, vk, vb, ok, ob = w
    out = np.zeros(query.shape[:2] + (ok.shape[-1],))
    all_scores = []
    for h in range(qk.shape[1]):
        q = query @ qk[:, h] + qb[h]                       # (B, T, key_dim)
        k = key @ kk[:, h] + kb[h]                         # (B, S, key_dim)
        v = value @ vk[:, h] + vb[h]                       # (B, S, value_dim)
        scores = np.einsum("btk,bsk->bts", q / np.sqrt(key_dim), k)
        weights = np_masked_softmax(scores, None if mask is None else mask.astype("float64"))
        all_scores.append(weights)
        out += np.einsum("bts,bsv->btv", weights, v) @ ok[h]
    return out + ob, np.stack(all_scores, axis=1)          # scores (B, H, T, S)


def full_mask(batch, t, s, attention_mask=None, query_mask=None, value_mask=None, causal=False):
    m = np.ones((batch, t, s), bool)
    if attention_mask is not None:
        m &= attention_mask
    if query_mask is not None:
        m &= query_mask[:, :, None]
    if value_mask is not None:
        m &= value_mask[:, None, :]
    if causal:
        m &= np.tril(np.ones((t, s), bool))[None]
    return m


def randomize(layer, rng, scale=0.5):
    values = [rng.normal(scale=scale, size=w.shape).astype("float32") for w in layer.weights]
    layer.set_weights(values)
    return [v.astype("float64") for v in values]


def build_mha(layer, t=T, s=S, dq=D, dv=D, dk=None):
    q, v = keras.Input(shape=(t, dq)), keras.Input(shape=(s, dv))
    if dk is None:
        layer(q, v)
    else:
        layer(q, v, keras.Input(shape=(s, dk)))
    return layer


# ----------------------------------------------------------------------------- MultiHeadAttention
def test_mha_weights_layout_matches_keras():
    mha = build_mha(L.MultiHeadAttention(num_heads=H, key_dim=K, value_dim=4, name="mha"), dq=D, dv=5, dk=7)
    assert [(w.path, w.shape) for w in mha.weights] == [
        ("mha/query/kernel", (D, H, K)), ("mha/query/bias", (H, K)),
        ("mha/key/kernel", (7, H, K)), ("mha/key/bias", (H, K)),
        ("mha/value/kernel", (5, H, 4)), ("mha/value/bias", (H, 4)),
        ("mha/attention_output/kernel", (H, 4, D)), ("mha/attention_output/bias", (D,))]
    no_bias = build_mha(L.MultiHeadAttention(num_heads=H, key_dim=K, use_bias=False))
    assert [w.name for w in no_bias.weights] == ["kernel"] * 4
    assert no_bias.count_params() == 3 * D * H * K + H * K * D


CASES = {
    "plain": dict(),
    "attention_mask": dict(attention_mask=True),
    "causal": dict(use_causal_mask=True, self_attention=True),
    "query_value_masks": dict(query_mask=True, value_mask=True),
    "all_masks_with_key": dict(attention_mask=True, value_mask=True, use_causal_mask=True, key=True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_mha_forward_matches_numpy(case):
    opts = CASES[case]
    rng = np.random.default_rng(len(case))
    s = T if opts.get("self_attention") else S
    query = rng.normal(size=(B, T, D)).astype("float32")
    value = query if opts.get("self_attention") else rng.normal(size=(B, s, D)).astype("float32")
    key = rng.normal(size=(B, s, D)).astype("float32") if opts.get("key") else None
    mha = build_mha(L.MultiHeadAttention(num_heads=H, key_dim=K), s=s, dk=D if key is not None else None)
    w = randomize(mha, rng)
    kwargs = {"return_attention_scores": True}
    am = qm = vm = None
    if opts.get("attention_mask"):
        am = rng.random((B, T, s)) > 0.3
        am[:, :, 0] = True
        kwargs["attention_mask"] = am
    if opts.get("query_mask"):
        qm = np.array([[True] * (T - 1) + [False], [True] * T])
        kwargs["query_mask"] = qm
    if opts.get("value_mask"):
        vm = np.array([[True] * (s - 2) + [False] * 2, [True] * s])
        kwargs["value_mask"] = vm
    if opts.get("use_causal_mask"):
        kwargs["use_causal_mask"] = True
    out, scores = mha(query, value, key, **kwargs) if key is not None else mha(query, value, **kwargs)
    mask = None if not (am is not None or qm is not None or vm is not None or opts.get("use_causal_mask")) else \
        full_mask(B, T, s, am, qm, vm, opts.get("use_causal_mask", False))
    want, want_scores = np_mha(query.astype("float64"), value.astype("float64"),
                               (key if key is not None else value).astype("float64"), w, K, mask)
    assert out.shape == (B, T, D) and scores.shape == (B, H, T, s)
    np.testing.assert_allclose(np.asarray(scores), want_scores, atol=2e-5)
    np.testing.assert_allclose(np.asarray(out), want, atol=5e-5, rtol=1e-4)
    if mask is not None:
        assert np.all(np.asarray(scores)[np.broadcast_to(~mask[:, None], scores.shape)] == 0)
    # without return_attention_scores: the same output
    kwargs.pop("return_attention_scores")
    np.testing.assert_allclose(np.asarray(mha(query, value, key, **kwargs) if key is not None
                                          else mha(query, value, **kwargs)), np.asarray(out), atol=1e-6)


def test_mha_output_shape_and_value_dim():
    rng = np.random.default_rng(1)
    mha = build_mha(L.MultiHeadAttention(num_heads=3, key_dim=2, value_dim=4, output_shape=5), dv=7)
    w = randomize(mha, rng)
    q, v = rng.normal(size=(B, T, D)), rng.normal(size=(B, S, 7))
    out = mha(q.astype("float32"), v.astype("float32"))
    assert out.shape == (B, T, 5) and mha.weights[6].shape == (3, 4, 5)
    np.testing.assert_allclose(np.asarray(out), np_mha(q, v, v, w, 2)[0], atol=5e-5)


def test_mha_attention_axes_on_4d_inputs():
    """Default axes on (B, A, T, D) attend over A*T jointly; attention_axes=(2,) attends within each row."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(B, 2, 3, D)).astype("float32")
    joint = L.MultiHeadAttention(num_heads=H, key_dim=K)
    joint(keras.Input(shape=(2, 3, D)), keras.Input(shape=(2, 3, D)))
    per_row = L.MultiHeadAttention(num_heads=H, key_dim=K, attention_axes=(2,))
    per_row(keras.Input(shape=(2, 3, D)), keras.Input(shape=(2, 3, D)))
    w = randomize(joint, rng)
    per_row.set_weights([v.astype("float32") for v in w])
    xd = x.astype("float64")
    flat = xd.reshape(B, 6, D)
    np.testing.assert_allclose(np.asarray(joint(x, x)), np_mha(flat, flat, flat, w, K)[0].reshape(B, 2, 3, D),
                               atol=5e-5)
    rows = np.stack([np_mha(xd[:, a], xd[:, a], xd[:, a], w, K)[0] for a in range(2)], axis=1)
    out, scores = per_row(x, x, return_attention_scores=True)
    np.testing.assert_allclose(np.asarray(out), rows, atol=5e-5)
    assert scores.shape == (B, 2, H, 3, 3)


def test_mha_gradient_matches_jnp_transcription():
    rng = np.random.default_rng(3)
    q = jnp.asarray(rng.normal(size=(B, T, D)).astype("float32"))
    v = jnp.asarray(rng.normal(size=(B, S, D)).astype("float32"))
    proj = jnp.asarray(rng.normal(size=(B, T, D)).astype("float32"))
    mha = build_mha(L.MultiHeadAttention(num_heads=H, key_dim=K))
    randomize(mha, rng)
    tv = [w.value for w in mha.trainable_weights]
    vmask = jnp.asarray([[True] * 3 + [False] * 2, [True] * 5])

    def loss(tv, q):
        return jnp.sum(mha.stateless_call(tv, [], q, v, value_mask=vmask)[0] * proj)

    def ref(tv, q):
        qk, qb, kk, kb, vk, vb, ok, ob = tv
        Q = jnp.einsum("btd,dhk->bhtk", q, qk) + qb[None, :, None]
        Kp = jnp.einsum("bsd,dhk->bhsk", v, kk) + kb[None, :, None]
        Vp = jnp.einsum("bsd,dhk->bhsk", v, vk) + vb[None, :, None]
        sc = jnp.einsum("bhtk,bhsk->bhts", Q, Kp) / np.sqrt(K)
        sc = jnp.where(vmask[:, None, None, :], sc, -1e9)
        wts = jax.nn.softmax(sc, -1)
        out = jnp.einsum("bhts,bhsv,hvo->bto", wts, Vp, ok) + ob
        return jnp.sum(out * proj)

    got = jax.jit(jax.grad(loss, argnums=(0, 1)))(tv, q)
    want = jax.jit(jax.grad(ref, argnums=(0, 1)))(tv, q)
    for g, r in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), atol=1e-4, rtol=1e-4)
    assert float(jnp.max(jnp.abs(got[1]))) > 1e-3


def test_mha_dropout_only_in_training():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(B, T, D)).astype("float32")
    mha = build_mha(L.MultiHeadAttention(num_heads=H, key_dim=K, dropout=0.5), s=T)
    w = randomize(mha, rng)
    tv = [v.value for v in mha.trainable_weights]
    infer = mha(x, x)
    np.testing.assert_allclose(np.asarray(infer), np_mha(*(x.astype("float64"),) * 3, w, K)[0], atol=5e-5)
    train = jax.jit(lambda tv, key: mha.stateless_call(tv, [], x, x, training=True, rng=key)[0])
    a, a2, b = train(tv, jax.random.key(0)), train(tv, jax.random.key(0)), train(tv, jax.random.key(1))
    assert not np.allclose(np.asarray(a), np.asarray(infer), atol=1e-3)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(a2))
    assert not np.allclose(np.asarray(a), np.asarray(b), atol=1e-3)


def test_mha_symbolic_shapes_and_errors():
    x = keras.Input(shape=(None, 8))
    y = keras.Input(shape=(None, 4))
    out = L.MultiHeadAttention(num_heads=2, key_dim=4)(x, x)
    assert out.shape == (None, None, 8) and out.dtype == "float32"
    out, scores = L.MultiHeadAttention(num_heads=2, key_dim=4)(x, y, return_attention_scores=True)
    assert out.shape == (None, None, 8) and scores.shape == (None, 2, None, None)
    q5, v7 = keras.Input(shape=(5, 8)), keras.Input(shape=(7, 4))
    _, scores = L.MultiHeadAttention(num_heads=3, key_dim=2, output_shape=(6,))(q5, v7, return_attention_scores=True)
    assert scores.shape == (None, 3, 5, 7)
    assert L.MultiHeadAttention(num_heads=3, key_dim=2, output_shape=6)(q5, v7).shape == (None, 5, 6)
    with pytest.raises(ValueError, match="mha_bad"):
        L.MultiHeadAttention(num_heads=2, key_dim=2, name="mha_bad")(q5, v7, keras.Input(shape=(6, 4)))
    with pytest.raises(ValueError, match="attention_mask"):
        L.MultiHeadAttention(num_heads=2, key_dim=2)(q5, v7, attention_mask=keras.Input(shape=(5, 5), dtype="bool"))
    with pytest.raises(ValueError, match="num_heads"):
        L.MultiHeadAttention(num_heads=0, key_dim=2)
    model = keras.Model([x, y], L.MultiHeadAttention(num_heads=2, key_dim=4)(x, y, use_causal_mask=True))
    assert model.predict([np.zeros((2, 3, 8), "float32"), np.zeros((2, 3, 4), "float32")],
                         verbose=0).shape == (2, 3, 8)


def test_mha_uses_keras_masks_from_embedding_in_self_attention():
    """Embedding(mask_zero) -> MHA(x, x): the propagated mask acts as query and value mask."""
    ids = keras.Input(shape=(None,), dtype="int32")
    emb = L.Embedding(12, D, mask_zero=True)
    mha = L.MultiHeadAttention(num_heads=H, key_dim=K)
    e = emb(ids)
    model = keras.Model(ids, mha(e, e))
    rng = np.random.default_rng(5)
    randomize(mha, rng)
    batch = np.array([[3, 4, 5, 0], [1, 2, 0, 0]], "int32")
    got = model.predict(batch, verbose=0)
    x = np.asarray(emb(batch))
    m = batch != 0
    want = mha(x, x, query_mask=m, value_mask=m)
    np.testing.assert_allclose(got, np.asarray(want), atol=1e-5)
    # the padding tokens do not influence the real ones
    alone = model.predict(batch[:1, :3], verbose=0)
    np.testing.assert_allclose(got[0, :3], alone[0], atol=1e-5)


def test_mha_config_round_trip():
    rng = np.random.default_rng(6)
    mha = L.MultiHeadAttention(num_heads=H, key_dim=K, value_dim=2, dropout=0.1, output_shape=(4,),
                               attention_axes=(1,), kernel_initializer="he_normal", seed=9)
    build_mha(mha)
    randomize(mha, rng)
    config = mha.get_config()
    json.dumps(config)
    clone = build_mha(L.MultiHeadAttention.from_config(config))
    assert clone.get_config() == config
    clone.set_weights(mha.get_weights())
    q, v = rng.normal(size=(B, T, D)).astype("float32"), rng.normal(size=(B, S, D)).astype("float32")
    np.testing.assert_allclose(np.asarray(clone(q, v)), np.asarray(mha(q, v)), atol=1e-6)


# ----------------------------------------------------------------------------- Attention
def np_luong(q, v, k, scale=None, concat_weight=None, mode="dot", q_mask=None, v_mask=None, causal=False):
    if mode == "dot":
        scores = np.einsum("btd,bsd->bts", q, k)
        if scale is not None:
            scores = scores * scale
    else:
        s = q[:, :, None, :] + k[:, None, :, :]
        if scale is not None:
            s = s * scale
        scores = concat_weight * np.tanh(s).sum(-1)
    m = np.ones(scores.shape, bool)
    if v_mask is not None:
        m &= v_mask[:, None, :]
    if causal:
        m &= np.tril(np.ones(scores.shape[1:], bool))[None]
    scores = scores - 1e9 * (~m)
    w = np_softmax(scores)
    out = w @ v
    if q_mask is not None:
        out = out * q_mask[:, :, None]
    return out, w


@pytest.mark.parametrize("opts", [dict(), dict(use_scale=True), dict(score_mode="concat"),
                                  dict(score_mode="concat", use_scale=True)], ids=["dot", "scaled", "concat",
                                                                                    "concat_scaled"])
@pytest.mark.parametrize("masked", [False, True])
def test_attention_matches_numpy(opts, masked):
    rng = np.random.default_rng(7)
    q = rng.normal(size=(B, T, D)).astype("float32")
    v = rng.normal(size=(B, S, D)).astype("float32")
    k = rng.normal(size=(B, S, D)).astype("float32")
    layer = L.Attention(**opts)
    layer([keras.Input(shape=(T, D)), keras.Input(shape=(S, D)), keras.Input(shape=(S, D))])
    names = [w.name for w in layer.weights]
    assert names == (["scale"] if opts.get("use_scale") else []) + \
        (["concat_score_weight"] if opts.get("score_mode") == "concat" else [])
    values = [np.float32(1.7), np.float32(0.6)][:len(names)]
    layer.set_weights(values)
    scale = 1.7 if opts.get("use_scale") else None
    cw = values[-1] if opts.get("score_mode") == "concat" else None
    qm = np.array([[True] * (T - 1) + [False], [True] * T]) if masked else None
    vm = np.array([[True] * 3 + [False] * 2, [True] * S]) if masked else None
    got, scores = layer([q, v, k], mask=[qm, vm] if masked else None, return_attention_scores=True,
                        use_causal_mask=masked)
    want, want_w = np_luong(q.astype("float64"), v.astype("float64"), k.astype("float64"), scale, cw,
                            opts.get("score_mode", "dot"), qm, vm, causal=masked)
    np.testing.assert_allclose(np.asarray(scores), want_w, atol=2e-5)
    np.testing.assert_allclose(np.asarray(got), want, atol=5e-5)
    if masked:
        np.testing.assert_array_equal(np.asarray(layer.compute_mask([q, v], [qm, vm])), qm)
        assert layer.compute_mask([q, v], None) is None


def test_attention_two_inputs_key_defaults_to_value_and_gradient():
    rng = np.random.default_rng(8)
    q = jnp.asarray(rng.normal(size=(B, T, D)).astype("float32"))
    v = jnp.asarray(rng.normal(size=(B, S, D)).astype("float32"))
    layer = L.Attention(use_scale=True)
    layer([q, v])
    layer.set_weights([np.float32(0.8)])
    np.testing.assert_allclose(np.asarray(layer([q, v])),
                               np_luong(np.asarray(q, "float64"), np.asarray(v, "float64"),
                                        np.asarray(v, "float64"), 0.8)[0], atol=5e-5)

    def loss(tv, q):
        return jnp.sum(layer.stateless_call(tv, [], [q, v])[0] ** 2)

    def ref(tv, q):
        return jnp.sum((jax.nn.softmax(tv[0] * q @ jnp.swapaxes(v, 1, 2), -1) @ v) ** 2)

    got = jax.jit(jax.grad(loss, argnums=(0, 1)))([jnp.float32(0.8)], q)
    want = jax.jit(jax.grad(ref, argnums=(0, 1)))([jnp.float32(0.8)], q)
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=1e-4, rtol=1e-4)


def test_attention_shapes_errors_and_config():
    q, v = keras.Input(shape=(None, 8)), keras.Input(shape=(None, 5))
    k = keras.Input(shape=(None, 8))
    assert L.Attention()([q, v, k]).shape == (None, None, 5)
    out, scores = L.Attention()([q, v, k], return_attention_scores=True)
    assert out.shape == (None, None, 5) and scores.shape == (None, None, None)
    with pytest.raises(ValueError, match="list"):
        L.Attention()(q)
    with pytest.raises(ValueError, match="score_mode"):
        L.Attention(score_mode="additive")
    layer = L.Attention(use_scale=True, score_mode="concat", dropout=0.2, seed=4)
    config = layer.get_config()
    json.dumps(config)
    clone = L.Attention.from_config(config)
    assert (clone.use_scale, clone.score_mode, clone.dropout, clone.seed) == (True, "concat", 0.2, 4)
