"""Normalization layers vs NumPy references of the Keras 3 formulas.

BatchNormalization: batch statistics (biased variance) in training and
`moving = moving * momentum + batch * (1 - momentum)`; moving statistics in inference.
LayerNormalization / GroupNormalization: per-sample statistics; UnitNormalization: x / ||x||.
"""
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

ATOL = 2e-5


def np_batchnorm(x, mean, var, gamma, beta, axis, eps):
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    out = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    if gamma is not None:
        out = out * gamma.reshape(shape)
    if beta is not None:
        out = out + beta.reshape(shape)
    return out


def np_layernorm(x, gamma, beta, axes, eps):
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    shape = [x.shape[a] if a in axes else 1 for a in range(x.ndim)]
    out = (x - mean) / np.sqrt(var + eps)
    if gamma is not None:
        out = out * gamma.reshape(shape)
    if beta is not None:
        out = out + beta.reshape(shape)
    return out


def np_groupnorm(x, groups, gamma, beta, eps, axis=-1):
    """Channel axis moved last, channels split into `groups` contiguous blocks."""
    x = np.moveaxis(x, axis, -1)
    c = x.shape[-1]
    out = np.empty_like(x)
    per = c // groups
    for n in range(x.shape[0]):
        for g in range(groups):
            block = x[n, ..., g * per:(g + 1) * per]
            out[n, ..., g * per:(g + 1) * per] = (block - block.mean()) / np.sqrt(block.var() + eps)
    out = out * gamma + beta
    return np.moveaxis(out, -1, axis)


def set_random(layer, rng, positive=()):
    values = []
    for w in layer.weights:
        v = rng.normal(size=w.shape).astype("float32")
        if w.name in positive:
            v = np.abs(v) + 0.5
        values.append(v)
    layer.set_weights(values)
    return [v.astype("float64") for v in values]


# ----------------------------------------------------------------------------- BatchNormalization
def test_batchnorm_weights_layout():
    bn = L.BatchNormalization()
    bn(keras.Input(shape=(None, 5)))
    assert [(w.name, w.shape, w.trainable) for w in bn.weights] == [
        ("gamma", (5,), True), ("beta", (5,), True), ("moving_mean", (5,), False), ("moving_variance", (5,), False)]
    assert [w.name for w in bn.non_trainable_weights] == ["moving_mean", "moving_variance"]
    np.testing.assert_array_equal(bn.get_weights()[3], np.ones(5))
    bare = L.BatchNormalization(center=False, scale=False)
    bare(keras.Input(shape=(5,)))
    assert [w.name for w in bare.weights] == ["moving_mean", "moving_variance"]


@pytest.mark.parametrize("shape,axis", [((6, 4), -1), ((4, 3, 5), 1), ((3, 2, 4, 5), -1), ((3, 4, 2, 2), 1)])
def test_batchnorm_training_then_inference(shape, axis):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=shape) * 3 + 1).astype("float32")
    bn = L.BatchNormalization(axis=axis, momentum=0.9, epsilon=1e-3)
    bn(keras.Input(shape=shape[1:]))
    gamma, beta, mm, mv = set_random(bn, rng, positive=("moving_variance",))
    tv = [w.value for w in bn.trainable_weights]
    ntv = [w.value for w in bn.non_trainable_weights]

    out, (new_mm, new_mv) = bn.stateless_call(tv, ntv, x, training=True)
    red = tuple(i for i in range(len(shape)) if i != axis % len(shape))
    xd = x.astype("float64")
    mean, var = xd.mean(axis=red), xd.var(axis=red)          # biased variance, as Keras
    np.testing.assert_allclose(np.asarray(out), np_batchnorm(xd, mean, var, gamma, beta, axis, 1e-3), atol=1e-4)
    np.testing.assert_allclose(np.asarray(new_mm), mm * 0.9 + mean * 0.1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(new_mv), mv * 0.9 + var * 0.1, rtol=1e-5, atol=1e-6)
    # stateless: the layer's own variables did not move
    np.testing.assert_array_equal(bn.get_weights()[2], mm.astype("float32"))

    # inference with the updated statistics
    bn.set_weights([gamma, beta, np.asarray(new_mm), np.asarray(new_mv)])
    out_inf = bn(x, training=False)
    want = np_batchnorm(xd, np.asarray(new_mm, "float64"), np.asarray(new_mv, "float64"), gamma, beta, axis, 1e-3)
    np.testing.assert_allclose(np.asarray(out_inf), want, atol=1e-4)
    assert not np.allclose(np.asarray(out_inf), np.asarray(out), atol=1e-3)


def test_batchnorm_default_momentum_eager_update_and_frozen():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 3)).astype("float32") + 2
    bn = L.BatchNormalization()
    bn(x, training=True)   # outside any step: the assignment lands on the variables
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.01 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), 0.99 + 0.01 * x.var(0), rtol=1e-5)
    frozen = L.BatchNormalization(trainable=False)
    out = frozen(x, training=True)   # Keras 3: a frozen BN runs in inference mode
    np.testing.assert_allclose(np.asarray(out), x / np.sqrt(1 + 1e-3), rtol=1e-5)
    np.testing.assert_array_equal(frozen.moving_mean.numpy(), np.zeros(3))


def test_batchnorm_masked_statistics():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 5, 4)).astype("float32")
    mask = rng.random((3, 5)) > 0.4
    mask[0, 0] = True
    bn = L.BatchNormalization(momentum=0.5, center=False, scale=False)
    bn(keras.Input(shape=(5, 4)))
    out, (mm, mv) = bn.stateless_call([], [w.value for w in bn.non_trainable_weights], x, training=True,
                                      mask=jnp.asarray(mask))
    sel = x[mask].astype("float64")             # the unmasked (batch, time) positions
    np.testing.assert_allclose(np.asarray(mm), 0.5 * sel.mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(mv), 0.5 + 0.5 * sel.var(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(out), (x - sel.mean(0)) / np.sqrt(sel.var(0) + 1e-3), atol=1e-4)
    with pytest.raises(ValueError, match="one dimension less"):
        bn(x, mask=jnp.ones((3,), bool), training=True)


def test_batchnorm_gradient_matches_jnp_transcription():
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(6, 4)).astype("float32"))
    proj = jnp.asarray(rng.normal(size=(6, 4)).astype("float32"))
    bn = L.BatchNormalization()
    bn(keras.Input(shape=(4,)))
    set_random(bn, rng, positive=("moving_variance",))
    tv = [w.value for w in bn.trainable_weights]
    ntv = [w.value for w in bn.non_trainable_weights]

    def loss(tv, x):
        return jnp.sum(bn.stateless_call(tv, ntv, x, training=True)[0] * proj)

    def ref(tv, x):
        g, b = tv
        m = x.mean(0)
        v = ((x - m) ** 2).mean(0)
        return jnp.sum(((x - m) / jnp.sqrt(v + 1e-3) * g + b) * proj)

    got = jax.jit(jax.grad(loss, argnums=(0, 1)))(tv, x)
    want = jax.jit(jax.grad(ref, argnums=(0, 1)))(tv, x)
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=1e-4, rtol=1e-4)
    assert float(jnp.max(jnp.abs(got[1]))) > 1e-3


def test_batchnorm_moving_stats_updated_by_compiled_train_step():
    rng = np.random.default_rng(4)
    x = (rng.normal(size=(16, 3)) * 2 + 5).astype("float32")
    inp = keras.Input(shape=(3,))
    bn = L.BatchNormalization()
    model = keras.Model(inp, bn(inp))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mse")
    model.train_on_batch(x, np.zeros((16, 3), "float32"))
    mm, mv = bn.moving_mean.numpy(), bn.moving_variance.numpy()
    np.testing.assert_allclose(mm, 0.01 * x.mean(0), rtol=1e-4)
    np.testing.assert_allclose(mv, 0.99 + 0.01 * x.var(0), rtol=1e-4)
    # predict (inference) normalizes with those statistics
    pred = model.predict(x, verbose=0)
    np.testing.assert_allclose(pred, (x - mm) / np.sqrt(mv + 1e-3), rtol=1e-4, atol=1e-4)


def test_batchnorm_errors_and_config():
    bn = L.BatchNormalization(axis=1, momentum=0.8, epsilon=1e-4, center=False, synchronized=True, name="bn_cfg")
    bn(keras.Input(shape=(3, 7)))
    with pytest.raises(ValueError, match="bn_cfg"):
        bn(keras.Input(shape=(4, 7)))
    config = bn.get_config()
    json.dumps(config)
    clone = L.BatchNormalization.from_config(config)
    assert (clone.axis, clone.momentum, clone.epsilon, clone.center, clone.name) == (1, 0.8, 1e-4, False, "bn_cfg")
    assert clone.get_config() == config
    with pytest.raises(ValueError, match="out of bounds"):
        L.BatchNormalization(axis=3)(keras.Input(shape=(4,)))


# ----------------------------------------------------------------------------- LayerNormalization
@pytest.mark.parametrize("axis,center,scale", [(-1, True, True), ([1, 2], True, True), (1, False, True),
                                               (-1, True, False)])
def test_layernorm_matches_numpy(axis, center, scale):
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(3, 4, 5)) * 2 + 1).astype("float32")
    ln = L.LayerNormalization(axis=axis, center=center, scale=scale, epsilon=1e-3)
    ln(keras.Input(shape=(4, 5)))
    axes = [a % 3 for a in (axis if isinstance(axis, list) else [axis])]
    assert [w.name for w in ln.weights] == (["gamma"] if scale else []) + (["beta"] if center else [])
    for w in ln.weights:
        assert w.shape == tuple(x.shape[a] for a in axes)
    ws = set_random(ln, rng)
    gamma = ws[0] if scale else None
    beta = ws[-1] if center else None
    want = np_layernorm(x.astype("float64"), gamma, beta, tuple(axes), 1e-3)
    np.testing.assert_allclose(np.asarray(ln(x)), want, atol=1e-4)


def test_layernorm_rms_scaling_and_half_precision():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(4, 6)).astype("float32") + 0.5
    ln = L.LayerNormalization(rms_scaling=True)
    ln(keras.Input(shape=(6,)))
    assert [w.name for w in ln.weights] == ["gamma"]
    (gamma,) = set_random(ln, rng)
    xd = x.astype("float64")
    np.testing.assert_allclose(np.asarray(ln(x)), xd / np.sqrt((xd ** 2).mean(-1, keepdims=True) + 1e-3) * gamma,
                               atol=1e-4)
    half = L.LayerNormalization(dtype="mixed_float16")
    out = half(x.astype("float16"))
    assert out.dtype == jnp.float16 and half.weights[0].dtype == "float32"
    np.testing.assert_allclose(np.asarray(out, "float32"), np_layernorm(xd, None, None, (1,), 1e-3), atol=3e-3)


def test_layernorm_gradient_and_config():
    rng = np.random.default_rng(7)
    x = jnp.asarray(rng.normal(size=(3, 5)).astype("float32"))
    proj = jnp.asarray(rng.normal(size=(3, 5)).astype("float32"))
    ln = L.LayerNormalization(epsilon=1e-5)
    ln(keras.Input(shape=(5,)))
    set_random(ln, rng)
    tv = [w.value for w in ln.trainable_weights]

    def ref(tv, x):
        m = x.mean(-1, keepdims=True)
        v = ((x - m) ** 2).mean(-1, keepdims=True)
        return jnp.sum(((x - m) / jnp.sqrt(v + 1e-5) * tv[0] + tv[1]) * proj)

    got = jax.jit(jax.grad(lambda tv, x: jnp.sum(ln.stateless_call(tv, [], x)[0] * proj), argnums=(0, 1)))(tv, x)
    want = jax.jit(jax.grad(ref, argnums=(0, 1)))(tv, x)
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=1e-4)
    config = ln.get_config()
    json.dumps(config)
    clone = L.LayerNormalization.from_config(config)
    assert clone.epsilon == 1e-5 and clone.get_config() == config
    with pytest.raises(TypeError):
        L.LayerNormalization(axis="last")


# ----------------------------------------------------------------------------- GroupNormalization
@pytest.mark.parametrize("groups,axis,shape", [(2, -1, (3, 5, 4)), (-1, -1, (2, 6)), (1, -1, (2, 3, 3, 4)),
                                               (3, 1, (2, 6, 4))])
def test_groupnorm_matches_numpy(groups, axis, shape):
    rng = np.random.default_rng(8)
    x = (rng.normal(size=shape) * 2 - 1).astype("float32")
    gn = L.GroupNormalization(groups=groups, axis=axis)
    gn(keras.Input(shape=shape[1:]))
    channels = shape[axis]
    assert [(w.name, w.shape) for w in gn.weights] == [("gamma", (channels,)), ("beta", (channels,))]
    gamma, beta = set_random(gn, rng)
    n_groups = channels if groups == -1 else groups
    want = np_groupnorm(x.astype("float64"), n_groups, gamma, beta, 1e-3, axis=axis)
    np.testing.assert_allclose(np.asarray(gn(x)), want, atol=1e-4)


def test_groupnorm_errors_and_config():
    with pytest.raises(ValueError, match="multiple"):
        L.GroupNormalization(groups=4)(keras.Input(shape=(6,)))
    with pytest.raises(ValueError, match="more than"):
        L.GroupNormalization(groups=8)(keras.Input(shape=(6,)))
    gn = L.GroupNormalization(groups=3, epsilon=1e-5, center=False)
    config = gn.get_config()
    clone = L.GroupNormalization.from_config(config)
    assert (clone.groups, clone.epsilon, clone.center) == (3, 1e-5, False)
    clone(keras.Input(shape=(6,)))
    assert [w.name for w in clone.weights] == ["gamma"]


# ----------------------------------------------------------------------------- UnitNormalization
@pytest.mark.parametrize("axis", [-1, 1, [1, 2]])
def test_unitnorm_matches_numpy(axis):
    rng = np.random.default_rng(9)
    x = rng.normal(size=(2, 3, 4)).astype("float32")
    out = np.asarray(L.UnitNormalization(axis=axis)(x))
    ax = tuple(axis) if isinstance(axis, list) else axis
    want = x / np.sqrt((x.astype("float64") ** 2).sum(axis=ax, keepdims=True))
    np.testing.assert_allclose(out, want, atol=1e-6)
    np.testing.assert_allclose(np.sqrt((out ** 2).sum(axis=ax)), 1.0, atol=1e-5)
    assert np.all(np.asarray(L.UnitNormalization()(np.zeros((1, 3), "float32"))) == 0)
    assert L.UnitNormalization.from_config(L.UnitNormalization(axis=axis).get_config()).axis == axis


def test_normalization_symbolic_shapes_and_masks():
    inp = keras.Input(shape=(None, 8))
    for layer in (L.BatchNormalization(), L.LayerNormalization(), L.GroupNormalization(groups=4),
                  L.UnitNormalization()):
        out = layer(inp)
        assert out.shape == (None, None, 8) and out.dtype == "float32"
        assert layer.supports_masking
        m = jnp.asarray([[True, False]])
        assert layer.compute_mask(None, m) is m
