"""Nadam (Nesterov Adam with momentum schedule) with Keras 3 update formulas."""

from typing import Any, NamedTuple

import jax.numpy as jnp
import optax

from ._tree import cast, map_leaves, zeros_like
from .base import Optimizer


class NadamState(NamedTuple):
    momentums: Any
    velocities: Any
    u_product: Any  # float32 scalar, product of the momentum schedule so far


def nadam_rule(beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """Keras Nadam: ``u_t = beta_1 * (1 - 0.5 * 0.96^t)``, ``u_product *= u_t`` (once per
    step, before the per-variable updates), then
    ``m_hat = u_{t+1} m / (1 - u_product u_{t+1}) + (1 - u_t) g / (1 - u_product)``,
    ``v_hat = v / (1 - beta_2^t)``, ``w -= lr * m_hat / (sqrt(v_hat) + eps)``."""

    def init_fn(params):
        return NadamState(zeros_like(params), zeros_like(params), jnp.ones((), jnp.float32))

    def update_fn(grads, state, params=None, *, learning_rate, iterations, **extra):
        del extra
        step = (iterations + 1).astype(jnp.float32)
        u_product = state.u_product * beta_1 * (1.0 - 0.5 * jnp.power(jnp.float32(0.96), step))

        def leaf(g, m, v, p):
            g, lr = cast(g, p), cast(learning_rate, p)
            local_step = cast(iterations + 1, p)
            next_step = cast(iterations + 2, p)
            decay = cast(0.96, p)
            u_t = beta_1 * (1.0 - 0.5 * jnp.power(decay, local_step))
            u_t_1 = beta_1 * (1.0 - 0.5 * jnp.power(decay, next_step))
            u_product_t = cast(u_product, p)
            u_product_t_1 = u_product_t * u_t_1
            beta_2_power = jnp.power(cast(beta_2, p), local_step)
            m = m + (g - m) * (1 - beta_1)
            v = v + (jnp.square(g) - v) * (1 - beta_2)
            m_hat = (u_t_1 * m) / (1 - u_product_t_1) + ((1 - u_t) * g) / (1 - u_product_t)
            v_hat = v / (1 - beta_2_power)
            return -((m_hat * lr) / (jnp.sqrt(v_hat) + epsilon)), m, v

        updates, ms, vs = map_leaves(leaf, 3, grads, state.momentums, state.velocities, params)
        return updates, NadamState(ms, vs, u_product)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


class Nadam(Optimizer):
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, gradient_accumulation_steps=None, name="nadam"):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay,
                         clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, use_ema=use_ema,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)

    def update_rule(self):
        return nadam_rule(self.beta_1, self.beta_2, self.epsilon)

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        return config
