"""Layers: every built-in layer class and the merge functions, re-exported explicitly."""
from .layer import Layer
from .input_spec import InputSpec
from .input_layer import Input, InputLayer
from .core import Activation, Dense, Dropout, Identity, Lambda
from .merging import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract, add, average,
                      concatenate, dot, maximum, minimum, multiply, subtract)
from .reshaping import Flatten, Permute, Reshape, RepeatVector
from ..ops.op_layer import OpLayer

# --- convolution / pooling / spatial layers (layers helper A) ---
from .convolutional import (Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose, Conv3D, Conv3DTranspose,
                            Convolution1D, Convolution1DTranspose, Convolution2D, Convolution2DTranspose,
                            Convolution3D, Convolution3DTranspose, DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D,
                            SeparableConv2D, SeparableConvolution1D, SeparableConvolution2D)
from .conv_lstm import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D
from .pooling import (AveragePooling1D, AveragePooling2D, AveragePooling3D, AvgPool1D, AvgPool2D, AvgPool3D,
                      GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalAveragePooling3D, GlobalAvgPool1D,
                      GlobalAvgPool2D, GlobalAvgPool3D, GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D,
                      GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D, MaxPool1D, MaxPool2D, MaxPool3D,
                      MaxPooling1D, MaxPooling2D, MaxPooling3D)
from .spatial import (Cropping1D, Cropping2D, Cropping3D, UpSampling1D, UpSampling2D, UpSampling3D, ZeroPadding1D,
                      ZeroPadding2D, ZeroPadding3D)
# --- end A ---

# --- embedding / recurrent / normalization / attention / activation layers (layers helper B) ---
from .embedding import Embedding
from .recurrent import RNN, GRU, LSTM, Bidirectional, GRUCell, LSTMCell, SimpleRNN, SimpleRNNCell
from .normalization import BatchNormalization, GroupNormalization, LayerNormalization, UnitNormalization
from .attention import Attention, MultiHeadAttention
from .activation_layers import ELU, LeakyReLU, PReLU, ReLU, Softmax
from .misc import (ActivityRegularization, GaussianDropout, GaussianNoise, Rescaling, SpatialDropout1D,
                   SpatialDropout2D)
# --- end B ---

# --- preprocessing / augmentation layers (issue 16, helper i16a) ---
from .preprocessing import (CategoryEncoding, CenterCrop, Discretization, Hashing, IntegerLookup, Normalization,
                            RandomBrightness, RandomContrast, RandomCrop, RandomFlip, RandomRotation,
                            RandomTranslation, RandomZoom, Resizing, StringLookup, TextVectorization)
# --- end i16a ---

# --- wrappers, masking, einsum, more attention/normalization/dropout, stacked cells (issue 16, helper i16c) ---
from .additive_attention import AdditiveAttention
from .einsum_dense import EinsumDense
from .masking import Masking
from .misc import AlphaDropout
from .normalization import RMSNormalization
from .stacked_rnn import StackedRNNCells
from .wrappers import TimeDistributed
# --- end i16c ---


def _public_layer_classes():
    """Every Layer subclass exported from this module, by class name (the built-in registry)."""
    return {name: obj for name, obj in globals().items()
            if isinstance(obj, type) and issubclass(obj, Layer) and not name.startswith("_")}


from . import nested_layers as _nested_layers  # noqa: E402 (nested layer configs resolve through this registry)
_nested_layers.register_class_table(_public_layer_classes)


# --- a Keras name fncompiler lacks (or a typo) gets a clear AttributeError (fncompiler.keras_names) ---
from ..keras_names import install as _install_getattr  # noqa: E402
__getattr__ = _install_getattr("layers", globals())
