"""Input conversion shared by the loss functions."""

import jax.numpy as jnp

from .reduction import squeeze_or_expand_to_same_rank


def float_pair(y_true, y_pred):
    """Convert ``y_pred`` to a float array and ``y_true`` to its dtype; align ranks."""
    y_pred = jnp.asarray(y_pred)
    if not jnp.issubdtype(y_pred.dtype, jnp.floating):
        y_pred = y_pred.astype(jnp.float32)
    y_true = jnp.asarray(y_true).astype(y_pred.dtype)
    return squeeze_or_expand_to_same_rank(y_true, y_pred)


def l2_normalize(x, axis=-1, epsilon=1e-7):
    """``keras.ops.normalize(order=2)``: ``x * min(rsqrt(sum(x^2)), 1/epsilon)``."""
    square_sum = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
    inv_norm = jnp.minimum(jnp.where(square_sum > 0, 1.0 / jnp.sqrt(jnp.where(square_sum > 0, square_sum, 1.0)), jnp.inf), 1.0 / epsilon)
    return x * inv_norm.astype(x.dtype)
