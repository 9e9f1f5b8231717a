"""``Loss`` base class and ``LossFunctionWrapper`` (Keras 3 semantics)."""

import re

import jax.numpy as jnp

from .reduction import reduce_weighted_values, squeeze_or_expand_to_same_rank, standardize_reduction


def _snake_case(name):
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def compute_dtype(y_pred, dtype=None):
    """The dtype a loss is computed in.

    An explicit ``dtype`` wins; otherwise ``y_pred``'s dtype when it is a float
    of at least 32 bits, else float32 (half-precision predictions are upcast,
    like Keras's float32 loss dtype under mixed precision).
    """
    if dtype is not None:
        return jnp.dtype(dtype)
    dt = jnp.result_type(y_pred)
    if jnp.issubdtype(dt, jnp.floating) and jnp.finfo(dt).bits >= 32:
        return dt
    return jnp.dtype(jnp.float32)


class Loss:
    """Base loss: subclasses implement ``call(y_true, y_pred)`` -> per-sample losses.

    ``__call__(y_true, y_pred, sample_weight=None)`` casts inputs, weights the
    per-sample losses and reduces them (``reduction`` is one of
    ``"sum_over_batch_size"`` (default), ``"sum"``, ``"mean"``,
    ``"mean_with_sample_weight"``, ``"none"``/``None``).
    """

    #: When True, ``y_true`` holds integer class ids and is not cast to float.
    integer_labels = False

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        self.name = name or _snake_case(self.__class__.__name__)
        self.reduction = standardize_reduction(reduction)
        self.dtype = None if dtype is None else jnp.dtype(dtype).name

    def call(self, y_true, y_pred):
        raise NotImplementedError(
            f"{self.__class__.__name__} must implement `call(y_true, y_pred)` returning "
            "per-sample losses."
        )

    def compute_mask(self, y_true, y_pred):
        """Optional validity mask over the per-sample losses (None = all valid)."""
        return None

    def _cast_inputs(self, y_true, y_pred):
        y_pred = jnp.asarray(y_pred)
        dtype = compute_dtype(y_pred, self.dtype)
        y_pred = y_pred.astype(dtype)
        y_true = jnp.asarray(y_true)
        if not self.integer_labels:
            y_true = y_true.astype(dtype)
        return y_true, y_pred, dtype

    def __call__(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred, dtype = self._cast_inputs(y_true, y_pred)
        losses = self.call(y_true, y_pred)
        mask = self.compute_mask(y_true, y_pred)
        return reduce_weighted_values(
            losses, sample_weight=sample_weight, mask=mask, reduction=self.reduction, dtype=dtype
        )

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{self.__class__.__name__} name={self.name!r} reduction={self.reduction!r}>"


class LossFunctionWrapper(Loss):
    """Wrap a plain ``fn(y_true, y_pred, **kwargs) -> per-sample losses`` as a ``Loss``."""

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, dtype=None, **kwargs):
        if not callable(fn):
            raise TypeError(
                f"LossFunctionWrapper expected a callable `fn(y_true, y_pred)`; received {fn!r} "
                f"of type {type(fn).__name__}. Pass a function returning per-sample losses."
            )
        if name is None:
            name = getattr(fn, "__name__", None)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true, y_pred):
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self):
        from .registry import function_name  # local import: registry imports this module

        config = super().get_config()
        if type(self) is LossFunctionWrapper:
            config["fn"] = function_name(self.fn)
        config.update(self._fn_kwargs)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from .registry import resolve_function

        config = dict(config)
        if cls is LossFunctionWrapper:
            fn = config.pop("fn")
            if isinstance(fn, str):
                fn = resolve_function(fn, custom_objects)
            return cls(fn, **config)
        config.pop("fn", None)
        return cls(**config)
