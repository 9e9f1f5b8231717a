"""Lion with Keras 3 update formulas."""

from typing import Any, NamedTuple

import jax.numpy as jnp
import optax

from ._tree import cast, map_leaves, zeros_like
from .base import Optimizer


class LionState(NamedTuple):
    momentums: Any


def lion_rule(beta_1=0.9, beta_2=0.99):
    """``w -= lr * sign(beta_1*m + (1-beta_1)*g)``; then ``m = beta_2*m + (1-beta_2)*g``."""

    def init_fn(params):
        return LionState(zeros_like(params))

    def update_fn(grads, state, params=None, *, learning_rate, iterations=None, **extra):
        del iterations, extra

        def leaf(g, m, p):
            g, lr = cast(g, p), cast(learning_rate, p)
            update = -(lr * jnp.sign(m * beta_1 + g * (1.0 - beta_1)))
            return update, m * beta_2 + g * (1.0 - beta_2)

        updates, ms = map_leaves(leaf, 2, grads, state.momentums, params)
        return updates, LionState(ms)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


class Lion(Optimizer):
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False, gradient_accumulation_steps=None,
                 name="lion"):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay,
                         clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, use_ema=use_ema,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)
        if not 0 < beta_1 <= 1:
            raise ValueError(f"Argument `beta_1` must be in the (0, 1] range. Received: "
                             f"beta_1={beta_1}.")
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)

    def update_rule(self):
        return lion_rule(self.beta_1, self.beta_2)

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2)
        return config
