"""Adamax (infinity-norm Adam) with Keras 3 update formulas."""

from typing import Any, NamedTuple

import jax.numpy as jnp
import optax

from ._tree import cast, map_leaves, zeros_like
from .base import Optimizer


class AdamaxState(NamedTuple):
    m: Any
    u: Any


def adamax_rule(beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """``m += (g - m)(1 - beta_1)``; ``u = max(beta_2*u, |g|)``;
    ``w -= lr * m / ((1 - beta_1^t) * (u + epsilon))`` with ``t = iterations + 1``."""

    def init_fn(params):
        return AdamaxState(zeros_like(params), zeros_like(params))

    def update_fn(grads, state, params=None, *, learning_rate, iterations, **extra):
        del extra

        def leaf(g, m, u, p):
            g, lr = cast(g, p), cast(learning_rate, p)
            beta_1_power = jnp.power(cast(beta_1, p), cast(iterations + 1, p))
            m = m + (g - m) * (1 - beta_1)
            u = jnp.maximum(beta_2 * u, jnp.abs(g))
            return -((lr * m) / ((1 - beta_1_power) * (u + epsilon))), m, u

        updates, ms, us = map_leaves(leaf, 3, grads, state.m, state.u, params)
        return updates, AdamaxState(ms, us)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


class Adamax(Optimizer):
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, gradient_accumulation_steps=None, name="adamax"):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay,
                         clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, use_ema=use_ema,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)

    def update_rule(self):
        return adamax_rule(self.beta_1, self.beta_2, self.epsilon)

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        return config
