"""An allocation budget for rebuilding a model from a file.

A model config is a few bytes of JSON, but `Dense(units=2**40)` in it would make the layer's build allocate
terabytes (XLA aborts the whole process on such a request, which no `except` can catch). While `load_model`
rebuilds the layers, every `Variable` created on this thread is charged against a budget: the number of weight
elements weights.msgpack really holds (plus a small slack). A legitimate file's variables match its weights
exactly, so only a config that disagrees with its own weights can exceed the budget, and it is refused with
ModelFileError before the allocation.

fncompiler.variables has no hook for this, so the check wraps `Variable.__init__` once, on first use; outside a
`budget(...)` block the wrapper only reads a thread-local and calls the original.
"""
import contextlib
import functools
import math
import threading

from .errors import ModelFileError

SLACK_ELEMENTS = 2 ** 20   # variables a layer may create beyond the saved weights (e.g. internal state)

_local = threading.local()
_install_lock = threading.Lock()
_installed = False


class _Budget:
    def __init__(self, elements, what):
        self.limit = int(elements) + SLACK_ELEMENTS
        self.used = 0
        self.what = what

    def charge(self, shape, label):
        try:
            dims = [int(d) for d in shape]
        except (TypeError, ValueError):
            return  # the Variable itself rejects a malformed shape
        n = math.prod(max(d, 0) for d in dims)
        if self.used + n > self.limit:
            raise ModelFileError(
                f"The model config would create weight {label!r} with shape {tuple(dims)} ({n} elements), but "
                f"{self.what} holds only {self.limit - SLACK_ELEMENTS} weight elements in all: refusing to allocate "
                "it. The config does not match the file's weights (a corrupt or crafted file).")
        self.used += n


def _shape_and_label(args, kwargs):
    shape = kwargs.get("shape", args[1] if len(args) > 1 else None)
    label = kwargs.get("path") or kwargs.get("name") or "variable"
    return shape, label


def _install():
    global _installed
    with _install_lock:
        if _installed:
            return
        from .. import variables
        original = variables.Variable.__init__

        @functools.wraps(original)
        def __init__(self, *args, **kwargs):
            active = getattr(_local, "budget", None)
            if active is not None:
                shape, label = _shape_and_label(args, kwargs)
                if shape is not None:
                    active.charge(shape, label)
            original(self, *args, **kwargs)

        __init__._fncompiler_budget_wrapper = True
        variables.Variable.__init__ = __init__
        _installed = True


@contextlib.contextmanager
def budget(elements, what="weights.msgpack"):
    """Within the block, this thread's new Variables may hold at most `elements` (+ slack) elements in all."""
    _install()
    previous = getattr(_local, "budget", None)
    _local.budget = _Budget(elements, what)
    try:
        yield _local.budget
    finally:
        _local.budget = previous
