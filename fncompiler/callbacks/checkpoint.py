"""`ModelCheckpoint`: save the model (or its weights, or a resumable training checkpoint) during `fit`."""
import os
import warnings

from .callback import Callback
from .monitors import _mode_op


class ModelCheckpoint(Callback):
    """Keras's ModelCheckpoint: save at the end of epochs, optionally only when `monitor` improves.

    filepath: may hold format fields filled with the epoch (1-based, as Keras) and the epoch's logs, e.g.
        "ckpt/model-{epoch:02d}-{val_loss:.3f}.fnc". Missing folders are created.
    monitor, mode ("auto" | "min" | "max"), save_best_only, initial_value_threshold: Keras's meaning; "auto"
        maximizes metrics named like accuracy/auc/precision/recall and minimizes the rest.
    save_weights_only: write `model.save_weights(filepath)` instead of `model.save(filepath)`.
    save_freq: "epoch" (at the end of every epoch), or an int N: after every N training batches, as in Keras (the
        filepath may then also use `{batch}`, 1-based within the epoch). Saving every N batches makes fit run one
        step per batch and write the weights back to the model before each save.
    checkpoint: fncompiler extra. True: write a `fncompiler.runtime.checkpoint` file (weights, optimizer state,
        the trainer's and NumPy's RNG state, epoch and step) from which `checkpoint.restore(path, model)` then
        `fit(..., initial_epoch=info.epoch)` resumes training exactly.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None, checkpoint=False):
        super().__init__()
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.checkpoint = bool(checkpoint)
        if self.checkpoint and save_weights_only:
            raise ValueError("ModelCheckpoint: checkpoint=True writes a full training checkpoint; it cannot be "
                             "combined with save_weights_only=True.")
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1):
            raise ValueError(f"Unrecognized save_freq: {save_freq!r}. Expected save_freq to be 'epoch' or a positive "
                             "integer (a number of batches).")
        self.save_freq = save_freq
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"ModelCheckpoint mode {mode!r} is unknown, fallback to auto mode.", stacklevel=2)
            mode = "auto"
        self.monitor_op, init_best = _mode_op(mode, monitor)
        self.best = init_best if initial_value_threshold is None else float(initial_value_threshold)
        self._batches_since_save = 0
        self._current_epoch = 0
        self.last_saved = None
        if save_freq != "epoch":
            # a per-batch hook (the loop runs one step per batch only when a callback needs one)
            self.on_train_batch_end = self._on_train_batch_end

    def _get_file_path(self, epoch, batch, logs):
        try:
            if batch is None or "batch" in logs:
                return self.filepath.format(epoch=epoch + 1, **(logs or {}))
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **(logs or {}))
        except KeyError as exc:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". Reason: {exc}') from exc

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def _on_train_batch_end(self, batch, logs=None):
        self._batches_since_save += 1
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            trainer = getattr(self.model, "_trainer", None)
            if trainer is not None and hasattr(trainer, "sync_live"):
                trainer.sync_live()
            self._save(self._current_epoch, dict(logs or {}), batch=batch)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, logs or {})

    def _save(self, epoch, logs, batch=None):
        filepath = self._get_file_path(epoch, batch, logs)
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                warnings.warn(f"Can save best model only with {self.monitor} available, skipping.", stacklevel=3)
                return
            if not self.monitor_op(current, self.best):
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to {current:.5f}, saving "
                      f"model to {filepath}")
            self.best = float(current)
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: saving model to {filepath}")
        folder = os.path.dirname(filepath)
        if folder and not os.path.isdir(folder):
            os.makedirs(folder, exist_ok=True)
        if self.checkpoint:
            from fncompiler.runtime import checkpoint
            checkpoint.save(filepath, self.model, epoch=epoch + 1, logs=logs)
        elif self.save_weights_only:
            self.model.save_weights(filepath, overwrite=True)
        else:
            self.model.save(filepath, overwrite=True)
        self.last_saved = filepath


__all__ = ["ModelCheckpoint"]
