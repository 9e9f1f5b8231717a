"""Gradient accumulation over K batches: `compile(gradient_accumulation_steps=K)` or Keras's optimizer argument
(`optimizers.Adam(..., gradient_accumulation_steps=K)`).

As in Keras 3, every train step (batch) adds its gradients to an accumulator; every K-th step applies the mean of
the K gradients with the optimizer's rule (clipping and weight decay included) and resets the accumulator; the
other steps leave the weights and the optimizer's slots unchanged. The optimizer's own `iterations` counts
updates (Keras's `optimizer.iterations` is steps // K), so Adam's bias correction after K accumulated batches of
size B is that of one step: with a mean loss, the weights equal one step on a batch of K x B. Unlike Keras, a
learning-rate schedule also sees the update count (Keras: the batch count).

The accumulator and the step count are part of the optimizer state the train step carries
(`AccumulationState`); what is saved (`Trainer.opt_state`) is the optimizer's own state, as without
accumulation. It is not a tuner candidate: it changes what a step computes, and every execution strategy
(per-step jit, scan of N, XLA options, scanned blocks) runs it unchanged (docs/adding-a-strategy.md).
"""
import copy
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["AccumulationState", "AccumulatingOptimizer", "resolve_steps", "train_config", "optimizer_state",
           "resume"]


class AccumulationState(NamedTuple):
    inner: Any       # the optimizer's own state (OptimizerState)
    gradients: Any   # the sum of the gradients since the last update (like the trainable weights)
    count: Any       # int32: steps since the last update


def resolve_steps(compile_steps, optimizer):
    """The accumulation steps K (1: off) from compile(gradient_accumulation_steps=...) and the optimizer's own
    argument; both given with different values is an error."""
    if compile_steps is not None:
        if isinstance(compile_steps, bool) or not isinstance(compile_steps, int):
            raise TypeError(f"compile(): gradient_accumulation_steps must be an int >= 1 (1: no accumulation); "
                            f"received {compile_steps!r}.")
        if compile_steps < 1:
            raise ValueError(f"compile(): gradient_accumulation_steps must be an int >= 1 (1: no accumulation); "
                             f"received {compile_steps}.")
    own = getattr(optimizer, "gradient_accumulation_steps", None)
    if compile_steps is not None and own is not None and int(own) != compile_steps:
        raise ValueError(f"compile(): gradient_accumulation_steps={compile_steps} but the optimizer "
                         f"{getattr(optimizer, 'name', optimizer)!r} was built with gradient_accumulation_steps="
                         f"{own}; give it in one place (or the same value in both).")
    return int(compile_steps if compile_steps is not None else (own or 1))


class AccumulatingOptimizer:
    """`optimizer`'s pure API (init / apply, learning-rate access) with gradients accumulated over `steps`."""

    def __init__(self, optimizer, steps):
        self.optimizer = optimizer
        self.steps = int(steps)

    def __getattr__(self, name):          # name, has_schedule, learning_rate, ...: the optimizer's
        if name in ("optimizer", "steps"):
            raise AttributeError(name)
        return getattr(self.optimizer, name)

    def init(self, params):
        return AccumulationState(self.optimizer.init(params), jax.tree.map(jnp.zeros_like, list(params)),
                                 jnp.zeros((), jnp.int32))

    def apply(self, state, grads, params):
        total = jax.tree.map(lambda a, g: a + g.astype(a.dtype), state.gradients, list(grads))
        count = state.count + 1

        def update(operands):
            total, params, inner = operands
            mean = jax.tree.map(lambda t: t / jnp.asarray(self.steps, t.dtype), total)
            new_params, new_inner = self.optimizer.apply(inner, mean, params)
            return list(new_params), new_inner, jax.tree.map(jnp.zeros_like, total), jnp.zeros((), jnp.int32)

        def accumulate(operands):
            total, params, inner = operands
            return list(params), inner, total, count

        new_params, inner, total, count = jax.lax.cond(count >= self.steps, update, accumulate,
                                                       (total, list(params), state.inner))
        return new_params, AccumulationState(inner, total, count)

    def get_learning_rate(self, state):
        return self.optimizer.get_learning_rate(optimizer_state(state))

    def set_learning_rate(self, state, value):
        if isinstance(state, AccumulationState):
            return state._replace(inner=self.optimizer.set_learning_rate(state.inner, value))
        return self.optimizer.set_learning_rate(state, value)

    def iterations(self, state):
        return self.optimizer.iterations(optimizer_state(state))


def train_config(cfg):
    """The compile config the train step is built from: `cfg` itself, or (with accumulation) a copy whose
    optimizer accumulates."""
    steps = getattr(cfg, "gradient_accumulation_steps", 1) if cfg is not None else 1
    if steps <= 1:
        return cfg
    out = copy.copy(cfg)
    out.optimizer = AccumulatingOptimizer(cfg.optimizer, steps)
    return out


def optimizer_state(state):
    """The optimizer's own state (what is saved) of a train state's optimizer part."""
    return state.inner if isinstance(state, AccumulationState) else state


def resume(saved, fresh):
    """The optimizer part to train from: `saved` (a previous fit's, or a restored file's) fitted to `fresh`'s
    form (a restored optimizer state gets an empty accumulator; accumulation turned off drops it)."""
    if isinstance(fresh, AccumulationState) and not isinstance(saved, AccumulationState):
        return fresh._replace(inner=saved)
    if not isinstance(fresh, AccumulationState) and isinstance(saved, AccumulationState):
        return saved.inner
    return saved
