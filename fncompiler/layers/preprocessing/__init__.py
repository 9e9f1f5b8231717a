"""Preprocessing and augmentation layers (Keras 3 names, arguments, config and weights)."""
from .augmentation import (RandomBrightness, RandomContrast, RandomFlip, RandomRotation, RandomTranslation,
                           RandomZoom)
from .category_encoding import CategoryEncoding
from .discretization import Discretization
from .hashing import Hashing
from .host import HostLayer
from .image_sizing import CenterCrop, RandomCrop, Resizing
from .lookup import IntegerLookup, StringLookup
from .normalization import Normalization
from .text_vectorization import TextVectorization

AUGMENTATION_LAYERS = ("RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast",
                       "RandomBrightness")
