"""Normalization: feature-wise `(x - mean) / sqrt(variance)`, statistics given or learned by `adapt`."""
import math

import jax.numpy as jnp
import numpy as np

from ..layer import Layer
from ._data import batches

_EPSILON = 1e-7          # Keras backend.epsilon()


def _as_axis(axis):
    if axis is None:
        return ()
    if isinstance(axis, int):
        return (axis,)
    return tuple(int(a) for a in axis)


class Normalization(Layer):
    """Keras 3's Normalization: weights mean, variance (float, shape of the kept axes) and count (int32 scalar),
    all non-trainable; `invert=True` maps normalized values back (`mean + x * sqrt(variance)`)."""
    batch_independent = True
    random_in_training = False

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        self.axis = _as_axis(axis)
        self.input_mean = mean
        self.input_variance = variance
        self.invert = bool(invert)
        self.supports_masking = True
        self._build_input_shape = None
        if (mean is None) != (variance is None):
            raise ValueError(f"Normalization {self.name!r}: pass both `mean` and `variance` or neither; received "
                             f"mean={mean} and variance={variance}.")
        if mean is not None:
            if np.shape(mean) != np.shape(variance):
                raise ValueError(f"Normalization {self.name!r}: `mean` and `variance` must have the same shape; "
                                 f"received {np.shape(mean)} and {np.shape(variance)}.")
            if np.ndim(mean) > len(self.axis):
                raise ValueError(f"Normalization {self.name!r}: the rank of `mean` ({np.ndim(mean)}) must be at most "
                                 f"the number of axes kept ({len(self.axis)}, axis={self.axis}).")

    def build(self, input_shape):
        ndim = len(input_shape)
        if any(a < -ndim or a >= ndim for a in self.axis):
            raise ValueError(f"Normalization {self.name!r}: every `axis` must be in [-{ndim}, {ndim}) for inputs of "
                             f"rank {ndim}; received axis={self.axis}.")
        self._build_input_shape = tuple(input_shape)
        self._keep_axis = tuple(sorted(a % ndim for a in self.axis))
        for d in self._keep_axis:
            if input_shape[d] is None:
                raise ValueError(f"Normalization {self.name!r}: axis {d} is kept, so it must have a known size; "
                                 f"received input shape {tuple(input_shape)}.")
        self._reduce_axis = tuple(d for d in range(ndim) if d not in self._keep_axis)
        self._broadcast_shape = tuple(input_shape[d] if d in self._keep_axis else 1 for d in range(ndim))
        self._stat_shape = tuple(input_shape[d] for d in self._keep_axis)
        if self.input_mean is None:
            self.adapt_mean = self.add_weight(name="mean", shape=self._stat_shape, initializer="zeros",
                                              trainable=False)
            self.adapt_variance = self.add_weight(name="variance", shape=self._stat_shape, initializer="ones",
                                                  trainable=False)
            self.count = self.add_weight(name="count", shape=(), dtype="int32", initializer="zeros",
                                         trainable=False)
        else:
            self._given = [self._expand(np.asarray(v, np.float64)) for v in (self.input_mean, self.input_variance)]
        self.built = True

    def _expand(self, value):
        """A given mean/variance (scalar or the trailing kept axes) broadcast to the input's rank."""
        ndim = len(self._broadcast_shape)
        if value.ndim:
            shape = [1] * ndim
            for i in range(1, value.ndim + 1):
                shape[self._keep_axis[-i]] = value.shape[-i]
            value = value.reshape(shape)
        return np.broadcast_to(value, self._broadcast_shape)

    def _stats(self):
        if self.input_mean is not None:
            return [jnp.asarray(v, self.compute_dtype) for v in self._given]
        return [v.value.reshape(self._broadcast_shape).astype(self.compute_dtype)
                for v in (self.adapt_mean, self.adapt_variance)]

    def call(self, inputs):
        inputs = inputs.astype(self.compute_dtype)
        mean, variance = self._stats()
        std = jnp.maximum(jnp.sqrt(variance), _EPSILON)
        if self.invert:
            return mean + inputs * std
        return (inputs - mean) / std

    def adapt(self, data):
        """Learn mean and variance (biased) over every axis not in `axis`, from an array or an iterable of batches
        (combined exactly, batch by batch, with the parallel-variance formula)."""
        if self.input_mean is not None:
            raise ValueError(f"Normalization {self.name!r} was given `mean` and `variance`; it cannot adapt.")
        it = batches(data, f"Normalization {self.name!r}")
        first = next(it)
        shape = tuple(first.shape)
        if not self.built:
            self.build((None,) + shape[1:] if shape else shape)
        mean = np.zeros(self._stat_shape)
        var = np.zeros(self._stat_shape)
        total = 0
        for batch in [first, *it]:
            batch = np.asarray(batch, np.float64)
            for d in self._keep_axis:
                if batch.ndim != len(self._build_input_shape) or batch.shape[d] != self._build_input_shape[d]:
                    raise ValueError(f"Normalization {self.name!r} was built for inputs of shape "
                                     f"{self._build_input_shape}; adapt() received a batch of shape {batch.shape}.")
            n = math.prod(batch.shape[d] for d in self._reduce_axis) if self._reduce_axis else 1
            if n == 0:
                continue
            b_mean = batch.mean(axis=self._reduce_axis)
            b_var = batch.var(axis=self._reduce_axis)
            new_total = total + n
            w = n / new_total
            new_mean = mean * (1 - w) + b_mean * w
            var = (var + (mean - new_mean) ** 2) * (1 - w) + (b_var + (b_mean - new_mean) ** 2) * w
            mean, total = new_mean, new_total
        self.adapt_mean.assign(mean.astype(np.float32))
        self.adapt_variance.assign(var.astype(np.float32))
        self.count.assign(np.asarray(total, np.int32))

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, *args, **kwargs):
        from ...symbolic import SymbolicTensor
        return SymbolicTensor(tuple(args[0].shape), self.compute_dtype)

    def get_config(self):
        def listed(v):
            return None if v is None else np.asarray(v).tolist()
        return {**super().get_config(), "axis": list(self.axis), "invert": self.invert,
                "mean": listed(self.input_mean), "variance": listed(self.input_variance)}
