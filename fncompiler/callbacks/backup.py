"""`BackupAndRestore`: resume an interrupted `fit` at the epoch it stopped, from runtime/checkpoint.py's exact
checkpoints (weights, optimizer state, the train step's and NumPy's / Python's RNG state)."""
import os

from .callback import Callback

__all__ = ["BackupAndRestore"]


class BackupAndRestore(Callback):
    """Keras's BackupAndRestore. At the end of every epoch (or every `save_freq` batches) the training state is
    written to ``backup_dir/latest.fnckpt``; a later `fit` with this callback and the same model finds it,
    restores everything and continues at the epoch after the last one saved, so an interrupted run (an
    exception, a killed process) ends with the same weights as one that never stopped. When fit ends normally
    the backup is deleted (delete_checkpoint=True). double_checkpoint: also keep the previous backup
    (``latest.fnckpt.prev``), used when the latest one cannot be read.
    """

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False, delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError("BackupAndRestore: backup_dir must be a folder path; received an empty value.")
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1):
            raise ValueError(f"BackupAndRestore: save_freq must be 'epoch' or a positive int (batches); received "
                             f"{save_freq!r}.")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.double_checkpoint = bool(double_checkpoint)
        self.delete_checkpoint = bool(delete_checkpoint)
        self.path = os.path.join(self.backup_dir, "latest.fnckpt")
        self._epoch = 0
        self._batches = 0
        if save_freq != "epoch":
            self.on_train_batch_end = self._on_train_batch_end

    def resume_epoch(self, model):
        """Called by fit before training: restore the backup into `model` if there is one; the epoch to start at
        (or None)."""
        from fncompiler.runtime import checkpoint
        for path in (self.path, self.path + ".prev") if self.double_checkpoint else (self.path,):
            if os.path.exists(path):
                try:
                    return checkpoint.restore(path, model).epoch
                except checkpoint.CheckpointError:
                    if path.endswith(".prev") or not self.double_checkpoint:
                        raise
        return None

    def _save(self, epoch, logs):
        from fncompiler.runtime import checkpoint
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint and os.path.exists(self.path):
            os.replace(self.path, self.path + ".prev")
        checkpoint.save(self.path, self.model, epoch=epoch, logs=logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch + 1, logs or {})

    def _on_train_batch_end(self, batch, logs=None):
        # A mid-epoch backup resumes at the start of that epoch (the batches already done are run again).
        self._batches += 1
        if self._batches >= self.save_freq:
            self._batches = 0
            trainer = getattr(self.model, "_trainer", None)
            if trainer is not None:
                trainer.sync_live()
            self._save(self._epoch, dict(logs or {}))

    def on_train_end(self, logs=None):
        if self.delete_checkpoint:
            for path in (self.path, self.path + ".prev"):
                if os.path.exists(path):
                    os.remove(path)
