"""`LambdaCallback`, `ProgbarLogger` and `TensorBoard` (scalars to event files, with tensorboardX)."""
import os

from .callback import Callback

__all__ = ["LambdaCallback", "ProgbarLogger", "TensorBoard"]

_LAMBDA_HOOKS = ("on_epoch_begin", "on_epoch_end", "on_train_begin", "on_train_end", "on_train_batch_begin",
                 "on_train_batch_end", "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end",
                 "on_predict_begin", "on_predict_end", "on_predict_batch_begin", "on_predict_batch_end")


class LambdaCallback(Callback):
    """Keras's LambdaCallback: each hook given as a function (epoch hooks take (epoch, logs), batch hooks (batch,
    logs), begin/end hooks (logs)); on_batch_begin / on_batch_end are the train batch hooks, as in Keras."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        given = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                     on_train_end=on_train_end, on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end)
        for old, new in (("on_batch_begin", "on_train_batch_begin"), ("on_batch_end", "on_train_batch_end")):
            if old in kwargs:
                given[new] = kwargs.pop(old)
        unknown = sorted(k for k in kwargs if k not in _LAMBDA_HOOKS)
        if unknown:
            raise TypeError(f"LambdaCallback: unknown hooks {unknown}; the hooks are {list(_LAMBDA_HOOKS)}.")
        given.update(kwargs)
        for name, fn in given.items():
            if fn is not None:
                if not callable(fn):
                    raise TypeError(f"LambdaCallback: {name} must be callable; received {type(fn).__name__}.")
                setattr(self, name, _with_logs(fn))   # an instance attribute: fit sees which batch hooks are used


def _with_logs(fn):
    """The hook always gets its logs argument (a dict), as Keras passes it."""
    def hook(*args, logs=None):
        if len(args) and isinstance(args[-1], dict) or (len(args) and args[-1] is None and logs is None):
            *args, logs = args
        return fn(*args, {} if logs is None else logs)
    return hook


class ProgbarLogger(Callback):
    """Keras's ProgbarLogger: the progress bar of fit, as a callback. fit shows the same bar by itself (for
    verbose=1/2); passing one replaces fit's own bar (as in Keras), shown with fit's `verbose` (0: nothing)."""

    def __init__(self):
        super().__init__()
        self._bar = None
        self._epochs = None

    def _verbose(self):
        return int(self.params.get("verbose", 1))

    def on_train_begin(self, logs=None):
        self._epochs = self.params.get("epochs")

    def on_epoch_begin(self, epoch, logs=None):
        from fncompiler.runtime.progbar import Progbar
        if self._epochs:
            print(f"Epoch {epoch + 1}/{self._epochs}")
        self._bar = Progbar(self.params.get("steps"), verbose=self._verbose())
        self._seen = 0

    def on_train_batch_end(self, batch, logs=None):
        self._seen = batch + 1
        if self._bar is not None and self._bar.wants_update(self._seen):
            self._bar.update(self._seen, sorted((logs or {}).items()))

    def on_epoch_end(self, epoch, logs=None):
        if self._bar is not None:
            self._bar.update(self._seen, sorted((logs or {}).items(), key=lambda kv: (kv[0].startswith("val_"),
                                                                                      kv[0])), finalize=True)


def _summary_writer():
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ImportError("The TensorBoard callback writes event files with tensorboardX, which is not installed; "
                          "install it with `pip install tensorboardX` (or `pip install fncompiler[tensorboard]`)."
                          ) from None
    return SummaryWriter


class TensorBoard(Callback):
    """Keras's TensorBoard callback, for scalars: at each epoch end, ``epoch_<metric>`` of the training logs to
    ``log_dir/train`` and of the validation logs (``val_`` dropped) to ``log_dir/validation``, at step = epoch;
    with update_freq="batch" or an int N, ``batch_<metric>`` every N training batches to ``log_dir/train`` at step =
    the global batch count. Also ``epoch_learning_rate`` when the optimizer has a plain float learning rate.
    Event files are written with tensorboardX (an optional dependency) and read by TensorBoard as usual.
    histogram_freq, write_graph, write_images, write_steps_per_second, profile_batch and embeddings_* are
    accepted; histograms, graphs, images, profiles and embeddings are not written (a warning says so when asked).
    """

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0, embeddings_freq=0,
                 embeddings_metadata=None):
        super().__init__()
        self._SummaryWriter = _summary_writer()
        if update_freq not in ("epoch", "batch") and (isinstance(update_freq, bool) or
                                                      not isinstance(update_freq, int) or update_freq < 1):
            raise ValueError(f"TensorBoard: update_freq must be 'epoch', 'batch' or a positive int; received "
                             f"{update_freq!r}.")
        self.log_dir = os.fspath(log_dir)
        self.update_freq = 1 if update_freq == "batch" else update_freq
        if histogram_freq or write_images or profile_batch or embeddings_freq:
            import warnings
            warnings.warn("TensorBoard: only scalars are written; histogram_freq, write_images, profile_batch and "
                          "embeddings_freq are ignored.", stacklevel=2)
        self._writers = {}
        self._global_batch = 0
        if self.update_freq != "epoch":
            self.on_train_batch_end = self._on_train_batch_end

    def _writer(self, name):
        if name not in self._writers:
            self._writers[name] = self._SummaryWriter(os.path.join(self.log_dir, name))
        return self._writers[name]

    def _on_train_batch_end(self, batch, logs=None):
        self._global_batch += 1
        if self._global_batch % self.update_freq == 0:
            w = self._writer("train")
            for k, v in (logs or {}).items():
                w.add_scalar(f"batch_{k}", float(v), self._global_batch)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        lr = getattr(getattr(self.model, "optimizer", None), "learning_rate", None)
        if isinstance(lr, (int, float)):
            logs.setdefault("learning_rate", float(lr))
        for k, v in logs.items():
            name, tag = ("validation", k[4:]) if k.startswith("val_") else ("train", k)
            self._writer(name).add_scalar(f"epoch_{tag}", float(v), epoch)
        for w in self._writers.values():
            w.flush()

    def on_train_end(self, logs=None):
        for w in self._writers.values():
            w.close()
        self._writers = {}
