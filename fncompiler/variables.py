"""`Variable`: a named weight whose value lives on the host between steps and is traced inside them."""
import contextlib
import threading

import jax
import jax.numpy as jnp
import numpy as np

from . import dtypes, scope as scope_lib


_allocation = threading.local()


@contextlib.contextmanager
def allocation_hook(hook):
    """Within the block, `hook(shape, path)` runs on this thread before each new Variable allocates its value
    (it may raise to refuse the allocation; loading a model file uses it to bound what a config can allocate)."""
    previous = getattr(_allocation, "hook", None)
    _allocation.hook = hook
    try:
        yield
    finally:
        _allocation.hook = previous


class Variable:
    """A layer weight. `value` is the current array (the traced one inside a stateless scope)."""

    def __init__(self, initializer, shape, dtype="float32", trainable=True, name="variable", path=None,
                 constraint=None, regularizer=None):
        self.name = name
        self.path = path or name
        self.trainable = bool(trainable)
        self.dtype = dtypes.standardize(dtype)
        self.shape = tuple(int(d) for d in shape)
        self.constraint = constraint
        self.regularizer = regularizer
        hook = getattr(_allocation, "hook", None)
        if hook is not None:
            hook(self.shape, self.path)
        with jax.ensure_compile_time_eval():
            if callable(initializer):
                value = initializer(self.shape, dtype=self.dtype)
            else:
                value = initializer
            value = jnp.asarray(value, dtype=self.dtype)
        if value.shape != self.shape:
            raise ValueError(f"Variable {self.path!r}: initial value has shape {value.shape}, "
                             f"expected {self.shape}.")
        self._value = value

    # -- value access -------------------------------------------------------------------------
    @property
    def value(self):
        v = scope_lib.lookup(self)
        return self._value if v is None else v

    def assign(self, value):
        value = jnp.asarray(value, dtype=self.dtype)
        if tuple(value.shape) != self.shape:
            raise ValueError(f"Cannot assign a value of shape {tuple(value.shape)} to variable {self.path!r} "
                             f"of shape {self.shape}.")
        scope = scope_lib.owner(self)
        if scope is not None:
            scope.assign(self, value)
        elif isinstance(value, jax.core.Tracer):
            return value   # a shape-inference trace outside any step: nothing to keep
        else:
            self._value = value
        return value

    def assign_add(self, delta):
        return self.assign(self.value + delta)

    def assign_sub(self, delta):
        return self.assign(self.value - delta)

    def numpy(self):
        return np.asarray(self._value)

    def __array__(self, dtype=None, copy=None):
        arr = np.asarray(self.value)
        return arr.astype(dtype) if dtype is not None else arr

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return int(np.prod(self.shape)) if self.shape else 1

    def __repr__(self):
        return f"<Variable path={self.path} shape={self.shape} dtype={self.dtype} trainable={self.trainable}>"

    # -- arithmetic: a variable behaves like its value -------------------------------------------
    def __jax_array__(self):
        return self.value

    def __getitem__(self, idx):
        return self.value[idx]

    def __len__(self):
        return self.shape[0]


def _binary(name):
    def op(self, other):
        other = other.value if isinstance(other, Variable) else other
        return getattr(self.value, name)(other)
    op.__name__ = name
    return op


for _name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__",
              "__rtruediv__", "__floordiv__", "__rfloordiv__", "__pow__", "__rpow__", "__matmul__",
              "__rmatmul__", "__mod__", "__lt__", "__le__", "__gt__", "__ge__"):
    setattr(Variable, _name, _binary(_name))
Variable.__neg__ = lambda self: -self.value
Variable.__pos__ = lambda self: self.value
Variable.__abs__ = lambda self: abs(self.value)
Variable.T = property(lambda self: self.value.T)
Variable.astype = lambda self, dtype: self.value.astype(dtype)
Variable.reshape = lambda self, *shape: self.value.reshape(*shape)
