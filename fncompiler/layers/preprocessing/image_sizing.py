"""Resizing, CenterCrop and RandomCrop (Keras 3 semantics; channels_last or channels_first images)."""
import jax
import jax.numpy as jnp

from ...utils import random as random_utils
from ..layer import Layer, batch_independent_unless_training
from . import _image
from ..misc import _rng as layer_key   # the train step key folded with the seed, as Dropout


def _check_size(layer, height, width):
    for arg, v in (("height", height), ("width", width)):
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"{layer}: `{arg}` must be a positive int; received {arg}={v!r}.")


class _SizingLayer(Layer):
    batch_independent = True
    random_in_training = False

    def __init__(self, height, width, data_format=None, **kwargs):
        super().__init__(**kwargs)
        _check_size(type(self).__name__, height, width)
        self.height, self.width = height, width
        self.data_format = _image.data_format(data_format, type(self).__name__)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        h_axis, w_axis = _image.hw_axes(len(shape), self.data_format, f"{type(self).__name__} {self.name!r}")
        shape[h_axis], shape[w_axis] = self.height, self.width
        return tuple(shape)

    def compute_output_spec(self, *args, **kwargs):
        from ...symbolic import SymbolicTensor
        return SymbolicTensor(self.compute_output_shape(args[0].shape), self.compute_dtype)

    def _known_hw(self, inputs):
        h_axis, w_axis = _image.hw_axes(inputs.ndim, self.data_format, f"{type(self).__name__} {self.name!r}")
        return inputs.shape[h_axis], inputs.shape[w_axis]

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width, "data_format": self.data_format}


class Resizing(_SizingLayer):
    """Resizes images to (height, width) with `jax.image.resize` (Keras's JAX backend), optionally cropping or
    padding them to the target aspect ratio first."""

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False, pad_to_aspect_ratio=False,
                 fill_mode="constant", fill_value=0.0, antialias=False, data_format=None, **kwargs):
        super().__init__(height, width, data_format=data_format, **kwargs)
        self.interpolation = _image.check_choice("Resizing", "interpolation", interpolation, _image.INTERPOLATIONS)
        if crop_to_aspect_ratio and pad_to_aspect_ratio:
            raise ValueError("Resizing: only one of `crop_to_aspect_ratio` and `pad_to_aspect_ratio` can be True.")
        if fill_mode != "constant":
            raise ValueError(f"Resizing: only fill_mode='constant' is supported; received {fill_mode!r}.")
        self.crop_to_aspect_ratio = bool(crop_to_aspect_ratio)
        self.pad_to_aspect_ratio = bool(pad_to_aspect_ratio)
        self.fill_mode, self.fill_value, self.antialias = fill_mode, float(fill_value), bool(antialias)

    def call(self, inputs):
        x = inputs.astype(self.compute_dtype)
        in_h, in_w = self._known_hw(x)
        if self.crop_to_aspect_ratio:
            top, left, ch, cw = _image.central_window(in_h, in_w, self.height, self.width)
            x = _image.crop(x, top, left, ch, cw, self.data_format)
        elif self.pad_to_aspect_ratio:
            x = self._pad(x, in_h, in_w)
        return _image.resize(x, self.height, self.width, self.interpolation, self.data_format,
                             self.antialias).astype(self.compute_dtype)

    def _pad(self, x, in_h, in_w):
        # Keras: pad the short side symmetrically (extra row/column at the end) to the target aspect ratio.
        pad_h = max(0, int(in_w * self.height / self.width) - in_h)
        pad_w = max(0, int(in_h * self.width / self.height) - in_w)
        h_axis, w_axis = _image.hw_axes(x.ndim, self.data_format, "Resizing")
        pads = [(0, 0)] * x.ndim
        pads[h_axis] = (pad_h // 2, pad_h - pad_h // 2)
        pads[w_axis] = (pad_w // 2, pad_w - pad_w // 2)
        return jnp.pad(x, pads, constant_values=self.fill_value)

    def get_config(self):
        return {**super().get_config(), "interpolation": self.interpolation,
                "crop_to_aspect_ratio": self.crop_to_aspect_ratio, "pad_to_aspect_ratio": self.pad_to_aspect_ratio,
                "fill_mode": self.fill_mode, "fill_value": self.fill_value, "antialias": self.antialias}


class CenterCrop(_SizingLayer):
    """The central (height, width) window; an image smaller than the target is resized as Keras's smart_resize
    (largest central window of the target aspect ratio, bilinear resize)."""

    def call(self, inputs):
        x = inputs.astype(self.compute_dtype)
        in_h, in_w = self._known_hw(x)
        if in_h >= self.height and in_w >= self.width:
            return _image.crop(x, (in_h - self.height) // 2, (in_w - self.width) // 2, self.height, self.width,
                               self.data_format)
        return _image.smart_resize(x, self.height, self.width, self.data_format).astype(self.compute_dtype)


class RandomCrop(_SizingLayer):
    """Training: one random (height, width) window per batch (the same offsets for every image, as Keras).
    Inference: the image resized as Keras's smart_resize (largest central window of the target aspect ratio)."""
    random_in_training = True
    is_batch_independent = batch_independent_unless_training     # draws for the batch's shape in training

    def __init__(self, height, width, seed=None, data_format=None, **kwargs):
        super().__init__(height, width, data_format=data_format, **kwargs)
        self.seed = seed if seed is not None else random_utils.next_seed()

    def call(self, inputs, training=True):
        x = inputs.astype(self.compute_dtype)
        in_h, in_w = self._known_hw(x)
        if in_h is None or in_w is None:
            raise ValueError(f"RandomCrop {self.name!r} needs a known height and width; received shape {x.shape}.")
        if training and in_h > self.height and in_w > self.width:
            k_h, k_w = jax.random.split(layer_key(self.seed))
            top = jax.random.randint(k_h, (), 0, in_h - self.height + 1)
            left = jax.random.randint(k_w, (), 0, in_w - self.width + 1)
            h_axis, w_axis = _image.hw_axes(x.ndim, self.data_format, "RandomCrop")
            start = [0] * x.ndim
            start[h_axis % x.ndim], start[w_axis % x.ndim] = top, left
            sizes = list(x.shape)
            sizes[h_axis], sizes[w_axis] = self.height, self.width
            return jax.lax.dynamic_slice(x, start, sizes)
        if (in_h, in_w) == (self.height, self.width):
            return x
        return _image.smart_resize(x, self.height, self.width, self.data_format).astype(self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}
