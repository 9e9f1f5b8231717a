"""`timeseries_dataset_from_array` (keras.utils): sliding windows over an array, as a Dataset of batches."""
import numpy as np

from .dataset import IndexedDataset

__all__ = ["timeseries_dataset_from_array"]


def _int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"timeseries_dataset_from_array: {name} must be an int; received {value!r}.")
    return int(value)


def timeseries_dataset_from_array(data, targets, sequence_length, sequence_stride=1, sampling_rate=1,
                                  batch_size=128, shuffle=False, seed=None, start_index=None, end_index=None):
    """Windows of `data`, as Keras: window i starts at row ``start_index + s_i`` where ``s_i = i *
    sequence_stride``, and holds rows ``s_i, s_i + sampling_rate, ...`` (`sequence_length` of them) of
    ``data[start_index:end_index]``. With `targets`, window i is paired with ``targets[start_index:end_index]
    [s_i]``; the number of windows is capped by ``len(targets)``.

    batch_size: windows per batch (None: one window at a time). shuffle: the windows in random order (seeded by
    `seed`; the first pass uses Keras's order, ``np.random.RandomState(seed).shuffle`` of the start positions;
    each later pass (epoch) is reshuffled). Returns a `fncompiler.utils.Dataset` that `fit` iterates once per
    epoch; each batch is ``x`` or ``(x, y)`` with x of shape ``(batch, sequence_length) + data.shape[1:]``.
    """
    data = np.asarray(data)
    n = len(data)
    sequence_length = _int(sequence_length, "sequence_length")
    sequence_stride = _int(sequence_stride, "sequence_stride")
    sampling_rate = _int(sampling_rate, "sampling_rate")
    if sequence_length < 1:
        raise ValueError(f"timeseries_dataset_from_array: sequence_length must be at least 1; received "
                         f"{sequence_length}.")
    if start_index:
        start_index = _int(start_index, "start_index")
        if not 0 <= start_index < n:
            raise ValueError(f"timeseries_dataset_from_array: start_index must be in [0, {n}) for data of length "
                             f"{n}; received {start_index}.")
    if end_index:
        end_index = _int(end_index, "end_index")
        if start_index and end_index <= start_index:
            raise ValueError(f"timeseries_dataset_from_array: end_index ({end_index}) must be higher than "
                             f"start_index ({start_index}).")
        if not 0 < end_index < n:
            raise ValueError(f"timeseries_dataset_from_array: end_index must be in (0, {n}) for data of length "
                             f"{n}; received {end_index}.")
    for value, name in ((sampling_rate, "sampling_rate"), (sequence_stride, "sequence_stride")):
        if not 0 < value < n:
            raise ValueError(f"timeseries_dataset_from_array: {name} must be in [1, {n}) for data of length {n}; "
                             f"received {value}.")
    start = start_index or 0
    end = end_index or n
    window = data[start:end]
    num_seqs = end - start - (sequence_length - 1) * sampling_rate
    target_window = None
    if targets is not None:
        targets = np.asarray(targets)
        target_window = targets[start:end]
        num_seqs = min(num_seqs, len(targets))
    positions = np.arange(0, max(num_seqs, 0), sequence_stride, dtype=np.int64)
    first_order = None
    if shuffle:
        if seed is None:
            seed = np.random.randint(10 ** 6)
        first_order = np.arange(len(positions))
        np.random.RandomState(seed).shuffle(first_order)
    offsets = np.arange(sequence_length, dtype=np.int64) * sampling_rate

    def fetch(idx):
        starts = positions[np.asarray(idx, dtype=np.int64)]
        x = window[starts[:, None] + offsets[None, :]]
        return x if target_window is None else (x, target_window[starts])

    return IndexedDataset(len(positions), fetch, batch_size=batch_size, shuffle=shuffle, seed=seed,
                          first_order=first_order)
