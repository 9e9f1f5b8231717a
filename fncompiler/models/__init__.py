"""Model classes and model-level functions (load_model, clone_model).

The import arrows between models and saving go one way, models -> saving (tools/import_cycles.py): each model
class registers itself with saving (saving.serialization.register_model_class), and the functions that build
models from files or configs are models/loading.py, which fncompiler.saving re-exports lazily.
"""
import copy

from .model import Model
from .functional import Functional
from .sequential import Sequential
from .loading import load_model


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
