"""`image_dataset_from_directory` (keras.utils): a folder of class subfolders of images -> a Dataset of batches.

Images are decoded and resized with Pillow, an optional dependency (``pip install fncompiler[images]``), read
batch by batch as the dataset is iterated (nothing is decoded up front).
"""
import numpy as np

from . import directory as dir_lib

__all__ = ["image_dataset_from_directory", "load_image"]

ALLOWED_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_MODES = {"rgb": ("RGB", 3), "rgba": ("RGBA", 4), "grayscale": ("L", 1)}
_FILTERS = ("bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5", "gaussian", "mitchellcubic")


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("image_dataset_from_directory reads images with Pillow, which is not installed; install "
                          "it with `pip install pillow` (or `pip install fncompiler[images]`).") from None
    return Image


def _resample(Image, interpolation):
    r = Image.Resampling
    return {"bilinear": r.BILINEAR, "nearest": r.NEAREST, "bicubic": r.BICUBIC, "area": r.BOX,
            "lanczos3": r.LANCZOS, "lanczos5": r.LANCZOS, "gaussian": r.BICUBIC,
            "mitchellcubic": r.BICUBIC}[interpolation]


def load_image(path, image_size, color_mode="rgb", interpolation="bilinear", crop_to_aspect_ratio=False,
               pad_to_aspect_ratio=False, data_format="channels_last"):
    """One image file -> float32 array (height, width, channels) (channels first with data_format), pixel values
    0..255. crop_to_aspect_ratio: centre-crop to the target aspect ratio before resizing; pad_to_aspect_ratio:
    pad with zeros to it instead."""
    Image = _pillow()
    mode, _ = _MODES[color_mode]
    height, width = image_size
    with Image.open(path) as img:
        img = img.convert(mode)
        w, h = img.size
        if crop_to_aspect_ratio:
            cw, ch = min(w, int(round(h * width / height))), min(h, int(round(w * height / width)))
            left, top = (w - cw) // 2, (h - ch) // 2
            img = img.crop((left, top, left + cw, top + ch))
        elif pad_to_aspect_ratio:
            pw, ph = max(w, int(round(h * width / height))), max(h, int(round(w * height / width)))
            canvas = Image.new(mode, (pw, ph))
            canvas.paste(img, ((pw - w) // 2, (ph - h) // 2))
            img = canvas
        if img.size != (width, height):
            img = img.resize((width, height), resample=_resample(Image, interpolation))
        arr = np.asarray(img, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return np.transpose(arr, (2, 0, 1)) if data_format == "channels_first" else arr


def image_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None,
                                 color_mode="rgb", batch_size=32, image_size=(256, 256), shuffle=True, seed=None,
                                 validation_split=None, subset=None, interpolation="bilinear", follow_links=False,
                                 crop_to_aspect_ratio=False, pad_to_aspect_ratio=False, data_format=None,
                                 verbose=True):
    """Keras's arguments and meaning: `directory`/class_a/*.png ... gives labels 0, 1, ... in sorted subfolder
    order (`class_names` to choose and order them), or labels=None (images only) or a list of ints (one per file,
    sorted path order). label_mode: "int" (int32 (batch,)), "categorical" (float32 one-hot), "binary" (float32
    (batch, 1), exactly two classes) or None. Images: float32 (batch, *image_size, channels) with 1/3/4 channels
    for color_mode "grayscale"/"rgb"/"rgba", values 0..255. validation_split + subset ("training", "validation"
    or "both": a [train, validation] list) split the (seeded, shuffled) files as Keras does. Returns a
    `fncompiler.utils.Dataset` (or two) with `.class_names` and `.file_paths`, iterated by fit/evaluate/predict.
    Resizing uses Pillow's filter of the same name (area: box; gaussian, mitchellcubic: bicubic), so pixel
    values can differ slightly from TensorFlow's resize.
    """
    fn = "image_dataset_from_directory"
    _pillow()
    labels, label_mode, seed = dir_lib.check_arguments(fn, labels, label_mode, validation_split, subset, shuffle,
                                                       seed)
    if color_mode not in _MODES:
        raise ValueError(f'{fn}: color_mode must be "rgb", "rgba" or "grayscale"; received {color_mode!r}.')
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    if not isinstance(image_size, (list, tuple)) or len(image_size) != 2 or \
            not all(isinstance(d, int) and d > 0 for d in image_size):
        raise ValueError(f"{fn}: image_size must be (height, width), two positive ints; received {image_size!r}.")
    interpolation = interpolation.lower()
    if interpolation not in _FILTERS:
        raise ValueError(f"{fn}: interpolation must be one of {_FILTERS}; received {interpolation!r}.")
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ValueError(f"{fn}: crop_to_aspect_ratio and pad_to_aspect_ratio cannot both be True.")
    data_format = data_format or "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f'{fn}: data_format must be "channels_last" or "channels_first"; received '
                         f"{data_format!r}.")

    def load(path):
        return load_image(path, tuple(image_size), color_mode, interpolation, crop_to_aspect_ratio,
                          pad_to_aspect_ratio, data_format)

    return dir_lib.directory_datasets(fn, directory, ALLOWED_FORMATS, "images", load, labels, label_mode,
                                      class_names, batch_size, shuffle, seed, validation_split, subset, follow_links,
                                      verbose)
