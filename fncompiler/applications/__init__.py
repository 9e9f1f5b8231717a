"""Reference architectures (random init or local weights; nothing is downloaded)."""
from .vgg import VGG16, VGG19
from .resnet import ResNet50
from .mobilenet_v2 import MobileNetV2
from .efficientnet import EfficientNetB0
from .densenet import DenseNet121

__all__ = ["VGG16", "VGG19", "ResNet50", "MobileNetV2", "EfficientNetB0", "DenseNet121"]


# --- a Keras name fncompiler lacks (or a typo) gets a clear AttributeError (fncompiler.keras_names) ---
from ..keras_names import install as _install_getattr  # noqa: E402
__getattr__ = _install_getattr("applications", globals())
