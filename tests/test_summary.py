"""Tests of fncompiler.utils.summary (Model.summary), against the tables of the Keras functional API guide.

The golden tables below are the guide's `model.summary()` outputs, character for character; the models are
built with the same layer names (passed explicitly). The guide printed the mnist table at width 88 and the
others at width 76 (Keras's default width capped at an 80-column terminal minus 4).

The conv models are built twice: with a minimal stand-in implementation of the conv / pooling layers
defined here (same class names, weights and output shapes), so the summary is checked on its own, and with
fncompiler's own Conv2D / pooling layers when `fncompiler.layers` exports them (skipped otherwise).
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import layers
from fncompiler.utils import summary as summary_utils

MNIST = """\
Model: "mnist_model"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━┓
┃ Layer (type)                         ┃ Output Shape                ┃         Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━┩
│ input_layer_5 (InputLayer)           │ (None, 784)                 │               0 │
├──────────────────────────────────────┼─────────────────────────────┼─────────────────┤
│ dense_10 (Dense)                     │ (None, 64)                  │          50,240 │
├──────────────────────────────────────┼─────────────────────────────┼─────────────────┤
│ dense_11 (Dense)                     │ (None, 64)                  │           4,160 │
├──────────────────────────────────────┼─────────────────────────────┼─────────────────┤
│ dense_12 (Dense)                     │ (None, 10)                  │             650 │
└──────────────────────────────────────┴─────────────────────────────┴─────────────────┘
 Total params: 55,050 (215.04 KB)
 Trainable params: 55,050 (215.04 KB)
 Non-trainable params: 0 (0.00 B)"""

ENCODER = """\
Model: "encoder"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ img (InputLayer)                │ (None, 28, 28, 1)      │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d (Conv2D)                 │ (None, 26, 26, 16)     │           160 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_1 (Conv2D)               │ (None, 24, 24, 32)     │         4,640 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ max_pooling2d (MaxPooling2D)    │ (None, 8, 8, 32)       │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_2 (Conv2D)               │ (None, 6, 6, 32)       │         9,248 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_3 (Conv2D)               │ (None, 4, 4, 16)       │         4,624 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ global_max_pooling2d            │ (None, 16)             │             0 │
│ (GlobalMaxPooling2D)            │                        │               │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 18,672 (72.94 KB)
 Trainable params: 18,672 (72.94 KB)
 Non-trainable params: 0 (0.00 B)"""

AUTOENCODER = """\
Model: "autoencoder"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ img (InputLayer)                │ (None, 28, 28, 1)      │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d (Conv2D)                 │ (None, 26, 26, 16)     │           160 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_1 (Conv2D)               │ (None, 24, 24, 32)     │         4,640 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ max_pooling2d (MaxPooling2D)    │ (None, 8, 8, 32)       │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_2 (Conv2D)               │ (None, 6, 6, 32)       │         9,248 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_3 (Conv2D)               │ (None, 4, 4, 16)       │         4,624 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ global_max_pooling2d            │ (None, 16)             │             0 │
│ (GlobalMaxPooling2D)            │                        │               │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ reshape (Reshape)               │ (None, 4, 4, 1)        │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_transpose                │ (None, 6, 6, 16)       │           160 │
│ (Conv2DTranspose)               │                        │               │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_transpose_1              │ (None, 8, 8, 32)       │         4,640 │
│ (Conv2DTranspose)               │                        │               │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ up_sampling2d (UpSampling2D)    │ (None, 24, 24, 32)     │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_transpose_2              │ (None, 26, 26, 16)     │         4,624 │
│ (Conv2DTranspose)               │                        │               │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_transpose_3              │ (None, 28, 28, 1)      │           145 │
│ (Conv2DTranspose)               │                        │               │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 28,241 (110.32 KB)
 Trainable params: 28,241 (110.32 KB)
 Non-trainable params: 0 (0.00 B)"""

ENCODER_2 = """\
Model: "encoder"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ original_img (InputLayer)       │ (None, 28, 28, 1)      │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_4 (Conv2D)               │ (None, 26, 26, 16)     │           160 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_5 (Conv2D)               │ (None, 24, 24, 32)     │         4,640 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ max_pooling2d_1 (MaxPooling2D)  │ (None, 8, 8, 32)       │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_6 (Conv2D)               │ (None, 6, 6, 32)       │         9,248 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_7 (Conv2D)               │ (None, 4, 4, 16)       │         4,624 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ global_max_pooling2d_1          │ (None, 16)             │             0 │
│ (GlobalMaxPooling2D)            │                        │               │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 18,672 (72.94 KB)
 Trainable params: 18,672 (72.94 KB)
 Non-trainable params: 0 (0.00 B)"""

DECODER = """\
Model: "decoder"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ encoded_img (InputLayer)        │ (None, 16)             │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ reshape_1 (Reshape)             │ (None, 4, 4, 1)        │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_transpose_4              │ (None, 6, 6, 16)       │           160 │
│ (Conv2DTranspose)               │                        │               │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_transpose_5              │ (None, 8, 8, 32)       │         4,640 │
│ (Conv2DTranspose)               │                        │               │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ up_sampling2d_1 (UpSampling2D)  │ (None, 24, 24, 32)     │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_transpose_6              │ (None, 26, 26, 16)     │         4,624 │
│ (Conv2DTranspose)               │                        │               │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_transpose_7              │ (None, 28, 28, 1)      │           145 │
│ (Conv2DTranspose)               │                        │               │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 9,569 (37.38 KB)
 Trainable params: 9,569 (37.38 KB)
 Non-trainable params: 0 (0.00 B)"""

NESTED_AUTOENCODER = """\
Model: "autoencoder"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ img (InputLayer)                │ (None, 28, 28, 1)      │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ encoder (Functional)            │ (None, 16)             │        18,672 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ decoder (Functional)            │ (None, 28, 28, 1)      │         9,569 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 28,241 (110.32 KB)
 Trainable params: 28,241 (110.32 KB)
 Non-trainable params: 0 (0.00 B)"""

TOY_RESNET = """\
Model: "toy_resnet"
┏━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┓
┃ Layer (type)        ┃ Output Shape      ┃    Param # ┃ Connected to      ┃
┡━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━┩
│ img (InputLayer)    │ (None, 32, 32, 3) │          0 │ -                 │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ conv2d_8 (Conv2D)   │ (None, 30, 30,    │        896 │ img[0][0]         │
│                     │ 32)               │            │                   │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ conv2d_9 (Conv2D)   │ (None, 28, 28,    │     18,496 │ conv2d_8[0][0]    │
│                     │ 64)               │            │                   │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ max_pooling2d_2     │ (None, 9, 9, 64)  │          0 │ conv2d_9[0][0]    │
│ (MaxPooling2D)      │                   │            │                   │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ conv2d_10 (Conv2D)  │ (None, 9, 9, 64)  │     36,928 │ max_pooling2d_2[… │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ conv2d_11 (Conv2D)  │ (None, 9, 9, 64)  │     36,928 │ conv2d_10[0][0]   │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ add (Add)           │ (None, 9, 9, 64)  │          0 │ conv2d_11[0][0],  │
│                     │                   │            │ max_pooling2d_2[… │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ conv2d_12 (Conv2D)  │ (None, 9, 9, 64)  │     36,928 │ add[0][0]         │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ conv2d_13 (Conv2D)  │ (None, 9, 9, 64)  │     36,928 │ conv2d_12[0][0]   │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ add_1 (Add)         │ (None, 9, 9, 64)  │          0 │ conv2d_13[0][0],  │
│                     │                   │            │ add[0][0]         │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ conv2d_14 (Conv2D)  │ (None, 7, 7, 64)  │     36,928 │ add_1[0][0]       │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ global_average_poo… │ (None, 64)        │          0 │ conv2d_14[0][0]   │
│ (GlobalAveragePool… │                   │            │                   │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ dense_6 (Dense)     │ (None, 256)       │     16,640 │ global_average_p… │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ dropout (Dropout)   │ (None, 256)       │          0 │ dense_6[0][0]     │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ dense_7 (Dense)     │ (None, 10)        │      2,570 │ dropout[0][0]     │
└─────────────────────┴───────────────────┴────────────┴───────────────────┘
 Total params: 223,242 (872.04 KB)
 Trainable params: 223,242 (872.04 KB)
 Non-trainable params: 0 (0.00 B)"""


# -- stand-in conv layers (used only while fncompiler.layers has no Conv2D) --------------------------------
class _StandInConv2D(layers.Layer):
    def __init__(self, filters, kernel_size, activation=None, padding="valid", kernel_initializer="glorot_uniform",
                 **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.padding = filters, kernel_size, padding.upper()
        self.kernel_initializer = kernel_initializer
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        k = self.kernel_size
        self.kernel = self.add_weight((k, k, input_shape[-1], self.filters), self.kernel_initializer, name="kernel")
        self.bias = self.add_weight((self.filters,), initializer="zeros", name="bias")

    def call(self, x):
        y = jax.lax.conv_general_dilated(x, self.kernel.value, (1, 1), self.padding,
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return self.activation(y + self.bias.value)


class _StandInConv2DTranspose(_StandInConv2D):
    def build(self, input_shape):
        k = self.kernel_size
        self.kernel = self.add_weight((k, k, self.filters, input_shape[-1]), self.kernel_initializer, name="kernel")
        self.bias = self.add_weight((self.filters,), initializer="zeros", name="bias")

    def call(self, x):
        y = jax.lax.conv_transpose(x, self.kernel.value, (1, 1), self.padding,
                                   dimension_numbers=("NHWC", "HWOI", "NHWC"))
        return self.activation(y + self.bias.value)


class _StandInMaxPooling2D(layers.Layer):
    def __init__(self, pool_size, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = pool_size

    def call(self, x):
        p = self.pool_size
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, p, p, 1), (1, p, p, 1), "VALID")


class _StandInUpSampling2D(layers.Layer):
    def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        self.size = size

    def call(self, x):
        return jnp.repeat(jnp.repeat(x, self.size, axis=1), self.size, axis=2)


class _StandInGlobalMaxPooling2D(layers.Layer):
    def call(self, x):
        return jnp.max(x, axis=(1, 2))


class _StandInGlobalAveragePooling2D(layers.Layer):
    def call(self, x):
        return jnp.mean(x, axis=(1, 2))


_STAND_INS = {"Conv2D": _StandInConv2D, "Conv2DTranspose": _StandInConv2DTranspose,
              "MaxPooling2D": _StandInMaxPooling2D, "UpSampling2D": _StandInUpSampling2D,
              "GlobalMaxPooling2D": _StandInGlobalMaxPooling2D,
              "GlobalAveragePooling2D": _StandInGlobalAveragePooling2D}
for _name, _cls in _STAND_INS.items():  # the summary shows the class name: give them the real ones
    _cls.__name__ = _cls.__qualname__ = _name

_HAVE_CONV = all(hasattr(layers, name) for name in _STAND_INS)


class _ConvLayers:
    """Conv / pooling layer classes: fncompiler's own ("real") or the stand-ins above ("stand-in").

    Conv2D / Conv2DTranspose / Dense get zero kernels: random initialization compiles one program per weight
    shape, and the summary does not depend on the values."""

    def __init__(self, kind):
        for name, cls in _STAND_INS.items():
            setattr(self, name, getattr(layers, name) if kind == "real" else cls)
        for name in ("Conv2D", "Conv2DTranspose"):
            setattr(self, name, functools.partial(getattr(self, name), kernel_initializer="zeros"))
        self.Dense = functools.partial(layers.Dense, kernel_initializer="zeros")


@pytest.fixture(params=["stand-in", "real"])
def conv(request):
    if request.param == "real" and not _HAVE_CONV:
        pytest.skip("fncompiler.layers has no Conv2D / pooling layers yet")
    return _ConvLayers(request.param)


def capture(model, **kwargs):
    out = []
    model.summary(print_fn=out.append, **kwargs)
    assert len(out) == 1, "print_fn must be called once with the whole summary"
    return out[0]


@pytest.fixture
def columns(monkeypatch):
    """Set the terminal width that the default line_length is capped by (shutil reads $COLUMNS)."""
    def set_columns(n):
        monkeypatch.setenv("COLUMNS", str(n))
    set_columns(80)
    return set_columns


# -- models of the guide -------------------------------------------------------------------------------
def mnist_model():
    inputs = keras.Input(shape=(784,), name="input_layer_5")
    x = layers.Dense(64, activation="relu", name="dense_10")(inputs)
    x = layers.Dense(64, activation="relu", name="dense_11")(x)
    outputs = layers.Dense(10, name="dense_12")(x)
    return keras.Model(inputs=inputs, outputs=outputs, name="mnist_model")


def build_encoder(L, input_name, names):
    encoder_input = keras.Input(shape=(28, 28, 1), name=input_name)
    x = L.Conv2D(16, 3, activation="relu", name=names[0])(encoder_input)
    x = L.Conv2D(32, 3, activation="relu", name=names[1])(x)
    x = L.MaxPooling2D(3, name=names[2])(x)
    x = L.Conv2D(32, 3, activation="relu", name=names[3])(x)
    x = L.Conv2D(16, 3, activation="relu", name=names[4])(x)
    encoder_output = L.GlobalMaxPooling2D(name=names[5])(x)
    return encoder_input, encoder_output


def build_decoder_layers(L, x, names):
    x = layers.Reshape((4, 4, 1), name=names[0])(x)
    x = L.Conv2DTranspose(16, 3, activation="relu", name=names[1])(x)
    x = L.Conv2DTranspose(32, 3, activation="relu", name=names[2])(x)
    x = L.UpSampling2D(3, name=names[3])(x)
    x = L.Conv2DTranspose(16, 3, activation="relu", name=names[4])(x)
    return L.Conv2DTranspose(1, 3, activation="relu", name=names[5])(x)


ENC_NAMES = ["conv2d", "conv2d_1", "max_pooling2d", "conv2d_2", "conv2d_3", "global_max_pooling2d"]
DEC_NAMES = ["reshape", "conv2d_transpose", "conv2d_transpose_1", "up_sampling2d", "conv2d_transpose_2",
             "conv2d_transpose_3"]


# -- golden tables ----------------------------------------------------------------------------------------
def test_mnist_model_matches_guide(columns):
    model = mnist_model()
    assert capture(model, line_length=88) == MNIST
    columns(200)  # a wide terminal: the default sequential-like width is 88
    assert capture(model) == MNIST


def test_default_width_is_capped_by_terminal(columns):
    model = mnist_model()
    columns(80)
    lines = capture(model).split("\n")
    assert len(lines[1]) == 76 and all(len(l) == 76 for l in lines[1:-3])
    columns(100)
    assert len(capture(model).split("\n")[1]) == 88


def test_encoder_and_autoencoder_match_guide(conv, columns):
    encoder_input, encoder_output = build_encoder(conv, "img", ENC_NAMES)
    encoder = keras.Model(encoder_input, encoder_output, name="encoder")
    assert capture(encoder) == ENCODER
    decoder_output = build_decoder_layers(conv, encoder_output, DEC_NAMES)
    autoencoder = keras.Model(encoder_input, decoder_output, name="autoencoder")
    assert capture(autoencoder) == AUTOENCODER
    # the encoder's table is unchanged by the layers added after it (only its own nodes count)
    assert capture(encoder) == ENCODER


def test_nested_models_match_guide(conv, columns):
    encoder_input, encoder_output = build_encoder(
        conv, "original_img",
        ["conv2d_4", "conv2d_5", "max_pooling2d_1", "conv2d_6", "conv2d_7", "global_max_pooling2d_1"])
    encoder = keras.Model(encoder_input, encoder_output, name="encoder")
    assert capture(encoder) == ENCODER_2
    decoder_input = keras.Input(shape=(16,), name="encoded_img")
    decoder_output = build_decoder_layers(
        conv, decoder_input, ["reshape_1", "conv2d_transpose_4", "conv2d_transpose_5", "up_sampling2d_1",
                              "conv2d_transpose_6", "conv2d_transpose_7"])
    decoder = keras.Model(decoder_input, decoder_output, name="decoder")
    assert capture(decoder) == DECODER
    autoencoder_input = keras.Input(shape=(28, 28, 1), name="img")
    encoded_img = encoder(autoencoder_input)
    decoded_img = decoder(encoded_img)
    autoencoder = keras.Model(autoencoder_input, decoded_img, name="autoencoder")
    assert capture(autoencoder) == NESTED_AUTOENCODER

    expanded = capture(autoencoder, expand_nested=True, line_length=100)
    rows = _rows(expanded)
    names = [r.split(" (")[0] for r in rows]
    assert names[:3] == ["img", "encoder", "└ original_img"]
    assert "└ conv2d_transpose_7" in names and names.index("decoder") < names.index("└ encoded_img")
    assert len(rows) == 3 + 7 + 7
    assert " Total params: 28,241 (110.32 KB)" in expanded


def test_toy_resnet_matches_guide(conv, columns):
    L = conv
    inputs = keras.Input(shape=(32, 32, 3), name="img")
    x = L.Conv2D(32, 3, activation="relu", name="conv2d_8")(inputs)
    x = L.Conv2D(64, 3, activation="relu", name="conv2d_9")(x)
    block_1_output = L.MaxPooling2D(3, name="max_pooling2d_2")(x)
    x = L.Conv2D(64, 3, activation="relu", padding="same", name="conv2d_10")(block_1_output)
    x = L.Conv2D(64, 3, activation="relu", padding="same", name="conv2d_11")(x)
    block_2_output = layers.add([x, block_1_output], name="add")
    x = L.Conv2D(64, 3, activation="relu", padding="same", name="conv2d_12")(block_2_output)
    x = L.Conv2D(64, 3, activation="relu", padding="same", name="conv2d_13")(x)
    block_3_output = layers.add([x, block_2_output], name="add_1")
    x = L.Conv2D(64, 3, activation="relu", name="conv2d_14")(block_3_output)
    x = L.GlobalAveragePooling2D(name="global_average_pooling2d")(x)
    x = L.Dense(256, activation="relu", name="dense_6")(x)
    x = layers.Dropout(0.5, name="dropout")(x)
    outputs = L.Dense(10, name="dense_7")(x)
    model = keras.Model(inputs, outputs, name="toy_resnet")
    assert capture(model) == TOY_RESNET
    assert summary_utils.is_sequential_like(model) is False


# -- Connected to -----------------------------------------------------------------------------------------
def _rows(text):
    """{first cell: [cells]} of the table's rows; a cell wrapped over several lines is re-joined with spaces."""
    out = {}
    block = []

    def flush():
        if block:
            cells = [" ".join(p for p in parts if p) for parts in zip(*block)]
            out[cells[0]] = cells
            block.clear()

    for line in text.split("\n"):
        if line.startswith("│"):
            block.append([c.strip() for c in line[1:-1].split("│")])
        elif line[:1] in ("├", "└"):
            flush()
    flush()
    return out


def test_connected_to_residual_add():
    inputs = keras.Input(shape=(8,), name="x")
    h = layers.Dense(8, name="d1")(inputs)
    r = layers.add([h, inputs], name="res_add")
    model = keras.Model(inputs, layers.Dense(2, name="out")(r), name="residual")
    text = capture(model, line_length=120)
    assert text.split("\n")[2].split("┃")[4].strip() == "Connected to"
    rows = _rows(text)
    assert rows["x (InputLayer)"][3] == "-"
    assert rows["d1 (Dense)"][3] == "x[0][0]"
    assert rows["res_add (Add)"][3] == "d1[0][0], x[0][0]"
    assert rows["out (Dense)"][3] == "res_add[0][0]"
    assert rows["res_add (Add)"][1] == "(None, 8)"


def test_connected_to_multi_input_multi_output():
    a = keras.Input(shape=(8,), name="a")
    b = keras.Input(shape=(4,), name="b")
    x = layers.concatenate([layers.Dense(3, name="da")(a), b], name="cat")
    model = keras.Model([a, b], [layers.Dense(1, name="o1")(x), layers.Dense(2, name="o2")(x)], name="mimo")
    assert summary_utils.is_sequential_like(model) is False
    rows = _rows(capture(model, line_length=120))
    assert rows["a (InputLayer)"][3] == "-" and rows["b (InputLayer)"][3] == "-"
    assert rows["cat (Concatenate)"][3] == "da[0][0], b[0][0]"
    assert rows["cat (Concatenate)"][1] == "(None, 7)"
    assert rows["o1 (Dense)"][3] == "cat[0][0]" and rows["o2 (Dense)"][3] == "cat[0][0]"
    assert list(rows) == ["a (InputLayer)", "da (Dense)", "b (InputLayer)", "cat (Concatenate)",
                          "o1 (Dense)", "o2 (Dense)"] or set(rows) == {
        "a (InputLayer)", "da (Dense)", "b (InputLayer)", "cat (Concatenate)", "o1 (Dense)", "o2 (Dense)"}


def test_shared_layer_node_indices():
    shared = layers.Dense(4, name="shared")
    a = keras.Input(shape=(4,), name="a")
    y = shared(shared(a))
    model = keras.Model(a, y, name="twice")
    # a layer called twice is not sequential-like even though the graph is a chain
    assert summary_utils.is_sequential_like(model) is False
    rows = _rows(capture(model, line_length=120))
    assert rows["shared (Dense)"][3] == "a[0][0], shared[0][0]"

    # node indices count the layer's calls in other models too
    b = keras.Input(shape=(4,), name="b")
    chain = keras.Model(b, layers.Dense(1, name="head")(shared(b)), name="chain")
    assert summary_utils.is_sequential_like(chain) is True  # one call of `shared` in this model
    assert "Connected to" not in capture(chain, line_length=120)
    c = keras.Input(shape=(4,), name="c")
    other = keras.Model(c, layers.add([shared(c), c], name="plus"), name="other")
    rows = _rows(capture(other, line_length=120))
    assert rows["plus (Add)"][3] == "shared[3][0], c[0][0]"
    assert rows["shared (Dense)"][3] == "c[0][0]"  # only this model's call of `shared`


class _SplitLayer(layers.Layer):
    def call(self, x):
        return x[:, :2], x[:, 2:]


def test_multi_output_layer_shapes_and_tensor_index():
    a = keras.Input(shape=(5,), name="a")
    left, right = _SplitLayer(name="split")(a)
    model = keras.Model(a, [layers.Dense(1, name="dl")(left), layers.Dense(1, name="dr")(right)],
                        name="split_model")
    rows = _rows(capture(model, line_length=120))
    assert rows["split (_SplitLayer)"][1] == "[(None, 2), (None, 3)]"
    assert rows["dl (Dense)"][3] == "split[0][0]"
    assert rows["dr (Dense)"][3] == "split[0][1]"


# -- options ----------------------------------------------------------------------------------------------
def test_show_trainable_column():
    model = mnist_model()
    model.get_layer("dense_11").trainable = False
    text = capture(model, show_trainable=True, line_length=100)
    header = text.split("\n")[2]
    assert header.split("┃")[4].strip() in ("Trainable", "Traina…")
    rows = _rows(text)
    assert rows["input_layer_5 (InputLayer)"][3] == "-"
    assert rows["dense_10 (Dense)"][3] == "Y"
    assert rows["dense_11 (Dense)"][3] == "N"
    assert " Trainable params: 50,890 (198.79 KB)" in text
    assert " Non-trainable params: 4,160 (16.25 KB)" in text
    assert " Total params: 55,050 (215.04 KB)" in text


def test_layer_range():
    model = mnist_model()
    rows = _rows(capture(model, line_length=88, layer_range=["dense_10", "dense_11"]))
    assert list(rows) == ["dense_10 (Dense)", "dense_11 (Dense)"]
    with pytest.raises(ValueError, match="do not match"):
        capture(model, layer_range=["nope", "dense_11"])
    with pytest.raises(ValueError, match="length 2"):
        capture(model, layer_range=["dense_10"])


def test_positions_and_narrow_width():
    model = mnist_model()
    text = capture(model, line_length=60, positions=[0.5, 0.8, 1.0])
    top = text.split("\n")[1]
    assert len(top) == 60 and top.startswith("┏") and top.count("┳") == 2
    with pytest.raises(ValueError, match="Insufficient console width"):
        capture(model, line_length=10)


def test_default_print_goes_to_stdout_as_plain_text(capsys):
    model = mnist_model()
    assert model.summary(line_length=88) is None
    out = capsys.readouterr().out
    assert out == MNIST + "\n"
    assert "\x1b[" not in out


# -- totals and sizes -------------------------------------------------------------------------------------
def test_readable_memory_size():
    f = summary_utils.readable_memory_size
    assert f(0) == "0.00 B"
    assert f(1023) == "1023.00 B"
    assert f(1024) == "1.00 KB"
    assert f(55050 * 4) == "215.04 KB"
    assert f(1.5 * 1024 ** 2) == "1.50 MB"
    assert f(3 * 1024 ** 3) == "3.00 GB"


def test_sizes_follow_weight_dtypes():
    inputs = keras.Input(shape=(10,), name="i")
    x = layers.Dense(100, dtype="float16", name="half")(inputs)  # 1,100 params of 2 bytes
    y = layers.Dense(10, dtype="float32", name="single")(x)      # 1,010 params of 4 bytes
    model = keras.Model(inputs, y, name="mixed")
    text = capture(model, line_length=88)
    assert " Total params: 2,110 (6.09 KB)" in text       # 2,200 + 4,040 bytes
    assert " Trainable params: 2,110 (6.09 KB)" in text
    assert " Non-trainable params: 0 (0.00 B)" in text


def test_frozen_nested_model_counts_as_non_trainable(columns):
    inner_in = keras.Input(shape=(4,), name="inner_in")
    inner = keras.Model(inner_in, layers.Dense(3, name="inner_dense")(inner_in), name="inner")
    inner.trainable = False
    x = keras.Input(shape=(4,), name="x")
    model = keras.Model(x, layers.Dense(2, name="head")(inner(x)), name="outer")
    text = capture(model)
    rows = _rows(text)
    assert rows["inner (Functional)"][1:3] == ["(None, 3)", "15"]
    assert " Total params: 23 (92.00 B)" in text
    assert " Trainable params: 8 (32.00 B)" in text
    assert " Non-trainable params: 15 (60.00 B)" in text


def test_sequential_models(columns):
    model = keras.Sequential([keras.Input(shape=(784,)), layers.Dense(64, activation="relu", name="s_dense"),
                              layers.Dense(10, name="s_out")], name="seq")
    text = capture(model, line_length=88)
    rows = _rows(text)
    assert list(rows) == ["s_dense (Dense)", "s_out (Dense)"]  # as Keras 3: no InputLayer row
    assert rows["s_dense (Dense)"][1:] == ["(None, 64)", "50,240"]
    assert " Total params: 50,890 (198.79 KB)" in text

    unbuilt = keras.Sequential([layers.Dense(3, name="u1"), layers.Dense(2, name="u2")], name="unbuilt")
    rows = _rows(capture(unbuilt))
    assert rows["u1 (Dense)"][1:] == ["?", "0 (unbuilt)"]
    assert " Total params: 0 (0.00 B)" in capture(unbuilt)

    # a Sequential nested in a functional model, expanded
    x = keras.Input(shape=(784,), name="outer_in")
    outer = keras.Model(x, model(x), name="outer_seq")
    rows = _rows(capture(outer, expand_nested=True, line_length=88))
    assert list(rows) == ["outer_in (InputLayer)", "seq (Sequential)", "└ s_dense (Dense)", "└ s_out (Dense)"]
    assert rows["seq (Sequential)"][1:] == ["(None, 10)", "50,890"]


def test_optimizer_params_after_training():
    model = mnist_model()
    model.compile(optimizer="adam", loss="mse")
    assert "Optimizer params" not in capture(model, line_length=88)  # no optimizer state before training
    model.fit(np.zeros((4, 784), "float32"), np.zeros((4, 10), "float32"), epochs=1, batch_size=4, verbose=0)
    text = capture(model, line_length=88)
    line = [l for l in text.split("\n") if l.startswith(" Optimizer params: ")]
    assert len(line) == 1
    count = int(line[0].split(": ")[1].split(" ")[0].replace(",", ""))
    assert count >= 2 * 55050  # Adam keeps two slots per weight (Keras: 110,102)
    total = int(text.split(" Total params: ")[1].split(" ")[0].replace(",", ""))
    assert total == 55050 + count


def test_summary_lists_sharded_weight_layouts_under_a_distribution():
    import fncompiler as keras
    from fncompiler import distribution, layers
    x = keras.Input(shape=(8,))
    model = keras.Model(x, layers.Dense(4, name="proj")(layers.Dense(6, name="hid")(x)), name="sharded")
    mesh = distribution.DeviceMesh((1, 1), ("batch", "model"))
    layout_map = distribution.LayoutMap(mesh)
    layout_map["hid/kernel"] = (None, "model")
    lines = []
    with distribution.ModelParallel(layout_map=layout_map, batch_dim_name="batch").scope():
        model.summary(print_fn=lines.append)
        graph = keras.compile_model(model).graph("train")
        assert graph.nodes["hid"]["meta"]["layouts"] == {"hid/kernel": "(None, 'model')", "hid/bias": "replicated"}
        assert graph.graph["layouts"] == {"sharded": 1, "replicated": 3}
    text = "\n".join(lines)
    assert "Weight layouts: 1 sharded, 3 replicated" in text
    assert "hid/kernel: (None, 'model')" in text
    lines.clear()
    model.summary(print_fn=lines.append)
    assert "Weight layouts" not in "\n".join(lines)
