"""DenseNet121 (Huang et al., 2016) with Keras 3's layer names (conv1_conv, conv2_block1_0_bn, pool2_conv, ...),
layer order and weight layout; random init or a local weights file, nothing is downloaded."""
from ..layers.convolutional import Conv2D
from ..layers.core import Activation
from ..layers.merging import Concatenate
from ..layers.normalization import BatchNormalization
from ..layers.pooling import AveragePooling2D, MaxPooling2D
from ..layers.spatial import ZeroPadding2D
from ..models.functional import Functional
from . import _common

_EPS = 1.001e-5


def _bn_relu(x, name):
    x = BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_bn")(x)
    return Activation("relu", name=f"{name}_relu")(x)


def conv_block(x, growth_rate, name):
    """BN-ReLU-1x1 (4 * growth) -> BN-ReLU-3x3 (growth), concatenated to the block's input."""
    x1 = _bn_relu(x, f"{name}_0")
    x1 = Conv2D(4 * growth_rate, 1, use_bias=False, name=f"{name}_1_conv")(x1)
    x1 = _bn_relu(x1, f"{name}_1")
    x1 = Conv2D(growth_rate, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(x1)
    return Concatenate(axis=3, name=f"{name}_concat")([x, x1])


def dense_block(x, blocks, name):
    for i in range(blocks):
        x = conv_block(x, 32, name=f"{name}_block{i + 1}")
    return x


def transition_block(x, reduction, name):
    x = _bn_relu(x, name)
    x = Conv2D(int(x.shape[3] * reduction), 1, use_bias=False, name=f"{name}_conv")(x)
    return AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)


def DenseNet(blocks, include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=1000,
             classifier_activation="softmax", name="densenet"):
    """The DenseNet family's builder: `blocks` conv blocks in each of the 4 dense blocks."""
    _common.check_weights(weights, name)
    img = _common.image_input(name, input_tensor, input_shape, include_top, 224)
    x = ZeroPadding2D(padding=((3, 3), (3, 3)))(img)
    x = Conv2D(64, 7, strides=2, use_bias=False, name="conv1_conv")(x)
    x = BatchNormalization(axis=3, epsilon=_EPS, name="conv1_bn")(x)
    x = Activation("relu", name="conv1_relu")(x)
    x = ZeroPadding2D(padding=((1, 1), (1, 1)))(x)
    x = MaxPooling2D(3, strides=2, name="pool1")(x)
    for i, n in enumerate(blocks):
        x = dense_block(x, n, name=f"conv{i + 2}")
        if i < len(blocks) - 1:
            x = transition_block(x, 0.5, name=f"pool{i + 2}")
    x = BatchNormalization(axis=3, epsilon=_EPS, name="bn")(x)
    x = Activation("relu", name="relu")(x)
    x = _common.top(x, name, include_top, pooling, classes, classifier_activation)
    return _common.finish(Functional(img, x, name=name), weights)


def DenseNet121(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=1000,
                classifier_activation="softmax", name="densenet121"):
    """DenseNet121: dense blocks of 6, 12, 24 and 16 conv blocks (8,062,504 params at 224x224 with the top)."""
    return DenseNet([6, 12, 24, 16], include_top, weights, input_tensor, input_shape, pooling, classes,
                    classifier_activation, name)
