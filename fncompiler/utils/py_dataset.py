"""`PyDataset` (keras.utils): a Python class that serves batches by index, for fit / evaluate / predict."""
import concurrent.futures
import random

__all__ = ["PyDataset", "epoch_batches"]


class PyDataset:
    """Subclass it and define ``__getitem__(index)`` (a batch: ``x``, ``(x,)``, ``(x, y)`` or ``(x, y,
    sample_weight)``) and ``__len__`` (the number of batches; or a `num_batches` property returning None for an
    endless dataset, with fit's steps_per_epoch). `on_epoch_begin` / `on_epoch_end` are called around each epoch
    of fit (and around evaluate / predict), as in Keras.

    workers: batches fetched ahead by that many threads (1: in the calling thread); max_queue_size: at most that
        many batches fetched ahead. use_multiprocessing: accepted; batches are still fetched by threads (no
        pickling of the dataset), which is enough when __getitem__ releases the GIL (NumPy, file reads).
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        for value, name in ((workers, "workers"), (max_queue_size, "max_queue_size")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"PyDataset: {name} must be a positive int; received {value!r}.")
        self._workers = workers
        self._use_multiprocessing = bool(use_multiprocessing)
        self._max_queue_size = max_queue_size

    # Keras exposes these as properties; a subclass that forgot super().__init__() gets the defaults.
    @property
    def workers(self):
        return self.__dict__.get("_workers", 1)

    @workers.setter
    def workers(self, value):
        self._workers = value

    @property
    def use_multiprocessing(self):
        return self.__dict__.get("_use_multiprocessing", False)

    @use_multiprocessing.setter
    def use_multiprocessing(self, value):
        self._use_multiprocessing = value

    @property
    def max_queue_size(self):
        return self.__dict__.get("_max_queue_size", 10)

    @max_queue_size.setter
    def max_queue_size(self, value):
        self._max_queue_size = value

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(index) returning a batch.")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__ (the number of batches), or a "
                                  "num_batches property that returns None for an endless dataset.")

    @property
    def num_batches(self):
        """The number of batches (len(self)), or None when the dataset defines no length (endless)."""
        if type(self).__len__ is PyDataset.__len__:
            return None
        return len(self)

    def on_epoch_begin(self):
        pass

    def on_epoch_end(self):
        pass


def _ordered_prefetch(get, indices, workers, depth):
    """get(i) for i in indices, in order, with up to `depth` fetched ahead by `workers` threads."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        pending = []
        it = iter(indices)
        for i in it:
            pending.append(pool.submit(get, i))
            if len(pending) >= depth:
                break
        while pending:
            batch = pending.pop(0).result()
            for nxt in it:
                pending.append(pool.submit(get, nxt))
                break
            yield batch


def epoch_batches(dataset, shuffle=False, steps=None):
    """One epoch of a PyDataset: its batches in index order (shuffled when `shuffle`, as Keras's fit), `steps`
    at most (needed for an endless one)."""
    n = dataset.num_batches
    if n is None:
        if steps is None:
            raise ValueError(f"{type(dataset).__name__} has no length (num_batches is None): pass steps_per_epoch= "
                             "(fit) or steps= (evaluate/predict) to say how many batches to take.")
        indices = range(steps)
    else:
        indices = list(range(n))
        if shuffle:
            random.shuffle(indices)
        if steps is not None:
            indices = indices[:steps]
    workers = max(int(dataset.workers or 1), 1)
    if workers == 1 and not dataset.use_multiprocessing:
        return (dataset[i] for i in indices)
    return _ordered_prefetch(dataset.__getitem__, indices, workers, max(int(dataset.max_queue_size or 1), 1))
