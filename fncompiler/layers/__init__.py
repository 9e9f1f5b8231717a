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


def _public_layer_classes():
    """Every Layer subclass exported from this module, by class name (the built-in registry)."""
    return {name: obj for name, obj in globals().items()
            if isinstance(obj, type) and issubclass(obj, Layer) and not name.startswith("_")}
