"""The entry points that build a model from a file or a config: `load_model` (keras.models.load_model and
keras.saving.load_model) and `deserialize_object` (keras.saving.deserialize_keras_object).

They live with the model classes because they need them: saving's modules never import fncompiler.models, and
know Model, Functional and Sequential only once those modules have registered them
(saving.serialization.register_model_class). Importing them here makes sure they have; the saving namespace
(fncompiler/saving/__init__.py) re-exports these two functions lazily.
"""
from ..saving import saving_api, serialization
from .functional import Functional
from .sequential import Sequential

# The model classes a file or config can name, loaded (so registered) before anything is rebuilt.
MODEL_CLASSES = (Functional, Sequential)


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Load a model saved with `model.save(path)`: architecture, weights, optimizer state and compile config."""
    return saving_api.load_model(filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)


def deserialize_object(config, custom_objects=None, safe_mode=True):
    """A layer or model from its serialized config (saving.serialization.deserialize_object)."""
    return serialization.deserialize_object(config, custom_objects=custom_objects, safe_mode=safe_mode)
