"""Adagrad with Keras 3 update formulas."""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._tree import cast, map_leaves
from .base import Optimizer


class AdagradState(NamedTuple):
    accumulators: Any


def adagrad_rule(initial_accumulator_value=0.1, epsilon=1e-7):
    """``acc += g^2``; ``w -= lr * g / sqrt(acc + epsilon)``."""

    def init_fn(params):
        return AdagradState(jax.tree.map(
            lambda p: jnp.full_like(p, initial_accumulator_value), params))

    def update_fn(grads, state, params=None, *, learning_rate, iterations=None, **extra):
        del iterations, extra

        def leaf(g, acc, p):
            g, lr = cast(g, p), cast(learning_rate, p)
            acc = acc + jnp.square(g)
            return -((lr * g) / jnp.sqrt(acc + epsilon)), acc

        updates, accs = map_leaves(leaf, 2, grads, state.accumulators, params)
        return updates, AdagradState(accs)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


class Adagrad(Optimizer):
    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, gradient_accumulation_steps=None, name="adagrad"):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay,
                         clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, use_ema=use_ema,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon = float(epsilon)

    def update_rule(self):
        return adagrad_rule(self.initial_accumulator_value, self.epsilon)

    def get_config(self):
        config = super().get_config()
        config.update(initial_accumulator_value=self.initial_accumulator_value,
                      epsilon=self.epsilon)
        return config
