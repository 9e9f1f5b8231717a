"""EinsumDense: `einsum(equation, inputs, kernel) + bias`, Keras 3's shape rules and weight layout.

The equation is `ab,bc->ac`-style, optionally with `...` at the left of the input and output (`...b,bc->...c`)
or at the right (`ab...,bc->ac...`). `output_shape` gives the output's sizes without the batch axis (None
for a size taken from the input); `bias_axes` names the output letters that get a bias. The kernel's shape
follows the letters of the weight spec; the bias's shape runs from the first bias letter of the output spec to
its end, with 1 for the letters that have no bias (so it broadcasts), as in Keras.
"""
import math
import re

import jax.numpy as jnp
import numpy as np

from .. import activations, constraints, initializers, regularizers
from .input_spec import InputSpec
from .layer import Layer


def _ser(module, obj):
    return None if obj is None else module.serialize(obj)


def analyze_equation(equation, bias_axes, input_shape, output_shape, who="EinsumDense"):
    """(kernel shape, bias shape or None, full output shape, kernel input axes, kernel output axes)."""
    text = equation.replace("...", "0")
    for pattern, left in (("([a-zA-Z]+),([a-zA-Z]+)->([a-zA-Z]+)$", False),
                          ("0([a-zA-Z]+),([a-zA-Z]+)->0([a-zA-Z]+)$", True),
                          ("([a-zA-Z]{2,})0,([a-zA-Z]+)->([a-zA-Z]+)0$", False)):
        match = re.match(pattern, text)
        if match:
            break
    else:
        raise ValueError(f"{who}: invalid einsum equation {equation!r}. Equations must be in the form "
                         "[X],[Y]->[Z], ...[X],[Y]->...[Z], or [X]...,[Y]->[Z]...")
    in_spec, w_spec, out_spec = match.groups()
    input_shape = tuple(input_shape)
    elided = len(input_shape) - len(in_spec)
    if elided < 0:
        raise ValueError(f"{who}: the equation {equation!r} names {len(in_spec)} input axes but the input has shape "
                         f"{input_shape}.")
    out_shape = [input_shape[0]] + list(output_shape)
    if elided > 0 and left:   # (Keras inserts these in reverse order, a wrong static shape past 2 axes)
        out_shape[1:1] = input_shape[1:elided]
    elif elided > 0:
        out_shape.extend(input_shape[len(input_shape) - elided:])
    if left:
        in_map = {d: i + elided - len(input_shape) for i, d in enumerate(in_spec)}
        out_map = {d: i + elided for i, d in enumerate(out_spec)}
    else:
        in_map = {d: i for i, d in enumerate(in_spec)}
        out_map = {d: i for i, d in enumerate(out_spec)}
    for d in in_spec:
        if d in out_map:
            o, i = out_shape[out_map[d]], input_shape[in_map[d]]
            if o is not None and i is not None and o != i:
                raise ValueError(f"{who}: input shape and output shape do not match at shared dimension {d!r}: the "
                                 f"input has {i} and output_shape gives {o}.")
            if o is None:
                out_shape[out_map[d]] = i
    for d in out_spec:
        if d not in in_spec and d not in w_spec:
            raise ValueError(f"{who}: dimension {d!r} of the output spec {out_spec!r} is in neither the input spec "
                             f"{in_spec!r} nor the weight spec {w_spec!r}.")
    kernel_shape, in_axes, out_axes = [], [], []
    for i, d in enumerate(w_spec):
        if d in out_map:
            kernel_shape.append(out_shape[out_map[d]])
            out_axes.append(i)
        elif d in in_map:
            kernel_shape.append(input_shape[in_map[d]])
            in_axes.append(i)
        else:
            raise ValueError(f"{who}: weight dimension {d!r} is in neither the input spec {in_spec!r} nor the output "
                             f"spec {out_spec!r}; every weight dimension must be fully specified.")
    bias_shape = None
    if bias_axes:
        for c in bias_axes:
            if c not in out_spec:
                raise ValueError(f"{who}: bias dimension {c!r} was requested, but is not part of the output spec "
                                 f"{out_spec!r}.")
        offset = elided if left else 0
        size = {c: out_shape[i + offset] for i, c in enumerate(out_spec)}
        first = min(out_spec.find(c) for c in bias_axes)
        bias_shape = [size[c] if c in bias_axes else 1 for c in out_spec[first:]]
        if not left:
            bias_shape.extend([1] * elided)
    return kernel_shape, bias_shape, out_shape, in_axes, out_axes


class EinsumDense(Layer):
    """A dense layer of any rank, written as an einsum (see the module docstring for the shape rules)."""
    random_in_training = False
    
    @property
    def batch_independent(self):
        # per sample when the input's first axis (or a leading '...') is the output's first axis
        lhs, out = self.equation.split(",")[0].strip(), self.equation.split("->")[-1].strip()
        return (lhs.startswith("...") and out.startswith("...")) or (lhs[:1].isalpha() and out[:1] == lhs[:1])

    def __init__(self, equation, output_shape, activation=None, bias_axes=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, lora_rank=None, lora_alpha=None, **kwargs):
        kwargs.pop("quantization_config", None)
        super().__init__(**kwargs)
        if lora_rank:
            raise ValueError("EinsumDense: lora_rank is not supported by fncompiler.")
        if not isinstance(equation, str):
            raise TypeError(f"EinsumDense: `equation` must be a string such as 'ab,bc->ac'; received {equation!r}.")
        self.equation = equation
        if isinstance(output_shape, (int, np.integer)) or output_shape is None:
            output_shape = (output_shape,)
        self.partial_output_shape = tuple(None if d is None else int(d) for d in output_shape)
        self.bias_axes = bias_axes
        self.activation = activations.get(activation)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.lora_rank = None
        self.full_output_shape = None

    def _analyze(self, input_shape):
        return analyze_equation(self.equation, self.bias_axes, input_shape, self.partial_output_shape,
                                who=f"Layer {self.name!r} (EinsumDense)")

    def build(self, input_shape):
        kernel_shape, bias_shape, out_shape, in_axes, out_axes = self._analyze(input_shape)
        self.full_output_shape = tuple(out_shape)
        self.input_spec = InputSpec(ndim=len(input_shape))
        init = self.kernel_initializer
        if isinstance(init, initializers.VarianceScaling):
            # fans over the kernel's input and output axes (as Keras), not a convolution's receptive field
            fan_in = math.prod(kernel_shape[i] for i in in_axes)
            fan_out = math.prod(kernel_shape[i] for i in out_axes)
            base = init

            def init(shape, dtype="float32"):
                return jnp.reshape(base((fan_in, fan_out), dtype=dtype), shape)
        self.kernel = self.add_weight(shape=tuple(kernel_shape), name="kernel", initializer=init,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.bias = None if bias_shape is None else self.add_weight(
            shape=tuple(bias_shape), name="bias", initializer=self.bias_initializer,
            regularizer=self.bias_regularizer, constraint=self.bias_constraint)

    def call(self, inputs):
        x = jnp.einsum(self.equation, inputs, self.kernel.value.astype(inputs.dtype))
        if self.bias is not None:
            x = x + self.bias.value.astype(x.dtype)
        if self.activation is not None:
            x = self.activation(x)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(self._analyze(input_shape)[2])

    def get_config(self):
        return {**super().get_config(), "output_shape": list(self.partial_output_shape), "equation": self.equation,
                "activation": activations.serialize(self.activation), "bias_axes": self.bias_axes,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": _ser(regularizers, self.kernel_regularizer),
                "bias_regularizer": _ser(regularizers, self.bias_regularizer),
                "kernel_constraint": _ser(constraints, self.kernel_constraint),
                "bias_constraint": _ser(constraints, self.bias_constraint)}
