"""Reference architectures (random init or local weights; nothing is downloaded)."""
from .vgg import VGG16, VGG19
from .resnet import ResNet50
from .mobilenet_v2 import MobileNetV2
from .efficientnet import EfficientNetB0
from .densenet import DenseNet121

__all__ = ["VGG16", "VGG19", "ResNet50", "MobileNetV2", "EfficientNetB0", "DenseNet121"]
