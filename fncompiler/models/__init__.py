"""Model classes and model-level functions (load_model, clone_model).

The import arrows between models and saving go one way, models -> saving (tools/import_cycles.py): saving names
the model classes only through the table registered here (fncompiler.saving.serialization.register_model_classes),
and `fncompiler.saving.load_model` is this module's `load_model`, re-exported lazily by the saving namespace.
"""
import copy

from ..saving import saving_api, serialization
from .model import Model
from .functional import Functional
from .sequential import Sequential

serialization.register_model_classes(model=Model, functional=Functional, sequential=Sequential)


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Load a model saved with `model.save(path)`: architecture, weights, optimizer state and compile config."""
    return saving_api.load_model(filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)


def clone_model(model, input_tensors=None, clone_function=None):
    """A new model with the same architecture and freshly initialized weights (rebuilt from its config).
    Sequential and functional models are supported."""
    if clone_function is not None:
        raise NotImplementedError("clone_model(clone_function=...) is not supported yet.")
    if input_tensors is not None:
        raise NotImplementedError("clone_model(input_tensors=...) is not supported yet.")
    config = copy.deepcopy(model.get_config())
    if isinstance(model, Sequential):
        return Sequential.from_config(config)
    return type(model).from_config(config)


__all__ = ["Model", "Functional", "Sequential", "load_model", "clone_model"]
