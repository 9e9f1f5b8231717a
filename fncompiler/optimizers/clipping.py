"""Gradient clipping transforms with Keras semantics (at most one may be set)."""

import jax
import jax.numpy as jnp
import optax


def clip_by_norm(clipnorm):
    """Per-variable clipping (Keras ``clipnorm``): ``g * clipnorm / max(||g||, clipnorm)``."""

    def clip_leaf(g):
        l2sum = jnp.sum(jnp.square(g), keepdims=True)
        pred = l2sum > 0
        l2norm = jnp.where(pred, jnp.sqrt(jnp.where(pred, l2sum, jnp.ones_like(l2sum))), l2sum)
        c = jnp.asarray(clipnorm, g.dtype)
        return (g * c) / jnp.maximum(l2norm, c)

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        return jax.tree.map(clip_leaf, updates), state

    return optax.GradientTransformation(init_fn, update_fn)


def clipping_transforms(clipnorm=None, clipvalue=None, global_clipnorm=None):
    """The optax transforms implementing the configured clipping (a list of 0 or 1)."""
    given = {k: v for k, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                               ("global_clipnorm", global_clipnorm)) if v is not None}
    if len(given) > 1:
        raise ValueError(
            "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
            f"Received: {given}. Keep one of them and set the others to None."
        )
    if clipnorm is not None and clipnorm > 0:
        return [clip_by_norm(float(clipnorm))]
    if global_clipnorm is not None and global_clipnorm > 0:
        return [optax.clip_by_global_norm(float(global_clipnorm))]
    if clipvalue is not None and clipvalue > 0:
        return [optax.clip(float(clipvalue))]
    return []
