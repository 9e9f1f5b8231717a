"""Stateless scopes: inside one, variables read traced values and record their assignments.

Lowering runs a layer's `call` inside a `StatelessScope` that maps every variable to the value passed
to the pure step function; `Variable.assign` (e.g. BatchNormalization's moving statistics) records the
new value in the scope instead of mutating the variable, so the step stays a pure function.
"""
import threading

_state = threading.local()


def _stack():
    if not hasattr(_state, "stack"):
        _state.stack = []
    return _state.stack


class StatelessScope:
    """Maps variables to values for the duration of a `with` block; collects assignments and losses."""

    def __init__(self, values=None, training=False, rng=None):
        self.values = dict(values or {})   # id(variable) -> value
        self.updates = {}                  # id(variable) -> new value
        self.losses = []                   # losses added with Layer.add_loss while tracing
        self.training = training
        self._rng = rng
        self._rng_count = 0

    def __enter__(self):
        _stack().append(self)
        return self

    def __exit__(self, *exc):
        _stack().pop()
        return False

    def get(self, variable):
        key = id(variable)
        if key in self.updates:
            return self.updates[key]
        return self.values.get(key)

    def assign(self, variable, value):
        self.updates[id(variable)] = value

    def next_rng(self):
        """A fresh PRNG key derived from the step's key (None outside a training step)."""
        import jax

        if self._rng is None:
            return None
        self._rng_count += 1
        return jax.random.fold_in(self._rng, self._rng_count)


def current():
    stack = _stack()
    return stack[-1] if stack else None


def lookup(variable):
    """The value of `variable` in the innermost scope that maps it (None when no scope does)."""
    for scope in reversed(_stack()):
        value = scope.get(variable)
        if value is not None:
            return value
    return None


def owner(variable):
    """The innermost scope that maps `variable` (where its assignments are recorded), or None."""
    for scope in reversed(_stack()):
        if id(variable) in scope.values:
            return scope
    return None
