"""`Dataset`: a small, re-iterable stand-in for the `tf.data.Dataset`s that keras.utils helpers return.

Elements are NumPy arrays, tuples of them (``(x, y)``, ``(x, y, sample_weight)``) or dicts. Iterating a dataset
starts from the beginning every time, so `fit` runs one pass per epoch; `len()` is the number of elements
(batches once batched). The methods keras.io programs call on such datasets are here: `batch`, `unbatch`,
`shuffle`, `map`, `take`, `skip`, `prefetch` and `cache` (both no-ops: the data is already in memory or read on
demand), `as_numpy_iterator`, `cardinality`. Attributes such as `class_names` and `file_paths` carry through them.

`split_dataset` (keras.utils) is here too.
"""
import random as _pyrandom

import numpy as np

__all__ = ["Dataset", "split_dataset"]

_CARRIED = ("class_names", "file_paths")


def _stack(elements):
    """A list of same-structured elements -> one element with a new leading axis."""
    first = elements[0]
    if isinstance(first, tuple):
        return tuple(_stack([e[k] for e in elements]) for k in range(len(first)))
    if isinstance(first, dict):
        return {k: _stack([e[k] for e in elements]) for k in first}
    return np.stack([np.asarray(e) for e in elements])


def _rows(element):
    """The number of rows (leading axis) of a batched element."""
    if isinstance(element, tuple):
        return _rows(element[0])
    if isinstance(element, dict):
        return _rows(next(iter(element.values())))
    return np.shape(element)[0]


def _row(element, i):
    if isinstance(element, tuple):
        return tuple(_row(e, i) for e in element)
    if isinstance(element, dict):
        return {k: _row(v, i) for k, v in element.items()}
    return element[i]


class Dataset:
    """Base class: subclasses define `_iterate()` (one pass) and `_length()` (None when unknown)."""

    class_names = None
    file_paths = None

    def _carry(self, parent):
        for name in _CARRIED:
            value = getattr(parent, name, None)
            if value is not None:
                setattr(self, name, value)
        return self

    def __iter__(self):
        return iter(self._iterate())

    def __len__(self):
        n = self._length()
        if n is None:
            raise TypeError(f"The length of this {type(self).__name__} is unknown.")
        return n

    def cardinality(self):
        """The number of elements, or -2 when unknown (tf.data's UNKNOWN_CARDINALITY)."""
        n = self._length()
        return -2 if n is None else n

    def as_numpy_iterator(self):
        return iter(self)

    # -- transformations ---------------------------------------------------------------------------------------
    def batch(self, batch_size, drop_remainder=False):
        return _Batch(self, batch_size, drop_remainder)._carry(self)

    def unbatch(self):
        return _Unbatch(self)._carry(self)

    def map(self, map_func, num_parallel_calls=None, deterministic=None):
        """Apply `map_func` to each element (a tuple element is passed as separate arguments, as tf.data does)."""
        return _Map(self, map_func)._carry(self)

    def shuffle(self, buffer_size, seed=None, reshuffle_each_iteration=True):
        return _Shuffle(self, buffer_size, seed, reshuffle_each_iteration)._carry(self)

    def take(self, count):
        return _Slice(self, 0, count)._carry(self)

    def skip(self, count):
        return _Slice(self, count, None)._carry(self)

    def prefetch(self, buffer_size=None):
        return self

    def cache(self, filename=""):
        return self


def _positive_int(value, name, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int{' or None' if allow_none else ''}; received {value!r}.")
    return int(value)


class IndexedDataset(Dataset):
    """`n` samples read by `fetch(indices) -> batched element` (indices: a sorted-or-not int array), in batches of
    `batch_size` (None: one sample at a time), in order or shuffled. With a seed the shuffled order of each pass is
    a fixed function of (seed, pass number); the first pass's order may be given (`first_order`)."""

    def __init__(self, n, fetch, batch_size=None, shuffle=False, seed=None, first_order=None):
        self.n = int(n)
        self.fetch = fetch
        self.batch_size = _positive_int(batch_size, "batch_size", allow_none=True)
        self.shuffle_each_pass = bool(shuffle)
        self.seed = np.random.randint(2 ** 31) if (shuffle and seed is None) else seed
        self.first_order = first_order
        self._passes = 0

    def _order(self):
        p = self._passes
        self._passes += 1
        if p == 0 and self.first_order is not None:
            return np.asarray(self.first_order)
        if not self.shuffle_each_pass:
            return np.arange(self.n)
        return np.random.default_rng([int(self.seed), p]).permutation(self.n)

    def _iterate(self):
        order = self._order()
        if self.batch_size is None:
            for i in order:
                yield _row(self.fetch(np.asarray([i])), 0)
            return
        for start in range(0, self.n, self.batch_size):
            yield self.fetch(order[start:start + self.batch_size])

    def _length(self):
        return self.n if self.batch_size is None else -(-self.n // self.batch_size)


def _gather(arrays, idx):
    if isinstance(arrays, tuple):
        return tuple(_gather(a, idx) for a in arrays)
    if isinstance(arrays, dict):
        return {k: _gather(v, idx) for k, v in arrays.items()}
    return arrays[idx]


def from_arrays(arrays, batch_size=None, shuffle=False, seed=None):
    """A dataset of the rows of `arrays` (an array, a tuple of arrays, or a dict of arrays)."""
    n = _rows(arrays)
    return IndexedDataset(n, lambda idx: _gather(arrays, idx), batch_size=batch_size, shuffle=shuffle, seed=seed)


class _Batch(Dataset):
    def __init__(self, parent, batch_size, drop_remainder):
        self.parent, self.batch_size, self.drop_remainder = parent, _positive_int(batch_size, "batch_size"), \
            bool(drop_remainder)

    def _iterate(self):
        pending = []
        for element in self.parent:
            pending.append(element)
            if len(pending) == self.batch_size:
                yield _stack(pending)
                pending = []
        if pending and not self.drop_remainder:
            yield _stack(pending)

    def _length(self):
        n = self.parent._length()
        if n is None:
            return None
        return n // self.batch_size if self.drop_remainder else -(-n // self.batch_size)


class _Unbatch(Dataset):
    def __init__(self, parent):
        self.parent = parent

    def _iterate(self):
        for element in self.parent:
            for i in range(_rows(element)):
                yield _row(element, i)

    def _length(self):
        return None


class _Map(Dataset):
    def __init__(self, parent, fn):
        self.parent, self.fn = parent, fn

    def _iterate(self):
        for element in self.parent:
            yield self.fn(*element) if isinstance(element, tuple) else self.fn(element)

    def _length(self):
        return self.parent._length()


class _Shuffle(Dataset):
    def __init__(self, parent, buffer_size, seed, reshuffle):
        self.parent, self.buffer_size = parent, _positive_int(buffer_size, "buffer_size")
        self.seed = np.random.randint(2 ** 31) if seed is None else int(seed)
        self.reshuffle = bool(reshuffle)
        self._passes = 0

    def _iterate(self):
        rng = np.random.default_rng([self.seed, self._passes if self.reshuffle else 0])
        self._passes += 1
        buffer = []
        for element in self.parent:
            buffer.append(element)
            if len(buffer) >= self.buffer_size:
                yield buffer.pop(int(rng.integers(len(buffer))))
        while buffer:
            yield buffer.pop(int(rng.integers(len(buffer))))

    def _length(self):
        return self.parent._length()


class _Slice(Dataset):
    def __init__(self, parent, start, count):
        self.parent, self.start = parent, int(start)
        self.count = None if count is None or count < 0 else int(count)

    def _iterate(self):
        for i, element in enumerate(self.parent):
            if i < self.start:
                continue
            if self.count is not None and i >= self.start + self.count:
                return
            yield element

    def _length(self):
        n = self.parent._length()
        if n is None:
            return self.count if self.start == 0 else None
        n = max(n - self.start, 0)
        return n if self.count is None else min(n, self.count)


# -- split_dataset ----------------------------------------------------------------------------------------------
def _split_sizes(left_size, right_size, total):
    for value, name in ((left_size, "left_size"), (right_size, "right_size")):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, np.integer,
                                                                                     np.floating))):
            raise TypeError(f"split_dataset: {name} must be an int, a float or None; received "
                            f"{type(value).__name__} {value!r}.")
    if left_size is None and right_size is None:
        raise ValueError("split_dataset: give left_size or right_size (or both); received neither.")

    def count(value, name):
        if value is None:
            return None
        if isinstance(value, (float, np.floating)):
            if not 0 < value < 1:
                raise ValueError(f"split_dataset: a float {name} is a fraction in (0, 1); received {value}.")
            return int(round(value * total))
        if not 0 < value < total:
            raise ValueError(f"split_dataset: an int {name} is a number of samples in [1, {total - 1}] for a "
                             f"dataset of {total} samples; received {value}.")
        return int(value)

    left, right = count(left_size, "left_size"), count(right_size, "right_size")
    if left is None:
        left = total - right
    elif right is None:
        right = total - left
    if left + right > total:
        raise ValueError(f"split_dataset: left_size + right_size is {left} + {right} samples, more than the "
                         f"dataset's {total}.")
    if left == 0 or right == 0:
        raise ValueError(f"split_dataset: with {total} samples, left_size={left_size} and right_size={right_size} "
                         f"leave the {'left' if left == 0 else 'right'} split empty.")
    return left, right


def _as_arrays(dataset):
    """(structure of arrays, number of samples) of a list/tuple of arrays, one array, a dict, or a Dataset."""
    if isinstance(dataset, Dataset):
        samples = list(dataset.unbatch() if _is_batched(dataset) else dataset)
        if not samples:
            raise ValueError("split_dataset: the dataset is empty.")
        return _stack(samples), len(samples), _batch_size_of(dataset)
    if isinstance(dataset, (list, tuple)):
        arrays = tuple(np.asarray(a) for a in dataset)
        sizes = {len(a) for a in arrays}
        if len(sizes) != 1:
            raise ValueError(f"split_dataset: all arrays must have the same number of samples; received lengths "
                             f"{[len(a) for a in arrays]}.")
        return arrays, sizes.pop(), None
    if isinstance(dataset, dict):
        arrays = {k: np.asarray(v) for k, v in dataset.items()}
        return arrays, _rows(arrays), None
    if hasattr(dataset, "shape"):
        arr = np.asarray(dataset)
        return arr, len(arr), None
    raise TypeError(f"split_dataset: expected a NumPy array, a list/tuple of arrays, a dict of arrays or a "
                    f"fncompiler Dataset; received {type(dataset).__name__}.")


def _batch_size_of(dataset):
    size = getattr(dataset, "batch_size", None)
    return size if isinstance(size, int) else None


def _is_batched(dataset):
    return _batch_size_of(dataset) is not None


def split_dataset(dataset, left_size=None, right_size=None, shuffle=False, seed=None, preferred_backend=None):
    """Split `dataset` into (left, right) Datasets of samples, as keras.utils.split_dataset.

    dataset: an array, a list/tuple of same-length arrays (then each sample is a tuple), a dict of arrays, or a
        fncompiler Dataset (a batched one gives batched splits of the same batch size).
    left_size / right_size: an int (samples) or a float in (0, 1) (a fraction, rounded); the missing one is the
        complement. The left split is the first `left_size` samples, the right split the last `right_size`.
    shuffle, seed: shuffle the samples first; the same seed gives Keras's permutation (Python's `random`).
    """
    if preferred_backend not in (None, "jax", "numpy", "tensorflow", "torch"):
        raise ValueError(f"split_dataset: unknown preferred_backend {preferred_backend!r}.")
    arrays, total, batch_size = _as_arrays(dataset)
    order = list(range(total))
    if shuffle:
        _pyrandom.Random(_pyrandom.randint(0, 10 ** 6) if seed is None else seed).shuffle(order)
    left, right = _split_sizes(left_size, right_size, total)
    order = np.asarray(order)
    out = []
    for idx in (order[:left], order[total - right:]):
        part = _gather(arrays, idx)
        ds = from_arrays(part, batch_size=batch_size)
        out.append(ds._carry(dataset) if isinstance(dataset, Dataset) else ds)
    return tuple(out)
