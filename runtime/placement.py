"""Where the step's arrays live. Without a distribution: the default device. Under
`fncompiler.distribution.set_distribution(...)` (or its `scope()`), the distribution places batches (sharded
over its data axis) and weights / optimizer state (by its layout map), and the jitted step follows the data:
jit compiles one SPMD program for the input shardings it receives (XLA adds the collectives), and the outputs
come back with the same shardings, so the donated train state keeps its layout from step to step.
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
    many = getattr(dist, "place_weights", None)
    if many is not None:       # also remembers the layouts, so optimizer slots can mirror them (place_tree)
        return many(list(values), list(variables))
    return [dist.place_weight(x, v) for x, v in zip(values, variables)]


def place_tree(tree):
    """Any other state (optimizer, metrics, RNG): replicated under a distribution, except optimizer slots that
    mirror the weight list (e.g. Adam's moments), which take the weights' layouts."""
    dist = current()
    if dist is None:
        return tree
    state = getattr(dist, "place_state", None)
    return state(tree) if state is not None else dist.place_replicated(tree)
