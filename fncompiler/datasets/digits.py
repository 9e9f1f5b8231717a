"""The UCI hand-written digits (1,797 8x8 images, values 0..16), bundled.

The data file ``data/digits.csv.gz`` is the copy scikit-learn ships; see
``data/DIGITS_LICENSE.txt`` for provenance and license. Each CSV row holds 64
pixel counts followed by the label.
"""

from __future__ import annotations

import functools
import gzip
from importlib import resources

import numpy as np

N_SAMPLES = 1797
FILENAME = "digits.csv.gz"


@functools.lru_cache(maxsize=1)
def _table() -> np.ndarray:
    ref = resources.files(__package__).joinpath("data", FILENAME)
    with ref.open("rb") as raw, gzip.open(raw, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if table.shape != (N_SAMPLES, 65):
        raise ValueError(f"bundled {FILENAME}: expected shape ({N_SAMPLES}, 65), "
                         f"got {table.shape}; the package data is damaged, reinstall fncompiler")
    table.setflags(write=False)
    return table


def load_flat():
    """Return ``(x, y)``: x float32 ``(1797, 64)`` with values 0..16, y int64 labels 0..9."""
    t = _table()
    return t[:, :64].astype(np.float32), t[:, 64].astype(np.int64)


def load_data(test_split=0.2, seed=113):
    """Return ``(x_train, y_train), (x_test, y_test)``.

    x is uint8 ``(n, 8, 8)`` with values 0..16, y uint8 labels 0..9. The rows
    are shuffled with ``np.random.default_rng(seed)`` (same seed, same split);
    the last ``test_split`` fraction (rounded down to whole rows for train)
    becomes the test set.
    """
    if not 0.0 <= float(test_split) < 1.0:
        raise ValueError(f"test_split must be in [0, 1), got {test_split!r}")
    t = _table()
    x = t[:, :64].astype(np.uint8).reshape(-1, 8, 8)
    y = t[:, 64].astype(np.uint8)
    order = np.random.default_rng(seed).permutation(len(t))
    x, y = x[order], y[order]
    n_train = int(len(t) * (1.0 - float(test_split)))
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])
