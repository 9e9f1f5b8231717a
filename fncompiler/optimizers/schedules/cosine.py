"""Cosine decay (with optional linear warmup) and cosine decay with restarts."""

import math

import jax.numpy as jnp

from .base import LearningRateSchedule, as_float, check_positive_steps


class CosineDecay(LearningRateSchedule):
    """Cosine decay from ``initial_learning_rate`` (or ``warmup_target`` after a linear warmup
    of ``warmup_steps``) down to ``alpha`` times that value over ``decay_steps``."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
                 warmup_target=None, warmup_steps=0):
        check_positive_steps("decay_steps", decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.alpha = alpha
        self.name = name
        self.warmup_target = warmup_target
        self.warmup_steps = warmup_steps

    def _decay(self, step, decay_steps, decay_from_lr):
        completed_fraction = step / decay_steps
        cosine_decayed = 0.5 * (1.0 + jnp.cos(jnp.float32(math.pi) * completed_fraction))
        decayed = (1.0 - self.alpha) * cosine_decayed + self.alpha
        return decay_from_lr * decayed

    def __call__(self, step):
        init = as_float(self.initial_learning_rate)
        decay_steps = as_float(self.decay_steps)
        step = as_float(step)
        if self.warmup_target is None:
            return self._decay(jnp.minimum(step, decay_steps), decay_steps, init)
        target = as_float(self.warmup_target)
        warmup_steps = as_float(self.warmup_steps)
        step = jnp.minimum(step, decay_steps + warmup_steps)
        safe_warmup = jnp.where(warmup_steps > 0, warmup_steps, 1.0)
        warm = (target - init) * (step / safe_warmup) + init
        return jnp.where(step < warmup_steps, warm,
                         self._decay(step - warmup_steps, decay_steps, target))

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha, "name": self.name,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """SGDR: cosine decay restarted every period; periods grow by ``t_mul``, peaks by ``m_mul``."""

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0,
                 name="SGDRDecay"):
        check_positive_steps("first_decay_steps", first_decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.first_decay_steps = first_decay_steps
        self.t_mul = t_mul
        self.m_mul = m_mul
        self.alpha = alpha
        self.name = name

    def __call__(self, step):
        fraction = as_float(step) / as_float(self.first_decay_steps)
        t_mul = as_float(self.t_mul)
        if float(self.t_mul) == 1.0:
            i_restart = jnp.floor(fraction)
            fraction = fraction - i_restart
        else:
            i_restart = jnp.floor(jnp.log(1.0 - fraction * (1.0 - t_mul)) / jnp.log(t_mul))
            sum_r = (1.0 - jnp.power(t_mul, i_restart)) / (1.0 - t_mul)
            fraction = (fraction - sum_r) / jnp.power(t_mul, i_restart)
        m_fac = jnp.power(as_float(self.m_mul), i_restart)
        cosine_decayed = 0.5 * m_fac * (1.0 + jnp.cos(jnp.float32(math.pi) * fraction))
        decayed = (1.0 - self.alpha) * cosine_decayed + self.alpha
        return as_float(self.initial_learning_rate) * decayed

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "first_decay_steps": self.first_decay_steps, "t_mul": self.t_mul,
                "m_mul": self.m_mul, "alpha": self.alpha, "name": self.name}
