"""Shape-only layers: Flatten, Reshape, Permute, RepeatVector."""
import math

import jax.numpy as jnp

from .layer import Layer


class Flatten(Layer):
    batch_independent = True
    random_in_training = False

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = data_format or "channels_last"

    def call(self, inputs):
        if self.data_format == "channels_first" and inputs.ndim > 2:
            inputs = jnp.moveaxis(inputs, 1, -1)
        return inputs.reshape(inputs.shape[0], -1)

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        return (input_shape[0], None if any(d is None for d in rest) else math.prod(rest))

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(Layer):
    batch_independent = True
    random_in_training = False

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(target_shape)
        if sum(d == -1 for d in self.target_shape) > 1:
            raise ValueError(f"Reshape: at most one dimension of target_shape may be -1; received {target_shape}.")

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        target = list(self.target_shape)
        if any(d is None for d in rest):
            return (input_shape[0],) + tuple(None if d == -1 else d for d in target)
        total = math.prod(rest)
        known = math.prod(d for d in target if d != -1)
        if -1 in target:
            if known == 0 or total % known:
                raise ValueError(f"Layer {self.name!r} (Reshape): cannot reshape input of shape {tuple(input_shape)} "
                                 f"to target shape {self.target_shape}.")
            target[target.index(-1)] = total // known
        elif known != total:
            raise ValueError(f"Layer {self.name!r} (Reshape): total size of the new array must be unchanged: input "
                             f"shape {tuple(input_shape)} has {total} values per sample, target shape "
                             f"{self.target_shape} has {known}.")
        return (input_shape[0],) + tuple(target)

    def build(self, input_shape):
        self.compute_output_shape(input_shape)

    def call(self, inputs):
        return inputs.reshape((inputs.shape[0],) + self.target_shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Permute(Layer):
    batch_independent = True
    random_in_training = False

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        self.dims = tuple(dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(f"Permute: `dims` must be a permutation of 1..{len(self.dims)}; received {dims}.")

    def call(self, inputs):
        return jnp.transpose(inputs, (0,) + self.dims)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(input_shape[d] for d in self.dims)

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}


class RepeatVector(Layer):
    batch_independent = True
    random_in_training = False

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        self.n = int(n)

    def call(self, inputs):
        return jnp.repeat(inputs[:, None, :], self.n, axis=1)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"Layer {self.name!r} (RepeatVector) expects a 2D input (batch, features); "
                             f"received shape {tuple(input_shape)}.")
        return (input_shape[0], self.n, input_shape[1])

    def get_config(self):
        return {**super().get_config(), "n": self.n}
