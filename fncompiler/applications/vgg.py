"""VGG16 and VGG19 (Simonyan & Zisserman, 2014) with Keras's layer names and weight layout.

ImageNet weights cannot be downloaded here: pass `weights=None` (random init) or the path of a weights
file saved with `model.save_weights(...)` from a model of the same architecture.
"""
from ..layers.convolutional import Conv2D
from ..layers.core import Dense
from ..layers.input_layer import Input
from ..layers.pooling import GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D
from ..layers.reshaping import Flatten
from ..models.functional import Functional
from . import _common

_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
_FILTERS = (64, 128, 256, 512, 512)


def _vgg(kind, include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation, name):
    _common.check_weights(weights, kind.upper())
    if input_tensor is not None:
        img = input_tensor
    else:
        if input_shape is None:
            input_shape = (224, 224, 3) if include_top else (None, None, 3)
        if include_top and tuple(input_shape) != (224, 224, 3) and weights is not None:
            raise ValueError(f"With include_top=True and loaded weights the input shape must be (224, 224, 3); "
                             f"received {input_shape}.")
        img = Input(shape=input_shape, name="input_layer")
    x = img
    for b, (n, f) in enumerate(zip(_BLOCKS[kind], _FILTERS), start=1):
        for c in range(1, n + 1):
            x = Conv2D(f, (3, 3), activation="relu", padding="same", name=f"block{b}_conv{c}")(x)
        x = MaxPooling2D((2, 2), strides=(2, 2), name=f"block{b}_pool")(x)
    if include_top:
        x = Flatten(name="flatten")(x)
        x = Dense(4096, activation="relu", name="fc1")(x)
        x = Dense(4096, activation="relu", name="fc2")(x)
        x = Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = GlobalAveragePooling2D()(x)
    elif pooling == "max":
        x = GlobalMaxPooling2D()(x)
    elif pooling is not None:
        raise ValueError(f"pooling must be None, 'avg' or 'max'; received {pooling!r}.")
    model = Functional(img, x, name=name)
    if weights is not None:
        model.load_weights(weights)
    return model


def VGG16(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=1000,
          classifier_activation="softmax", name="vgg16"):
    """VGG16: 13 convolutions in 5 blocks, then 3 dense layers (138,357,544 params with the top)."""
    return _vgg("vgg16", include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation,
                name)


def VGG19(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=1000,
          classifier_activation="softmax", name="vgg19"):
    """VGG19: 16 convolutions in 5 blocks, then 3 dense layers (143,667,240 params with the top)."""
    return _vgg("vgg19", include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation,
                name)
