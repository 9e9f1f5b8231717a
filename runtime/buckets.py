"""Batch-size buckets for predict: a stream of odd batch sizes (1, 3, 7, 13, ...) would compile the predict step
once per size; instead each batch is padded up to the next power of two (at most the predict batch size), so at
most log2(batch_size) + 2 programs are ever compiled, and the padded rows' outputs are dropped.

Padding is only correct when every sample's output depends on that sample alone. Each layer declares that
(`Layer.batch_independent`, answered per call by `Layer.is_batch_independent`: an OpLayer per op and axis,
BatchNormalization unless it uses batch statistics); a layer that declares nothing (a user's or subclassed
layer, a Lambda) is assumed to mix samples, and its graph runs each batch at its own size, as before.
"""
import numpy as np

from fncompiler import ir


def bucket_size(n, batch_size):
    """The padded size for a batch of `n` rows: the next power of two, or `batch_size` when that is smaller."""
    if n >= batch_size:
        return n
    b = 1
    while b < n:
        b *= 2
    return min(b, batch_size)


def per_sample(graph, training=False):
    """True when every layer node of the (predict-mode) IR declares that it computes each sample alone."""
    for nid, data in graph.nodes(data=True):
        if data.get("kind") == "input":
            continue
        layer = data.get("layer")
        ranks = tuple(len(graph.nodes[src]["output_specs"][i].shape) for src, i in ir.input_edges(graph, nid))
        check = None if isinstance(layer, type) else getattr(layer, "is_batch_independent", None)
        if check is None or not check(data.get("arguments") or ((), {}), ranks, training):
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
