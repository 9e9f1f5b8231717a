"""Utilities: one-hot encoding, seeding, sequence padding, data sets and PyDataset, get_file, model plotting."""
from .numerical import normalize, to_categorical
from .random import set_random_seed
# data helpers (keras.utils)
from .sequence import pad_sequences
from .py_dataset import PyDataset
from .dataset import Dataset, split_dataset
from .timeseries import timeseries_dataset_from_array
from .image_dataset import image_dataset_from_directory
from .text_dataset import text_dataset_from_directory
from .file_utils import get_file


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False, show_layer_names=True,
               rankdir="TB", expand_nested=False, dpi=200, show_layer_activations=False, show_trainable=False,
               **kwargs):
    """Draw the model's layer graph (or an IR graph, e.g. `compiled.graph("predict")`) to PNG, SVG or PDF with
    graphviz's `dot` (see fncompiler.utils.plot)."""
    from .plot import plot_model as _plot
    return _plot(model, to_file=to_file, show_shapes=show_shapes, show_dtype=show_dtype,
                 show_layer_names=show_layer_names, rankdir=rankdir, expand_nested=expand_nested, dpi=dpi,
                 show_layer_activations=show_layer_activations, show_trainable=show_trainable, **kwargs)


def model_to_dot(model, **kwargs):
    from .plot import model_to_dot as _to_dot
    return _to_dot(model, **kwargs)


__all__ = ["normalize", "to_categorical", "set_random_seed", "plot_model", "model_to_dot",
           "pad_sequences", "PyDataset", "Dataset", "split_dataset", "timeseries_dataset_from_array",
           "image_dataset_from_directory", "text_dataset_from_directory", "get_file"]


# --- a Keras name fncompiler lacks (or a typo) gets a clear AttributeError (fncompiler.keras_names) ---
from ..keras_names import install as _install_getattr  # noqa: E402
__getattr__ = _install_getattr("utils", globals())
