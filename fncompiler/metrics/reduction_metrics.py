"""Reduction metrics: ``Sum``, ``Mean`` and ``MeanMetricWrapper``."""

import jax.numpy as jnp

from ..losses.reduction import divide_no_nan, squeeze_or_expand_to_same_rank
from .base import Metric


def reduce_to_samplewise_values(values, sample_weight, reduce_fn, dtype):
    """Keras ``reduce_to_samplewise_values``: weight ``values`` and reduce to per-sample values.

    Returns ``(values, sample_weight)`` where ``values`` has rank <= 1 and
    ``sample_weight`` (if given) matches it.
    """
    values = jnp.asarray(values).astype(dtype)
    if sample_weight is not None:
        sample_weight = jnp.asarray(sample_weight).astype(dtype)
        values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
        weight_ndim = sample_weight.ndim
        if values.ndim > weight_ndim:
            values = reduce_fn(values, axis=tuple(range(weight_ndim, values.ndim)))
        sample_weight = jnp.broadcast_to(sample_weight, values.shape)
        values = values * sample_weight
        if weight_ndim > 1:
            sample_weight = reduce_fn(sample_weight, axis=tuple(range(1, weight_ndim)))
    if values.ndim > 1:
        values = reduce_fn(values, axis=tuple(range(1, values.ndim)))
    return values, sample_weight


class Sum(Metric):
    """Weighted sum of values. Pure update signature: ``update(state, values, sample_weight)``."""

    def initial_state(self):
        return {"total": self._zeros()}

    def update(self, state, values, sample_weight=None):
        values, _ = reduce_to_samplewise_values(values, sample_weight, jnp.sum, self.dtype)
        return {"total": state["total"] + jnp.sum(values)}

    def compute(self, state):
        return state["total"]


class Mean(Metric):
    """Weighted mean of values. Pure update signature: ``update(state, values, sample_weight)``."""

    def initial_state(self):
        return {"total": self._zeros(), "count": self._zeros()}

    def update(self, state, values, sample_weight=None):
        values, sample_weight = reduce_to_samplewise_values(
            values, sample_weight, jnp.mean, self.dtype
        )
        if sample_weight is not None:
            num_samples = jnp.sum(sample_weight)
        elif values.ndim >= 1:
            num_samples = values.shape[0]
        else:
            num_samples = 1
        return {
            "total": state["total"] + jnp.sum(values),
            "count": state["count"] + jnp.asarray(num_samples, self.dtype),
        }

    def compute(self, state):
        return divide_no_nan(state["total"], state["count"])


class MeanMetricWrapper(Mean):
    """Mean of ``fn(y_true, y_pred, **kwargs)`` over all samples seen."""

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        if not callable(fn):
            raise TypeError(
                f"MeanMetricWrapper expected a callable fn(y_true, y_pred); received {fn!r}."
            )
        super().__init__(name=name or getattr(fn, "__name__", None), dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update(self, state, y_true, y_pred, sample_weight=None):
        values = self._fn(y_true, y_pred, **self._fn_kwargs)
        return Mean.update(self, state, values, sample_weight)

    def get_config(self):
        config = super().get_config()
        if type(self) is MeanMetricWrapper:
            from .registry import function_name

            config["fn"] = function_name(self._fn)
        config.update(self._fn_kwargs)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if cls is MeanMetricWrapper:
            from .registry import resolve_function

            fn = config.pop("fn")
            if isinstance(fn, str):
                fn = resolve_function(fn, custom_objects)
            return cls(fn, **config)
        config.pop("fn", None)
        return cls(**config)
