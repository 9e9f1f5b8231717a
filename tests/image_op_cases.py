"""The keras.ops.image cases, written once for both libraries: tests/keras_reference/record_image_ops.py
recorded Keras's results of `cases(keras.ops)`, tests/test_ops_image.py compares `cases(fncompiler.ops)` with
them. Imports neither library (only NumPy)."""
import numpy as np


def images():
    return (np.sin(np.arange(2 * 6 * 8 * 3, dtype="float32") * 0.37) * 0.5 + 0.5).reshape(2, 6, 8, 3)


def summary(out):
    out = np.asarray(out, dtype="float64")
    w = np.sin(np.arange(out.size))
    return [list(out.shape), float(out.sum()), float((out.ravel() * w).sum()), out.ravel()[:6].tolist()]


def tiled(t):
    return np.tile(np.array(t, "float32"), (2, 1))


def cases(ops):
    """{name: fn(images) -> result} using `ops.image`."""
    CASES = {
        "gray": lambda x: ops.image.rgb_to_grayscale(x),
        "gray_single": lambda x: ops.image.rgb_to_grayscale(x[0]),
        "gray_cf": lambda x: ops.image.rgb_to_grayscale(np.transpose(x, (0, 3, 1, 2)), data_format="channels_first"),
    }
    for _method in ("bilinear", "nearest", "bicubic", "lanczos3", "lanczos5"):
        CASES[f"resize_{_method}_up"] = lambda x, m=_method: ops.image.resize(x, (9, 11), interpolation=m)
        CASES[f"resize_{_method}_down"] = lambda x, m=_method: ops.image.resize(x, (4, 5), interpolation=m)
        CASES[f"resize_{_method}_down_aa"] = lambda x, m=_method: ops.image.resize(x, (3, 4), interpolation=m,
                                                                                   antialias=True)
    CASES.update({
        "resize_crop": lambda x: ops.image.resize(x, (4, 4), crop_to_aspect_ratio=True),
        "resize_pad": lambda x: ops.image.resize(x, (4, 4), pad_to_aspect_ratio=True, fill_value=0.5),
        "resize_pad_tall": lambda x: ops.image.resize(x, (6, 3), pad_to_aspect_ratio=True, fill_value=0.25),
        "resize_single_cf": lambda x: ops.image.resize(np.transpose(x[0], (2, 0, 1)), (5, 7),
                                                       data_format="channels_first"),
        "patches_2": lambda x: ops.image.extract_patches(x, 2),
        "patches_3_s2_same": lambda x: ops.image.extract_patches(x, (3, 3), strides=2, padding="same"),
        "patches_2_d2": lambda x: ops.image.extract_patches(x, 2, strides=1, dilation_rate=2),
        "patches_single": lambda x: ops.image.extract_patches(x[0], (2, 4)),
        "affine_bilinear": lambda x: ops.image.affine_transform(x, tiled([1, 0.2, 0.5, 0.1, 1, -0.5, 0, 0])),
        "affine_nearest_reflect": lambda x: ops.image.affine_transform(
            x, np.array([[0.9, -0.3, 1.5, 0.3, 0.9, -1.0, 0, 0], [1.2, 0, -1, 0, 0.8, 1, 0, 0]], "float32"),
            interpolation="nearest", fill_mode="reflect"),
        "affine_wrap": lambda x: ops.image.affine_transform(x, tiled([1, 0, 2.5, 0, 1, -1.5, 0, 0]), fill_mode="wrap"),
        "affine_nearest_mode": lambda x: ops.image.affine_transform(x, tiled([1.1, 0, 3, 0, 1.1, 2, 0, 0]),
                                                                    fill_mode="nearest"),
        "affine_mirror_fill": lambda x: ops.image.affine_transform(x[0], np.array([0.7, 0.1, 4, -0.2, 0.7, 3, 0, 0],
                                                                                    "float32"), fill_mode="mirror"),
        "affine_constant_fill": lambda x: ops.image.affine_transform(x, tiled([1, 0, 3, 0, 1, 2, 0, 0]),
                                                                     fill_value=0.75),
        "crop": lambda x: ops.image.crop_images(x, top_cropping=1, left_cropping=2, target_height=3, target_width=4),
        "crop_bottom_right": lambda x: ops.image.crop_images(x[0], top_cropping=1, bottom_cropping=2, left_cropping=1,
                                                             right_cropping=3),
        "pad": lambda x: ops.image.pad_images(x, top_padding=1, left_padding=2, target_height=9, target_width=11),
        "pad_bottom_right": lambda x: ops.image.pad_images(x[0], bottom_padding=2, right_padding=1, target_height=10,
                                                           target_width=9),
    })
    return CASES
