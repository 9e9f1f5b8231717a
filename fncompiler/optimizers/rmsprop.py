"""RMSprop (optionally centered, with momentum), Keras 3 update formulas."""

from typing import Any, NamedTuple

import jax.numpy as jnp
import optax

from ._tree import cast, map_leaves, zeros_like
from .base import Optimizer


class RMSpropState(NamedTuple):
    velocities: Any
    momentums: Any  # None unless momentum > 0
    average_gradients: Any  # None unless centered


def rmsprop_rule(rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):
    """``v = rho*v + (1-rho)*g^2``; centered: ``mg = rho*mg + (1-rho)*g``, denom ``v - mg^2``;
    ``inc = lr*g / sqrt(denom + eps)``; momentum: ``m = momentum*m + inc; w -= m`` else
    ``w -= inc``."""
    use_momentum = momentum > 0

    def init_fn(params):
        return RMSpropState(zeros_like(params),
                            zeros_like(params) if use_momentum else None,
                            zeros_like(params) if centered else None)

    def update_fn(grads, state, params=None, *, learning_rate, iterations=None, **extra):
        del iterations, extra
        moms = state.momentums if use_momentum else grads
        avgs = state.average_gradients if centered else grads

        def leaf(g, v, m, ag, p):
            g, lr = cast(g, p), cast(learning_rate, p)
            v = rho * v + (1 - rho) * (g * g)
            if centered:
                ag = rho * ag + (1 - rho) * g
                denominator = v - ag * ag + epsilon
            else:
                denominator = v + epsilon
            increment = (lr * g) / jnp.sqrt(denominator)
            if use_momentum:
                m = momentum * m + increment
                return -m, v, m, ag
            return -increment, v, m, ag

        updates, vs, ms, ags = map_leaves(leaf, 4, grads, state.velocities, moms, avgs, params)
        return updates, RMSpropState(vs, ms if use_momentum else None, ags if centered else None)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


class RMSprop(Optimizer):
    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, gradient_accumulation_steps=None, name="rmsprop"):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay,
                         clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, use_ema=use_ema,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)
        self.rho = float(rho)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.centered = bool(centered)

    def update_rule(self):
        return rmsprop_rule(self.rho, self.momentum, self.epsilon, self.centered)

    def get_config(self):
        config = super().get_config()
        config.update(rho=self.rho, momentum=self.momentum, epsilon=self.epsilon,
                      centered=self.centered)
        return config
