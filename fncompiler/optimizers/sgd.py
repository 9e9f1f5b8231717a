"""SGD with optional (Nesterov) momentum, Keras 3 update formulas."""

from typing import Any, NamedTuple

import jax
import optax

from ._tree import cast, map_leaves, zeros_like
from .base import Optimizer


class SGDState(NamedTuple):
    momentums: Any  # None when momentum == 0


def sgd_rule(momentum=0.0, nesterov=False):
    """``m = momentum*m - lr*g; w += m`` (nesterov: ``w += momentum*m - lr*g``);
    without momentum ``w -= lr*g``."""

    def init_fn(params):
        return SGDState(zeros_like(params) if momentum != 0 else None)

    def update_fn(grads, state, params=None, *, learning_rate, iterations=None, **extra):
        del iterations, extra
        if momentum == 0:
            updates = jax.tree.map(lambda g, p: -(cast(g, p) * cast(learning_rate, p)),
                                   grads, params)
            return updates, state

        def leaf(g, m, p):
            g, lr = cast(g, p), cast(learning_rate, p)
            m = m * momentum - g * lr
            update = m * momentum - g * lr if nesterov else m
            return update, m

        updates, moms = map_leaves(leaf, 2, grads, state.momentums, params)
        return updates, SGDState(moms)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


class SGD(Optimizer):
    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False, gradient_accumulation_steps=None, name="SGD"):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay,
                         clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, use_ema=use_ema,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name)
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) \
                or not 0 <= momentum <= 1:
            raise ValueError(f"`momentum` must be a float between [0, 1]. Received: "
                             f"momentum={momentum!r}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def update_rule(self):
        return sgd_rule(self.momentum, self.nesterov)

    def get_config(self):
        config = super().get_config()
        config.update(momentum=self.momentum, nesterov=self.nesterov)
        return config
