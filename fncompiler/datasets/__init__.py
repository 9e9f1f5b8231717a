"""Small, offline data sets in the layout Keras uses.

Nothing here downloads anything: ``mnist`` and ``cifar10`` read files you put
in ``$FNCOMPILER_DATA_DIR`` (or ``~/.keras/datasets/``); ``digits`` is bundled.
"""

from . import cifar10, digits, mnist

__all__ = ["mnist", "cifar10", "digits"]
