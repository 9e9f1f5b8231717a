"""Reference architectures (random init or local weights; nothing is downloaded)."""
from .vgg import VGG16, VGG19

__all__ = ["VGG16", "VGG19"]
