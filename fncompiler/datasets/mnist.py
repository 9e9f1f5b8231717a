"""MNIST from Keras's ``mnist.npz`` (no download; see ``_paths``)."""

from __future__ import annotations

import zipfile

import numpy as np

from ._paths import find_file

KEYS = ("x_train", "y_train", "x_test", "y_test")
HINT = ("mnist.npz is the file Keras downloads to ~/.keras/datasets/ "
        "(origin: https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz); "
        "it holds arrays x_train, y_train, x_test, y_test.")


def load_data(path="mnist.npz"):
    """Return ``(x_train, y_train), (x_test, y_test)`` as stored in ``mnist.npz``.

    ``path`` is a file name looked up in ``$FNCOMPILER_DATA_DIR`` then
    ``~/.keras/datasets/``, or an absolute path.
    """
    fpath = find_file(path, hint=HINT)
    try:
        npz = np.load(fpath, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise ValueError(f"{fpath}: cannot read as an .npz archive of plain arrays "
                         f"({type(e).__name__}: {e}). {HINT}") from e
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f"{fpath}: expected an .npz archive with arrays {', '.join(KEYS)}, "
                         f"got a single {type(npz).__name__}. {HINT}")
    with npz:
        missing = [k for k in KEYS if k not in npz.files]
        if missing:
            raise ValueError(f"{fpath}: missing arrays {missing}; expected {list(KEYS)}, "
                             f"found {sorted(npz.files)}. {HINT}")
        try:
            x_train, y_train, x_test, y_test = (npz[k] for k in KEYS)
        except ValueError as e:  # object arrays need pickle, which is refused
            raise ValueError(f"{fpath}: cannot read arrays without pickle ({e}). {HINT}") from e
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if len(x) != len(y):
            raise ValueError(f"{fpath}: x_{split} has {len(x)} rows but y_{split} has {len(y)}.")
    return (x_train, y_train), (x_test, y_test)
