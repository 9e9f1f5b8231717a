"""AdditiveAttention: Bahdanau-style attention, Keras 3's math and weight (`scale`, shape (dim,))."""
import jax.numpy as jnp

from .attention import Attention


class AdditiveAttention(Attention):
    """`[query, value]` or `[query, value, key]` (batch, T, dim): scores
    `sum(scale * tanh(query[:, :, None] + key[:, None]), axis=-1)` (batch, Tq, Tv), then softmax over Tv and
    the weighted sum of `value`, as `Attention` (masks, `use_causal_mask`, `return_attention_scores`, dropout
    of the weights in training). `use_scale=True` (the default) learns `scale` (dim,), initialized
    glorot_uniform; otherwise the scale is 1."""

    def __init__(self, use_scale=True, dropout=0.0, **kwargs):
        kwargs.pop("score_mode", None)
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or not input_shape or \
                not all(isinstance(s, (list, tuple)) for s in input_shape):
            raise ValueError(f"Layer {self.name!r} (AdditiveAttention) must be called on a list of inputs, namely "
                             f"[query, value] or [query, value, key]. Received one input of shape {input_shape}.")
        self._validate(input_shape)
        dim = input_shape[0][-1]
        if self.use_scale:
            if dim is None:
                raise ValueError(f"Layer {self.name!r} (AdditiveAttention) needs the query's last dimension to be "
                                 f"known to build `scale`; received query shape {tuple(input_shape[0])}.")
            self.scale = self.add_weight(shape=(dim,), name="scale", initializer="glorot_uniform")

    def _scores(self, q, k):
        s = jnp.tanh(jnp.expand_dims(q, -2) + jnp.expand_dims(k, -3))
        if self.scale is not None:
            s = self.scale.value.astype(s.dtype) * s
        return jnp.sum(s, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.pop("score_mode", None)
        return config
