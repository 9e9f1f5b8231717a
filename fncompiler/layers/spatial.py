"""Spatial reshaping layers: UpSampling1D/2D/3D, ZeroPadding1D/2D/3D, Cropping1D/2D/3D."""
import jax
import jax.numpy as jnp

from .convolutional import spatial_axes, standardize_data_format, standardize_tuple
from .input_spec import InputSpec
from .layer import Layer

_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos3", "lanczos5")


def _pairs(value, rank, name):
    """An int, `rank` ints (symmetric) or `rank` pairs -> a tuple of `rank` (before, after) pairs."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"`{name}` cannot be negative. Received: {name}={value}.")
        return ((value, value),) * rank
    if not hasattr(value, "__len__") or len(value) != rank:
        raise ValueError(f"`{name}` should be an int, a tuple of {rank} ints or a tuple of {rank} tuples of 2 "
                         f"ints. Received: {name}={value!r}.")
    return tuple(standardize_tuple(v, 2, f"entry {i} of {name}", allow_zero=True) for i, v in enumerate(value))


# ----------------------------------------------------------------------------------------------- UpSampling
class _UpSampling(Layer):
    batch_independent = True
    random_in_training = False

    rank = None

    def __init__(self, size, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.size = standardize_tuple(size, self.rank, "size")
        self.data_format = standardize_data_format(data_format)
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def compute_output_shape(self, input_shape):
        out = list(input_shape)
        for a, s in zip(spatial_axes(self.rank, self.data_format), self.size):
            out[a] = None if out[a] is None else out[a] * s
        return tuple(out)

    def call(self, inputs):
        for a, s in zip(spatial_axes(self.rank, self.data_format), self.size):
            inputs = jnp.repeat(inputs, s, axis=a)
        return inputs

    def get_config(self):
        return {**super().get_config(), "size": self.size, "data_format": self.data_format}


class UpSampling1D(_UpSampling):
    """Repeats each step `size` times along the steps axis."""
    rank = 1

    def __init__(self, size=2, **kwargs):
        super().__init__(size, data_format=None, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.pop("data_format")
        config["size"] = self.size[0]
        return config


class UpSampling2D(_UpSampling):
    """Scales rows and columns by `size`: "nearest" repeats pixels, "bilinear" (and "bicubic", "lanczos3",
    "lanczos5") interpolate with half-pixel centres, as `jax.image.resize` / Keras 3 do."""
    rank = 2

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(size, data_format=data_format, **kwargs)
        self.interpolation = str(interpolation).lower()
        if self.interpolation not in _INTERPOLATIONS:
            raise ValueError(f"`interpolation` argument should be one of {_INTERPOLATIONS}. "
                             f"Received: interpolation={interpolation!r}.")

    def call(self, inputs):
        if self.interpolation == "nearest":
            return super().call(inputs)
        axes = spatial_axes(2, self.data_format)
        shape = list(inputs.shape)
        for a, s in zip(axes, self.size):
            shape[a] *= s
        out = jax.image.resize(inputs, tuple(shape), method=self.interpolation, antialias=False)
        return out.astype(inputs.dtype)

    def get_config(self):
        return {**super().get_config(), "interpolation": self.interpolation}


class UpSampling3D(_UpSampling):
    rank = 3

    def __init__(self, size=(2, 2, 2), data_format=None, **kwargs):
        super().__init__(size, data_format=data_format, **kwargs)


# ----------------------------------------------------------------------------------------------- ZeroPadding
class _ZeroPadding(Layer):
    batch_independent = True
    random_in_training = False

    rank = None

    def __init__(self, padding, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format)
        self.padding = padding if self.rank == 1 else _pairs(padding, self.rank, "padding")
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def _pad_pairs(self):
        return (self.padding,) if self.rank == 1 else self.padding

    def compute_output_shape(self, input_shape):
        out = list(input_shape)
        for a, (lo, hi) in zip(spatial_axes(self.rank, self.data_format), self._pad_pairs()):
            out[a] = None if out[a] is None else out[a] + lo + hi
        return tuple(out)

    def call(self, inputs):
        pads = [(0, 0)] * inputs.ndim
        for a, p in zip(spatial_axes(self.rank, self.data_format), self._pad_pairs()):
            pads[a] = p
        return jnp.pad(inputs, pads)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding, "data_format": self.data_format}


class ZeroPadding1D(_ZeroPadding):
    """Pads the steps axis with zeros: `padding` is an int (both sides) or (left, right)."""
    rank = 1

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(standardize_tuple(padding, 2, "padding", allow_zero=True), data_format=data_format,
                         **kwargs)


class ZeroPadding2D(_ZeroPadding):
    """`padding`: int, (symmetric_height, symmetric_width) or ((top, bottom), (left, right))."""
    rank = 2

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(padding, data_format=data_format, **kwargs)


class ZeroPadding3D(_ZeroPadding):
    rank = 3

    def __init__(self, padding=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(padding, data_format=data_format, **kwargs)


# ----------------------------------------------------------------------------------------------- Cropping
class _Cropping(Layer):
    batch_independent = True
    random_in_training = False

    rank = None

    def __init__(self, cropping, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format)
        self.cropping = cropping if self.rank == 1 else _pairs(cropping, self.rank, "cropping")
        self.input_spec = InputSpec(ndim=self.rank + 2)

    def _crop_pairs(self):
        return (self.cropping,) if self.rank == 1 else self.cropping

    def compute_output_shape(self, input_shape):
        out = list(input_shape)
        for a, (lo, hi) in zip(spatial_axes(self.rank, self.data_format), self._crop_pairs()):
            if out[a] is not None:
                if lo + hi >= out[a]:
                    raise ValueError(
                        f"Layer {self.name!r} ({type(self).__name__}): values in `cropping` argument should be "
                        "smaller than the corresponding spatial dimension of the input. Received: "
                        f"input_shape={tuple(input_shape)}, cropping={self.cropping}")
                out[a] = out[a] - lo - hi
        return tuple(out)

    def build(self, input_shape):
        self.compute_output_shape(input_shape)
        self.built = True

    def call(self, inputs):
        self.compute_output_shape(inputs.shape)
        index = [slice(None)] * inputs.ndim
        for a, (lo, hi) in zip(spatial_axes(self.rank, self.data_format), self._crop_pairs()):
            index[a] = slice(lo, inputs.shape[a] - hi)
        return inputs[tuple(index)]

    def get_config(self):
        return {**super().get_config(), "cropping": self.cropping, "data_format": self.data_format}


class Cropping1D(_Cropping):
    """Crops (start, end) steps off the steps axis."""
    rank = 1

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(standardize_tuple(cropping, 2, "cropping", allow_zero=True), data_format=None, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.pop("data_format")
        return config


class Cropping2D(_Cropping):
    rank = 2

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(cropping, data_format=data_format, **kwargs)


class Cropping3D(_Cropping):
    rank = 3

    def __init__(self, cropping=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(cropping, data_format=data_format, **kwargs)
