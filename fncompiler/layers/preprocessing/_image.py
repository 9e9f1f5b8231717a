"""Image helpers for the preprocessing and augmentation layers: axes, crops, resizing, affine warps (jax.numpy)."""
import jax
import jax.numpy as jnp

INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "lanczos3", "lanczos5")
AFFINE_INTERPOLATIONS = {"nearest": 0, "bilinear": 1}
FILL_MODES = ("reflect", "wrap", "constant", "nearest")


def data_format(value, layer):
    value = value or "channels_last"
    if value not in ("channels_last", "channels_first"):
        raise ValueError(f"{layer}: `data_format` must be 'channels_last' or 'channels_first'; received {value!r}.")
    return value


def check_choice(layer, arg, value, allowed):
    if value not in allowed:
        raise ValueError(f"{layer}: invalid `{arg}` {value!r}; expected one of {', '.join(map(repr, allowed))}.")
    return value


def hw_axes(ndim, fmt, layer):
    if ndim not in (3, 4):
        raise ValueError(f"{layer} expects images of rank 3 (height, width, channels) or 4 (batch, ...); received "
                         f"rank {ndim}.")
    return (-2, -1) if fmt == "channels_first" else (-3, -2)


def resize(images, height, width, interpolation, fmt, antialias=False):
    h_axis, w_axis = hw_axes(images.ndim, fmt, "resize")
    shape = list(images.shape)
    shape[h_axis], shape[w_axis] = height, width
    out = jax.image.resize(images.astype(jnp.float32) if not jnp.issubdtype(images.dtype, jnp.floating) else images,
                           tuple(shape), method=interpolation, antialias=antialias)
    return out


def crop(images, top, left, height, width, fmt):
    h_axis, w_axis = hw_axes(images.ndim, fmt, "crop")
    index = [slice(None)] * images.ndim
    index[h_axis] = slice(top, top + height)
    index[w_axis] = slice(left, left + width)
    return images[tuple(index)]


def central_window(in_h, in_w, height, width):
    """(top, left, crop_h, crop_w): Keras's largest central window with the target aspect ratio."""
    crop_h = max(min(in_h, int(float(in_w * height) / width)), 1)
    crop_w = max(min(in_w, int(float(in_h * width) / height)), 1)
    return int(float(in_h - crop_h) / 2), int(float(in_w - crop_w) / 2), crop_h, crop_w


def smart_resize(images, height, width, fmt, interpolation="bilinear"):
    h_axis, w_axis = hw_axes(images.ndim, fmt, "smart_resize")
    top, left, ch, cw = central_window(images.shape[h_axis], images.shape[w_axis], height, width)
    return resize(crop(images, top, left, ch, cw, fmt), height, width, interpolation, fmt)


def affine_transform(images, transforms, interpolation, fill_mode, fill_value, fmt):
    """Keras's JAX `image.affine_transform`: output pixel (y, x) reads the input at
    (b0*x + b1*y + b2, a0*x + a1*y + a2) for each image's transform [a0, a1, a2, b0, b1, b2, c0, c1]
    (the layers' transforms have no projective terms), sampled in float32 (ops.image.sample_affine)."""
    from ...ops.image import sample_affine   # at trace time: ops.image imports the layers package
    unbatched = images.ndim == 3
    if unbatched:
        images = images[None]
        transforms = transforms.reshape(1, 8)
    if fmt == "channels_first":
        images = jnp.moveaxis(images, 1, -1)
    out = sample_affine(images, transforms.astype(jnp.float32), AFFINE_INTERPOLATIONS[interpolation], fill_mode,
                        fill_value)
    if fmt == "channels_first":
        out = jnp.moveaxis(out, -1, 1)
    return out[0] if unbatched else out
