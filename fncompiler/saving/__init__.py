"""Saving and loading models and weights (one zip of JSON + msgpack; no pickle, no code)."""
from .errors import ModelFileError, UnsafeConfigError
from .object_registration import (CustomObjectScope, custom_object_scope, get_registered_name, get_registered_object,
                                  register_keras_serializable, register_serializable)
from .saving_api import load_model, load_weights, save_model, save_weights
from .serialization import deserialize_object, serialize_object

__all__ = ["ModelFileError", "UnsafeConfigError", "CustomObjectScope", "custom_object_scope", "get_registered_name",
           "get_registered_object", "register_keras_serializable", "register_serializable", "load_model",
           "load_weights", "save_model", "save_weights", "deserialize_object", "serialize_object"]
