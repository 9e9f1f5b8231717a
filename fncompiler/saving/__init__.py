"""Saving and loading models and weights (one zip of JSON + msgpack; no pickle, no code).

`load_model` and `deserialize_object` build models, so they are the models package's (fncompiler/models/
loading.py): this namespace re-exports them on first use (PEP 562, as fncompiler/__init__.py does), and no module
of this package imports fncompiler.models (the arrows go models -> saving: see tools/import_cycles.py). The
saving modules know the model classes only through the table the model modules register
(serialization.register_model_class).
"""
import importlib

from .errors import ModelFileError, UnsafeConfigError
from .object_registration import (CustomObjectScope, custom_object_scope, get_registered_name, get_registered_object,
                                  register_keras_serializable, register_serializable)
from .saving_api import load_weights, save_model, save_weights
from .serialization import serialize_object

# Names defined outside this package -> the module (relative to this package) that defines them.
_NAMES = {"load_model": "..models.loading", "deserialize_object": "..models.loading"}


def __getattr__(name):
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_NAMES[name], __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_NAMES))


__all__ = ["ModelFileError", "UnsafeConfigError", "CustomObjectScope", "custom_object_scope", "get_registered_name",
           "get_registered_object", "register_keras_serializable", "register_serializable", "load_model",
           "load_weights", "save_model", "save_weights", "deserialize_object", "serialize_object"]
