"""Confusion-matrix metrics: TruePositives/.../Precision/Recall."""

from ..losses.reduction import divide_no_nan
from .base import Metric
from .confusion import NEG_INF, confusion_counts, parse_init_thresholds


class _ConfusionMetric(Metric):
    """Accumulates the confusion counts listed in ``_counts`` for each threshold."""

    _counts = ()

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.top_k = top_k
        self.class_id = class_id
        default = 0.5 if top_k is None else NEG_INF
        self.thresholds = parse_init_thresholds(thresholds, default_threshold=default)

    def initial_state(self):
        return {c: self._zeros((len(self.thresholds),)) for c in self._counts}

    def update(self, state, y_true, y_pred, sample_weight=None):
        counts = confusion_counts(y_true, y_pred, self.thresholds, sample_weight,
                                  top_k=self.top_k, class_id=self.class_id, dtype=self.dtype)
        return {c: state[c] + counts[c] for c in self._counts}

    def _finish(self, values):
        return values[0] if len(self.thresholds) == 1 else values

    def get_config(self):
        config = super().get_config()
        config["thresholds"] = self.init_thresholds
        return config


class _CountMetric(_ConfusionMetric):
    def __init__(self, thresholds=None, name=None, dtype=None):
        super().__init__(thresholds=thresholds, name=name, dtype=dtype)

    def compute(self, state):
        return self._finish(state[self._counts[0]])


class TruePositives(_CountMetric):
    _counts = ("tp",)


class FalsePositives(_CountMetric):
    _counts = ("fp",)


class TrueNegatives(_CountMetric):
    _counts = ("tn",)


class FalseNegatives(_CountMetric):
    _counts = ("fn",)


class Precision(_ConfusionMetric):
    """``tp / (tp + fp)`` at each threshold (default 0.5), optionally top-k / single class."""

    _counts = ("tp", "fp")

    def compute(self, state):
        return self._finish(divide_no_nan(state["tp"], state["tp"] + state["fp"]))

    def get_config(self):
        config = super().get_config()
        config.update(top_k=self.top_k, class_id=self.class_id)
        return config


class Recall(_ConfusionMetric):
    """``tp / (tp + fn)`` at each threshold (default 0.5), optionally top-k / single class."""

    _counts = ("tp", "fn")

    def compute(self, state):
        return self._finish(divide_no_nan(state["tp"], state["tp"] + state["fn"]))

    def get_config(self):
        config = super().get_config()
        config.update(top_k=self.top_k, class_id=self.class_id)
        return config


__all__ = ["TruePositives", "FalsePositives", "TrueNegatives", "FalseNegatives", "Precision",
           "Recall"]
