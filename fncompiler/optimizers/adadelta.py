"""Adadelta with Keras 3 update formulas."""

from typing import Any, NamedTuple

import jax.numpy as jnp
import optax

from ._tree import cast, map_leaves, zeros_like
from .base import Optimizer


class AdadeltaState(NamedTuple):
    accumulated_grads: Any
    accumulated_delta_vars: Any


def adadelta_rule(rho=0.95, epsilon=1e-7):
    """``Eg = rho*Eg + (1-rho)*g^2``; ``d = -sqrt(Ed + eps) * g / sqrt(Eg + eps)``;
    ``Ed = rho*Ed + (1-rho)*d^2``; ``w += lr * d``."""

    def init_fn(params):
        return AdadeltaState(zeros_like(params), zeros_like(params))

    def update_fn(grads, state, params=None, *, learning_rate, iterations=None, **extra):
        del iterations, extra

        def leaf(g, acc_g, acc_d, p):
            g, lr = cast(g, p), cast(learning_rate, p)
            acc_g = rho * acc_g + (1 - rho) * jnp.square(g)
            delta = -((jnp.sqrt(acc_d + epsilon) * g) / jnp.sqrt(acc_g + epsilon))
            acc_d = rho * acc_d + (1 - rho) * jnp.square(delta)
            return lr * delta, acc_g, acc_d

        updates, ags, ads = map_leaves(leaf, 3, grads, state.accumulated_grads,
                                       state.accumulated_delta_vars, params)
        return updates, AdadeltaState(ags, ads)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


class Adadelta(Optimizer):
    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False, gradient_accumulation_steps=None,
                 name="adadelta"):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay,
                         clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, use_ema=use_ema,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)
        self.rho = float(rho)
        self.epsilon = float(epsilon)

    def update_rule(self):
        return adadelta_rule(self.rho, self.epsilon)

    def get_config(self):
        config = super().get_config()
        config.update(rho=self.rho, epsilon=self.epsilon)
        return config
