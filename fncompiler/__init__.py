"""fncompiler: a Keras-style functional API whose models are compiled.

`import fncompiler as keras` gives the Keras names: Input, Model, Sequential, layers, ops, losses, metrics,
optimizers, callbacks, datasets, utils, models, applications, saving. The compiler's own entry point is
`fncompiler.compile_model(model)`.
"""
__version__ = "0.1.0"

from . import activations, constraints, initializers, regularizers
from . import layers, ops
from .layers import Input, InputLayer, Layer
from .models import Functional, Model, Sequential
from .symbolic import KerasTensor, SymbolicTensor
from .variables import Variable
from . import models, utils, datasets

_LAZY = {"losses", "metrics", "optimizers", "callbacks", "saving", "applications", "ir", "passes", "runtime",
         "distribution"}


def __getattr__(name):
    # Heavier subpackages load on first use so `import fncompiler` stays fast.
    if name in _LAZY:
        import importlib
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    if name == "compile_model":
        from .runtime.compiled import compile_model
        return compile_model
    if name == "export":
        from .runtime.export import export
        return export
    raise AttributeError(f"module 'fncompiler' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY) + ["compile_model", "export"])


__all__ = ["Input", "InputLayer", "Layer", "Model", "Functional", "Sequential", "KerasTensor", "SymbolicTensor",
           "Variable", "activations", "constraints", "initializers", "regularizers", "layers", "ops", "models",
           "utils", "datasets", "losses", "metrics", "optimizers", "callbacks", "saving", "applications",
           "compile_model", "export", "ir", "passes", "runtime", "distribution"]
