"""`text_dataset_from_directory` (keras.utils): a folder of class subfolders of .txt files -> a Dataset."""
import numpy as np

from . import directory as dir_lib

__all__ = ["text_dataset_from_directory"]


def text_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None, batch_size=32,
                                max_length=None, shuffle=True, seed=None, validation_split=None, subset=None,
                                follow_links=False, format="tf", verbose=True):
    """Keras's arguments and meaning (see image_dataset_from_directory for labels, label_mode, class_names,
    validation_split/subset, shuffle/seed). Each sample is one .txt file's text, decoded as UTF-8, cut to its first
    `max_length` characters if given; batches are NumPy object arrays of Python `str` of shape (batch,) (TensorFlow
    gives bytes), which string layers such as TextVectorization take on the host. Files are read as the dataset
    is iterated. `format` ("tf" or "grain" in Keras) is accepted; the result is always a fncompiler Dataset.
    """
    fn = "text_dataset_from_directory"
    if format not in ("tf", "grain"):
        raise ValueError(f'{fn}: format must be "tf" or "grain"; received {format!r}.')
    labels, label_mode, seed = dir_lib.check_arguments(fn, labels, label_mode, validation_split, subset, shuffle,
                                                       seed)
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int)
                                   or max_length < 1):
        raise ValueError(f"{fn}: max_length must be a positive int or None; received {max_length!r}.")
    def load(path):
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", errors="replace")
        return np.asarray(text if max_length is None else text[:max_length], dtype=object)

    return dir_lib.directory_datasets(fn, directory, (".txt",), "text files", load, labels, label_mode,
                                      class_names, batch_size, shuffle, seed, validation_split, subset, follow_links,
                                      verbose)
