"""Area under the ROC or PR curve from thresholded confusion counts (Keras ``AUC``)."""

import jax
import jax.numpy as jnp

from ..losses.reduction import EPSILON, divide_no_nan
from .base import Metric
from .confusion import confusion_counts

CURVES = ("ROC", "PR")
SUMMATION_METHODS = ("interpolation", "minoring", "majoring")


class AUC(Metric):
    """Approximate AUC with ``num_thresholds`` evenly spaced thresholds (single label).

    ``curve`` is ``"ROC"`` or ``"PR"``; ``summation_method`` is ``"interpolation"``
    (trapezoid for ROC, Davis & Goadrich interpolation for PR), ``"minoring"`` or
    ``"majoring"``. ``from_logits`` applies a sigmoid to predictions first.
    """

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation",
                 name=None, dtype=None, thresholds=None, from_logits=False):
        super().__init__(name=name, dtype=dtype)
        curve = str(curve).upper()
        if curve not in CURVES:
            raise ValueError(f"Invalid `curve`: expected one of {CURVES}. Received: {curve!r}")
        summation_method = str(summation_method).lower()
        if summation_method not in SUMMATION_METHODS:
            raise ValueError(
                f"Invalid `summation_method`: expected one of {SUMMATION_METHODS}. "
                f"Received: {summation_method!r}"
            )
        self.curve = curve
        self.summation_method = summation_method
        self.from_logits = from_logits
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
            self.num_thresholds = len(inner) + 2
        else:
            if num_thresholds <= 1:
                raise ValueError(
                    f"`num_thresholds` must be > 1. Received: num_thresholds={num_thresholds}"
                )
            self.num_thresholds = int(num_thresholds)
            inner = [(i + 1) * 1.0 / (self.num_thresholds - 1)
                     for i in range(self.num_thresholds - 2)]
        self.thresholds = [0.0 - EPSILON] + inner + [1.0 + EPSILON]

    def initial_state(self):
        shape = (self.num_thresholds,)
        return {"tp": self._zeros(shape), "fp": self._zeros(shape), "tn": self._zeros(shape),
                "fn": self._zeros(shape)}

    def update(self, state, y_true, y_pred, sample_weight=None):
        y_pred = jnp.asarray(y_pred)
        if self.from_logits:
            y_pred = jax.nn.sigmoid(y_pred)
        counts = confusion_counts(y_true, y_pred, self.thresholds, sample_weight,
                                  dtype=self.dtype)
        return {k: state[k] + counts[k] for k in state}

    def _interpolate_pr_auc(self, tp, fp, fn):
        n = self.num_thresholds
        dtp = tp[: n - 1] - tp[1:]
        p = tp + fp
        dp = p[: n - 1] - p[1:]
        prec_slope = divide_no_nan(dtp, jnp.maximum(dp, 0))
        intercept = tp[1:] - prec_slope * p[1:]
        safe_p_ratio = jnp.where(
            (p[: n - 1] > 0) & (p[1:] > 0),
            divide_no_nan(p[: n - 1], jnp.maximum(p[1:], 0)),
            jnp.ones_like(p[1:]),
        )
        increment = divide_no_nan(
            prec_slope * (dtp + intercept * jnp.log(safe_p_ratio)),
            jnp.maximum(tp[1:] + fn[1:], 0),
        )
        return jnp.sum(increment)

    def compute(self, state):
        tp, fp, tn, fn = state["tp"], state["fp"], state["tn"], state["fn"]
        n = self.num_thresholds
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolate_pr_auc(tp, fp, fn)
        recall = divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = divide_no_nan(fp, fp + tn), recall
        else:
            x, y = recall, divide_no_nan(tp, tp + fp)
        if self.summation_method == "interpolation":
            heights = (y[: n - 1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = jnp.minimum(y[: n - 1], y[1:])
        else:
            heights = jnp.maximum(y[: n - 1], y[1:])
        return jnp.sum((x[: n - 1] - x[1:]) * heights)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_thresholds=self.num_thresholds,
            curve=self.curve,
            summation_method=self.summation_method,
            from_logits=self.from_logits,
            thresholds=self.thresholds[1:-1] if self._init_from_thresholds else None,
        )
        return config
