"""Attention layers: MultiHeadAttention and (Luong-style dot-product) Attention, with Keras 3's math and weights.

MultiHeadAttention's weights are those of Keras 3's four EinsumDense projections, in Keras's order:
query kernel (dim, num_heads, key_dim) and bias (num_heads, key_dim), key kernel and bias, value kernel
(dim, num_heads, value_dim) and bias, attention_output kernel (num_heads, value_dim, dim) and bias (dim,).
"""
import math
import string

import jax
import jax.numpy as jnp
import numpy as np

from .. import constraints, initializers, naming, regularizers
from .. import scope as scope_lib
from ..utils import random as random_utils
from .activation_layers import masked_softmax
from .layer import Layer


def _ser(module, obj):
    return None if obj is None else module.serialize(obj)


def _rng(seed):
    scope = scope_lib.current()
    key = scope.next_rng() if scope is not None else None
    if key is None:
        return jax.random.key(seed % (2 ** 31))
    return jax.random.fold_in(key, seed % (2 ** 31))


def _dropout(x, rate, seed):
    if rate >= 1:
        return jnp.zeros_like(x)
    keep = jax.random.bernoulli(_rng(seed), 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros((), x.dtype))


def _clone_initializer(init):
    """A fresh initializer of the same kind, so the four projections do not share a seeded draw."""
    if isinstance(init, initializers.Initializer):
        return type(init).from_config(init.get_config())
    return init


# -- einsum equations, as Keras builds them -----------------------------------------------------------
def _letter(i):
    return string.ascii_lowercase[i]


def _build_proj_equation(free_dims, bound_dims, output_dims):
    input_str, kernel_str, output_str, bias_axes = "", "", "", ""
    for i in range(free_dims):
        input_str += _letter(i)
        output_str += _letter(i)
    for i in range(bound_dims):
        c = _letter(free_dims + i)
        input_str += c
        kernel_str += c
    for i in range(output_dims):
        c = _letter(free_dims + bound_dims + i)
        kernel_str += c
        output_str += c
        bias_axes += c
    return f"{input_str},{kernel_str}->{output_str}", bias_axes, len(output_str)


def _build_attention_equation(rank, attn_axes):
    target = "".join(_letter(i) for i in range(rank))
    batch_dims = tuple(np.delete(range(rank), attn_axes + (rank - 1,)))
    offset = rank
    source = ""
    for i in range(rank):
        if i in batch_dims or i == rank - 1:
            source += target[i]
        else:
            source += _letter(offset)
            offset += 1
    product = "".join([target[i] for i in batch_dims] + [target[i] for i in attn_axes]
                      + [source[i] for i in attn_axes])
    return f"{source},{target}->{product}", f"{product},{source}->{target}", len(product)


class _Projection(Layer):
    """Keras's EinsumDense as used inside MultiHeadAttention: `einsum(equation, x, kernel) + bias`."""
    batch_independent = True
    random_in_training = False

    def __init__(self, equation, kernel_shape, bias_shape, kernel_initializer, bias_initializer,
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.equation = equation
        self.kernel_shape = tuple(kernel_shape)
        self.bias_shape = None if bias_shape is None else tuple(bias_shape)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = kernel_regularizer
        self.bias_regularizer = bias_regularizer
        self.kernel_constraint = kernel_constraint
        self.bias_constraint = bias_constraint

    def build(self, input_shape=None):
        self.kernel = self.add_weight(shape=self.kernel_shape, name="kernel", initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.bias = None if self.bias_shape is None else self.add_weight(
            shape=self.bias_shape, name="bias", initializer=self.bias_initializer,
            regularizer=self.bias_regularizer, constraint=self.bias_constraint)
        self.built = True

    def call(self, inputs):
        y = jnp.einsum(self.equation, inputs, self.kernel.value.astype(inputs.dtype))
        if self.bias is not None:
            y = y + self.bias.value.astype(inputs.dtype)
        return y


class MultiHeadAttention(Layer):
    """Multi-head scaled dot-product attention (Vaswani et al.): `query` attends over `value` (keys default
    to `value`). Masks: `attention_mask` (batch, T, S), `query_mask` / `value_mask` / `key_mask`, and
    `use_causal_mask`; all are combined with a logical AND."""
    batch_independent = True
    random_in_training = property(lambda self: bool(self.dropout))  # attention dropout draws

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True, output_shape=None,
                 attention_axes=None, flash_attention=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, seed=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        for arg, v in (("num_heads", num_heads), ("key_dim", key_dim)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"MultiHeadAttention: `{arg}` must be a positive int; received {arg}={v!r}.")
        self.supports_masking = True
        self.num_heads = int(num_heads)
        self.key_dim = int(key_dim)
        self.value_dim = int(value_dim) if value_dim else self.key_dim
        self.dropout = float(dropout)
        self.use_bias = use_bias
        if output_shape:
            output_shape = (int(output_shape),) if isinstance(output_shape, (int, np.integer)) \
                else tuple(int(d) for d in output_shape)
        self._output_shape = output_shape or None
        if isinstance(attention_axes, int):
            attention_axes = (attention_axes,)
        elif attention_axes is not None and not isinstance(attention_axes, (list, tuple)):
            raise ValueError("`attention_axes` must be an int, list, or tuple. "
                             f"Received: attention_axes={attention_axes}")
        self.attention_axes = None if attention_axes is None else tuple(attention_axes)
        self.flash_attention = flash_attention
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.seed = seed if seed is not None else random_utils.next_seed()
        self._inverse_sqrt_key_dim = 1.0 / math.sqrt(float(self.key_dim))

    @property
    def output_shape(self):
        return self._output_shape

    def _projection(self, name, free_dims, bound_shape, out_shape):
        equation, bias_axes, _ = _build_proj_equation(free_dims, len(bound_shape), len(out_shape))
        return _Projection(equation, tuple(bound_shape) + tuple(out_shape), tuple(out_shape) if self.use_bias else None,
                           kernel_initializer=_clone_initializer(self.kernel_initializer),
                           bias_initializer=_clone_initializer(self.bias_initializer),
                           kernel_regularizer=self.kernel_regularizer, bias_regularizer=self.bias_regularizer,
                           kernel_constraint=self.kernel_constraint, bias_constraint=self.bias_constraint,
                           name=name, dtype=self.dtype_policy, trainable=self.trainable)

    def build(self, query_shape, value_shape, key_shape=None):
        who = f"Layer {self.name!r} (MultiHeadAttention)"
        key_shape = value_shape if key_shape is None else key_shape
        query_shape, value_shape, key_shape = tuple(query_shape), tuple(value_shape), tuple(key_shape)
        if value_shape[1:-1] != key_shape[1:-1]:
            raise ValueError(f"{who}: all dimensions of `value` and `key`, except the last one, must be equal. "
                             f"Received: value_shape={value_shape} and key_shape={key_shape}")
        if len(query_shape) != len(value_shape):
            raise ValueError(f"{who}: `query` and `value` must have the same rank. Received: "
                             f"query_shape={query_shape} and value_shape={value_shape}")
        for nm, s in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
            if len(s) < 3:
                raise ValueError(f"{who}: `{nm}` must have rank >= 3 (batch, ..., features); received shape {s}.")
            if s[-1] is None:
                raise ValueError(f"{who}: the last dimension of `{nm}` must be known; received shape {s}.")
        self.query_dense = self._projection("query", len(query_shape) - 1, (query_shape[-1],),
                                            (self.num_heads, self.key_dim))
        self.key_dense = self._projection("key", len(key_shape) - 1, (key_shape[-1],),
                                          (self.num_heads, self.key_dim))
        self.value_dense = self._projection("value", len(value_shape) - 1, (value_shape[-1],),
                                            (self.num_heads, self.value_dim))
        rank = len(query_shape) + 1
        if self.attention_axes is None:
            attn_axes = tuple(range(1, rank - 2))
        else:
            attn_axes = tuple(a if a >= 0 else (rank - 1) + a for a in self.attention_axes)
            if any(not 1 <= a < rank - 2 for a in attn_axes):
                raise ValueError(f"{who}: attention_axes {self.attention_axes} are out of range for inputs of rank "
                                 f"{len(query_shape)}.")
        self._attn_axes = attn_axes
        # Keras's MultiHeadAttention creates a Softmax and a Dropout layer here (whatever the rate); their
        # default names are taken, so the next Dropout(...) is "dropout_1" in both.
        naming.uniquify("softmax")
        naming.uniquify("dropout")
        self._dot_product_equation, self._combine_equation, scores_rank = \
            _build_attention_equation(rank, attn_axes)
        self._norm_axes = tuple(range(scores_rank - len(attn_axes), scores_rank))
        out_shape = self._output_shape or (query_shape[-1],)
        self.output_dense = self._projection("attention_output", len(query_shape) - 1,
                                             (self.num_heads, self.value_dim), out_shape)
        for sub in (self.query_dense, self.key_dense, self.value_dense, self.output_dense):
            sub.build()
            for w in sub.weights:
                w.path = f"{self.name}/{sub.name}/{w.name}"

    # -- masks -----------------------------------------------------------------------------------
    def _compute_attention_mask(self, query, value, query_mask=None, value_mask=None, key_mask=None,
                                attention_mask=None, use_causal_mask=False):
        auto = None
        if query_mask is not None:
            auto = jnp.expand_dims(jnp.asarray(query_mask).astype(bool), -1)          # (B, T, 1)
        for m in (value_mask, key_mask):
            if m is not None:
                m = jnp.expand_dims(jnp.asarray(m).astype(bool), -2)                  # (B, 1, S)
                auto = m if auto is None else auto & m
        if use_causal_mask:
            t, s = query.shape[1], value.shape[1]
            causal = jnp.tril(jnp.ones((t, s), bool))[None]                           # (1, T, S)
            auto = causal if auto is None else auto & causal
        if attention_mask is not None:
            attention_mask = jnp.asarray(attention_mask).astype(bool)
        if auto is not None:
            attention_mask = auto if attention_mask is None else attention_mask & auto
        return attention_mask

    def _masked_softmax(self, scores, attention_mask):
        if attention_mask is not None:
            axis = -len(self._attn_axes) * 2 - 1
            for _ in range(scores.ndim - attention_mask.ndim):
                attention_mask = jnp.expand_dims(attention_mask, axis)
        return masked_softmax(scores, attention_mask, self._norm_axes)

    def call(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None, attention_mask=None,
             return_attention_scores=False, training=None, use_causal_mask=False, mask=None):
        # `mask` is the Keras mask the graph runtime propagates for `query`; in self-attention it is also
        # the value's (and key's) mask.
        if mask is not None and not isinstance(mask, (list, tuple)):
            if query_mask is None:
                query_mask = mask
            if value_mask is None and value is query:
                value_mask = mask
        if key is None:
            key = value
        attention_mask = self._compute_attention_mask(query, value, query_mask, value_mask,
                                                      key_mask if key is not value else None,
                                                      attention_mask, use_causal_mask)
        q = self.query_dense(query)
        k = self.key_dense(key)
        v = self.value_dense(value)
        q = q * jnp.asarray(self._inverse_sqrt_key_dim, q.dtype)
        scores = jnp.einsum(self._dot_product_equation, k, q)
        scores = self._masked_softmax(scores, attention_mask)
        weights = _dropout(scores, self.dropout, self.seed) if training and self.dropout > 0 else scores
        out = jnp.einsum(self._combine_equation, weights, v)
        out = self.output_dense(out)
        if return_attention_scores:
            return [out, scores]
        return out

    def compute_output_spec(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
                            attention_mask=None, return_attention_scores=False, training=None, use_causal_mask=False,
                            mask=None):
        from ..symbolic import SymbolicTensor
        who = f"Layer {self.name!r} (MultiHeadAttention)"
        qs, vs = tuple(query.shape), tuple(value.shape)
        ks = vs if key is None else tuple(key.shape)
        if vs[1:-1] != ks[1:-1]:
            raise ValueError(f"{who}: all dimensions of `value` and `key`, except the last one, must be equal. "
                             f"Received: value_shape={vs} and key_shape={ks}")
        if attention_mask is not None:
            am = tuple(attention_mask.shape)
            want = tuple(d for i, d in enumerate(qs[:-1]) if i not in self._attn_axes) + \
                tuple(qs[a] for a in self._attn_axes) + tuple(vs[a] for a in self._attn_axes)
            if len(am) > len(want) or any(a is not None and w is not None and a != w and a != 1
                                          for a, w in zip(am[::-1], want[::-1])):
                raise ValueError(f"{who}: attention_mask of shape {am} cannot be broadcast to the attention "
                                 f"shape (batch, query dims, key dims) = {want}.")
        out_shape = qs[:-1] + (self._output_shape or (qs[-1],))
        out = SymbolicTensor(out_shape, self.compute_dtype)
        if return_attention_scores:
            batch_dims = [d for i, d in enumerate(qs[:-1]) if i not in self._attn_axes]
            scores_shape = tuple(batch_dims) + (self.num_heads,) + tuple(qs[a] for a in self._attn_axes) + \
                tuple(vs[a] for a in self._attn_axes)
            return [out, SymbolicTensor(scores_shape, self.compute_dtype)]
        return out

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "dropout": self.dropout, "use_bias": self.use_bias,
                "output_shape": None if self._output_shape is None else list(self._output_shape),
                "attention_axes": None if self.attention_axes is None else list(self.attention_axes),
                "flash_attention": self.flash_attention,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": _ser(regularizers, self.kernel_regularizer),
                "bias_regularizer": _ser(regularizers, self.bias_regularizer),
                "kernel_constraint": _ser(constraints, self.kernel_constraint),
                "bias_constraint": _ser(constraints, self.bias_constraint), "seed": self.seed}


class Attention(Layer):
    """Dot-product (Luong) attention over `[query, value]` or `[query, value, key]`:
    `softmax(scores) @ value`, scores `query @ key^T` ('dot', times a learned `scale` if use_scale) or
    `concat_score_weight * sum(tanh(scale * (q + k)))` ('concat'). `mask=[query_mask, value_mask]`."""
    batch_independent = True
    random_in_training = property(lambda self: bool(self.dropout))  # attention dropout draws

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError("Invalid value for argument score_mode. Expected one of {'dot', 'concat'}. "
                             f"Received: score_mode={score_mode}")
        self.use_scale = use_scale
        self.score_mode = score_mode
        self.dropout = float(dropout)
        self.seed = seed if seed is not None else random_utils.next_seed()
        self.supports_masking = True
        self.scale = None
        self.concat_score_weight = None

    def _validate(self, inputs, mask=None):
        name = f"Layer {self.name!r} (Attention)"
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"{name} must be called on a list of inputs, namely [query, value] or "
                             f"[query, value, key]. Received: inputs={inputs}.")
        if not 2 <= len(inputs) <= 3:
            raise ValueError(f"{name} accepts inputs list of length 2 or 3, namely [query, value] or "
                             f"[query, value, key]. Received length: {len(inputs)}.")
        if mask is not None:
            if not isinstance(mask, (list, tuple)):
                raise ValueError(f"{name} mask must be a list, namely [query_mask, value_mask]. Received: mask={mask}.")
            if not 2 <= len(mask) <= 3:
                raise ValueError(f"{name} accepts mask list of length 2 or 3. Received: mask={mask}.")

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or not input_shape or \
                not all(isinstance(s, (list, tuple)) for s in input_shape):
            raise ValueError(f"Layer {self.name!r} (Attention) must be called on a list of inputs, namely "
                             f"[query, value] or [query, value, key]. Received one input of shape {input_shape}.")
        self._validate(input_shape)
        if self.use_scale:
            self.scale = self.add_weight(shape=(), name="scale", initializer="ones")
        if self.score_mode == "concat":
            self.concat_score_weight = self.add_weight(shape=(), name="concat_score_weight", initializer="ones")

    def _scores(self, q, k):
        if self.score_mode == "dot":
            scores = jnp.matmul(q, jnp.swapaxes(k, -1, -2))
            if self.scale is not None:
                scores = scores * self.scale.value.astype(scores.dtype)
        else:
            s = jnp.expand_dims(q, -2) + jnp.expand_dims(k, -3)
            if self.scale is not None:
                s = self.scale.value.astype(s.dtype) * s
            scores = self.concat_score_weight.value.astype(s.dtype) * jnp.sum(jnp.tanh(s), axis=-1)
        return scores

    def call(self, inputs, mask=None, training=None, return_attention_scores=False, use_causal_mask=False):
        self._validate(inputs, mask)
        q, v = inputs[0], inputs[1]
        k = inputs[2] if len(inputs) > 2 else v
        q_mask = mask[0] if mask is not None else None
        v_mask = mask[1] if mask is not None else None
        scores = self._scores(q, k)
        score_mask = None
        if v_mask is not None:
            score_mask = jnp.expand_dims(jnp.asarray(v_mask).astype(bool), -2)        # (B, 1, Tv)
        if use_causal_mask:
            causal = jnp.tril(jnp.ones(scores.shape[-2:], bool))[None]               # (1, Tq, Tv)
            score_mask = causal if score_mask is None else score_mask & causal
        if score_mask is not None:
            big = 65504.0 if scores.dtype == jnp.float16 else 1.0e9
            scores = scores - big * jnp.logical_not(score_mask).astype(scores.dtype)
        weights = jax.nn.softmax(scores, axis=-1)
        applied = _dropout(weights, self.dropout, self.seed) if training and self.dropout > 0 else weights
        out = jnp.matmul(applied, v)
        if q_mask is not None:
            out = out * jnp.expand_dims(jnp.asarray(q_mask), -1).astype(out.dtype)
        if return_attention_scores:
            return [out, weights]
        return out

    def compute_mask(self, inputs, previous_mask=None):
        if previous_mask is None or previous_mask[0] is None:
            return None
        return previous_mask[0]

    def compute_output_spec(self, inputs, mask=None, training=None, return_attention_scores=False,
                            use_causal_mask=False):
        from ..symbolic import SymbolicTensor
        self._validate(inputs, mask)
        qs, vs = tuple(inputs[0].shape), tuple(inputs[1].shape)
        ks = tuple(inputs[2].shape) if len(inputs) > 2 else vs
        who = f"Layer {self.name!r} (Attention)"
        if len(qs) != 3 or len(vs) != 3 or len(ks) != 3:
            raise ValueError(f"{who} expects 3D inputs (batch, steps, dim); received shapes {qs}, {vs}, {ks}.")
        if qs[-1] is not None and ks[-1] is not None and qs[-1] != ks[-1]:
            raise ValueError(f"{who}: query and key must have the same last dimension; received {qs} and {ks}.")
        if vs[1] is not None and ks[1] is not None and vs[1] != ks[1]:
            raise ValueError(f"{who}: value and key must have the same number of steps; received {vs} and {ks}.")
        out = SymbolicTensor(qs[:-1] + (vs[-1],), self.compute_dtype)
        if return_attention_scores:
            return [out, SymbolicTensor((qs[0], qs[1], vs[1]), self.compute_dtype)]
        return out

    def get_config(self):
        return {**super().get_config(), "use_scale": self.use_scale, "score_mode": self.score_mode,
                "dropout": self.dropout, "seed": self.seed}
