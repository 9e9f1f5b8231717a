"""Batched data sources for fit / evaluate / predict (data adapters beside runtime/data.py, which handles arrays):
PyDatasets, fncompiler Datasets, generators and other iterables of batches, and `class_weight`."""
import numpy as np

from fncompiler.utils.py_dataset import PyDataset, epoch_batches
from . import data as data_lib

__all__ = ["is_batched_source", "num_batches", "epoch_items", "first_x", "class_weight_to_sample_weights",
           "check_class_weight", "apply_class_weight"]


def is_batched_source(x):
    """A PyDataset, or an iterable/iterator of batches (a generator, a fncompiler Dataset, ...)."""
    return isinstance(x, PyDataset) or data_lib.is_generator_like(x)


def num_batches(x):
    """The number of batches of one pass over `x` when it is known (PyDataset, or anything with len), else None."""
    if isinstance(x, PyDataset):
        return x.num_batches
    if hasattr(x, "__len__") and not hasattr(x, "__next__"):
        try:
            return len(x)
        except TypeError:
            return None
    return None


def epoch_items(x, steps=None, shuffle=False):
    """The raw batches of one pass (epoch) over `x`, at most `steps`; a PyDataset's batch order is shuffled when
    `shuffle` (Keras shuffles the batch indices of a PyDataset in fit)."""
    if isinstance(x, PyDataset):
        return epoch_batches(x, shuffle=shuffle, steps=steps)
    return _limited(iter(x), steps)


def begin_epoch(x):
    """Call a PyDataset's `on_epoch_begin` before a pass over it (other sources have no hooks)."""
    if isinstance(x, PyDataset):
        x.on_epoch_begin()


def end_epoch(x):
    """Call a PyDataset's `on_epoch_end` after a pass over it (other sources have no hooks)."""
    if isinstance(x, PyDataset):
        x.on_epoch_end()


def _limited(it, steps):
    for i, item in enumerate(it):
        if steps is not None and i >= steps:
            return
        yield item


def check_no_arrays_with_source(x, y, sample_weight, what):
    kind = type(x).__name__
    if y is not None:
        raise ValueError(f"{what}: `y` cannot be given when x is a {kind} (a source of batches); its batches must "
                         "hold the targets: (x, y) or (x, y, sample_weight).")
    if sample_weight is not None:
        raise ValueError(f"{what}: `sample_weight` cannot be given when x is a {kind} (a source of batches); its "
                         "batches must hold the weights: (x, y, sample_weight).")


def first_x(x):
    """The inputs of the first batch of a batch source (to trace a subclassed model)."""
    if isinstance(x, PyDataset):
        item = x[0]
    elif hasattr(x, "__next__"):
        raise ValueError("A subclassed model that was never called cannot be traced from a one-pass iterator "
                         "(its first batch would be lost); call the model once on a batch first, or pass a "
                         "re-iterable dataset.")
    else:
        item = next(iter(x))
    return data_lib.unpack_batch(tuple(item) if isinstance(item, list) else item)[0]


# -- class_weight ---------------------------------------------------------------------------------------------------
def check_class_weight(class_weight):
    """{int class: float weight} from a dict (keys may be NumPy ints or integral floats)."""
    if not isinstance(class_weight, dict):
        raise TypeError(f"fit: class_weight must be a dict mapping class indices to weights, e.g. {{0: 1.0, 1: 5.0}}; "
                        f"received {type(class_weight).__name__}.")
    out = {}
    for k, v in class_weight.items():
        if isinstance(k, bool) or not isinstance(k, (int, np.integer, float, np.floating)) or int(k) != k:
            raise ValueError(f"fit: class_weight keys must be integer class indices; received key {k!r}.")
        try:
            out[int(k)] = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"fit: class_weight[{k!r}] must be a number; received {v!r}.") from None
    return out


def class_weight_to_sample_weights(y, class_weight):
    """Per-sample weights, as Keras: the class of a sample is argmax(y) for one-hot / probability targets (last
    axis > 1), else round(y) (a trailing axis of 1 dropped); classes missing from `class_weight` weigh 1."""
    y = np.asarray(y)
    if y.ndim > 1:
        y = np.argmax(y, axis=-1) if y.shape[-1] != 1 else np.squeeze(y, axis=-1)
    if y.ndim != 1:
        raise ValueError(f"fit: class_weight needs one class per sample, but the targets (shape {y.shape} after "
                         "taking the class along the last axis) give several; pass sample_weight=... instead.")
    classes = np.round(y).astype(np.int64)
    table = dict(class_weight)
    return np.asarray([table.get(int(c), 1.0) for c in classes], dtype=np.float32)


def apply_class_weight(ys, sw, class_weight, output_names):
    """`sw` (per-sample weights or None) times the class weights of the one target in `ys`. fncompiler multiplies
    class_weight with sample_weight (tf.keras did; Keras 3 refuses the combination)."""
    targets = [i for i, y in enumerate(ys) if y is not None]
    if len(targets) != 1:
        raise ValueError(f"fit: class_weight is only supported for a model with a single output (with targets); "
                         f"this model has targets for the outputs {[output_names[i] for i in targets]}. Pass "
                         "sample_weight=... (one weight per sample) instead.")
    weights = class_weight_to_sample_weights(ys[targets[0]], class_weight)
    if sw is None:
        return weights
    if sw.ndim > 1:
        weights = weights.reshape((-1,) + (1,) * (sw.ndim - 1))
    return (sw * weights).astype(np.float32)
