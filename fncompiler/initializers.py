"""Weight initializers with Keras 3's names, defaults and math."""
import math

import jax.numpy as jnp
import numpy as np

from .utils import random as random_utils

_REGISTRY = {}


def _register(*names):
    def deco(cls):
        for n in names:
            _REGISTRY[n] = cls
        return cls
    return deco


def _key(seed):
    """A NumPy generator: host-side sampling avoids compiling one XLA program per weight shape."""
    if seed is None:
        seed = random_utils.next_seed()
    return np.random.default_rng(int(seed) % (2 ** 63))


def _normal(rng, shape):
    return rng.standard_normal(shape, dtype=np.float32)


def _truncated_normal(rng, shape):
    """Standard normal values redrawn until they fall within two standard deviations."""
    out = rng.standard_normal(shape, dtype=np.float32)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()), dtype=np.float32)
        bad = np.abs(out) > 2.0
    return out


def _uniform(rng, shape, low, high):
    out = rng.random(shape, dtype=np.float32)
    out *= np.float32(high - low)
    out += np.float32(low)
    return out


def _cast(x, dtype):
    return jnp.asarray(x, dtype=dtype)


class Initializer:
    def __call__(self, shape, dtype="float32"):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@_register("zeros", "Zeros")
class Zeros(Initializer):
    def __call__(self, shape, dtype="float32"):
        return jnp.zeros(shape, dtype)


@_register("ones", "Ones")
class Ones(Initializer):
    def __call__(self, shape, dtype="float32"):
        return jnp.ones(shape, dtype)


@_register("constant", "Constant")
class Constant(Initializer):
    def __init__(self, value=0.0):
        self.value = value

    def __call__(self, shape, dtype="float32"):
        return jnp.full(shape, self.value, dtype)

    def get_config(self):
        return {"value": self.value}


class _Seeded(Initializer):
    def __init__(self, seed=None):
        self.seed = seed
        self._calls = 0

    def _next_key(self):
        # A fixed seed gives the same values on each call, as in Keras; None draws fresh values.
        return _key(self.seed)

    def get_config(self):
        return {"seed": self.seed}


@_register("random_normal", "RandomNormal")
class RandomNormal(_Seeded):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype="float32"):
        return _cast(self.mean + self.stddev * _normal(self._next_key(), shape), dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


@_register("random_uniform", "RandomUniform")
class RandomUniform(_Seeded):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def __call__(self, shape, dtype="float32"):
        return _cast(_uniform(self._next_key(), shape, self.minval, self.maxval), dtype)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


@_register("truncated_normal", "TruncatedNormal")
class TruncatedNormal(_Seeded):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype="float32"):
        return _cast(self.mean + self.stddev * _truncated_normal(self._next_key(), shape), dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


def compute_fans(shape):
    """Keras's fan_in / fan_out for a kernel shape (receptive field times channels for convolutions)."""
    shape = tuple(shape)
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


@_register("variance_scaling", "VarianceScaling")
class VarianceScaling(_Seeded):
    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        super().__init__(seed)
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"VarianceScaling mode must be 'fan_in', 'fan_out' or 'fan_avg'; received {mode!r}.")
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError("VarianceScaling distribution must be 'truncated_normal', 'untruncated_normal' or "
                             f"'uniform'; received {distribution!r}.")
        self.scale, self.mode, self.distribution = scale, mode, distribution

    def __call__(self, shape, dtype="float32"):
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        scale = self.scale / max(1.0, n)
        key = self._next_key()
        if self.distribution == "truncated_normal":
            stddev = math.sqrt(scale) / 0.87962566103423978
            return _cast(stddev * _truncated_normal(key, shape), dtype)
        if self.distribution == "untruncated_normal":
            return _cast(math.sqrt(scale) * _normal(key, shape), dtype)
        limit = math.sqrt(3.0 * scale)
        return _cast(_uniform(key, shape, -limit, limit), dtype)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution, "seed": self.seed}


def _variant(name, scale, mode, distribution):
    class _V(VarianceScaling):
        def __init__(self, seed=None):
            super().__init__(scale, mode, distribution, seed)

        def get_config(self):
            return {"seed": self.seed}
    _V.__name__ = _V.__qualname__ = name
    return _V


GlorotUniform = _register("glorot_uniform", "GlorotUniform")(_variant("GlorotUniform", 1.0, "fan_avg", "uniform"))
GlorotNormal = _register("glorot_normal", "GlorotNormal")(
    _variant("GlorotNormal", 1.0, "fan_avg", "truncated_normal"))
HeUniform = _register("he_uniform", "HeUniform")(_variant("HeUniform", 2.0, "fan_in", "uniform"))
HeNormal = _register("he_normal", "HeNormal")(_variant("HeNormal", 2.0, "fan_in", "truncated_normal"))
LecunUniform = _register("lecun_uniform", "LecunUniform")(_variant("LecunUniform", 1.0, "fan_in", "uniform"))
LecunNormal = _register("lecun_normal", "LecunNormal")(_variant("LecunNormal", 1.0, "fan_in", "truncated_normal"))


@_register("orthogonal", "Orthogonal")
class Orthogonal(_Seeded):
    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = gain

    def __call__(self, shape, dtype="float32"):
        rows = math.prod(shape[:-1])
        cols = shape[-1]
        flat = (max(rows, cols), min(rows, cols))
        a = _normal(self._next_key(), flat)
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return _cast(self.gain * q.reshape(shape), dtype)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


@_register("identity", "Identity", "IdentityInitializer")
class IdentityInitializer(Initializer):
    def __init__(self, gain=1.0):
        self.gain = gain

    def __call__(self, shape, dtype="float32"):
        if len(shape) != 2:
            raise ValueError(f"Identity initializer needs a 2D shape; received {shape}.")
        return self.gain * jnp.eye(shape[0], shape[1], dtype=dtype)

    def get_config(self):
        return {"gain": self.gain}


def serialize(initializer):
    name = type(initializer).__name__
    return {"class_name": name, "config": initializer.get_config()}


def get(identifier):
    """An initializer from a name, a {"class_name", "config"} dict, an instance or a callable."""
    if identifier is None:
        return None
    if isinstance(identifier, Initializer) or (callable(identifier) and not isinstance(identifier, (str, dict))):
        return identifier
    if isinstance(identifier, str):
        cls = _REGISTRY.get(identifier)
        if cls is None:
            raise ValueError(f"Unknown initializer {identifier!r}. Known names: {', '.join(sorted(_REGISTRY))}.")
        return cls()
    if isinstance(identifier, dict):
        cls = _REGISTRY.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"Unknown initializer class {identifier.get('class_name')!r} in config. "
                             f"Known names: {', '.join(sorted(_REGISTRY))}.")
        return cls.from_config(identifier.get("config", {}))
    raise TypeError(f"Could not interpret initializer {identifier!r}: expected a name, a config dict or a callable.")
