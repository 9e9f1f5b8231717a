"""What one execution of the train step gets: one batch `(x, y, sample_weight)`, or `StackedBatches` (N full
batches stacked along a new leading axis, already on device, for one `lax.scan` call).

    executions(batches, steps_per_execution, batch_size)   fit's batches -> executions
    batches_in(execution)                                  how many batches an execution holds
"""
import numpy as np

from . import placement

__all__ = ["StackedBatches", "executions", "batches_in", "stack"]


class StackedBatches:
    """`n` batches stacked along a new leading axis, already placed on device (`xs`, `ys`; `sws` is None)."""

    __slots__ = ("xs", "ys", "sws")

    def __init__(self, xs, ys, sws=None):
        self.xs, self.ys, self.sws = xs, ys, sws

    def __len__(self):
        return int(self.xs[0].shape[0])

    def batch(self, j):
        """The j-th batch of the stack, as (x, y, sample_weight)."""
        return ([a[j] for a in self.xs], [None if a is None else a[j] for a in self.ys],
                None if self.sws is None else self.sws[j])


def batches_in(bx):
    """Batches in an execution's `x` part: len of a StackedBatches, else 1."""
    return len(bx) if isinstance(bx, StackedBatches) else 1


def stack(pending):
    """(index, x, y, sw) items of full, unweighted batches -> one StackedBatches on device."""
    first = pending[0]
    xs = placement.place_batch([np.stack([p[1][k] for p in pending]) for k in range(len(first[1]))], batch_axis=1)
    ys = placement.place_batch([None if first[2][k] is None else np.stack([p[2][k] for p in pending])
                                for k in range(len(first[2]))], batch_axis=1)
    return StackedBatches(xs, ys, None)


def executions(batches, steps_per_execution, batch_size):
    """Yield (last batch index, x, y, sw) per execution: single batches, or a StackedBatches of
    `steps_per_execution` full batches (one lax.scan call), falling back to single steps for the remainder, a
    partial batch or a weighted one. `steps_per_execution` may be a function, asked before each batch is taken
    (fit's tuner changes the strategy between executions)."""
    spe_of = steps_per_execution if callable(steps_per_execution) else None
    spe = steps_per_execution
    if spe_of is None and spe <= 1:
        yield from batches
        return
    pending = []
    for item in batches:
        if spe_of is not None:
            spe = spe_of()
            if spe <= 1:
                yield from pending
                pending = []
                yield item
                continue
        full = item[1] and item[1][0].shape[0] == batch_size and item[3] is None
        if not full:
            yield from pending
            pending = []
            yield item
            continue
        pending.append(item)
        if len(pending) == spe:
            yield pending[-1][0], stack(pending), None, None
            pending = []
    yield from pending
