"""`fncompiler.ops`: NumPy-style ops that work on arrays and on symbolic tensors (adding a graph node)."""
from .numpy_ops import *  # noqa: F401,F403  (the op table defines __all__)
from .numpy_ops import __all__  # noqa: F401
from . import image  # noqa: E402  (keras.ops.image: registers its ops in the op table too)


# --- a Keras name fncompiler lacks (or a typo) gets a clear AttributeError (fncompiler.keras_names) ---
from ..keras_names import install as _install_getattr  # noqa: E402
__getattr__ = _install_getattr("ops", globals())
