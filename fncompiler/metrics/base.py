"""``Metric`` base: a pure functional core plus the Keras stateful API on top.

Pure API (safe inside ``jax.jit``, no host sync)::

    state = metric.initial_state()                 # pytree of float32 arrays
    state = metric.update(state, y_true, y_pred, sample_weight=None)
    value = metric.compute(state)

Stateful Keras API (host side): ``update_state``, ``result``, ``reset_state``.
"""

import re

import jax
import jax.numpy as jnp


def snake_case(name):
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


class Metric:
    """Base class. Subclasses implement ``initial_state``, ``update`` and ``compute``."""

    def __init__(self, name=None, dtype=None):
        self._name = name or snake_case(self.__class__.__name__)
        self.dtype = jnp.dtype(dtype or "float32").name
        self._state = None
        self._jit_update = None

    # -- naming -----------------------------------------------------------------------
    @property
    def name(self):
        return self._name

    @name.setter
    def name(self, value):
        if not isinstance(value, str) or not value:
            raise TypeError(f"Metric name must be a non-empty string; received {value!r}.")
        self._name = value

    # -- pure API ---------------------------------------------------------------------
    def initial_state(self):
        raise NotImplementedError(
            f"{self.__class__.__name__} must implement initial_state() returning a pytree of arrays."
        )

    def update(self, state, y_true, y_pred, sample_weight=None):
        raise NotImplementedError(
            f"{self.__class__.__name__} must implement update(state, y_true, y_pred, "
            "sample_weight=None) returning the new state."
        )

    def compute(self, state):
        raise NotImplementedError(
            f"{self.__class__.__name__} must implement compute(state) returning the metric value."
        )

    def _zeros(self, shape=()):
        return jnp.zeros(shape, self.dtype)

    # -- stateful Keras API -----------------------------------------------------------
    @property
    def state(self):
        """The host-side accumulated state used by the stateful API."""
        if self._state is None:
            self._state = self.initial_state()
        return self._state

    @state.setter
    def state(self, value):
        self._state = value

    def reset_state(self):
        self._state = self.initial_state()

    def update_state(self, *args, **kwargs):
        if self._jit_update is None:
            self._jit_update = jax.jit(self.update)
        self._state = self._jit_update(self.state, *args, **kwargs)

    def result(self):
        return self.compute(self.state)

    def __call__(self, *args, **kwargs):
        """Update the stateful accumulators and return the current result (Keras behaviour)."""
        self.update_state(*args, **kwargs)
        return self.result()

    # -- config -----------------------------------------------------------------------
    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{self.__class__.__name__} name={self.name!r}>"
