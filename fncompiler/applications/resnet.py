"""ResNet50 (He et al., 2015) with Keras 3's layer names (conv1_conv, conv2_block1_1_conv, ...), layer order
and weight layout; random init or a local weights file, nothing is downloaded."""
from ..layers.convolutional import Conv2D
from ..layers.core import Activation
from ..layers.merging import Add
from ..layers.normalization import BatchNormalization
from ..layers.pooling import MaxPooling2D
from ..layers.spatial import ZeroPadding2D
from ..models.functional import Functional
from . import _common

_EPS = 1.001e-5


def _bn(name):
    return BatchNormalization(axis=3, epsilon=_EPS, name=name)


def residual_block_v1(x, filters, kernel_size=3, stride=1, conv_shortcut=True, name=None):
    """Bottleneck block: 1x1 -> kxk -> 1x1 (4 * filters), plus the shortcut (a 1x1 projection in the first block).

    The layers are created in Keras's `model.layers` order (by depth in the graph: the projection shortcut comes
    after the second convolution), so `model.layers` and `model.weights` list them as Keras does."""
    inputs = x
    x = Conv2D(filters, 1, strides=stride, name=f"{name}_1_conv")(inputs)
    x = Activation("relu", name=f"{name}_1_relu")(_bn(f"{name}_1_bn")(x))
    x = Conv2D(filters, kernel_size, padding="same", name=f"{name}_2_conv")(x)
    x = Activation("relu", name=f"{name}_2_relu")(_bn(f"{name}_2_bn")(x))
    if conv_shortcut:
        shortcut = Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(inputs)
        x = Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
        shortcut = _bn(f"{name}_0_bn")(shortcut)
    else:
        shortcut = inputs
        x = Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    x = _bn(f"{name}_3_bn")(x)
    x = Add(name=f"{name}_add")([shortcut, x])
    return Activation("relu", name=f"{name}_out")(x)


def stack_residual_blocks_v1(x, filters, blocks, stride1=2, name=None):
    x = residual_block_v1(x, filters, stride=stride1, name=f"{name}_block1")
    for i in range(2, blocks + 1):
        x = residual_block_v1(x, filters, conv_shortcut=False, name=f"{name}_block{i}")
    return x


def ResNet50(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=1000,
             classifier_activation="softmax", name="resnet50"):
    """ResNet50: a 7x7 stem and 16 bottleneck blocks in 4 stages (25,636,712 params at 224x224 with the top)."""
    _common.check_weights(weights, "ResNet50")
    img = _common.image_input("ResNet50", input_tensor, input_shape, include_top, 224)
    x = ZeroPadding2D(padding=((3, 3), (3, 3)), name="conv1_pad")(img)
    x = Conv2D(64, 7, strides=2, name="conv1_conv")(x)
    x = Activation("relu", name="conv1_relu")(_bn("conv1_bn")(x))
    x = ZeroPadding2D(padding=((1, 1), (1, 1)), name="pool1_pad")(x)
    x = MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    x = stack_residual_blocks_v1(x, 64, 3, stride1=1, name="conv2")
    x = stack_residual_blocks_v1(x, 128, 4, name="conv3")
    x = stack_residual_blocks_v1(x, 256, 6, name="conv4")
    x = stack_residual_blocks_v1(x, 512, 3, name="conv5")
    x = _common.top(x, "ResNet50", include_top, pooling, classes, classifier_activation)
    return _common.finish(Functional(img, x, name=name), weights)
