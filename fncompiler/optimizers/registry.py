"""Name registry for optimizers: ``get``, ``serialize``, ``deserialize`` (no import-by-name)."""

from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .base import Optimizer
from .lion import Lion
from .nadam import Nadam
from .rmsprop import RMSprop
from .sgd import SGD

#: Optimizer classes by lower-cased class name (lookup is case-insensitive, as in Keras).
CLASSES = {cls.__name__.lower(): cls
           for cls in (SGD, RMSprop, Adam, AdamW, Adagrad, Adadelta, Adamax, Nadam, Lion)}


def _lookup(name, custom_objects=None):
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    cls = CLASSES.get(str(name).lower())
    if cls is None:
        raise ValueError(
            f"Unknown optimizer: {name!r}. Expected one of: {', '.join(sorted(CLASSES))} "
            "(case-insensitive), an Optimizer instance, or a serialized dict."
        )
    return cls


def serialize(optimizer):
    """``{"class_name", "config"}`` for an Optimizer."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"serialize() expected an Optimizer; received {optimizer!r} "
                        f"of type {type(optimizer).__name__}.")
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config, custom_objects=None):
    """Inverse of ``serialize``; names resolve through this registry (and ``custom_objects``)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise TypeError("deserialize() expected a dict with keys 'class_name' and 'config'; "
                        f"received {config!r}.")
    cls = _lookup(config["class_name"], custom_objects)
    return cls.from_config(config.get("config", {}), custom_objects=custom_objects)


def get(identifier):
    """``"adam"``/``"SGD"``/... -> a new instance with defaults; dict -> deserialized;
    Optimizer -> returned unchanged. Unknown names raise ValueError listing valid names."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        return _lookup(identifier)()
    raise TypeError(
        f"Could not interpret optimizer identifier {identifier!r} of type "
        f"{type(identifier).__name__}. Expected a string, a dict or an Optimizer."
    )
