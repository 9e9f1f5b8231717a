"""The layers a layer's config holds (RNN's cell, StackedRNNCells' cells, Bidirectional's and TimeDistributed's
layer): {"class_name", "config"} and back, resolving class names among fncompiler's own layer classes only."""
from .layer import Layer


# The layers package's registry of the classes it exports, registered by fncompiler/layers/__init__.py when it
# loads (the package imports this module, not the other way round).
_CLASS_TABLE = []


def register_class_table(table):
    """`table()` -> {class name: layer class}; read when a config is, so every exported class is in it."""
    _CLASS_TABLE[:] = [table]


def layer_classes():
    """This package's own layer classes by name (cells and RNNs included): the only classes configs may name."""
    return dict(_CLASS_TABLE[0]()) if _CLASS_TABLE else {}


def serialize_layer(layer):
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize_layer(config, who):
    if isinstance(config, Layer):
        return config
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"{who}: expected a layer config dict with 'class_name' and 'config'; received {config!r}.")
    cls = layer_classes().get(config["class_name"])
    if cls is None:
        raise ValueError(f"{who}: unknown layer class {config['class_name']!r}. Only fncompiler's own layer classes "
                         "can be rebuilt from a config here.")
    return cls.from_config(dict(config.get("config", {})))
