"""Where the step's arrays live. Without a distribution: the default device. Under
`fncompiler.distribution.set_distribution(...)` (or its `scope()`), the distribution places batches (sharded
over its data axis) and weights / optimizer state (by its layout map), and the jitted step follows the data.
"""
import jax.numpy as jnp


def current():
    """The active distribution, or None."""
    try:
        from fncompiler import distribution
    except ImportError:
        return None
    getter = getattr(distribution, "get_distribution", None)
    return getter() if getter is not None else None


def place_batch(arrays):
    """Host arrays of one batch (a list, None for absent targets) -> device arrays."""
    dist = current()
    if dist is None:
        return [None if a is None else jnp.asarray(a) for a in arrays]
    return [None if a is None else dist.place_batch(a) for a in arrays]


def place_weights(values, variables):
    """Weight values (a list, in the order of `variables`) -> device arrays laid out for the distribution."""
    dist = current()
    if dist is None:
        return list(values)
    return [dist.place_weight(x, v) for x, v in zip(values, variables)]


def place_tree(tree):
    """Any other state (optimizer, metrics, RNG): replicated under a distribution."""
    dist = current()
    return tree if dist is None else dist.place_replicated(tree)
