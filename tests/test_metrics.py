"""fncompiler.metrics vs NumPy references of the Keras 3 formulas."""

import numpy as np
import pytest

import jax
import jax.numpy as jnp

from fncompiler import losses, metrics

EPS = 1e-7
N, K = 12, 5
RTOL = 1e-5
N_BATCHES = 4


# ----------------------------------------------------------------------------- references
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def ref_accuracy(t, p):
    return np.mean((t == p).astype(float), -1)


def ref_binary_accuracy(t, p, threshold=0.5):
    return np.mean((t == (p > threshold)).astype(float), -1)


def ref_categorical_accuracy(t, p):
    return (np.argmax(t, -1) == np.argmax(p, -1)).astype(float)


def ref_sparse_categorical_accuracy(t, p):
    return (np.reshape(t, (-1,)).astype(int) == np.argmax(p, -1)).astype(float)


def _in_top_k(ids, p, k):
    at = p[np.arange(len(ids)), ids]
    rank = 1 + np.sum(p > at[:, None], -1)
    return (rank <= k).astype(float)


def ref_top_k(t, p, k=5):
    return _in_top_k(np.argmax(t, -1), p, k)


def ref_sparse_top_k(t, p, k=5):
    return _in_top_k(np.reshape(t, (-1,)).astype(int), p, k)


def ref_mse(t, p):
    return np.mean((t - p) ** 2, -1)


def ref_mae(t, p):
    return np.mean(np.abs(t - p), -1)


def ref_cosine(t, p):
    return np.sum(t * p, -1) / (np.linalg.norm(t, axis=-1) * np.linalg.norm(p, axis=-1))


def ref_bce(t, p, from_logits=False):
    if from_logits:
        p = _sigmoid(p)
    else:
        p = np.clip(p, EPS, 1 - EPS)
    return np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p)), -1)


def _log_probs(p, from_logits):
    if from_logits:
        return _log_softmax(p)
    p = p / p.sum(-1, keepdims=True)
    return np.log(np.clip(p, EPS, 1 - EPS))


def ref_cce(t, p, from_logits=False):
    return -np.sum(t * _log_probs(p, from_logits), -1)


def ref_scce(t, p, from_logits=False):
    return -np.sum(np.eye(p.shape[-1])[np.reshape(t, (-1,)).astype(int)] * _log_probs(p, from_logits), -1)


def ref_hinge(t, p):
    return np.mean(np.maximum(1 - (2 * t - 1) * p, 0), -1)


def ref_kld(t, p):
    t, p = np.clip(t, EPS, 1), np.clip(p, EPS, 1)
    return np.sum(t * np.log(t / p), -1)


# ----------------------------------------------------------------------------- data
def _batch(kind, rng):
    if kind == "exact":
        return rng.integers(0, 3, (N, K)).astype(float), rng.integers(0, 3, (N, K)).astype(float)
    if kind == "binary":
        return rng.integers(0, 2, (N, 1)).astype(float), rng.uniform(0, 1, (N, 1))
    if kind == "binary_logit":
        return rng.integers(0, 2, (N, K)).astype(float), 2 * rng.normal(size=(N, K))
    if kind == "onehot":
        return np.eye(K)[rng.integers(0, K, N)], rng.uniform(0.05, 1, (N, K))
    if kind == "onehot_logit":
        return np.eye(K)[rng.integers(0, K, N)], rng.normal(size=(N, K))
    if kind == "sparse":
        return rng.integers(0, K, N), rng.uniform(0.05, 1, (N, K))
    if kind == "sparse_n1":
        return rng.integers(0, K, (N, 1)), rng.uniform(0.05, 1, (N, K))
    if kind == "sparse_float":
        return rng.integers(0, K, N).astype(np.float32), rng.uniform(0.05, 1, (N, K))
    if kind == "sparse_float_n1":
        return rng.integers(0, K, (N, 1)).astype(np.float32), rng.uniform(0.05, 1, (N, K))
    if kind == "sparse_logit":
        return rng.integers(0, K, N), rng.normal(size=(N, K))
    if kind == "real":
        return rng.normal(size=(N, K)), rng.normal(size=(N, K))
    if kind == "dist":
        t, p = rng.uniform(0.01, 1, (N, K)), rng.uniform(0.01, 1, (N, K))
        return t / t.sum(-1, keepdims=True), p / p.sum(-1, keepdims=True)
    raise KeyError(kind)


def _f32(x):
    x = np.asarray(x)
    return x.astype(np.float32) if x.dtype.kind == "f" else x


# (id, metric factory, per-sample reference, data kind)
MEAN_CASES = [
    ("accuracy", metrics.Accuracy, ref_accuracy, "exact"),
    ("binary_accuracy", metrics.BinaryAccuracy, ref_binary_accuracy, "binary"),
    ("binary_accuracy_thr", lambda: metrics.BinaryAccuracy(threshold=0.7),
     lambda t, p: ref_binary_accuracy(t, p, 0.7), "binary"),
    ("categorical_accuracy", metrics.CategoricalAccuracy, ref_categorical_accuracy, "onehot"),
    ("sparse_categorical_accuracy", metrics.SparseCategoricalAccuracy, ref_sparse_categorical_accuracy, "sparse"),
    ("sparse_categorical_accuracy_n1", metrics.SparseCategoricalAccuracy, ref_sparse_categorical_accuracy, "sparse_n1"),
    ("sparse_categorical_accuracy_float", metrics.SparseCategoricalAccuracy, ref_sparse_categorical_accuracy, "sparse_float"),
    ("sparse_categorical_accuracy_float_n1", metrics.SparseCategoricalAccuracy, ref_sparse_categorical_accuracy, "sparse_float_n1"),
    ("top_k", lambda: metrics.TopKCategoricalAccuracy(k=2), lambda t, p: ref_top_k(t, p, 2), "onehot"),
    ("sparse_top_k", lambda: metrics.SparseTopKCategoricalAccuracy(k=2), lambda t, p: ref_sparse_top_k(t, p, 2), "sparse"),
    ("sparse_top_k_n1", lambda: metrics.SparseTopKCategoricalAccuracy(k=3), lambda t, p: ref_sparse_top_k(t, p, 3), "sparse_n1"),
    ("mse", metrics.MeanSquaredError, ref_mse, "real"),
    ("mae", metrics.MeanAbsoluteError, ref_mae, "real"),
    ("cosine", metrics.CosineSimilarity, ref_cosine, "real"),
    ("bce", metrics.BinaryCrossentropy, ref_bce, "binary"),
    ("bce_logits", lambda: metrics.BinaryCrossentropy(from_logits=True),
     lambda t, p: ref_bce(t, p, True), "binary_logit"),
    ("cce", metrics.CategoricalCrossentropy, ref_cce, "onehot"),
    ("cce_logits", lambda: metrics.CategoricalCrossentropy(from_logits=True),
     lambda t, p: ref_cce(t, p, True), "onehot_logit"),
    ("scce", metrics.SparseCategoricalCrossentropy, ref_scce, "sparse"),
    ("scce_logits", lambda: metrics.SparseCategoricalCrossentropy(from_logits=True),
     lambda t, p: ref_scce(t, p, True), "sparse_logit"),
    ("hinge", metrics.Hinge, ref_hinge, "binary_logit"),
    ("kld", metrics.KLDivergence, ref_kld, "dist"),
]
MEAN_IDS = [c[0] for c in MEAN_CASES]


def _batches(kind, seed, weighted):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(N_BATCHES):
        t, p = _batch(kind, rng)
        sw = rng.uniform(0, 2, N).astype(np.float32) if weighted else None
        out.append((_f32(t), _f32(p), sw))
    return out


def _weighted_mean(ref, batches):
    num = den = 0.0
    for t, p, sw in batches:
        per = ref(np.asarray(t, np.float64), np.asarray(p, np.float64))
        w = np.ones(len(per)) if sw is None else sw.astype(np.float64)
        num += np.sum(per * w)
        den += np.sum(w)
    return num / den


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("case", MEAN_CASES, ids=MEAN_IDS)
def test_mean_metrics_pure_api_over_batches(case, weighted):
    _, factory, ref, kind = case
    metric = factory()
    batches = _batches(kind, 0, weighted)
    state = metric.initial_state()
    for t, p, sw in batches:
        state = metric.update(state, t, p, sample_weight=sw)
    np.testing.assert_allclose(float(metric.compute(state)), _weighted_mean(ref, batches),
                               rtol=RTOL, atol=1e-6)


@pytest.mark.parametrize("case", MEAN_CASES, ids=MEAN_IDS)
def test_update_inside_jit_traces_once(case):
    _, factory, ref, kind = case
    metric = factory()
    traces = []

    @jax.jit
    def step(state, t, p, sw):
        traces.append(1)
        return metric.update(state, t, p, sample_weight=sw)

    batches = _batches(kind, 1, True)
    state = metric.initial_state()
    for t, p, sw in batches:
        state = step(state, t, p, sw)
    assert len(traces) == 1
    np.testing.assert_allclose(float(metric.compute(state)), _weighted_mean(ref, batches),
                               rtol=RTOL, atol=1e-6)


def test_initial_state_is_float32_pytree():
    for factory in (metrics.Mean, metrics.Accuracy, metrics.Precision, metrics.AUC, metrics.RootMeanSquaredError):
        leaves = jax.tree.leaves(factory().initial_state())
        assert leaves and all(leaf.dtype == jnp.float32 for leaf in leaves)


def test_stateful_api_update_result_reset():
    m = metrics.SparseCategoricalAccuracy()
    m.update_state(np.array([0, 1, 2]), np.eye(3))
    m.update_state(np.array([[0], [0]]), np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]]))
    np.testing.assert_allclose(float(m.result()), 4 / 5)
    m.reset_state()
    assert float(m.result()) == 0.0
    np.testing.assert_allclose(float(m(np.array([1]), np.array([[0.2, 0.8]]))), 1.0)


def test_mean_and_sum():
    rng = np.random.default_rng(2)
    vals = [rng.normal(size=(N,)).astype(np.float32) for _ in range(3)]
    sws = [rng.uniform(0, 1, N).astype(np.float32) for _ in range(3)]
    mean, total = metrics.Mean(), metrics.Sum()
    ms, ts = mean.initial_state(), total.initial_state()
    for v, w in zip(vals, sws):
        ms = mean.update(ms, v, sample_weight=w)
        ts = total.update(ts, v, sample_weight=w)
    num = sum(np.sum(v.astype(np.float64) * w) for v, w in zip(vals, sws))
    np.testing.assert_allclose(float(mean.compute(ms)), num / sum(w.sum() for w in sws), rtol=RTOL)
    np.testing.assert_allclose(float(total.compute(ts)), num, rtol=RTOL)
    # Rank-2 values are reduced to per-sample means first (Keras reduce_to_samplewise_values).
    m2 = metrics.Mean()
    s2 = m2.update(m2.initial_state(), np.ones((4, 3)) * np.arange(4)[:, None])
    np.testing.assert_allclose(float(m2.compute(s2)), 1.5)
    assert float(metrics.Mean().compute(metrics.Mean().initial_state())) == 0.0


def test_root_mean_squared_error():
    batches = _batches("real", 3, True)
    m = metrics.RootMeanSquaredError()
    s = m.initial_state()
    for t, p, sw in batches:
        s = m.update(s, t, p, sample_weight=sw)
    want = np.sqrt(_weighted_mean(ref_mse, batches))
    np.testing.assert_allclose(float(m.compute(s)), want, rtol=RTOL)


def test_mean_metric_wrapper_custom_fn():
    def abs_sum(y_true, y_pred):
        return jnp.sum(jnp.abs(y_true - y_pred), axis=-1)

    m = metrics.MeanMetricWrapper(abs_sum)
    assert m.name == "abs_sum"
    batches = _batches("real", 4, False)
    s = m.initial_state()
    for t, p, sw in batches:
        s = m.update(s, t, p)
    want = _weighted_mean(lambda t, p: np.sum(np.abs(t - p), -1), batches)
    np.testing.assert_allclose(float(m.compute(s)), want, rtol=RTOL)


# ----------------------------------------------------------------------------- confusion metrics
def _confusion(t, p, thr, w):
    pos = p > thr
    lab = t != 0
    return (np.sum(w * (pos & lab)), np.sum(w * (pos & ~lab)), np.sum(w * (~pos & ~lab)),
            np.sum(w * (~pos & lab)))


def _conf_batches(seed, weighted):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(N_BATCHES):
        t = rng.integers(0, 2, (N, 1)).astype(np.float32)
        p = rng.uniform(0, 1, (N, 1)).astype(np.float32)
        sw = rng.uniform(0, 2, N).astype(np.float32) if weighted else None
        out.append((t, p, sw))
    return out


def _ref_counts(batches, thr):
    tot = np.zeros(4)
    for t, p, sw in batches:
        w = np.ones(N) if sw is None else sw.astype(np.float64)
        tot += np.array(_confusion(t[:, 0], p[:, 0], thr, w))
    return tot


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("thresholds", [None, 0.3, [0.2, 0.5, 0.8]])
def test_precision_recall(thresholds, weighted):
    batches = _conf_batches(5, weighted)
    thr_list = [0.5] if thresholds is None else np.atleast_1d(thresholds).tolist()
    prec, rec = metrics.Precision(thresholds=thresholds), metrics.Recall(thresholds=thresholds)
    traces = []

    @jax.jit
    def step(ps, rs, t, p, sw):
        traces.append(1)
        return prec.update(ps, t, p, sw), rec.update(rs, t, p, sw)

    ps, rs = prec.initial_state(), rec.initial_state()
    for t, p, sw in batches:
        ps, rs = step(ps, rs, t, p, sw)
    assert len(traces) == 1
    counts = np.array([_ref_counts(batches, th) for th in thr_list])
    want_p = counts[:, 0] / (counts[:, 0] + counts[:, 1])
    want_r = counts[:, 0] / (counts[:, 0] + counts[:, 3])
    got_p, got_r = np.asarray(prec.compute(ps)), np.asarray(rec.compute(rs))
    if len(thr_list) == 1:
        assert got_p.shape == () and got_r.shape == ()
    np.testing.assert_allclose(got_p, want_p.squeeze(), rtol=RTOL)
    np.testing.assert_allclose(got_r, want_r.squeeze(), rtol=RTOL)


def test_confusion_counts_metrics():
    batches = _conf_batches(6, True)
    ms = [metrics.TruePositives(), metrics.FalsePositives(), metrics.TrueNegatives(), metrics.FalseNegatives()]
    for m in ms:
        for t, p, sw in batches:
            m.update_state(t, p, sample_weight=sw)
    want = _ref_counts(batches, 0.5)
    np.testing.assert_allclose([float(m.result()) for m in ms], want, rtol=RTOL)


def test_precision_top_k_and_class_id():
    rng = np.random.default_rng(7)
    t = rng.integers(0, 2, (N, K)).astype(np.float32)
    p = rng.uniform(0, 1, (N, K)).astype(np.float32)
    # class_id: binary precision on one column.
    m = metrics.Precision(class_id=2)
    m.update_state(t, p)
    tp, fp, _, _ = _confusion(t[:, 2], p[:, 2], 0.5, np.ones(N))
    np.testing.assert_allclose(float(m.result()), tp / (tp + fp), rtol=RTOL)
    # top_k: the k highest predictions per row count as positive.
    m = metrics.Precision(top_k=2)
    m.update_state(t, p)
    top = np.argsort(-p, -1)[:, :2]
    pos = np.zeros_like(t, bool)
    np.put_along_axis(pos, top, True, -1)
    np.testing.assert_allclose(float(m.result()), np.sum(pos & (t == 1)) / np.sum(pos), rtol=RTOL)
    r = metrics.Recall(top_k=2)
    r.update_state(t, p)
    np.testing.assert_allclose(float(r.result()), np.sum(pos & (t == 1)) / np.sum(t == 1), rtol=RTOL)


def _ref_auc(batches, num_thresholds=200, curve="ROC"):
    thr = [-EPS] + [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)] + [1 + EPS]
    c = np.array([_ref_counts(batches, th) for th in thr])
    tp, fp, tn, fn = c.T
    rec = tp / np.where(tp + fn == 0, 1, tp + fn)
    if curve == "ROC":
        x, y = fp / np.where(fp + tn == 0, 1, fp + tn), rec
    else:
        x, y = rec, np.where(tp + fp == 0, 0, tp / np.where(tp + fp == 0, 1, tp + fp))
    return np.sum((x[:-1] - x[1:]) * (y[:-1] + y[1:]) / 2)


def _exact_roc_auc(batches):
    t = np.concatenate([b[0][:, 0] for b in batches])
    p = np.concatenate([b[1][:, 0] for b in batches])
    pos, neg = p[t == 1], p[t == 0]
    return np.mean(pos[:, None] > neg[None, :])


@pytest.mark.parametrize("num_thresholds", [200, 50])
def test_auc_roc(num_thresholds):
    batches = _conf_batches(8, False)
    m = metrics.AUC(num_thresholds=num_thresholds)
    traces = []

    @jax.jit
    def step(s, t, p):
        traces.append(1)
        return m.update(s, t, p)

    s = m.initial_state()
    for t, p, _ in batches:
        s = step(s, t, p)
    assert len(traces) == 1
    got = float(m.compute(s))
    np.testing.assert_allclose(got, _ref_auc(batches, num_thresholds), rtol=RTOL)
    assert abs(got - _exact_roc_auc(batches)) < 0.05


def test_auc_pr_majoring_and_logits():
    batches = _conf_batches(9, True)
    m = metrics.AUC(curve="PR", summation_method="interpolation")
    for t, p, sw in batches:
        m.update_state(t, p, sample_weight=sw)
    value = float(m.result())
    assert 0.0 < value <= 1.0
    # from_logits applies a sigmoid first: logits of the same probabilities give the same AUC.
    ml, mp = metrics.AUC(from_logits=True), metrics.AUC()
    for t, p, _ in batches:
        mp.update_state(t, p)
        ml.update_state(t, np.log(p / (1 - p)))
    np.testing.assert_allclose(float(ml.result()), float(mp.result()), rtol=1e-4)
    with pytest.raises(ValueError, match="curve"):
        metrics.AUC(curve="XYZ")


# ----------------------------------------------------------------------------- resolution
@pytest.mark.parametrize("ident,kwargs,cls", [
    ("accuracy", dict(loss="binary_crossentropy"), metrics.BinaryAccuracy),
    ("acc", dict(loss=losses.BinaryCrossentropy(from_logits=True)), metrics.BinaryAccuracy),
    ("accuracy", dict(loss="sparse_categorical_crossentropy"), metrics.SparseCategoricalAccuracy),
    ("acc", dict(loss=losses.SparseCategoricalCrossentropy()), metrics.SparseCategoricalAccuracy),
    ("accuracy", dict(loss=losses.categorical_crossentropy), metrics.CategoricalAccuracy),
    ("accuracy", dict(loss="CategoricalCrossentropy"), metrics.CategoricalAccuracy),
    ("accuracy", dict(loss="mse", y_pred_shape=(None, 1)), metrics.BinaryAccuracy),
    ("accuracy", dict(loss="mse", y_pred_shape=(None, 10), y_true_shape=(None,)), metrics.SparseCategoricalAccuracy),
    ("accuracy", dict(y_pred_shape=(None, 10), y_true_shape=(None, 1)), metrics.SparseCategoricalAccuracy),
    ("accuracy", dict(y_pred_shape=(None, 10), y_true_shape=(None, 10)), metrics.CategoricalAccuracy),
    ("accuracy", dict(), metrics.Accuracy),
    ("ACC", dict(loss="mse"), metrics.Accuracy),
    ("crossentropy", dict(loss="binary_crossentropy"), metrics.BinaryCrossentropy),
    ("ce", dict(loss="sparse_categorical_crossentropy"), metrics.SparseCategoricalCrossentropy),
    ("ce", dict(y_pred_shape=(None, 4), y_true_shape=(None, 4)), metrics.CategoricalCrossentropy),
])
def test_resolve_accuracy_and_crossentropy(ident, kwargs, cls):
    m = metrics.resolve(ident, **kwargs)
    assert type(m) is cls
    assert m.name == ident


def test_resolve_crossentropy_inherits_from_logits():
    m = metrics.resolve("ce", loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    assert m.from_logits is True
    t = np.array([0, 2])
    p = np.array([[2.0, 0.0, -1.0], [0.5, 0.1, 3.0]], np.float32)
    m.update_state(t, p)
    np.testing.assert_allclose(float(m.result()), np.mean(ref_scce(t, p.astype(np.float64), True)), rtol=RTOL)


def test_resolve_other_identifiers():
    m = metrics.resolve("mse")
    assert type(m) is metrics.MeanSquaredError and m.name == "mse"
    m = metrics.resolve("mean_absolute_error")
    assert type(m) is metrics.MeanAbsoluteError and m.name == "mean_absolute_error"
    inst = metrics.AUC(name="my_auc")
    assert metrics.resolve(inst) is inst
    assert metrics.resolve(None) is None

    def my_metric(y_true, y_pred):
        return jnp.abs(y_true - y_pred)

    wrapped = metrics.resolve(my_metric)
    assert isinstance(wrapped, metrics.MeanMetricWrapper) and wrapped.name == "my_metric"
    with pytest.raises(ValueError) as err:
        metrics.resolve("accuracyy")
    assert "accuracyy" in str(err.value) and "accuracy" in str(err.value)


@pytest.mark.parametrize("name,cls", [
    ("mse", metrics.MeanSquaredError), ("mae", metrics.MeanAbsoluteError),
    ("auc", metrics.AUC), ("AUC", metrics.AUC), ("precision", metrics.Precision),
    ("Recall", metrics.Recall), ("root_mean_squared_error", metrics.RootMeanSquaredError),
    ("binary_accuracy", metrics.BinaryAccuracy), ("sparse_categorical_accuracy", metrics.SparseCategoricalAccuracy),
    ("top_k_categorical_accuracy", metrics.TopKCategoricalAccuracy), ("bce", metrics.BinaryCrossentropy),
    ("categorical_crossentropy", metrics.CategoricalCrossentropy), ("accuracy", metrics.Accuracy),
    ("kl_divergence", metrics.KLDivergence), ("logcosh", metrics.LogCoshError),
])
def test_get_by_name(name, cls):
    assert type(metrics.get(name)) is cls


def test_get_unknown_and_passthrough():
    with pytest.raises(ValueError) as err:
        metrics.get("f1_scorez")
    assert "f1_scorez" in str(err.value) and "precision" in str(err.value)
    assert metrics.get(None) is None
    m = metrics.Mean()
    assert metrics.get(m) is m
    with pytest.raises(TypeError):
        metrics.get(42)


CONFIG_FACTORIES = [c[1] for c in MEAN_CASES] + [
    metrics.Mean, metrics.Sum, metrics.RootMeanSquaredError, metrics.MeanAbsolutePercentageError,
    metrics.MeanSquaredLogarithmicError, metrics.LogCoshError, metrics.Poisson, metrics.SquaredHinge,
    metrics.CategoricalHinge,
    lambda: metrics.Precision(thresholds=[0.2, 0.7], class_id=1, name="p1"),
    lambda: metrics.Recall(top_k=3),
    lambda: metrics.TruePositives(thresholds=0.4),
    lambda: metrics.AUC(num_thresholds=50, curve="PR", from_logits=True),
    lambda: metrics.AUC(thresholds=[0.1, 0.5, 0.9]),
    lambda: metrics.MeanMetricWrapper(losses.mean_squared_error, name="wrapped"),
]


@pytest.mark.parametrize("factory", CONFIG_FACTORIES)
def test_config_round_trip(factory):
    m = factory()
    config = m.get_config()
    clone = type(m).from_config(config)
    assert type(clone) is type(m) and clone.get_config() == config
    restored = metrics.deserialize(metrics.serialize(m))
    assert type(restored) is type(m) and restored.get_config() == config
    assert jax.tree.structure(restored.initial_state()) == jax.tree.structure(m.initial_state())


def test_deserialize_only_registry():
    with pytest.raises(ValueError, match="subprocess.Popen"):
        metrics.deserialize({"class_name": "subprocess.Popen", "config": {}})
