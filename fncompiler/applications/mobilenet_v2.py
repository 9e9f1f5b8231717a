"""MobileNetV2 (Sandler et al., 2018) with Keras 3's layer names (Conv1, block_1_expand, ...), layer order and
weight layout; `alpha` scales the widths. Random init or a local weights file, nothing is downloaded."""
from ..layers.activation_layers import ReLU
from ..layers.convolutional import Conv2D, DepthwiseConv2D
from ..layers.merging import Add
from ..layers.normalization import BatchNormalization
from ..layers.spatial import ZeroPadding2D
from ..models.functional import Functional
from . import _common

# (filters, stride, expansion) of the 17 inverted residual blocks
_BLOCKS = [(16, 1, 1), (24, 2, 6), (24, 1, 6), (32, 2, 6), (32, 1, 6), (32, 1, 6), (64, 2, 6), (64, 1, 6),
           (64, 1, 6), (64, 1, 6), (96, 1, 6), (96, 1, 6), (96, 1, 6), (160, 2, 6), (160, 1, 6), (160, 1, 6),
           (320, 1, 6)]


def _make_divisible(v, divisor, min_value=None):
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _bn(name):
    return BatchNormalization(axis=-1, epsilon=1e-3, momentum=0.999, name=name)


def _inverted_res_block(inputs, expansion, stride, alpha, filters, block_id):
    in_channels = inputs.shape[-1]
    pointwise_filters = _make_divisible(int(filters * alpha), 8)
    x = inputs
    prefix = f"block_{block_id}_"
    if block_id:
        x = Conv2D(expansion * in_channels, kernel_size=1, padding="same", use_bias=False, activation=None,
                   name=f"{prefix}expand")(x)
        x = ReLU(6.0, name=f"{prefix}expand_relu")(_bn(f"{prefix}expand_BN")(x))
    else:
        prefix = "expanded_conv_"
    if stride == 2:
        x = ZeroPadding2D(padding=_common.correct_pad(x, 3), name=f"{prefix}pad")(x)
    x = DepthwiseConv2D(kernel_size=3, strides=stride, activation=None, use_bias=False,
                        padding="same" if stride == 1 else "valid", name=f"{prefix}depthwise")(x)
    x = ReLU(6.0, name=f"{prefix}depthwise_relu")(_bn(f"{prefix}depthwise_BN")(x))
    x = Conv2D(pointwise_filters, kernel_size=1, padding="same", use_bias=False, activation=None,
               name=f"{prefix}project")(x)
    x = _bn(f"{prefix}project_BN")(x)
    if in_channels == pointwise_filters and stride == 1:
        return Add(name=f"{prefix}add")([inputs, x])
    return x


def MobileNetV2(input_shape=None, alpha=1.0, include_top=True, weights=None, input_tensor=None, pooling=None,
                classes=1000, classifier_activation="softmax", name=None):
    """MobileNetV2: a stride-2 stem, 17 inverted residual blocks (depthwise 3x3 between 1x1 expansions and
    projections, ReLU6) and a 1x1 convolution to 1280 channels (3,538,984 params at 224x224 with the top)."""
    _common.check_weights(weights, "MobileNetV2")
    if input_shape is not None and len(tuple(input_shape)) == 3:
        rows, cols = tuple(input_shape)[:2]
        default_size = rows if rows == cols and rows in (96, 128, 160, 192, 224) else 224
    elif input_tensor is not None:
        rows, cols = tuple(input_tensor.shape)[1:3]
        default_size = rows if rows == cols and rows in (96, 128, 160, 192, 224) else 224
    else:
        default_size = 224
    img = _common.image_input("MobileNetV2", input_tensor, input_shape, include_top, default_size)
    x = Conv2D(_make_divisible(32 * alpha, 8), kernel_size=3, strides=(2, 2), padding="same", use_bias=False,
               name="Conv1")(img)
    x = ReLU(6.0, name="Conv1_relu")(_bn("bn_Conv1")(x))
    for block_id, (filters, stride, expansion) in enumerate(_BLOCKS):
        x = _inverted_res_block(x, filters=filters, alpha=alpha, stride=stride, expansion=expansion,
                                block_id=block_id)
    last = _make_divisible(1280 * alpha, 8) if alpha > 1.0 else 1280
    x = Conv2D(last, kernel_size=1, use_bias=False, name="Conv_1")(x)
    x = ReLU(6.0, name="out_relu")(_bn("Conv_1_bn")(x))
    x = _common.top(x, "MobileNetV2", include_top, pooling, classes, classifier_activation, pool_names=False)
    if name is None:
        name = f"mobilenetv2_{alpha:0.2f}_{img.shape[1]}"   # as Keras: "..._None" for an unknown size
    return _common.finish(Functional(img, x, name=name), weights)
