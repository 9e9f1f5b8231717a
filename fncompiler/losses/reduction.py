"""Rank alignment, masking and reduction helpers shared by losses and metrics.

These mirror ``keras.src.losses.loss`` (``squeeze_or_expand_to_same_rank``,
``apply_mask``, ``reduce_values``, ``reduce_weighted_values``).
"""

import jax.numpy as jnp

EPSILON = 1e-7

REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


def standardize_reduction(reduction):
    """Validate a reduction name; returns it unchanged."""
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"Invalid value for argument `reduction`. Expected one of {list(REDUCTIONS)}. "
            f"Received: reduction={reduction!r}"
        )
    return reduction


def squeeze_or_expand_to_same_rank(x1, x2, expand_rank_1=True):
    """Make ``x1`` and ``x2`` the same rank when they differ by a trailing 1 dim.

    Keras semantics: if one tensor has an extra trailing dimension of size 1,
    either the other tensor (when it is rank 1 and ``expand_rank_1``) gets one
    added, or the trailing dimension is squeezed away.
    """
    r1, r2 = jnp.ndim(x1), jnp.ndim(x2)
    if r1 == r2:
        return x1, x2
    if r1 == r2 + 1 and jnp.shape(x1)[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = jnp.expand_dims(x2, -1)
        else:
            x1 = jnp.squeeze(x1, -1)
    if r2 == r1 + 1 and jnp.shape(x2)[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = jnp.expand_dims(x1, -1)
        else:
            x2 = jnp.squeeze(x2, -1)
    return x1, x2


def divide_no_nan(x, y):
    """``x / y`` with 0 where ``y == 0``."""
    safe = jnp.where(y == 0, jnp.ones_like(y), y)
    return jnp.where(y == 0, jnp.zeros_like(x / safe), x / safe)


def apply_mask(sample_weight, mask, dtype, reduction):
    """Merge a boolean validity mask into ``sample_weight`` (Keras ``apply_mask``)."""
    if mask is None:
        return sample_weight
    mask = jnp.asarray(mask).astype(dtype)
    if reduction in ("mean", "sum_over_batch_size"):
        # Valid entries get weight total/valid so the mean is over valid entries.
        total = jnp.asarray(mask.size, dtype)
        valid = jnp.sum(mask)
        mask = mask * (total / (valid + EPSILON))
    if sample_weight is None:
        return mask
    sample_weight = jnp.asarray(sample_weight).astype(dtype)
    mask, sample_weight = squeeze_or_expand_to_same_rank(mask, sample_weight)
    return sample_weight * mask


def _broadcast_weight(values, sample_weight):
    values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
    extra = jnp.ndim(values) - jnp.ndim(sample_weight)
    if extra > 0:
        sample_weight = jnp.reshape(sample_weight, jnp.shape(sample_weight) + (1,) * extra)
    return values, sample_weight


def reduce_values(values, sample_weight=None, reduction="sum_over_batch_size"):
    """Reduce already-weighted ``values`` to a scalar according to ``reduction``."""
    if reduction in (None, "none") or jnp.ndim(values) == 0 or jnp.shape(values) == (0,):
        return values
    loss = jnp.sum(values)
    if reduction in ("sum_over_batch_size", "mean", "mean_with_sample_weight"):
        if reduction == "mean_with_sample_weight" and sample_weight is not None:
            divisor = jnp.sum(jnp.broadcast_to(sample_weight, jnp.shape(values))).astype(loss.dtype)
        else:
            divisor = jnp.asarray(values.size, loss.dtype)
        loss = divide_no_nan(loss, divisor)
    return loss


def reduce_weighted_values(values, sample_weight=None, mask=None,
                           reduction="sum_over_batch_size", dtype=None):
    """Weight per-sample ``values`` by ``sample_weight`` / ``mask`` and reduce."""
    reduction = standardize_reduction(reduction)
    values = jnp.asarray(values)
    if dtype is not None:
        values = values.astype(dtype)
    dtype = values.dtype
    if sample_weight is not None:
        sample_weight = jnp.asarray(sample_weight).astype(dtype)
    sample_weight = apply_mask(sample_weight, mask, dtype=dtype, reduction=reduction)
    if sample_weight is not None:
        values, sample_weight = _broadcast_weight(values, sample_weight)
        values = values * sample_weight
    return reduce_values(values, sample_weight, reduction)
