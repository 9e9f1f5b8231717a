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
