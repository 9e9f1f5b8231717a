"""What every application shares: the `weights` check (nothing is downloaded), the input shape rules, the
top (classifier or pooling) and Keras's `correct_pad`."""
import os

from ..layers.core import Dense
from ..layers.input_layer import Input
from ..layers.pooling import GlobalAveragePooling2D, GlobalMaxPooling2D


def check_weights(weights, model_name):
    """`weights` must be None or the path of an existing local weights file."""
    if isinstance(weights, str) and weights == "imagenet":
        raise ValueError(
            f"{model_name}: weights='imagenet' would download the ImageNet weights, and fncompiler never downloads "
            "anything. Pass weights=None for random initialization, or the path of a local weights file saved with "
            f"model.save_weights(...) from this architecture, e.g. {model_name}(weights='/path/to/file').")
    if weights is not None and not os.path.exists(os.fspath(weights)):
        raise FileNotFoundError(f"{model_name}: weights file {os.fspath(weights)!r} does not exist. Pass weights=None "
                                "or the path of a local weights file.")


def image_input(model_name, input_tensor, input_shape, include_top, default_size, min_size=32):
    """The model's input: `input_tensor`, or an Input of `input_shape` (default (size, size, 3) with the top,
    (None, None, 3) without), channels last, each known side at least `min_size`."""
    if input_tensor is not None:
        return input_tensor
    if input_shape is None:
        input_shape = (default_size, default_size, 3) if include_top else (None, None, 3)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"{model_name}: `input_shape` must be (height, width, channels) (channels last); received "
                         f"input_shape={input_shape}.")
    if any(d is not None and d < min_size for d in input_shape[:2]):
        raise ValueError(f"{model_name}: input size must be at least {min_size}x{min_size}; received "
                         f"input_shape={input_shape}.")
    if include_top and any(d is None for d in input_shape):
        raise ValueError(f"{model_name}: with include_top=True the input shape must be fully known (the classifier "
                         f"needs a fixed size); received input_shape={input_shape}.")
    return Input(shape=input_shape, name="input_layer")


def top(x, model_name, include_top, pooling, classes, classifier_activation, dense_kwargs=None, pool_names=True,
        dropout=None):
    """The classifier (global average pooling, optional Dropout, Dense `predictions`) or the pooling choice."""
    avg = {"name": "avg_pool"} if pool_names else {}
    if include_top:
        x = GlobalAveragePooling2D(**avg)(x)
        if dropout is not None:
            x = dropout(x)
        return Dense(classes, activation=classifier_activation, name="predictions", **(dense_kwargs or {}))(x)
    if pooling == "avg":
        return GlobalAveragePooling2D(**avg)(x)
    if pooling == "max":
        return GlobalMaxPooling2D(**({"name": "max_pool"} if pool_names else {}))(x)
    if pooling is not None:
        raise ValueError(f"{model_name}: pooling must be None, 'avg' or 'max'; received pooling={pooling!r}.")
    return x


def correct_pad(x, kernel_size):
    """Keras's zero padding before a stride-2 'valid' convolution: ((top, bottom), (left, right))."""
    size = tuple(x.shape[1:3])
    adjust = (1, 1) if size[0] is None else (1 - size[0] % 2, 1 - size[1] % 2)
    k = kernel_size // 2
    return ((k - adjust[0], k), (k - adjust[1], k))


def finish(model, weights):
    if weights is not None:
        model.load_weights(weights)
    return model
