"""fncompiler.losses vs NumPy references of the Keras 3 formulas."""

import numpy as np
import pytest

import jax
import jax.numpy as jnp

from fncompiler import losses

EPS = 1e-7
N, K = 8, 5
RTOL = 1e-5


# ----------------------------------------------------------------------------- references
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def ref_mse(t, p):
    return np.mean((t - p) ** 2, -1)


def ref_mae(t, p):
    return np.mean(np.abs(t - p), -1)


def ref_mape(t, p):
    return 100.0 * np.mean(np.abs((t - p) / np.maximum(np.abs(t), EPS)), -1)


def ref_msle(t, p):
    return np.mean((np.log(np.maximum(p, EPS) + 1) - np.log(np.maximum(t, EPS) + 1)) ** 2, -1)


def ref_huber(t, p, delta=1.0):
    e = p - t
    a = np.abs(e)
    return np.mean(np.where(a <= delta, 0.5 * e ** 2, delta * a - 0.5 * delta ** 2), -1)


def ref_log_cosh(t, p):
    return np.mean(np.log(np.cosh(p - t)), -1)


def ref_cosine(t, p):
    tn = t / np.linalg.norm(t, axis=-1, keepdims=True)
    pn = p / np.linalg.norm(p, axis=-1, keepdims=True)
    return -np.sum(tn * pn, -1)


def _bce_elem(t, p, from_logits):
    if from_logits:
        s = _sigmoid(p)
        return -(t * np.log(s) + (1 - t) * np.log(1 - s))
    p = np.clip(p, EPS, 1 - EPS)
    return -(t * np.log(p) + (1 - t) * np.log(1 - p))


def ref_bce(t, p, from_logits=False, label_smoothing=0.0):
    t = t * (1 - label_smoothing) + 0.5 * label_smoothing
    return np.mean(_bce_elem(t, p, from_logits), -1)


def ref_focal(t, p, from_logits=False, gamma=2.0, alpha=0.25, balance=False, label_smoothing=0.0):
    t = t * (1 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        p = _sigmoid(p)
    bce = _bce_elem(t, p, False)
    p_t = t * p + (1 - t) * (1 - p)
    out = (1 - p_t) ** gamma * bce
    if balance:
        out = (t * alpha + (1 - t) * (1 - alpha)) * out
    return np.mean(out, -1)


def _log_probs(p, from_logits):
    if from_logits:
        return _log_softmax(p)
    p = p / p.sum(-1, keepdims=True)
    return np.log(np.clip(p, EPS, 1 - EPS))


def ref_cce(t, p, from_logits=False, label_smoothing=0.0):
    t = t * (1 - label_smoothing) + label_smoothing / t.shape[-1]
    return -np.sum(t * _log_probs(p, from_logits), -1)


def ref_scce(t, p, from_logits=False):
    t = np.asarray(t).reshape(p.shape[:-1]).astype(int)
    onehot = np.eye(p.shape[-1])[t]
    return -np.sum(onehot * _log_probs(p, from_logits), -1)


def ref_kld(t, p):
    t = np.clip(t, EPS, 1)
    p = np.clip(p, EPS, 1)
    return np.sum(t * np.log(t / p), -1)


def ref_poisson(t, p):
    return np.mean(p - t * np.log(p + EPS), -1)


def _to_pm1(t):
    return 2 * t - 1 if np.all((t == 0) | (t == 1)) else t


def ref_hinge(t, p):
    return np.mean(np.maximum(1 - _to_pm1(t) * p, 0), -1)


def ref_squared_hinge(t, p):
    return np.mean(np.maximum(1 - _to_pm1(t) * p, 0) ** 2, -1)


def ref_categorical_hinge(t, p):
    pos = np.sum(t * p, -1)
    neg = np.max((1 - t) * p, -1)
    return np.maximum(neg - pos + 1, 0)


# ----------------------------------------------------------------------------- data
def _data(kind, rng, shape=(N, K)):
    if kind == "real":
        return rng.normal(size=shape), rng.normal(size=shape)
    if kind == "positive":
        return rng.uniform(0.1, 2.0, shape), rng.uniform(0.1, 2.0, shape)
    if kind == "pct":
        return rng.uniform(0.5, 2.0, shape) * rng.choice([-1, 1], shape), rng.normal(size=shape)
    if kind == "binary_prob":
        return rng.integers(0, 2, shape).astype(float), rng.uniform(0.01, 0.99, shape)
    if kind == "binary_logit":
        return rng.integers(0, 2, shape).astype(float), 3 * rng.normal(size=shape)
    if kind == "onehot_prob":
        return np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])], rng.uniform(0.05, 1.0, shape)
    if kind == "onehot_logit":
        return np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])], 2 * rng.normal(size=shape)
    if kind == "sparse_prob":
        return rng.integers(0, shape[-1], shape[:-1]), rng.uniform(0.05, 1.0, shape)
    if kind == "sparse_logit":
        return rng.integers(0, shape[-1], shape[:-1]), 2 * rng.normal(size=shape)
    if kind == "dist":
        t = rng.uniform(0.01, 1, shape)
        p = rng.uniform(0.01, 1, shape)
        return t / t.sum(-1, keepdims=True), p / p.sum(-1, keepdims=True)
    if kind == "pm1":
        return rng.choice([-1.0, 1.0], shape), rng.normal(size=shape)
    raise KeyError(kind)


# (id, Loss factory, function form, reference, data kind)
CASES = [
    ("mse", losses.MeanSquaredError, losses.mean_squared_error, ref_mse, "real"),
    ("mae", losses.MeanAbsoluteError, losses.mean_absolute_error, ref_mae, "real"),
    ("mape", losses.MeanAbsolutePercentageError, losses.mean_absolute_percentage_error, ref_mape, "pct"),
    ("msle", losses.MeanSquaredLogarithmicError, losses.mean_squared_logarithmic_error, ref_msle, "positive"),
    ("huber", losses.Huber, losses.huber, ref_huber, "real"),
    ("huber_delta", lambda: losses.Huber(delta=0.4), lambda t, p: losses.huber(t, p, delta=0.4),
     lambda t, p: ref_huber(t, p, 0.4), "real"),
    ("log_cosh", losses.LogCosh, losses.log_cosh, ref_log_cosh, "real"),
    ("cosine", losses.CosineSimilarity, losses.cosine_similarity, ref_cosine, "real"),
    ("bce", losses.BinaryCrossentropy, losses.binary_crossentropy, ref_bce, "binary_prob"),
    ("bce_logits", lambda: losses.BinaryCrossentropy(from_logits=True),
     lambda t, p: losses.binary_crossentropy(t, p, from_logits=True),
     lambda t, p: ref_bce(t, p, True), "binary_logit"),
    ("bce_smooth", lambda: losses.BinaryCrossentropy(label_smoothing=0.2),
     lambda t, p: losses.binary_crossentropy(t, p, label_smoothing=0.2),
     lambda t, p: ref_bce(t, p, False, 0.2), "binary_prob"),
    ("bce_logits_smooth", lambda: losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1),
     lambda t, p: losses.binary_crossentropy(t, p, from_logits=True, label_smoothing=0.1),
     lambda t, p: ref_bce(t, p, True, 0.1), "binary_logit"),
    ("focal", losses.BinaryFocalCrossentropy, losses.binary_focal_crossentropy, ref_focal, "binary_prob"),
    ("focal_logits_balanced",
     lambda: losses.BinaryFocalCrossentropy(from_logits=True, apply_class_balancing=True, gamma=1.5),
     lambda t, p: losses.binary_focal_crossentropy(t, p, from_logits=True, apply_class_balancing=True, gamma=1.5),
     lambda t, p: ref_focal(t, p, True, 1.5, 0.25, True), "binary_logit"),
    ("cce", losses.CategoricalCrossentropy, losses.categorical_crossentropy, ref_cce, "onehot_prob"),
    ("cce_logits", lambda: losses.CategoricalCrossentropy(from_logits=True),
     lambda t, p: losses.categorical_crossentropy(t, p, from_logits=True),
     lambda t, p: ref_cce(t, p, True), "onehot_logit"),
    ("cce_logits_smooth", lambda: losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
     lambda t, p: losses.categorical_crossentropy(t, p, from_logits=True, label_smoothing=0.1),
     lambda t, p: ref_cce(t, p, True, 0.1), "onehot_logit"),
    ("scce", losses.SparseCategoricalCrossentropy, losses.sparse_categorical_crossentropy, ref_scce, "sparse_prob"),
    ("scce_logits", lambda: losses.SparseCategoricalCrossentropy(from_logits=True),
     lambda t, p: losses.sparse_categorical_crossentropy(t, p, from_logits=True),
     lambda t, p: ref_scce(t, p, True), "sparse_logit"),
    ("kld", losses.KLDivergence, losses.kl_divergence, ref_kld, "dist"),
    ("poisson", losses.Poisson, losses.poisson, ref_poisson, "positive"),
    ("hinge", losses.Hinge, losses.hinge, ref_hinge, "binary_logit"),
    ("hinge_pm1", losses.Hinge, losses.hinge, ref_hinge, "pm1"),
    ("squared_hinge", losses.SquaredHinge, losses.squared_hinge, ref_squared_hinge, "binary_logit"),
    ("categorical_hinge", losses.CategoricalHinge, losses.categorical_hinge, ref_categorical_hinge, "onehot_logit"),
]
IDS = [c[0] for c in CASES]


def _f32(x):
    x = np.asarray(x)
    return x.astype(np.float32) if x.dtype.kind == "f" else x


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_function_form_matches_reference(case):
    _, _, fn, ref, kind = case
    t, p = _data(kind, np.random.default_rng(0))
    t, p = _f32(t), _f32(p)
    got = np.asarray(fn(jnp.asarray(t), jnp.asarray(p)))
    want = ref(t.astype(np.float64), p.astype(np.float64))
    assert got.shape == (N,)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-6)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_loss_class_sum_over_batch_size(case, weighted):
    _, factory, _, ref, kind = case
    rng = np.random.default_rng(1)
    t, p = _data(kind, rng)
    t, p = _f32(t), _f32(p)
    sw = rng.uniform(0.0, 2.0, N).astype(np.float32) if weighted else None
    got = float(factory()(t, p, sample_weight=sw))
    per = ref(t.astype(np.float64), p.astype(np.float64))
    w = np.ones(N) if sw is None else sw.astype(np.float64)
    np.testing.assert_allclose(got, np.sum(per * w) / N, rtol=RTOL, atol=1e-7)


@pytest.mark.parametrize("reduction", ["sum", "mean", "none", None, "mean_with_sample_weight"])
def test_reductions(reduction):
    rng = np.random.default_rng(2)
    t, p = _f32(rng.normal(size=(N, K))), _f32(rng.normal(size=(N, K)))
    sw = rng.uniform(0.1, 2.0, N).astype(np.float32)
    got = np.asarray(losses.MeanSquaredError(reduction=reduction)(t, p, sample_weight=sw))
    weighted = ref_mse(t.astype(np.float64), p.astype(np.float64)) * sw
    want = {"sum": weighted.sum(), "mean": weighted.sum() / N, "none": weighted, None: weighted,
            "mean_with_sample_weight": weighted.sum() / sw.sum()}[reduction]
    np.testing.assert_allclose(got, want, rtol=RTOL)


def test_invalid_reduction_raises():
    with pytest.raises(ValueError, match="bogus"):
        losses.MeanSquaredError(reduction="bogus")


def test_sum_over_batch_size_divides_by_all_elements_for_sequence_outputs():
    rng = np.random.default_rng(3)
    t, p = _f32(rng.normal(size=(N, 4, K))), _f32(rng.normal(size=(N, 4, K)))
    sw = rng.uniform(0, 1, N).astype(np.float32)
    got = float(losses.MeanSquaredError()(t, p, sample_weight=sw))
    per = ref_mse(t.astype(np.float64), p.astype(np.float64))  # (N, 4)
    np.testing.assert_allclose(got, np.sum(per * sw[:, None]) / (N * 4), rtol=RTOL)


def test_sparse_labels_shape_n1_and_float_labels():
    rng = np.random.default_rng(4)
    t, p = _data("sparse_logit", rng)
    p = _f32(p)
    want = np.mean(ref_scce(t, p.astype(np.float64), True))
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    for labels in (t, t[:, None], t.astype(np.float32), t[:, None].astype(np.float32)):
        np.testing.assert_allclose(float(loss(labels, p)), want, rtol=RTOL)


def test_sparse_ignore_class_averages_over_valid_entries():
    rng = np.random.default_rng(5)
    t, p = _data("sparse_logit", rng, shape=(N, 6, K))
    t[0, :3] = -1
    t[3, 2] = -1
    p = _f32(p)
    got = float(losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)(t, p))
    valid = t != -1
    per = ref_scce(np.where(valid, t, 0), p.astype(np.float64), True)
    np.testing.assert_allclose(got, per[valid].sum() / valid.sum(), rtol=1e-4)
    per_fn = np.asarray(losses.sparse_categorical_crossentropy(t, p, from_logits=True, ignore_class=-1))
    assert np.all(per_fn[~valid] == 0)


def test_regression_rank_alignment_n_vs_n1():
    rng = np.random.default_rng(6)
    t = rng.normal(size=(N,)).astype(np.float32)
    p = rng.normal(size=(N, 1)).astype(np.float32)
    got = float(losses.MeanSquaredError()(t, p))
    np.testing.assert_allclose(got, np.mean((t - p[:, 0]) ** 2), rtol=RTOL)


def test_dtype_casting():
    t = np.array([[1, 0], [0, 1]], dtype=np.int32)
    p = jnp.array([[0.9, 0.2], [0.3, 0.6]], dtype=jnp.bfloat16)
    out = losses.BinaryCrossentropy()(t, p)
    assert out.dtype == jnp.float32  # half-precision predictions are upcast
    out64 = losses.MeanSquaredError(dtype="float32")(t, np.array([[1.0, 0.0], [0.0, 0.5]]))
    assert out64.dtype == jnp.float32
    np.testing.assert_allclose(float(out64), 0.25 / 4, rtol=RTOL)


def test_losses_are_jittable_and_differentiable():
    rng = np.random.default_rng(7)
    t, p = _data("onehot_logit", rng)
    loss = losses.CategoricalCrossentropy(from_logits=True)
    g = jax.jit(jax.grad(lambda x: loss(t, x)))(jnp.asarray(p, jnp.float32))
    s = np.exp(_log_softmax(p))
    np.testing.assert_allclose(np.asarray(g), (s - t) / N, rtol=1e-4, atol=1e-6)


def test_loss_function_wrapper_with_plain_function():
    def my_loss(y_true, y_pred):
        return jnp.sum(jnp.abs(y_true - y_pred) ** 3, axis=-1)

    rng = np.random.default_rng(8)
    t, p = _f32(rng.normal(size=(N, K))), _f32(rng.normal(size=(N, K)))
    wrapper = losses.LossFunctionWrapper(my_loss, name="cubed")
    assert wrapper.name == "cubed"
    np.testing.assert_allclose(float(wrapper(t, p)),
                               np.mean(np.sum(np.abs(t - p).astype(np.float64) ** 3, -1)), rtol=RTOL)
    with pytest.raises(TypeError, match="callable"):
        losses.LossFunctionWrapper(3)


def test_custom_loss_subclass():
    class Scaled(losses.Loss):
        def call(self, y_true, y_pred):
            return 2.0 * jnp.mean(jnp.abs(y_true - y_pred), axis=-1)

    loss = Scaled()
    assert loss.name == "scaled"
    np.testing.assert_allclose(float(loss(np.zeros((2, 2)), np.ones((2, 2)))), 2.0)


# ----------------------------------------------------------------------------- registry
@pytest.mark.parametrize("name,cls", [
    ("mse", losses.MeanSquaredError), ("MSE", losses.MeanSquaredError),
    ("mean_squared_error", losses.MeanSquaredError), ("MeanSquaredError", losses.MeanSquaredError),
    ("mae", losses.MeanAbsoluteError), ("mape", losses.MeanAbsolutePercentageError),
    ("msle", losses.MeanSquaredLogarithmicError), ("bce", losses.BinaryCrossentropy),
    ("kld", losses.KLDivergence), ("huber", losses.Huber), ("log_cosh", losses.LogCosh),
    ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
    ("categorical_hinge", losses.CategoricalHinge), ("BinaryFocalCrossentropy", losses.BinaryFocalCrossentropy),
])
def test_get_by_name(name, cls):
    obj = losses.get(name)
    assert type(obj) is cls


def test_get_passthrough_and_none():
    inst = losses.Huber(delta=3.0)
    assert losses.get(inst) is inst
    assert losses.get(None) is None
    fn = lambda t, p: t - p  # noqa: E731
    assert losses.get(fn) is fn
    with pytest.raises(TypeError):
        losses.get(3.5)


def test_get_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as err:
        losses.get("not_a_loss")
    assert "not_a_loss" in str(err.value)
    assert "mean_squared_error" in str(err.value)


@pytest.mark.parametrize("factory", [c[1] for c in CASES] + [
    lambda: losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=3, reduction="sum"),
    lambda: losses.CosineSimilarity(axis=1, name="cos", reduction="none"),
    lambda: losses.LossFunctionWrapper(losses.mean_absolute_error, name="wrapped"),
], ids=IDS + ["scce_custom", "cos_custom", "wrapper"])
def test_config_round_trip(factory):
    loss = factory()
    config = loss.get_config()
    clone = type(loss).from_config(config)
    assert type(clone) is type(loss)
    assert clone.get_config() == config
    restored = losses.deserialize(losses.serialize(loss))
    assert type(restored) is type(loss)
    assert restored.get_config() == config
    assert losses.get(losses.serialize(loss)).get_config() == config


def test_serialized_wrapper_computes_same_loss():
    loss = losses.LossFunctionWrapper(losses.huber, name="hub", delta=0.3)
    restored = losses.deserialize(losses.serialize(loss))
    rng = np.random.default_rng(9)
    t, p = _f32(rng.normal(size=(N, K))), _f32(rng.normal(size=(N, K)))
    np.testing.assert_allclose(float(restored(t, p)), np.mean(ref_huber(t, p, 0.3)), rtol=RTOL)


def test_deserialize_resolves_only_registry_names():
    with pytest.raises(ValueError, match="os.system"):
        losses.deserialize({"class_name": "os.system", "config": {}})
    with pytest.raises(ValueError, match="evil_fn"):
        losses.deserialize({"class_name": "function", "config": "evil_fn"})

    def custom(y_true, y_pred):
        return jnp.mean(y_true * y_pred, axis=-1)

    cfg = losses.serialize(losses.LossFunctionWrapper(custom))
    with pytest.raises(ValueError, match="custom"):
        losses.deserialize(cfg)
    restored = losses.deserialize(cfg, custom_objects={"custom": custom})
    assert restored.fn is custom


def test_function_aliases_exported():
    assert losses.mse is losses.mean_squared_error
    assert losses.MAE is losses.mean_absolute_error
    assert losses.kld is losses.kl_divergence
