"""Batch-size buckets for predict: a stream of odd batch sizes (1, 3, 7, 13, ...) would compile the predict step
once per size; instead each batch is padded up to the next power of two (at most the predict batch size), so at
most log2(batch_size) + 2 programs are ever compiled, and the padded rows' outputs are dropped.

Padding is only correct when every sample's output depends on that sample alone. That holds for fncompiler's own
layers in inference mode (BatchNormalization uses its moving statistics, Dropout is the identity), so buckets
are used only for graphs made of them; a graph with a Lambda, a custom or a subclassed layer runs each batch
at its own size, as before.
"""
import numpy as np

# Built-in layer types that may mix samples: Lambda runs user code. Add any new built-in that does.
_CROSS_SAMPLE = frozenset({"Lambda"})


def bucket_size(n, batch_size):
    """The padded size for a batch of `n` rows: the next power of two, or `batch_size` when that is smaller."""
    if n >= batch_size:
        return n
    b = 1
    while b < n:
        b *= 2
    return min(b, batch_size)


def per_sample(graph):
    """True when every node of the (predict-mode) IR is a built-in layer that computes each sample alone."""
    for _, data in graph.nodes(data=True):
        layer = data.get("layer")
        cls = layer if isinstance(layer, type) else type(layer)
        if data.get("kind") == "input":
            continue
        if not cls.__module__.startswith("fncompiler.") or data.get("op") in _CROSS_SAMPLE:
            return False
    return True


def pad_rows(arrays, size):
    """Each array padded along axis 0 to `size` rows by repeating its last row (no zeros that could make a
    layer divide by zero or take a log of 0 in rows that are thrown away anyway)."""
    out = []
    for a in arrays:
        extra = size - a.shape[0]
        out.append(a if extra <= 0 else np.concatenate([a, np.repeat(a[-1:], extra, axis=0)], axis=0))
    return out
