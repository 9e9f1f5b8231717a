"""Reference architectures (random init or local weights; nothing is downloaded)."""
from .vgg import VGG16, VGG19

__all__ = ["VGG16", "VGG19"]


# --- a Keras name fncompiler lacks (or a typo) gets a clear AttributeError (fncompiler.keras_names) ---
from ..keras_names import install as _install_getattr  # noqa: E402
__getattr__ = _install_getattr("applications", globals())
