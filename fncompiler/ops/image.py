"""`fncompiler.ops.image`: Keras 3's image ops (`keras.ops.image.*`) in JAX.

Each works on arrays and, like every fncompiler op, on symbolic tensors inside a functional model (the node
is named as Keras names it: `resize`, `extract_patches`, ...). Images are (H, W, C) or a batch (N, H, W, C)
(`data_format="channels_first"`: (C, H, W) / (N, C, H, W)); sizes and paddings are Python ints.
"""
import jax
import jax.numpy as jnp

from ..layers.conv_utils import standardize_data_format
from .numpy_ops import op

RESIZE_INTERPOLATIONS = ("bilinear", "nearest", "lanczos3", "lanczos5", "bicubic")
AFFINE_INTERPOLATIONS = {"nearest": 0, "bilinear": 1}   # spline order
FILL_MODES = ("constant", "nearest", "wrap", "mirror", "reflect")


def _check_image_rank(images, what="images", ranks=(3, 4)):
    if jnp.ndim(images) not in ranks:
        raise ValueError(f"Invalid {what} rank: expected rank 3 (single image) or rank 4 (batch of images). "
                         f"Received input with shape: {what}.shape={tuple(jnp.shape(images))}")


def _to_channels_last(images, data_format):
    """(images as a channels-last batch, function undoing that)."""
    single = images.ndim == 3
    if single:
        images = images[None]
    if data_format == "channels_first":
        perm = (0,) + tuple(range(2, images.ndim)) + (1,)
        images = jnp.transpose(images, perm)

    def undo(out):
        if data_format == "channels_first":
            out = jnp.moveaxis(out, -1, 1)
        return out[0] if single else out
    return images, undo


def _hw(images, data_format):
    return (images.shape[-3], images.shape[-2]) if data_format == "channels_last" else images.shape[-2:]


@op
def rgb_to_grayscale(images, data_format=None):
    """ITU-R 601 luma `0.2989 R + 0.5870 G + 0.1140 B`, keeping a channel axis of size 1 and the input dtype
    (a 1-channel image is returned as is)."""
    data_format = standardize_data_format(data_format)
    images = jnp.asarray(images)
    _check_image_rank(images)
    axis = -1 if data_format == "channels_last" else -3
    if images.shape[axis] not in (1, 3):
        raise ValueError(f"rgb_to_grayscale: expected 3 (RGB) or 1 (grayscale) channels on axis {axis}; received "
                         f"images of shape {images.shape}.")
    if images.shape[axis] == 1:
        return images
    compute = jnp.result_type(images.dtype, jnp.float32) if not jnp.issubdtype(images.dtype, jnp.floating) \
        else images.dtype
    weights = jnp.asarray([0.2989, 0.5870, 0.1140], compute)
    gray = jnp.tensordot(images.astype(compute), weights, axes=([axis], [0]))
    return jnp.expand_dims(gray, axis).astype(images.dtype)


def _aspect_box(height, width, target_height, target_width, grow):
    """(box height, box width, top, left) of the centred box with the target's aspect ratio: the largest one
    inside the image (`grow=False`, for cropping) or the smallest one holding it (`grow=True`, padding)."""
    box_h = int(float(width * target_height) / target_width)
    box_w = int(float(height * target_width) / target_height)
    if grow:
        box_h, box_w = max(height, box_h), max(width, box_w)
        return box_h, box_w, int((box_h - height) / 2), int((box_w - width) / 2)
    box_h, box_w = max(min(height, box_h), 1), max(min(width, box_w), 1)
    return box_h, box_w, int((height - box_h) / 2), int((width - box_w) / 2)


@op
def resize(images, size, interpolation="bilinear", antialias=False, crop_to_aspect_ratio=False,
           pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0, data_format=None):
    """Resize to `size=(height, width)` with `jax.image.resize` (what Keras's JAX backend runs).

    `crop_to_aspect_ratio` first takes the largest centred crop with the target's aspect ratio;
    `pad_to_aspect_ratio` instead pads the image (with `fill_value`, centred) to that ratio.
    """
    data_format = standardize_data_format(data_format)
    images = jnp.asarray(images)
    if interpolation not in RESIZE_INTERPOLATIONS:
        raise ValueError(f"resize: `interpolation` must be one of {RESIZE_INTERPOLATIONS}; received "
                         f"interpolation={interpolation!r}.")
    if fill_mode != "constant":
        raise ValueError(f"resize: only fill_mode='constant' is supported; received fill_mode={fill_mode!r}.")
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ValueError("resize: give only one of `crop_to_aspect_ratio` and `pad_to_aspect_ratio`.")
    if len(size) != 2:
        raise ValueError(f"resize: `size` must be (height, width); received size={size!r}.")
    _check_image_rank(images)
    target_h, target_w = (int(s) for s in size)
    x, undo = _to_channels_last(images, data_format)
    height, width = x.shape[1], x.shape[2]
    if crop_to_aspect_ratio:
        box_h, box_w, top, left = _aspect_box(height, width, target_h, target_w, grow=False)
        x = x[:, top:top + box_h, left:left + box_w, :]
    elif pad_to_aspect_ratio:
        box_h, box_w, top, left = _aspect_box(height, width, target_h, target_w, grow=True)
        # Keras pads the same amount on both sides (an odd remainder is not split).
        pads = ((0, 0), (top, top), (left, left), (0, 0))
        x = jnp.pad(x, pads, constant_values=jnp.asarray(fill_value, x.dtype))
    out = jax.image.resize(x, (x.shape[0], target_h, target_w, x.shape[3]), method=interpolation,
                           antialias=antialias)
    return undo(out)


@op
def extract_patches(images, size, strides=None, dilation_rate=1, padding="valid", data_format=None):
    """Patches of `size` (an int, (h, w), or (d, h, w) for volumes) as channels: the output's last axis holds
    each patch flattened in (row, column, channel) order, as Keras's identity-kernel convolution."""
    data_format = standardize_data_format(data_format)
    images = jnp.asarray(images)
    spatial = 3 if (not isinstance(size, int) and len(size) == 3) else 2
    size = (size,) * spatial if isinstance(size, int) else tuple(int(s) for s in size)
    if len(size) != spatial:
        raise TypeError(f"extract_patches: `size` must be an int or a tuple of length 2 or 3; received {size!r}.")
    strides = size if strides is None else strides
    strides = (strides,) * spatial if isinstance(strides, int) else tuple(int(s) for s in strides)
    dilation = (dilation_rate,) * spatial if isinstance(dilation_rate, int) else tuple(dilation_rate)
    if len(strides) != spatial or len(dilation) != spatial:
        raise ValueError(f"extract_patches: `strides` {strides} and `dilation_rate` {dilation_rate} must have "
                         f"{spatial} entries, as `size` {size}.")
    if str(padding).lower() not in ("valid", "same"):
        raise ValueError(f"extract_patches: `padding` must be 'valid' or 'same'; received {padding!r}.")
    if images.ndim not in (spatial + 1, spatial + 2):
        raise ValueError(f"extract_patches: {spatial}-D patches need inputs of rank {spatial + 1} or {spatial + 2}; "
                         f"received shape {images.shape}.")
    single = images.ndim == spatial + 1
    x = images[None] if single else images
    if data_format == "channels_first":
        x = jnp.moveaxis(x, 1, -1)
    spec = "N" + "DHW"[3 - spatial:] + "C"
    patches = jax.lax.conv_general_dilated_patches(
        x, size, strides, str(padding).upper(), rhs_dilation=dilation,
        dimension_numbers=(spec, spec.replace("N", "O").replace("C", "I"), spec),
        precision=jax.lax.Precision.HIGHEST)
    channels = x.shape[-1]
    # conv_general_dilated_patches orders each patch channel-major; Keras orders it channel-minor.
    lead = patches.shape[:-1]
    patches = patches.reshape(lead + (channels, -1))
    patches = jnp.swapaxes(patches, -1, -2).reshape(lead + (-1,)).astype(images.dtype)
    if data_format == "channels_first":
        patches = jnp.moveaxis(patches, -1, 1)
    return patches[0] if single else patches


@op
def affine_transform(images, transform, interpolation="bilinear", fill_mode="constant", fill_value=0,
                     data_format=None):
    """Sample each image at transformed points: `transform` is [a0, a1, a2, b0, b1, b2, c0, c1] (or one row
    per image) mapping an output pixel (x, y) to the input point ((a0 x + a1 y + a2) / k,
    (b0 x + b1 y + b2) / k) with k = c0 x + c1 y + 1; points outside are filled per `fill_mode`."""
    data_format = standardize_data_format(data_format)
    if interpolation not in AFFINE_INTERPOLATIONS:
        raise ValueError(f"affine_transform: `interpolation` must be one of {sorted(AFFINE_INTERPOLATIONS)}; "
                         f"received interpolation={interpolation!r}.")
    if fill_mode not in FILL_MODES:
        raise ValueError(f"affine_transform: `fill_mode` must be one of {FILL_MODES}; received "
                         f"fill_mode={fill_mode!r}.")
    images = jnp.asarray(images)
    _check_image_rank(images)
    transform = jnp.asarray(transform)
    if transform.ndim not in (1, 2) or transform.shape[-1] != 8:
        raise ValueError("affine_transform: `transform` must have shape (8,) or (batch, 8); received shape "
                         f"{transform.shape}.")
    x, undo = _to_channels_last(images, data_format)
    batch = x.shape[0]
    transform = jnp.broadcast_to(transform.reshape(-1, 8), (batch, 8)).astype(
        x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32)
    return undo(sample_affine(x, transform, AFFINE_INTERPOLATIONS[interpolation], fill_mode, fill_value))


def sample_affine(images, transforms, order, fill_mode, fill_value):
    """The warp behind `affine_transform` (and the augmentation layers): `images` (N, H, W, C), `transforms`
    (N, 8) in the dtype the sampling points are computed in, `order` the spline order; no argument checks."""
    _, height, width, _ = images.shape
    rows, cols = jnp.meshgrid(jnp.arange(height, dtype=transforms.dtype),
                              jnp.arange(width, dtype=transforms.dtype), indexing="ij")

    def one(image, t):
        k = t[6] * cols + t[7] * rows + 1
        src_cols = (t[0] * cols + t[1] * rows + t[2]) / k
        src_rows = (t[3] * cols + t[4] * rows + t[5]) / k

        def channel(plane):
            return jax.scipy.ndimage.map_coordinates(plane, [src_rows, src_cols], order=order, mode=fill_mode,
                                                     cval=fill_value)
        return jax.vmap(channel, in_axes=-1, out_axes=-1)(image)
    return jax.vmap(one)(images, transforms).astype(images.dtype)


def _edges(start, end, target, extent, names, what, sign):
    """(start, end): rows/columns removed (`sign=-1`, cropping) or added (`sign=+1`, padding) at each end of
    an axis of `extent`, given two of (start, end, target size) -- the target being extent + sign * both."""
    given = [start, end, target]
    if given.count(None) != 1:
        raise ValueError(f"{what}: give exactly two of {', '.join(names)}; received " +
                         ", ".join(f"{n}={v}" for n, v in zip(names, given)) + ".")
    if target is None:
        target = extent + sign * (start + end)
    elif start is None:
        start = sign * (target - extent) - end
    else:
        end = sign * (target - extent) - start
    for n, v in zip(names, (start, end, target)):
        if int(v) < 0:
            raise ValueError(f"{what}: {n} must be >= 0; received or implied {n}={v} (images of {extent} "
                             f"{'rows' if 'top' in names[0] else 'columns'}).")
    return int(start), int(end)


def _box(images, data_format, what, sign, top, bottom, height, left, right, width, suffix):
    """((top, bottom), (left, right)) for crop_images (sign -1) and pad_images (sign +1)."""
    rows, cols = _hw(images, data_format)
    return (_edges(top, bottom, height, rows, (f"top_{suffix}", f"bottom_{suffix}", "target_height"), what, sign),
            _edges(left, right, width, cols, (f"left_{suffix}", f"right_{suffix}", "target_width"), what, sign))


@op
def crop_images(images, top_cropping=None, left_cropping=None, bottom_cropping=None, right_cropping=None,
                target_height=None, target_width=None, data_format=None):
    """Crop rows/columns: on each axis give two of (start cropping, end cropping, target size)."""
    data_format = standardize_data_format(data_format)
    images = jnp.asarray(images)
    _check_image_rank(images)
    (top, bottom), (left, right) = _box(images, data_format, "crop_images", -1, top_cropping, bottom_cropping,
                                        target_height, left_cropping, right_cropping, target_width, "cropping")
    height, width = _hw(images, data_format)
    rows, cols = slice(top, height - bottom), slice(left, width - right)
    if data_format == "channels_last":
        return images[..., rows, cols, :]
    return images[..., rows, cols]


@op
def pad_images(images, top_padding=None, left_padding=None, bottom_padding=None, right_padding=None,
               target_height=None, target_width=None, data_format=None):
    """Zero-pad rows/columns: on each axis give two of (start padding, end padding, target size)."""
    data_format = standardize_data_format(data_format)
    images = jnp.asarray(images)
    _check_image_rank(images)
    (top, bottom), (left, right) = _box(images, data_format, "pad_images", 1, top_padding, bottom_padding,
                                        target_height, left_padding, right_padding, target_width, "padding")
    pads = [(top, bottom), (left, right)]
    pads = pads + [(0, 0)] if data_format == "channels_last" else [(0, 0)] + pads
    pads = [(0, 0)] * (images.ndim - 3) + pads
    return jnp.pad(images, pads)


__all__ = ["rgb_to_grayscale", "resize", "extract_patches", "affine_transform", "crop_images", "pad_images"]

from ..keras_names import install as _install_getattr  # noqa: E402
__getattr__ = _install_getattr("ops.image", globals())
