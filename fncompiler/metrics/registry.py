"""Name registry for metrics: ``get``, ``serialize``, ``deserialize``.

Resolution only goes through the explicit tables below (plus an explicit
``custom_objects`` mapping when the caller passes one); nothing is imported by name.
"""

from ..losses.crossentropy import (
    binary_crossentropy,
    categorical_crossentropy,
    sparse_categorical_crossentropy,
)
from ..losses.hinge import categorical_hinge, hinge, squared_hinge
from ..losses.probabilistic import kl_divergence, poisson
from ..losses.regression import (
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
)
from . import accuracy_metrics as acc
from . import confusion_metrics as conf
from . import hinge_metrics as hin
from . import probabilistic_metrics as prob
from . import regression_metrics as reg
from .auc import AUC
from .base import Metric, snake_case
from .reduction_metrics import Mean, MeanMetricWrapper, Sum

_CLASS_LIST = (
    Mean, Sum, MeanMetricWrapper,
    acc.Accuracy, acc.BinaryAccuracy, acc.CategoricalAccuracy, acc.SparseCategoricalAccuracy,
    acc.TopKCategoricalAccuracy, acc.SparseTopKCategoricalAccuracy,
    reg.MeanSquaredError, reg.MeanAbsoluteError, reg.MeanAbsolutePercentageError,
    reg.MeanSquaredLogarithmicError, reg.RootMeanSquaredError, reg.CosineSimilarity,
    reg.LogCoshError,
    prob.BinaryCrossentropy, prob.CategoricalCrossentropy, prob.SparseCategoricalCrossentropy,
    prob.KLDivergence, prob.Poisson,
    hin.Hinge, hin.SquaredHinge, hin.CategoricalHinge,
    conf.TruePositives, conf.FalsePositives, conf.TrueNegatives, conf.FalseNegatives,
    conf.Precision, conf.Recall, AUC,
)

#: Metric classes by class name.
CLASSES = {cls.__name__: cls for cls in _CLASS_LIST}

#: Metric functions by name, with the metric class that averages each.
FUNCTIONS = {
    fn.__name__: (fn, cls)
    for fn, cls in (
        (acc.accuracy, acc.Accuracy),
        (acc.binary_accuracy, acc.BinaryAccuracy),
        (acc.categorical_accuracy, acc.CategoricalAccuracy),
        (acc.sparse_categorical_accuracy, acc.SparseCategoricalAccuracy),
        (acc.top_k_categorical_accuracy, acc.TopKCategoricalAccuracy),
        (acc.sparse_top_k_categorical_accuracy, acc.SparseTopKCategoricalAccuracy),
        (mean_squared_error, reg.MeanSquaredError),
        (mean_absolute_error, reg.MeanAbsoluteError),
        (mean_absolute_percentage_error, reg.MeanAbsolutePercentageError),
        (mean_squared_logarithmic_error, reg.MeanSquaredLogarithmicError),
        (reg.cosine_similarity, reg.CosineSimilarity),
        (log_cosh, reg.LogCoshError),
        (binary_crossentropy, prob.BinaryCrossentropy),
        (categorical_crossentropy, prob.CategoricalCrossentropy),
        (sparse_categorical_crossentropy, prob.SparseCategoricalCrossentropy),
        (kl_divergence, prob.KLDivergence),
        (poisson, prob.Poisson),
        (hinge, hin.Hinge),
        (squared_hinge, hin.SquaredHinge),
        (categorical_hinge, hin.CategoricalHinge),
    )
}

#: Extra string names -> class (Keras aliases and snake_case class names).
ALIASES = {
    "mse": reg.MeanSquaredError, "MSE": reg.MeanSquaredError,
    "mae": reg.MeanAbsoluteError, "MAE": reg.MeanAbsoluteError,
    "mape": reg.MeanAbsolutePercentageError, "MAPE": reg.MeanAbsolutePercentageError,
    "msle": reg.MeanSquaredLogarithmicError, "MSLE": reg.MeanSquaredLogarithmicError,
    "bce": prob.BinaryCrossentropy, "BCE": prob.BinaryCrossentropy,
    "kld": prob.KLDivergence, "KLD": prob.KLDivergence,
    "logcosh": reg.LogCoshError,
}
ALIASES.update({
    snake_case(name): cls for name, cls in CLASSES.items()
    if cls not in (MeanMetricWrapper,) and snake_case(name) not in FUNCTIONS
})

#: Shortcuts that need the loss / output shapes; handled by ``resolve``.
CONTEXT_SHORTCUTS = ("accuracy", "acc", "crossentropy", "ce")


def valid_names():
    """All strings ``get`` / ``resolve`` accept."""
    names = (set(CLASSES) - {"MeanMetricWrapper"}) | set(FUNCTIONS) | set(ALIASES)
    return sorted(names | set(CONTEXT_SHORTCUTS))


def unknown_identifier(identifier):
    return ValueError(
        f"Unknown metric identifier: {identifier!r}. Expected one of: "
        f"{', '.join(valid_names())}; or a Metric instance, a callable(y_true, y_pred), "
        "or a serialized dict."
    )


def function_name(fn):
    for name, (registered, _) in FUNCTIONS.items():
        if registered is fn:
            return name
    return getattr(fn, "__name__", repr(fn))


def resolve_function(name, custom_objects=None):
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    if name in FUNCTIONS:
        return FUNCTIONS[name][0]
    raise unknown_identifier(name)


def lookup_class(name):
    """Metric class for a registered string, or None."""
    if name in CLASSES and name != "MeanMetricWrapper":
        return CLASSES[name]
    if name in FUNCTIONS:
        return FUNCTIONS[name][1]
    return ALIASES.get(name)


def serialize(metric):
    """Serialize a Metric (or registered metric function) to ``{"class_name", "config"}``."""
    if isinstance(metric, Metric):
        return {"class_name": type(metric).__name__, "config": metric.get_config()}
    if isinstance(metric, str):
        return metric
    if callable(metric):
        return {"class_name": "function", "config": function_name(metric)}
    raise TypeError(
        f"serialize() expected a Metric or metric function; received {metric!r} "
        f"of type {type(metric).__name__}."
    )


def deserialize(config, custom_objects=None):
    """Inverse of ``serialize``; resolves names through this registry (and ``custom_objects``)."""
    from ..registry_utils import deserialize_from
    return deserialize_from(config, classes=CLASSES, get=get, unknown=unknown_identifier, resolve_function=resolve_function,
                            wrapper_cls=MeanMetricWrapper, custom_objects=custom_objects)


def get(identifier):
    """Resolve ``identifier`` to a metric.

    ``None`` -> ``None``; a registered name (class name, snake_case name,
    function name, alias like ``"mse"``) -> a Metric instance with default
    arguments; a dict -> deserialized instance; a Metric or callable -> returned
    unchanged. Without context ``"accuracy"``/``"acc"`` give ``Accuracy`` and
    ``"crossentropy"``/``"ce"`` give ``CategoricalCrossentropy``; use
    ``resolve`` for Keras's loss/shape-dependent compile-time shortcuts.
    """
    if identifier is None:
        return None
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        if identifier.lower() in CONTEXT_SHORTCUTS:
            from .resolve import resolve  # no loss / shape context: Keras-style fallback

            return resolve(identifier)
        cls = lookup_class(identifier)
        if cls is None:
            raise unknown_identifier(identifier)
        return cls()
    if callable(identifier):
        return identifier
    raise TypeError(
        f"Could not interpret metric identifier {identifier!r} of type "
        f"{type(identifier).__name__}. Expected None, a string, a dict, a Metric or a callable."
    )
