"""Layers that passes create: a chain of existing layers run as one node, and a Conv/Dense with a folded
BatchNormalization. They reuse the original layers' variables, so weights stay shared and trainable."""
import jax.numpy as jnp

from fncompiler import scope as scope_lib
from fncompiler.layers.layer import Layer


class Chain(Layer):
    """Calls layers[0] on the input, then each following layer on the previous output."""
    # what the chain declares is what all its layers declare
    random_in_training = property(lambda self: any(layer.random_in_training for layer in self._chain))

    def is_batch_independent(self, arguments=((), {}), input_ranks=(), training=False):
        return all(layer.is_batch_independent(training=training) for layer in self._chain)

    def __init__(self, layers, name):
        super().__init__(name=name)
        self._chain = list(layers)
        self.built = True

    def call(self, inputs, training=None):
        x = inputs
        for layer in self._chain:
            x = layer(x)
        return x

    def get_config(self):
        return {"name": self.name, "chain": [l.name for l in self._chain]}


class AddThen(Layer):
    """Sums its inputs, then applies `after` (e.g. a residual add followed by ReLU)."""
    random_in_training = property(lambda self: self._after.random_in_training)

    def is_batch_independent(self, arguments=((), {}), input_ranks=(), training=False):
        return self._after.is_batch_independent(training=training)

    def __init__(self, after, name):
        super().__init__(name=name)
        self._after = after
        self.built = True

    def call(self, inputs):
        total = inputs[0]
        for x in inputs[1:]:
            total = total + x
        return self._after(total)

    def get_config(self):
        return {"name": self.name, "after": self._after.name}


class FoldedBatchNorm(Layer):
    """`bn(linear(x))` in inference, computed as one linear layer with kernel and bias rescaled by BN's
    moving statistics: kernel * gamma / sqrt(var + eps), (bias - mean) * gamma / sqrt(var + eps) + beta."""
    batch_independent = True     # moving statistics only
    random_in_training = False

    def __init__(self, linear, bn, name):
        super().__init__(name=name)
        self._linear, self._bn = linear, bn
        self.built = True

    def folded(self):
        bn, lin = self._bn, self._linear
        inv = 1.0 / jnp.sqrt(bn.moving_variance.value + bn.epsilon)
        scale = bn.gamma.value * inv if bn.scale else inv
        kernel = lin.kernel.value * scale
        bias = lin.bias.value if lin.bias is not None else 0.0
        bias = (bias - bn.moving_mean.value) * scale
        if bn.center:
            bias = bias + bn.beta.value
        return kernel, bias

    def call(self, inputs):
        kernel, bias = self.folded()
        lin = self._linear
        values = {id(lin.kernel): kernel}
        if lin.bias is not None:
            values[id(lin.bias)] = bias
        with scope_lib.StatelessScope(values):
            y = lin(inputs)
        return y if lin.bias is not None else y + bias.astype(y.dtype)

    def get_config(self):
        return {"name": self.name, "linear": self._linear.name, "batch_normalization": self._bn.name}


class Constant(Layer):
    """The outputs of a node that constant folding evaluated at compile time (one array, or a list)."""
    batch_independent = True     # no input at all
    random_in_training = False

    def __init__(self, values, name, folded_from=None):
        super().__init__(name=name, autocast=False)
        self._values = list(values)
        self.folded_from = folded_from
        self.built = True

    @property
    def values(self):
        return list(self._values)

    def call(self):
        return self._values[0] if len(self._values) == 1 else list(self._values)

    def get_config(self):
        return {"name": self.name, "folded_from": self.folded_from,
                "shapes": [list(getattr(v, "shape", ())) for v in self._values]}
