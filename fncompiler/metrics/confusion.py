"""Thresholded confusion-matrix counting (Keras ``metrics_utils.update_confusion_matrix_variables``)."""

import jax
import jax.numpy as jnp

from ..losses.reduction import squeeze_or_expand_to_same_rank

NEG_INF = -1e10


def parse_init_thresholds(thresholds, default_threshold=0.5):
    """Normalise a threshold argument to a list of floats within ``[0, 1]``."""
    if thresholds is None:
        return [default_threshold]
    if isinstance(thresholds, (list, tuple)):
        thresholds = [float(t) for t in thresholds]
    else:
        thresholds = [float(thresholds)]
    bad = [t for t in thresholds if t < 0 or t > 1]
    if bad:
        raise ValueError(
            f"Threshold values must be in [0, 1]. Received: thresholds={thresholds} "
            f"(out of range: {bad})."
        )
    return thresholds


def filter_top_k(x, k):
    """Keep the top ``k`` entries of the last axis; set the others to ``NEG_INF``."""
    _, idx = jax.lax.top_k(x, k)
    mask = jnp.sum(jax.nn.one_hot(idx, x.shape[-1], dtype=x.dtype), axis=-2)
    return x * mask + NEG_INF * (1 - mask)


def confusion_counts(y_true, y_pred, thresholds, sample_weight=None, top_k=None, class_id=None,
                     dtype="float32"):
    """Weighted TP/FP/TN/FN counts, one per threshold (prediction positive iff ``> thr``).

    Returns a dict ``{"tp", "fp", "tn", "fn"}`` of arrays of shape ``(len(thresholds),)``.
    Labels are positive where non-zero.
    """
    y_true = jnp.asarray(y_true).astype(dtype)
    y_pred = jnp.asarray(y_pred).astype(dtype)
    y_pred, y_true = squeeze_or_expand_to_same_rank(y_pred, y_true)
    if sample_weight is not None:
        sample_weight = jnp.expand_dims(jnp.asarray(sample_weight).astype(dtype), -1)
        _, sample_weight = squeeze_or_expand_to_same_rank(y_true, sample_weight,
                                                          expand_rank_1=False)
    if top_k is not None:
        y_pred = filter_top_k(y_pred, top_k)
    if class_id is not None:
        if y_pred.ndim < 2:
            raise ValueError(
                "`class_id` requires predictions with a class axis (rank >= 2). "
                f"Received y_pred of shape {y_pred.shape}."
            )
        y_true = y_true[..., class_id, None]
        y_pred = y_pred[..., class_id, None]
    if y_true.shape != y_pred.shape:
        y_true = jnp.broadcast_to(y_true, y_pred.shape)
    preds = jnp.reshape(y_pred, (1, -1))
    labels = jnp.reshape(y_true != 0, (1, -1))
    if sample_weight is None:
        weights = jnp.ones_like(preds)
    else:
        weights = jnp.reshape(jnp.broadcast_to(sample_weight, y_pred.shape), (1, -1))
    thr = jnp.asarray(thresholds, dtype)[:, None]
    pred_pos = preds > thr
    zero = jnp.zeros((), dtype)
    def count(mask):
        return jnp.sum(jnp.where(mask, weights, zero), axis=1)
    return {
        "tp": count(pred_pos & labels),
        "fp": count(pred_pos & ~labels),
        "tn": count(~pred_pos & ~labels),
        "fn": count(~pred_pos & labels),
    }
