"""Keras-3-compatible optimizers built on optax, with a pure init/apply API."""

from . import schedules
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .base import Optimizer, OptimizerState
from .lion import Lion
from .nadam import Nadam
from .registry import deserialize, get, serialize
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = [
    "Optimizer", "OptimizerState", "SGD", "RMSprop", "Adam", "AdamW", "Adagrad", "Adadelta",
    "Adamax", "Nadam", "Lion", "schedules", "get", "serialize", "deserialize",
]


# --- a Keras name fncompiler lacks (or a typo) gets a clear AttributeError (fncompiler.keras_names) ---
from ..keras_names import install as _install_getattr  # noqa: E402
__getattr__ = _install_getattr("optimizers", globals())
