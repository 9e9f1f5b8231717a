"""An allocation budget for rebuilding a model from a file.

A model config is a few bytes of JSON, but `Dense(units=2**40)` in it would make the layer's build allocate
terabytes (XLA aborts the whole process on such a request, which no `except` can catch). While `load_model`
rebuilds the layers, every `Variable` created on this thread is charged against a budget: the number of weight
elements weights.msgpack really holds (plus a small slack). A legitimate file's variables match its weights
exactly, so only a config that disagrees with its own weights can exceed the budget, and it is refused with
ModelFileError before the allocation.

The check runs through `fncompiler.variables.allocation_hook`, before each Variable allocates its value.
"""
import contextlib
import math

from .errors import ModelFileError

SLACK_ELEMENTS = 2 ** 20   # variables a layer may create beyond the saved weights (e.g. internal state)


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


@contextlib.contextmanager
def budget(elements, what="weights.msgpack"):
    """Within the block, this thread's new Variables may hold at most `elements` (+ slack) elements in all."""
    from ..variables import allocation_hook
    active = _Budget(elements, what)
    with allocation_hook(active.charge):
        yield active
