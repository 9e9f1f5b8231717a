"""Adam and AdamW with Keras 3 update formulas (epsilon outside the sqrt, bias correction
folded into the step size)."""

from typing import Any, NamedTuple

import jax.numpy as jnp
import optax

from ._tree import cast, map_leaves, zeros_like
from .base import Optimizer


class AdamState(NamedTuple):
    momentums: Any
    velocities: Any
    velocity_hats: Any  # None unless amsgrad


def adam_rule(beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False):
    """``t = iterations + 1``; ``alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)``;
    ``m += (g - m)(1 - beta_1)``; ``v += (g^2 - v)(1 - beta_2)``; amsgrad: ``v = vhat =
    max(vhat, v)``; ``w -= alpha * m / (sqrt(v) + epsilon)``."""

    def init_fn(params):
        return AdamState(zeros_like(params), zeros_like(params),
                         zeros_like(params) if amsgrad else None)

    def update_fn(grads, state, params=None, *, learning_rate, iterations, **extra):
        del extra
        vhats = state.velocity_hats if amsgrad else grads

        def leaf(g, m, v, vhat, p):
            g, lr = cast(g, p), cast(learning_rate, p)
            local_step = cast(iterations + 1, p)
            beta_1_power = jnp.power(cast(beta_1, p), local_step)
            beta_2_power = jnp.power(cast(beta_2, p), local_step)
            alpha = lr * jnp.sqrt(1 - beta_2_power) / (1 - beta_1_power)
            m = m + (g - m) * (1 - beta_1)
            v = v + (jnp.square(g) - v) * (1 - beta_2)
            v_used = v
            if amsgrad:
                vhat = jnp.maximum(vhat, v)
                v_used = vhat
            return -((m * alpha) / (jnp.sqrt(v_used) + epsilon)), m, v, vhat

        updates, ms, vs, vhs = map_leaves(leaf, 4, grads, state.momentums, state.velocities,
                                          vhats, params)
        return updates, AdamState(ms, vs, vhs if amsgrad else None)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


class Adam(Optimizer):
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, gradient_accumulation_steps=None, name="adam"):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay,
                         clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, use_ema=use_ema,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.amsgrad = bool(amsgrad)

    def update_rule(self):
        return adam_rule(self.beta_1, self.beta_2, self.epsilon, self.amsgrad)

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
                      amsgrad=self.amsgrad)
        return config


class AdamW(Adam):
    """Adam with decoupled weight decay ``w -= w * weight_decay * lr`` before each update."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, gradient_accumulation_steps=None, name="adamw"):
        if weight_decay is None:
            raise ValueError(
                "Argument `weight_decay` must be a float for AdamW. Received: weight_decay=None. "
                "Use Adam for no weight decay."
            )
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, amsgrad=amsgrad, weight_decay=weight_decay,
                         clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, use_ema=use_ema,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)
