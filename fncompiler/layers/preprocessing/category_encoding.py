"""CategoryEncoding: integer ids -> one_hot / multi_hot / count vectors of `num_tokens` entries."""
import jax.numpy as jnp

from ...symbolic import SymbolicTensor
from ..layer import Layer
from ._data import check_output_mode, encode, encoded_shape


class CategoryEncoding(Layer):
    """Keras 3's CategoryEncoding. Rank-1 inputs hold one id per sample; rank-2 inputs (batch, n) give one vector
    per sample (multi_hot / count over the n ids; one_hot needs n == 1 or adds an axis). `count_weights` (call
    argument, count mode) weights each id. Ids outside [0, num_tokens) contribute nothing (Keras: an error)."""
    batch_independent = True
    random_in_training = False

    def __init__(self, num_tokens=None, output_mode="multi_hot", sparse=False, **kwargs):
        super().__init__(**kwargs)
        self.output_mode = check_output_mode("CategoryEncoding", output_mode, ("one_hot", "multi_hot", "count"))
        if num_tokens is None:
            raise ValueError("CategoryEncoding: `num_tokens` must be set (use IntegerLookup when the number of "
                             "tokens is not known beforehand).")
        if num_tokens < 1:
            raise ValueError(f"CategoryEncoding: `num_tokens` must be >= 1; received num_tokens={num_tokens}.")
        if sparse:
            raise ValueError("CategoryEncoding: sparse=True is not supported by fncompiler (outputs are dense).")
        self.num_tokens = int(num_tokens)
        self.sparse = False

    def call(self, inputs, count_weights=None):
        if count_weights is not None and self.output_mode != "count":
            raise ValueError(f"CategoryEncoding {self.name!r}: `count_weights` is only used with output_mode='count'.")
        return encode(jnp, inputs.astype(jnp.int32), self.output_mode, self.num_tokens, self.compute_dtype,
                      count_weights)

    def compute_output_shape(self, input_shape):
        return encoded_shape(input_shape, self.output_mode, self.num_tokens)

    def compute_output_spec(self, inputs, *args, **kwargs):
        return SymbolicTensor(self.compute_output_shape(tuple(inputs.shape)), self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "num_tokens": self.num_tokens, "output_mode": self.output_mode,
                "sparse": self.sparse}
