"""Activation functions by Keras name, as plain jax.numpy functions."""
import jax
import jax.numpy as jnp


def linear(x):
    return x


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return jax.nn.relu(x)
    neg = negative_slope * (x - threshold)
    y = jnp.where(x >= threshold, x, neg if negative_slope else jnp.zeros_like(x))
    if threshold != 0.0 and negative_slope == 0.0:
        y = jnp.where(x > threshold, x, 0.0)
    return y if max_value is None else jnp.minimum(y, max_value)


def relu6(x):
    return jax.nn.relu6(x)


def leaky_relu(x, negative_slope=0.2):
    return jax.nn.leaky_relu(x, negative_slope)


def elu(x, alpha=1.0):
    return jax.nn.elu(x, alpha)


def selu(x):
    return jax.nn.selu(x)


def gelu(x, approximate=False):
    return jax.nn.gelu(x, approximate=approximate)


def silu(x):
    return jax.nn.silu(x)


swish = silu


def sigmoid(x):
    return jax.nn.sigmoid(x)


def hard_sigmoid(x):
    # Keras 3: relu6(x + 3) / 6
    return jax.nn.relu6(x + 3.0) / 6.0


def hard_silu(x):
    return x * hard_sigmoid(x)


hard_swish = hard_silu


def tanh(x):
    return jnp.tanh(x)


def softmax(x, axis=-1):
    return jax.nn.softmax(x, axis=axis)


def log_softmax(x, axis=-1):
    return jax.nn.log_softmax(x, axis=axis)


def softplus(x):
    return jax.nn.softplus(x)


def softsign(x):
    return jax.nn.soft_sign(x)


def exponential(x):
    return jnp.exp(x)


def mish(x):
    return x * jnp.tanh(jax.nn.softplus(x))


_ALL = {f.__name__: f for f in (linear, relu, relu6, leaky_relu, elu, selu, gelu, silu, sigmoid, hard_sigmoid,
                                hard_silu, tanh, softmax, log_softmax, softplus, softsign, exponential, mish)}
_ALL["swish"] = silu
_ALL["hard_swish"] = hard_silu


def get(identifier):
    """An activation function from its name (None and "linear" give the identity) or a callable."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        fn = _ALL.get(identifier)
        if fn is None:
            raise ValueError(f"Unknown activation {identifier!r}. Known names: {', '.join(sorted(_ALL))}.")
        return fn
    if isinstance(identifier, dict) and identifier.get("class_name") == "function":
        return get(identifier.get("config"))
    if callable(identifier):
        return identifier
    raise TypeError(f"Could not interpret activation {identifier!r}: expected a name or a callable.")


def serialize(fn):
    """The name of a built-in activation; custom callables are named by their __name__."""
    for name, f in _ALL.items():
        if f is fn:
            return "silu" if name == "swish" else name
    return getattr(fn, "__name__", str(fn))
