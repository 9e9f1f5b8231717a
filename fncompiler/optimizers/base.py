"""``Optimizer`` base: a pure ``init`` / ``apply`` API over an optax chain.

Pure API used inside the jitted train step::

    state = opt.init(params)                       # OptimizerState pytree
    params, state = opt.apply(state, grads, params)

``state.learning_rate`` is a float32 scalar array, so changing it with
``set_learning_rate`` never retraces; with a schedule it is recomputed from
``state.iterations`` inside the step. Each step follows Keras 3:
clip gradients -> decoupled weight decay ``w -= w * weight_decay * lr`` ->
optimizer-specific ``update_step`` -> ``iterations += 1``.
"""

import re
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .clipping import clipping_transforms
from .schedules import LearningRateSchedule
from .schedules import deserialize as deserialize_schedule
from .schedules import serialize as serialize_schedule


class OptimizerState(NamedTuple):
    iterations: Any  # int32 scalar: number of steps applied so far
    learning_rate: Any  # float32 scalar: learning rate the next step uses
    inner: Any  # optax chain state (clipping + update rule slots)


def _snake_case(name):
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def _check_number(arg, value, allow_none=True):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`{arg}` must be a number{' or None' if allow_none else ''}. "
                        f"Received: {arg}={value!r}")
    return float(value)


def _check_accumulation(steps):
    """Keras's rule for the optimizer argument: None, or an int >= 2."""
    if steps is None:
        return None
    if isinstance(steps, bool) or not isinstance(steps, int):
        raise TypeError(f"`gradient_accumulation_steps` must be an integer >= 2 or None. Received: "
                        f"gradient_accumulation_steps={steps!r}")
    if steps < 2:
        raise ValueError(f"`gradient_accumulation_steps` must be an integer >= 2. Received: "
                         f"gradient_accumulation_steps={steps}")
    return steps


class Optimizer:
    """Base optimizer. Subclasses implement ``update_rule()`` returning an
    ``optax.GradientTransformationExtraArgs`` whose ``update`` accepts the keyword
    extra args ``learning_rate`` (float32 scalar) and ``iterations`` (int32 scalar,
    before increment) and returns additive updates."""

    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, gradient_accumulation_steps=None, name=None):
        if use_ema:
            raise ValueError(
                "use_ema=True is not supported by fncompiler optimizers. Received use_ema=True; "
                "pass use_ema=False."
            )
        self.name = name or _snake_case(self.__class__.__name__)
        self.weight_decay = _check_number("weight_decay", weight_decay)
        self.clipnorm = _check_number("clipnorm", clipnorm)
        self.clipvalue = _check_number("clipvalue", clipvalue)
        self.global_clipnorm = _check_number("global_clipnorm", global_clipnorm)
        self.use_ema = False
        # Keras's gradient accumulation: None (off) or an int >= 2; the train step applies it
        # (runtime/accumulation.py), like compile(gradient_accumulation_steps=...).
        self.gradient_accumulation_steps = _check_accumulation(gradient_accumulation_steps)
        self._clip = clipping_transforms(self.clipnorm, self.clipvalue, self.global_clipnorm)
        self._learning_rate = self._validate_learning_rate(learning_rate)
        self._tx = None

    # -- learning rate ----------------------------------------------------------------
    @staticmethod
    def _validate_learning_rate(learning_rate):
        if isinstance(learning_rate, LearningRateSchedule) or callable(learning_rate):
            return learning_rate
        if isinstance(learning_rate, (jnp.ndarray, jax.Array)) or hasattr(learning_rate, "item"):
            learning_rate = float(learning_rate)
        return _check_number("learning_rate", learning_rate, allow_none=False)

    @property
    def has_schedule(self):
        """True when the learning rate is a schedule (a function of the iteration count)."""
        return callable(self._learning_rate)

    @property
    def learning_rate(self):
        """The constant learning rate (float), or the schedule object."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        value = self._validate_learning_rate(value)
        if self.has_schedule or callable(value):
            raise TypeError(
                "This optimizer's learning rate is "
                + ("a schedule" if self.has_schedule else "a float")
                + f" and cannot be replaced by {value!r} after construction (the compiled step "
                "depends on it). Construct the optimizer with the schedule (or float) you need."
            )
        self._learning_rate = value

    def _lr_at(self, iterations):
        if self.has_schedule:
            return jnp.asarray(self._learning_rate(iterations), jnp.float32)
        return None

    def get_learning_rate(self, state):
        """Host side: the learning rate the next step will use, as a Python float."""
        return float(state.learning_rate)

    def set_learning_rate(self, state, value):
        """Host side: a new state whose learning rate is ``value`` (no retrace)."""
        if self.has_schedule:
            raise TypeError(
                "This optimizer was created with a learning rate schedule, hence its learning "
                "rate is not settable. Create the optimizer with a float `learning_rate` to set it."
            )
        value = self._validate_learning_rate(value)
        if callable(value):
            raise TypeError(f"set_learning_rate expects a number; received {value!r}.")
        self._learning_rate = value
        return state._replace(learning_rate=jnp.asarray(value, jnp.float32))

    def iterations(self, state):
        """Host side: number of steps applied, as a Python int."""
        return int(state.iterations)

    # -- pure API ---------------------------------------------------------------------
    def update_rule(self):
        raise NotImplementedError(
            f"{self.__class__.__name__} must implement update_rule() returning an optax "
            "GradientTransformationExtraArgs."
        )

    @property
    def transform(self):
        """The optax chain ``clipping -> update rule`` (built once)."""
        if self._tx is None:
            self._tx = optax.chain(*self._clip, self.update_rule())
        return self._tx

    def init(self, params):
        iterations = jnp.zeros((), jnp.int32)
        lr = self._lr_at(iterations)
        if lr is None:
            lr = jnp.asarray(self._learning_rate, jnp.float32)
        return OptimizerState(iterations=iterations, learning_rate=lr,
                              inner=self.transform.init(params))

    def apply(self, state, grads, params):
        """One optimizer step; returns ``(new_params, new_state)``. Pure and jittable."""
        if not isinstance(state, OptimizerState):
            raise TypeError(
                f"apply() expected the OptimizerState returned by init(); received "
                f"{type(state).__name__}."
            )
        lr = self._lr_at(state.iterations)
        if lr is None:
            lr = jnp.asarray(state.learning_rate, jnp.float32)
        if self.weight_decay:
            wd = self.weight_decay
            params = jax.tree.map(
                lambda p: p - p * jnp.asarray(wd, p.dtype) * lr.astype(p.dtype), params
            )
        updates, inner = self.transform.update(
            grads, state.inner, params, learning_rate=lr, iterations=state.iterations
        )
        new_params = optax.apply_updates(params, updates)
        iterations = state.iterations + 1
        next_lr = self._lr_at(iterations)
        if next_lr is None:
            next_lr = lr
        return new_params, OptimizerState(iterations=iterations, learning_rate=next_lr,
                                          inner=inner)

    # -- config -----------------------------------------------------------------------
    def get_config(self):
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            lr = serialize_schedule(lr)
        elif callable(lr):
            raise ValueError(
                f"Cannot serialize a plain callable learning rate {lr!r}; use a "
                "fncompiler.optimizers.schedules.LearningRateSchedule instead."
            )
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm,
                "clipvalue": self.clipvalue, "use_ema": self.use_ema,
                "gradient_accumulation_steps": self.gradient_accumulation_steps}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = deserialize_schedule(config["learning_rate"], custom_objects)
        return cls(**config)

    def __repr__(self):
        return f"<{self.__class__.__name__} name={self.name!r} learning_rate={self._learning_rate!r}>"
