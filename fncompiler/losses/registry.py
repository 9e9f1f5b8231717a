"""Name registry for losses: ``get``, ``serialize``, ``deserialize``.

Resolution only goes through the explicit tables below (plus an explicit
``custom_objects`` mapping when the caller passes one); nothing is imported by
name.
"""

from .base import Loss, LossFunctionWrapper
from .crossentropy import (
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
    binary_crossentropy,
    binary_focal_crossentropy,
    categorical_crossentropy,
    sparse_categorical_crossentropy,
)
from .hinge import CategoricalHinge, Hinge, SquaredHinge, categorical_hinge, hinge, squared_hinge
from .probabilistic import KLDivergence, Poisson, kl_divergence, poisson
from .regression import (
    CosineSimilarity,
    Huber,
    LogCosh,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    cosine_similarity,
    huber,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
)

#: Loss classes by class name.
CLASSES = {
    cls.__name__: cls
    for cls in (
        MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
        MeanSquaredLogarithmicError, Huber, LogCosh, CosineSimilarity, BinaryCrossentropy,
        BinaryFocalCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy,
        KLDivergence, Poisson, Hinge, SquaredHinge, CategoricalHinge, LossFunctionWrapper,
    )
}

#: Loss functions by name, with the class that wraps each.
FUNCTIONS = {
    fn.__name__: (fn, cls)
    for fn, cls in (
        (mean_squared_error, MeanSquaredError),
        (mean_absolute_error, MeanAbsoluteError),
        (mean_absolute_percentage_error, MeanAbsolutePercentageError),
        (mean_squared_logarithmic_error, MeanSquaredLogarithmicError),
        (huber, Huber),
        (log_cosh, LogCosh),
        (cosine_similarity, CosineSimilarity),
        (binary_crossentropy, BinaryCrossentropy),
        (binary_focal_crossentropy, BinaryFocalCrossentropy),
        (categorical_crossentropy, CategoricalCrossentropy),
        (sparse_categorical_crossentropy, SparseCategoricalCrossentropy),
        (kl_divergence, KLDivergence),
        (poisson, Poisson),
        (hinge, Hinge),
        (squared_hinge, SquaredHinge),
        (categorical_hinge, CategoricalHinge),
    )
}

#: Keras short aliases -> function name.
ALIASES = {
    "mse": "mean_squared_error", "MSE": "mean_squared_error",
    "mae": "mean_absolute_error", "MAE": "mean_absolute_error",
    "mape": "mean_absolute_percentage_error", "MAPE": "mean_absolute_percentage_error",
    "msle": "mean_squared_logarithmic_error", "MSLE": "mean_squared_logarithmic_error",
    "bce": "binary_crossentropy", "BCE": "binary_crossentropy",
    "kld": "kl_divergence", "KLD": "kl_divergence",
}


def valid_names():
    """All strings ``get`` accepts."""
    return sorted(set(CLASSES) - {"LossFunctionWrapper"} | set(FUNCTIONS) | set(ALIASES))


def _unknown(identifier):
    return ValueError(
        f"Unknown loss identifier: {identifier!r}. Expected one of: {', '.join(valid_names())}; "
        "or a Loss instance, a callable(y_true, y_pred), or a serialized dict."
    )


def function_name(fn):
    """Registered name of a loss function (falls back to ``fn.__name__``)."""
    for name, (registered, _) in FUNCTIONS.items():
        if registered is fn:
            return name
    return getattr(fn, "__name__", repr(fn))


def resolve_function(name, custom_objects=None):
    """The loss function registered under ``name`` (or an alias / custom object)."""
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    name = ALIASES.get(name, name)
    if name in FUNCTIONS:
        return FUNCTIONS[name][0]
    raise _unknown(name)


def serialize(loss):
    """Serialize a Loss (or registered loss function) to ``{"class_name", "config"}``."""
    if isinstance(loss, Loss):
        return {"class_name": type(loss).__name__, "config": loss.get_config()}
    if callable(loss):
        return {"class_name": "function", "config": function_name(loss)}
    if isinstance(loss, str):
        return loss
    raise TypeError(
        f"serialize() expected a Loss instance or loss function; received {loss!r} "
        f"of type {type(loss).__name__}."
    )


def deserialize(config, custom_objects=None):
    """Inverse of ``serialize``; resolves names through this registry (and ``custom_objects``)."""
    from ..registry_utils import deserialize_from
    return deserialize_from(config, classes=CLASSES, get=get, unknown=_unknown, resolve_function=resolve_function,
                            wrapper_cls=LossFunctionWrapper, custom_objects=custom_objects)


def get(identifier):
    """Resolve ``identifier`` to a loss.

    ``None`` -> ``None``; a name (class name, snake_case function name or alias
    such as ``"mse"``) -> a Loss instance with default arguments; a serialized
    dict -> instance; a Loss or any callable -> returned unchanged.
    """
    if identifier is None:
        return None
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        if identifier in CLASSES and identifier != "LossFunctionWrapper":
            return CLASSES[identifier]()
        name = ALIASES.get(identifier, identifier)
        if name in FUNCTIONS:
            return FUNCTIONS[name][1]()
        raise _unknown(identifier)
    if callable(identifier):
        return identifier
    raise TypeError(
        f"Could not interpret loss identifier {identifier!r} of type "
        f"{type(identifier).__name__}. Expected None, a string, a dict, a Loss or a callable."
    )


def as_loss(identifier):
    """What `compile(loss=...)` uses for one output: always a ``Loss``, called as
    ``loss(y_true, y_pred, sample_weight=None)`` and reduced with "sum_over_batch_size".

    A plain function is wrapped as Keras 3 wraps it (``LossFunctionWrapper``, named after the function): one
    of fncompiler's own (``losses.binary_crossentropy``) becomes its class with default arguments (the same
    values; the class also knows e.g. that sparse labels stay integers), any other ``fn(y_true, y_pred)``
    returning per-sample losses is wrapped as is.
    """
    loss = get(identifier)
    if loss is None or isinstance(loss, Loss):
        return loss
    for name, (fn, cls) in FUNCTIONS.items():
        if fn is loss:
            return cls()
    return LossFunctionWrapper(loss, name=_object_name(loss))


def _object_name(fn):
    """Keras's name for a callable: its ``__name__`` (a class instance: its class name), snake_case."""
    import re
    from .base import _snake_case
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return _snake_case(re.sub(r"\W+", "", name)) or "loss"
