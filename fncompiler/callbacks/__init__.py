"""Callbacks with the Keras hooks and names."""
from .callback import Callback, CallbackList
from .history import History
from .checkpoint import ModelCheckpoint
from .monitors import EarlyStopping, ReduceLROnPlateau, TerminateOnNaN
from .schedulers import CSVLogger, LearningRateScheduler
from .backup import BackupAndRestore
from .logging import LambdaCallback, ProgbarLogger, TensorBoard

__all__ = ["Callback", "CallbackList", "History", "EarlyStopping", "ReduceLROnPlateau", "TerminateOnNaN",
           "CSVLogger", "LearningRateScheduler", "ModelCheckpoint",
           "BackupAndRestore", "LambdaCallback", "ProgbarLogger", "TensorBoard"]


# --- a Keras name fncompiler lacks (or a typo) gets a clear AttributeError (fncompiler.keras_names) ---
from ..keras_names import install as _install_getattr  # noqa: E402
__getattr__ = _install_getattr("callbacks", globals())
