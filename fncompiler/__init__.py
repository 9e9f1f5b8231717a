"""fncompiler: a Keras-style functional API whose models are compiled.

`import fncompiler as keras` gives the Keras names: Input, Model, Sequential, layers, ops, losses, metrics,
optimizers, callbacks, datasets, utils, models, applications, saving. The compiler's own entry point is
`fncompiler.compile_model(model)`.

Every name loads on first use (PEP 562), so `import fncompiler` itself imports nothing heavy, and a serving
process that only does `from fncompiler.runtime import load_exported` never loads the model-building code
(layers, models, ...). `dir(fncompiler)` lists every name. To export a new name, add one line to `_NAMES`
(name -> the submodule, relative to this package, that defines it) or to `_SUBPACKAGES`.
"""
import importlib

__version__ = "0.1.0"

# Subpackages and modules reachable as attributes: `fncompiler.layers`, `keras.ops`, ...
_SUBPACKAGES = (
    "activations", "applications", "callbacks", "constraints", "datasets", "distribution", "initializers", "ir",
    "layers", "losses", "metrics", "models", "ops", "optimizers", "passes", "regularizers", "runtime", "saving",
    "utils",
)

# Top-level names -> the submodule that defines them.
_NAMES = {
    "Input": "layers",
    "InputLayer": "layers",
    "Layer": "layers",
    "Functional": "models",
    "Model": "models",
    "Sequential": "models",
    "KerasTensor": "symbolic",
    "SymbolicTensor": "symbolic",
    "Variable": "variables",
    "compile_model": "runtime.compiled",
    "export": "runtime.export",
}


def __getattr__(name):
    if name in _NAMES:
        value = getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f".{name}", __name__)
    elif name.startswith("__"):
        raise AttributeError(f"module 'fncompiler' has no attribute {name!r}")
    else:  # a Keras name fncompiler lacks, or a typo: say which (fncompiler.keras_names)
        from .keras_names import missing_attribute_error
        raise missing_attribute_error("", name, __all__)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(_SUBPACKAGES) | set(_NAMES))


__all__ = sorted(set(_SUBPACKAGES) | set(_NAMES))
