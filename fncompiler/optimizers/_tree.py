"""Pytree helpers for per-leaf optimizer rules."""

import jax
import jax.numpy as jnp


def map_leaves(fn, n_out, tree, *rest):
    """Apply ``fn(leaf, *rest_leaves) -> tuple of n_out arrays`` per leaf; unzip into trees."""
    leaves, treedef = jax.tree.flatten(tree)
    rest_leaves = [treedef.flatten_up_to(r) for r in rest]
    outs = [fn(*args) for args in zip(leaves, *rest_leaves)]
    return tuple(treedef.unflatten([o[i] for o in outs]) for i in range(n_out))


def zeros_like(params):
    return jax.tree.map(jnp.zeros_like, params)


def cast(value, like):
    """``value`` as an array of ``like``'s dtype."""
    return jnp.asarray(value).astype(jnp.result_type(like))
