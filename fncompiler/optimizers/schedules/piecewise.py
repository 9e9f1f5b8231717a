"""Piecewise constant schedule."""

import jax.numpy as jnp

from .base import LearningRateSchedule


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` for ``step <= boundaries[0]``, ``values[i]`` for
    ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` after the last boundary."""

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        boundaries, values = list(boundaries), list(values)
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                "The length of `boundaries` should be 1 less than the length of `values`. "
                f"Received: boundaries={boundaries} (len {len(boundaries)}), values={values} "
                f"(len {len(values)})."
            )
        self.boundaries = boundaries
        self.values = values
        self.name = name

    def __call__(self, step):
        step = jnp.asarray(step)
        # Like Keras, boundaries are cast to the step's dtype before comparing.
        bounds = [jnp.asarray(b).astype(step.dtype) for b in self.boundaries]
        values = [jnp.asarray(v, jnp.float32) for v in self.values]
        result = (step <= bounds[0]).astype(jnp.float32) * values[0]
        result += (step > bounds[-1]).astype(jnp.float32) * values[-1]
        for low, high, v in zip(bounds[:-1], bounds[1:], values[1:-1]):
            result += ((step > low) & (step <= high)).astype(jnp.float32) * v
        return result

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}
