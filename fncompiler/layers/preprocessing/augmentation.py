"""Augmentation layers: random image transforms in training (inside the jitted train step, keyed like Dropout),
the identity at inference. Factor semantics, transforms, fill modes and per-image sampling follow Keras 3."""
import math

import jax
import jax.numpy as jnp

from ...utils import random as random_utils
from ..layer import Layer, batch_independent_unless_training
from ..misc import _rng as layer_key
from . import _image

HORIZONTAL, VERTICAL, BOTH = "horizontal", "vertical", "horizontal_and_vertical"


def parse_factor(layer, arg, factor, bounds=(-1.0, 1.0)):
    """Keras's factor: a number f -> (max(-|f|, lower bound), |f|); a pair -> sorted; checked against `bounds`."""
    msg = (f"{layer}: `{arg}` should be a number or a list of two numbers in [{bounds[0]}, {bounds[1]}]; "
           f"received {arg}={factor!r}.")
    if isinstance(factor, (list, tuple)):
        if len(factor) != 2 or factor[0] > bounds[1] or factor[1] < bounds[0]:
            raise ValueError(msg)
        return tuple(sorted(float(f) for f in factor))
    if isinstance(factor, (int, float)) and not isinstance(factor, bool):
        if factor < bounds[0] or factor > bounds[1]:
            raise ValueError(msg)
        f = abs(float(factor))
        return (max(-f, bounds[0]), f)
    raise ValueError(msg)


class _Augmentation(Layer):
    """Base: seeded; `call(inputs, training)` returns the input (cast to the compute dtype) unless training."""
    batch_independent = True
    random_in_training = True
    identity_in = ("eval", "predict", "export")   # a cast to the compute dtype outside training
    is_batch_independent = batch_independent_unless_training     # draws for the batch's shape in training

    def __init__(self, seed=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self._seed = seed if seed is not None else random_utils.next_seed()
        self.data_format = _image.data_format(data_format, type(self).__name__)
        self.supports_masking = False

    def call(self, inputs, training=True):
        x = inputs.astype(self.compute_dtype)
        if not training:
            return x
        _image.hw_axes(x.ndim, self.data_format, f"{type(self).__name__} {self.name!r}")
        batch = x.shape[0] if x.ndim == 4 else 1
        return self.transform(x, self.sample(layer_key(self._seed), batch, x))

    def sample(self, key, batch, images):
        """The random parameters of one call (one row per image)."""
        raise NotImplementedError

    def transform(self, images, params):
        """The images transformed with the given parameters (deterministic; tests call it directly)."""
        raise NotImplementedError

    def _hw(self, images):
        h_axis, w_axis = _image.hw_axes(images.ndim, self.data_format, type(self).__name__)
        return images.shape[h_axis], images.shape[w_axis]

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, *args, **kwargs):
        from ...symbolic import SymbolicTensor
        return SymbolicTensor(tuple(args[0].shape), self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed, "data_format": self.data_format}


class RandomFlip(_Augmentation):
    """Flips each image with probability 1/2 (Keras: in "horizontal_and_vertical" mode one draw flips both axes)."""

    def __init__(self, mode=BOTH, seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.mode = _image.check_choice("RandomFlip", "mode", mode, (HORIZONTAL, VERTICAL, BOTH))

    def sample(self, key, batch, images):
        return jax.random.uniform(key, (batch,)) <= 0.5

    def transform(self, images, flips):
        h_axis, w_axis = _image.hw_axes(images.ndim, self.data_format, "RandomFlip")
        flips = flips.reshape((-1,) + (1,) * 3) if images.ndim == 4 else flips.reshape(())
        out = images
        if self.mode in (HORIZONTAL, BOTH):
            out = jnp.where(flips, jnp.flip(out, axis=w_axis), out)
        if self.mode in (VERTICAL, BOTH):
            out = jnp.where(flips, jnp.flip(out, axis=h_axis), out)
        return out

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


class _AffineAugmentation(_Augmentation):
    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, data_format=None,
                 **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        name = type(self).__name__
        self.fill_mode = _image.check_choice(name, "fill_mode", fill_mode, _image.FILL_MODES)
        self.interpolation = _image.check_choice(name, "interpolation", interpolation,
                                                 tuple(_image.AFFINE_INTERPOLATIONS))
        self.fill_value = float(fill_value)

    def transform(self, images, params):
        return _image.affine_transform(images, self.matrices(images, params), self.interpolation, self.fill_mode,
                                       self.fill_value, self.data_format)

    def get_config(self):
        return {**super().get_config(), "fill_mode": self.fill_mode, "interpolation": self.interpolation,
                "fill_value": self.fill_value}


class RandomRotation(_AffineAugmentation):
    """Rotates each image by `uniform(factor) * 360` degrees (counter-clockwise for positive angles) about its
    centre ((width - 1) / 2, (height - 1) / 2)."""

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0,
                 data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.factor = parse_factor("RandomRotation", "factor", factor)

    def sample(self, key, batch, images):
        return jax.random.uniform(key, (batch,), minval=self.factor[0] * 360.0, maxval=self.factor[1] * 360.0)

    def matrices(self, images, angles):
        h, w = self._hw(images)
        theta = jnp.asarray(angles, jnp.float32).reshape(-1) * (math.pi / 180.0)
        cx, cy = 0.5 * (w - 1), 0.5 * (h - 1)
        cos, sin = jnp.cos(theta), jnp.sin(theta)
        zero = jnp.zeros_like(theta)
        return jnp.stack([cos, -sin, cx - cx * cos + cy * sin, sin, cos, cy - cx * sin - cy * cos, zero, zero], -1)

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor)}


class RandomZoom(_AffineAugmentation):
    """Zooms each image by `1 + uniform(height_factor)` vertically and `1 + uniform(width_factor)` horizontally
    (the vertical zoom when width_factor is None); positive factors zoom out, as Keras."""

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self._height = parse_factor("RandomZoom", "height_factor", height_factor, (-1.0, float("inf")))
        self._width = None if width_factor is None else parse_factor("RandomZoom", "width_factor", width_factor,
                                                                    (-1.0, float("inf")))

    def sample(self, key, batch, images):
        k_h, k_w = jax.random.split(key)
        zh = jax.random.uniform(k_h, (batch,), minval=1.0 + self._height[0], maxval=1.0 + self._height[1])
        zw = zh if self._width is None else jax.random.uniform(k_w, (batch,), minval=1.0 + self._width[0],
                                                               maxval=1.0 + self._width[1])
        return jnp.stack([zh, zw], -1)

    def matrices(self, images, zooms):
        h, w = self._hw(images)
        zooms = jnp.asarray(zooms, jnp.float32).reshape(-1, 2)
        zh, zw = zooms[:, 0], zooms[:, 1]
        zero = jnp.zeros_like(zh)
        return jnp.stack([zw, zero, (w - 1) / 2.0 * (1.0 - zw), zero, zh, (h - 1) / 2.0 * (1.0 - zh), zero, zero], -1)

    def get_config(self):
        return {**super().get_config(), "height_factor": _listed(self.height_factor),
                "width_factor": _listed(self.width_factor)}


class RandomTranslation(_AffineAugmentation):
    """Shifts each image by `uniform(height_factor) * height` rows and `uniform(width_factor) * width` columns."""

    def __init__(self, height_factor, width_factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self._height = parse_factor("RandomTranslation", "height_factor", height_factor)
        self._width = parse_factor("RandomTranslation", "width_factor", width_factor)

    def sample(self, key, batch, images):
        h, w = self._hw(images)
        k_h, k_w = jax.random.split(key)
        dy = jax.random.uniform(k_h, (batch,), minval=self._height[0], maxval=self._height[1]) * h
        dx = jax.random.uniform(k_w, (batch,), minval=self._width[0], maxval=self._width[1]) * w
        return jnp.stack([dy, dx], -1)

    def matrices(self, images, shifts):
        shifts = jnp.asarray(shifts, jnp.float32).reshape(-1, 2)
        one, zero = jnp.ones_like(shifts[:, 0]), jnp.zeros_like(shifts[:, 0])
        return jnp.stack([one, zero, -shifts[:, 1], zero, one, -shifts[:, 0], zero, zero], -1)

    def get_config(self):
        return {**super().get_config(), "height_factor": _listed(self.height_factor),
                "width_factor": _listed(self.width_factor)}


def _value_range(layer, value_range):
    if not isinstance(value_range, (list, tuple)) or len(value_range) != 2 or value_range[0] >= value_range[1]:
        raise ValueError(f"{layer}: `value_range` must be a list of two numbers (low, high) with low < high; "
                         f"received value_range={value_range!r}.")
    return [float(value_range[0]), float(value_range[1])]


class RandomContrast(_Augmentation):
    """Per image and channel: `(x - mean) * c + mean` with `c ~ uniform(1 - lower, 1 + upper)` and the mean over
    height and width, clipped to `value_range`."""

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        data_format = kwargs.pop("data_format", None)
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = parse_factor("RandomContrast", "factor", factor, (0.0, 1.0))
        self.value_range = _value_range("RandomContrast", value_range)

    def sample(self, key, batch, images):
        return jax.random.uniform(key, (batch,), minval=1.0 - self.factor[0], maxval=1.0 + self.factor[1])

    def transform(self, images, factors):
        h_axis, w_axis = _image.hw_axes(images.ndim, self.data_format, "RandomContrast")
        c = jnp.asarray(factors, images.dtype).reshape((-1, 1, 1, 1) if images.ndim == 4 else ())
        mean = jnp.mean(images, axis=(h_axis, w_axis), keepdims=True)
        return jnp.clip((images - mean) * c + mean, self.value_range[0], self.value_range[1])

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor), "value_range": self.value_range}


class RandomBrightness(_Augmentation):
    """Adds `uniform(factor) * (high - low)` to each image, clipped to `value_range = (low, high)`."""

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        data_format = kwargs.pop("data_format", None)
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = parse_factor("RandomBrightness", "factor", factor)
        self.value_range = _value_range("RandomBrightness", value_range)

    def sample(self, key, batch, images):
        span = self.value_range[1] - self.value_range[0]
        return jax.random.uniform(key, (batch,), minval=self.factor[0], maxval=self.factor[1]) * span

    def transform(self, images, deltas):
        d = jnp.asarray(deltas, images.dtype).reshape((-1, 1, 1, 1) if images.ndim == 4 else ())
        return jnp.clip(images + d, self.value_range[0], self.value_range[1])

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor), "value_range": self.value_range}


def _listed(v):
    return list(v) if isinstance(v, tuple) else v
