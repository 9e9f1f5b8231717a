"""Compile-time metric resolution (Keras ``compile_utils.get_metric``).

``"accuracy"``/``"acc"`` and ``"crossentropy"``/``"ce"`` pick the binary,
sparse-categorical or categorical variant from the loss (when it identifies
one) and otherwise from the label / prediction shapes; the resolved metric is
named exactly as the user wrote it.
"""

from .. import losses as losses_module
from ..losses.base import LossFunctionWrapper
from . import accuracy_metrics as acc
from . import probabilistic_metrics as prob
from .base import Metric
from .reduction_metrics import MeanMetricWrapper
from .registry import CONTEXT_SHORTCUTS, get

_BINARY_FNS = (losses_module.binary_crossentropy, losses_module.binary_focal_crossentropy)
_SPARSE_FNS = (losses_module.sparse_categorical_crossentropy,)
_CATEGORICAL_FNS = (losses_module.categorical_crossentropy,)


def _loss_object(loss):
    if isinstance(loss, str):
        try:
            return losses_module.get(loss)
        except ValueError:
            return None
    return loss


def _kind_from_loss(loss):
    """'binary' / 'sparse' / 'categorical' when the loss identifies the task, else None."""
    loss = _loss_object(loss)
    if loss is None:
        return None
    if isinstance(loss, (losses_module.BinaryCrossentropy, losses_module.BinaryFocalCrossentropy)):
        return "binary"
    if isinstance(loss, losses_module.SparseCategoricalCrossentropy):
        return "sparse"
    if isinstance(loss, losses_module.CategoricalCrossentropy):
        return "categorical"
    fn = loss.fn if isinstance(loss, LossFunctionWrapper) else loss
    if fn in _BINARY_FNS:
        return "binary"
    if fn in _SPARSE_FNS:
        return "sparse"
    if fn in _CATEGORICAL_FNS:
        return "categorical"
    return None


def _from_logits(loss):
    loss = _loss_object(loss)
    if isinstance(loss, LossFunctionWrapper):
        return bool(loss._fn_kwargs.get("from_logits", False))
    return bool(getattr(loss, "from_logits", False))


def _kind_from_shapes(y_pred_shape, y_true_shape):
    """Keras ``is_binary_or_sparse_categorical`` on static shapes."""
    if y_pred_shape is None:
        return None
    y_pred_shape = tuple(y_pred_shape)
    p_last = y_pred_shape[-1] if y_pred_shape else 1
    if p_last == 1:
        return "binary"
    if y_true_shape is None:
        return "categorical"  # Keras assumes labels shaped like the predictions
    y_true_shape = tuple(y_true_shape)
    t_last = y_true_shape[-1] if y_true_shape else 1
    if len(y_true_shape) < len(y_pred_shape) or (t_last == 1 and p_last > 1):
        return "sparse"
    return "categorical"


def resolve(identifier, loss=None, y_pred_shape=None, y_true_shape=None):
    """Resolve a compile()-time metric identifier to a Metric instance.

    ``identifier``: None, a string, a serialized dict, a Metric or a callable.
    ``loss``: the compiled loss (name, Loss instance or function) for this output.
    ``y_pred_shape`` / ``y_true_shape``: static shapes (batch dim may be None).
    """
    if identifier is None:
        return None
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in CONTEXT_SHORTCUTS:
        kind = _kind_from_loss(loss) or _kind_from_shapes(y_pred_shape, y_true_shape)
        if identifier.lower() in ("accuracy", "acc"):
            cls = {"binary": acc.BinaryAccuracy, "sparse": acc.SparseCategoricalAccuracy,
                   "categorical": acc.CategoricalAccuracy, None: acc.Accuracy}[kind]
            return cls(name=identifier)
        cls = {"binary": prob.BinaryCrossentropy, "sparse": prob.SparseCategoricalCrossentropy,
               "categorical": prob.CategoricalCrossentropy,
               None: prob.CategoricalCrossentropy}[kind]
        return cls(name=identifier, from_logits=_from_logits(loss))
    metric = get(identifier)
    if not isinstance(metric, Metric):
        metric = MeanMetricWrapper(metric)
    if isinstance(identifier, str):
        metric.name = identifier
    return metric
