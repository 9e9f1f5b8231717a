"""Discretization: buckets numbers by boundaries (given, or quantiles learned by `adapt`)."""
import jax.numpy as jnp
import numpy as np

from ...symbolic import SymbolicTensor
from ..layer import Layer
from ._data import batches, check_output_mode, encode, encoded_shape


class Discretization(Layer):
    """Keras 3's Discretization: bucket i holds boundaries[i-1] <= x < boundaries[i] (np.digitize); int32 ids or
    one_hot / multi_hot / count vectors (the layer's float dtype) of depth len(bin_boundaries) + 1."""
    batch_independent = True
    random_in_training = False

    def __init__(self, bin_boundaries=None, num_bins=None, epsilon=0.01, output_mode="int", sparse=False, dtype=None,
                 name=None, **kwargs):
        super().__init__(dtype=dtype, name=name, **kwargs)
        if sparse:
            raise ValueError("Discretization: sparse=True is not supported by fncompiler (outputs are dense arrays).")
        self.output_mode = check_output_mode("Discretization", output_mode)
        if num_bins is not None and num_bins < 0:
            raise ValueError(f"Discretization: `num_bins` must be >= 0; received num_bins={num_bins}.")
        if num_bins is not None and bin_boundaries is not None:
            raise ValueError(f"Discretization: pass `num_bins` or `bin_boundaries`, not both; received "
                             f"num_bins={num_bins} and bin_boundaries={bin_boundaries}.")
        if num_bins is None and bin_boundaries is None:
            raise ValueError("Discretization: pass either `num_bins` (then call adapt) or `bin_boundaries`.")
        self.bin_boundaries = None if bin_boundaries is None else [float(b) for b in bin_boundaries]
        self.num_bins = num_bins
        self.epsilon = epsilon
        self.sparse = False

    def adapt(self, data, steps=None):
        """Set `num_bins - 1` boundaries at the quantiles i / num_bins of all values seen (exact quantiles)."""
        if self.num_bins is None:
            raise ValueError("Discretization: cannot adapt a layer created with `bin_boundaries`; use `num_bins`.")
        values = [np.asarray(b, np.float64).ravel() for i, b in enumerate(batches(data, "Discretization"))
                  if steps is None or i < steps]
        values = np.concatenate(values)
        qs = np.arange(1, self.num_bins) / self.num_bins
        self.bin_boundaries = np.quantile(values, qs, method="inverted_cdf").astype(np.float32).tolist() \
            if values.size else []

    def call(self, inputs):
        if self.bin_boundaries is None:
            raise ValueError(f"Discretization {self.name!r}: pass `bin_boundaries` or call adapt() before using it.")
        ids = jnp.digitize(inputs, jnp.asarray(self.bin_boundaries, inputs.dtype if jnp.issubdtype(
            inputs.dtype, jnp.floating) else jnp.float32)).astype(jnp.int32)
        return encode(jnp, ids, self.output_mode, len(self.bin_boundaries) + 1, self._output_dtype())

    def _output_dtype(self):
        return "int32" if self.output_mode == "int" else self.compute_dtype

    def compute_output_shape(self, input_shape):
        depth = None if self.bin_boundaries is None else len(self.bin_boundaries) + 1
        if self.output_mode != "int" and depth is None:
            depth = self.num_bins
        return encoded_shape(input_shape, self.output_mode, depth)

    def compute_output_spec(self, inputs, *args, **kwargs):
        return SymbolicTensor(self.compute_output_shape(tuple(inputs.shape)), self._output_dtype())

    def get_config(self):
        return {**super().get_config(), "bin_boundaries": self.bin_boundaries, "num_bins": self.num_bins,
                "epsilon": self.epsilon, "output_mode": self.output_mode, "sparse": self.sparse}
