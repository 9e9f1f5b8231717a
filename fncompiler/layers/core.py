"""Core layers: Dense, Activation, Dropout, Identity, Lambda."""
import jax
import jax.numpy as jnp

from .. import activations, constraints, initializers, regularizers
from .. import scope as scope_lib
from ..utils import random as random_utils
from .input_spec import InputSpec
from .layer import Layer, batch_independent_unless_training


def _ser(module, obj):
    return None if obj is None else module.serialize(obj)


class Dense(Layer):
    """`activation(inputs @ kernel + bias)`; kernel shape (input_dim, units) as in Keras."""
    batch_independent = True
    random_in_training = False

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, lora_rank=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if lora_rank is not None:
            raise NotImplementedError("Dense(lora_rank=...) is not supported by fncompiler yet.")
        if not isinstance(units, int) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"Dense: `units` must be a positive int; received units={units!r}.")
        self.units = units
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.input_spec = InputSpec(min_ndim=2)
        self.supports_masking = True

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(f"Layer {self.name!r} (Dense) needs the last dimension of its input to be known; "
                             f"received input shape {tuple(input_shape)}.")
        self.kernel = self.add_weight(shape=(input_dim, self.units), initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
                                      name="kernel")
        self.bias = self.add_weight(shape=(self.units,), initializer=self.bias_initializer,
                                    regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                                    name="bias") if self.use_bias else None
        self.input_spec = InputSpec(min_ndim=2, axes={-1: input_dim})

    def call(self, inputs):
        kernel = self.kernel.value.astype(inputs.dtype)
        y = jnp.matmul(inputs, kernel)
        if self.bias is not None:
            y = y + self.bias.value.astype(inputs.dtype)
        return self.activation(y)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units, "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": _ser(regularizers, self.kernel_regularizer),
            "bias_regularizer": _ser(regularizers, self.bias_regularizer),
            "kernel_constraint": _ser(constraints, self.kernel_constraint),
            "bias_constraint": _ser(constraints, self.bias_constraint),
        })
        return config


class Activation(Layer):
    batch_independent = True
    random_in_training = False

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.activation = activations.get(activation)

    def call(self, inputs):
        return self.activation(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class Identity(Layer):
    batch_independent = True
    random_in_training = False
    identity_in = ("eval", "predict", "export")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


class Dropout(Layer):
    """Zeroes a `rate` fraction of inputs in training and scales the rest by 1/(1-rate); identity otherwise."""
    batch_independent = True
    random_in_training = True
    identity_in = ("eval", "predict", "export")
    is_batch_independent = batch_independent_unless_training     # its mask is drawn for the batch's shape

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate <= 1:
            raise ValueError(f"Dropout: `rate` must be in [0, 1]; received rate={rate}.")
        self.rate = float(rate)
        self.noise_shape = noise_shape
        self.seed = seed if seed is not None else random_utils.next_seed()
        self.supports_masking = True

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        scope = scope_lib.current()
        key = scope.next_rng() if scope is not None else None
        if key is None:
            key = jax.random.key(self.seed)
        else:
            key = jax.random.fold_in(key, self.seed % (2 ** 31))
        if self.rate == 1:
            return jnp.zeros_like(inputs)
        shape = inputs.shape if self.noise_shape is None else tuple(
            inputs.shape[i] if d is None else d for i, d in enumerate(self.noise_shape))
        keep = jax.random.bernoulli(key, 1.0 - self.rate, shape)
        return jnp.where(keep, inputs / (1.0 - self.rate), jnp.zeros((), inputs.dtype))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "noise_shape": self.noise_shape, "seed": self.seed}


class Lambda(Layer):
    """Wraps a Python function as a layer. Its code is never saved: a file cannot carry it."""

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda needs a callable; received {function!r}.")
        self.function = function
        self._output_shape = output_shape
        self.arguments = dict(arguments or {})
        self.mask = mask

    def call(self, inputs, mask=None, training=None):
        return self.function(inputs, **self.arguments)

    def compute_mask(self, inputs, previous_mask):
        if callable(self.mask):
            return self.mask(inputs, previous_mask)
        return self.mask

    def get_config(self):
        from ..saving.errors import UnsafeConfigError  # noqa: F401 (documents where refusal happens)
        config = super().get_config()
        config.update({"function": {"class_name": "__lambda__", "config": {
            "name": getattr(self.function, "__name__", "lambda"),
            "note": "Python code is not serialized by fncompiler; pass the function again via custom_objects."}},
            "arguments": {}, "output_shape": self._output_shape})
        return config

    @classmethod
    def from_config(cls, config, safe_mode=True, custom_objects=None):
        from ..saving.errors import UnsafeConfigError
        fn = config.get("function")
        name = fn.get("config", {}).get("name") if isinstance(fn, dict) else fn
        custom = dict(custom_objects or {})
        if isinstance(name, str) and callable(custom.get(name)):
            config = {k: v for k, v in config.items() if k not in ("function", "arguments")}
            return cls(custom[name], **config)
        raise UnsafeConfigError(
            f"Lambda layer {config.get('name')!r}: the file holds no code for its function {name!r} (fncompiler "
            "never stores Python code in model files). Pass the function with custom_objects={"
            f"{name!r}: fn}} to rebuild the layer.")
