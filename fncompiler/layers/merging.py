"""Merging layers (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot) and their functions."""
import functools

import jax.numpy as jnp

from .layer import Layer


def _broadcast_shape(a, b, who):
    a, b = tuple(a), tuple(b)
    if len(a) < len(b):
        a, b = b, a
    b = (1,) * (len(a) - len(b)) + b
    out = []
    for x, y in zip(a, b):
        if x is None or y is None:
            out.append(None if (x in (None, 1) and y in (None, 1)) or x is None and y is None else (x if y in (None, 1) else y))
        elif x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            raise ValueError(f"{who}: inputs must have the same shape (or be broadcastable); received shapes "
                             f"{tuple(a)} and {tuple(b)}.")
    return tuple(out)


class _Merge(Layer):
    batch_independent = True
    random_in_training = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def _who(self):
        return f"Layer {self.name!r} ({type(self).__name__})"

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or not input_shape or not isinstance(input_shape[0], (list, tuple)):
            raise ValueError(f"{self._who()} must be called on a list of at least 2 inputs; received one input of "
                             f"shape {input_shape}.")
        if len(input_shape) < 2:
            raise ValueError(f"{self._who()} must be called on a list of at least 2 inputs; received "
                             f"{len(input_shape)}.")
        self.compute_output_shape(input_shape)

    def compute_output_shape(self, input_shape):
        out = tuple(input_shape[0])
        for s in input_shape[1:]:
            out = _broadcast_shape(out, s, self._who())
        return out

    def _merge(self, inputs):
        raise NotImplementedError

    def call(self, inputs):
        return self._merge(list(inputs))

    def compute_mask(self, inputs, previous_mask):
        if previous_mask is None or all(m is None for m in previous_mask):
            return None
        masks = [m for m in previous_mask if m is not None]
        return functools.reduce(jnp.logical_and, masks)


class Add(_Merge):
    def _merge(self, inputs):
        return functools.reduce(jnp.add, inputs)


class Subtract(_Merge):
    def build(self, input_shape):
        super().build(input_shape)
        if len(input_shape) != 2:
            raise ValueError(f"{self._who()} must be called on exactly 2 inputs; received {len(input_shape)}.")

    def _merge(self, inputs):
        return inputs[0] - inputs[1]


class Multiply(_Merge):
    def _merge(self, inputs):
        return functools.reduce(jnp.multiply, inputs)


class Average(_Merge):
    def _merge(self, inputs):
        return functools.reduce(jnp.add, inputs) / len(inputs)


class Maximum(_Merge):
    def _merge(self, inputs):
        return functools.reduce(jnp.maximum, inputs)


class Minimum(_Merge):
    def _merge(self, inputs):
        return functools.reduce(jnp.minimum, inputs)


class Concatenate(_Merge):
    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes):
            raise ValueError(f"{self._who()} requires inputs of the same rank; received shapes {shapes}.")
        axis = self.axis % rank
        out = list(shapes[0])
        for s in shapes[1:]:
            for i in range(rank):
                if i == axis:
                    out[i] = None if out[i] is None or s[i] is None else out[i] + s[i]
                elif out[i] is not None and s[i] is not None and out[i] != s[i]:
                    raise ValueError(f"{self._who()} requires inputs with matching shapes except in the "
                                     f"concatenation axis {self.axis}; received shapes {shapes}.")
                elif out[i] is None:
                    out[i] = s[i]
        return tuple(out)

    def _merge(self, inputs):
        dtype = jnp.result_type(*inputs)
        return jnp.concatenate([x.astype(dtype) for x in inputs], axis=self.axis)

    def compute_mask(self, inputs, previous_mask):
        if previous_mask is None or all(m is None for m in previous_mask):
            return None
        masks = [jnp.ones(x.shape[: m.ndim if m is not None else x.ndim - 1], bool) if m is None else m
                 for x, m in zip(inputs, previous_mask)]
        if self.axis in (-1, inputs[0].ndim - 1):
            return functools.reduce(jnp.logical_and, masks)
        return jnp.concatenate(masks, axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class Dot(_Merge):
    """Dot product along `axes` of two (batch of) tensors; `normalize` for cosine similarity."""

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        self.axes = axes
        self.normalize = normalize

    def _axes(self, ranks):
        axes = self.axes if isinstance(self.axes, (list, tuple)) else [self.axes, self.axes]
        return [a % r for a, r in zip(axes, ranks)]

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"{self._who()} must be called on exactly 2 inputs; received {len(input_shape)}.")
        a, b = (tuple(s) for s in input_shape)
        ax_a, ax_b = self._axes([len(a), len(b)])
        if a[ax_a] is not None and b[ax_b] is not None and a[ax_a] != b[ax_b]:
            raise ValueError(f"{self._who()}: dimension {ax_a} of input 0 ({a[ax_a]}) must equal dimension {ax_b} "
                             f"of input 1 ({b[ax_b]}); received shapes {a} and {b}.")
        out = [d for i, d in enumerate(a) if i != ax_a] + [d for i, d in enumerate(b) if i not in (0, ax_b)]
        return tuple(out) if len(out) > 1 else (a[0], 1)

    def _merge(self, inputs):
        x, y = inputs
        ax_x, ax_y = self._axes([x.ndim, y.ndim])
        if self.normalize:
            x = x / jnp.maximum(jnp.linalg.norm(x, axis=ax_x, keepdims=True), 1e-12)
            y = y / jnp.maximum(jnp.linalg.norm(y, axis=ax_y, keepdims=True), 1e-12)
        # batch_dot: contract x's axis ax_x with y's axis ax_y, per sample
        xt = jnp.moveaxis(x, ax_x, -1)
        yt = jnp.moveaxis(y, ax_y, 1)
        rest_x, rest_y = xt.shape[1:-1], yt.shape[2:]
        out = jnp.matmul(xt.reshape(xt.shape[0], -1, xt.shape[-1]), yt.reshape(yt.shape[0], yt.shape[1], -1))
        out = out.reshape((x.shape[0],) + tuple(rest_x) + tuple(rest_y))
        return out[:, None] if out.ndim == 1 else out

    def get_config(self):
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}


def add(inputs, **kwargs):
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs, axes=-1, **kwargs):
    return Dot(axes=axes, **kwargs)(inputs)
