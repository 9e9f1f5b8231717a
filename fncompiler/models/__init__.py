"""Model classes and model-level functions (load_model, clone_model)."""
from .model import Model
from .functional import Functional
from .sequential import Sequential


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Load a model saved with `model.save(path)`: architecture, weights, optimizer state and compile config."""
    from ..saving import saving_api
    return saving_api.load_model(filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)


def clone_model(model, input_tensors=None, clone_function=None):
    """A new model with the same architecture and freshly initialized weights."""
    from ..saving import functional_config
    return functional_config.clone_model(model, input_tensors=input_tensors, clone_function=clone_function)


__all__ = ["Model", "Functional", "Sequential", "load_model", "clone_model"]
