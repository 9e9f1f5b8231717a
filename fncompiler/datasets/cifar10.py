"""CIFAR-10 from the official python-pickle release (no download; see ``_paths``).

Reads either the extracted ``cifar-10-batches-py/`` folder or the
``cifar-10-python.tar.gz`` archive (members are read in memory, never
extracted). The batches are pickles; they are read with a restricted
unpickler that only resolves the numpy globals needed to rebuild an array.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile

import numpy as np

from ._paths import find_file

DIRNAME = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
HINT = (f"Get the 'CIFAR-10 python version' ({ARCHIVE}) from "
        "https://www.cs.toronto.edu/~kriz/cifar.html and put either the archive "
        f"or its extracted {DIRNAME}/ folder there.")


def _multiarray():
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    return multiarray


def _latin1_bytes(text, encoding="latin1"):
    """What Python 3's pickle protocol 2 calls to rebuild a bytes object (`_codecs.encode(str, 'latin1')`):
    accepted only with exactly that meaning."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise RefusedGlobalError(f"refused _codecs.encode({type(text).__name__}, {encoding!r}): only latin1 "
                                 "text-to-bytes is allowed")
    return text.encode("latin1")


_MA = _multiarray()
# (module, name) -> object. Only what numpy needs to rebuild an ndarray.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _MA._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _MA._reconstruct,
    ("numpy.core.multiarray", "scalar"): _MA.scalar,
    ("numpy._core.multiarray", "scalar"): _MA.scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_bytes,   # bytes in protocol-2 pickles written by Python 3
}


class RefusedGlobalError(pickle.UnpicklingError):
    """A pickle asked for a global outside the CIFAR-10 allow-list."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, source):
        super().__init__(file, encoding="bytes")
        self._source = source

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            allowed = ", ".join(f"{m}.{n}" for m, n in _ALLOWED)
            raise RefusedGlobalError(
                f"{self._source}: refused to load global '{module}.{name}' "
                f"(not a CIFAR-10 batch; only {allowed} are allowed)") from None

    def persistent_load(self, pid):
        raise RefusedGlobalError(f"{self._source}: refused persistent id {pid!r}")


def _parse_batch(raw: bytes, source: str):
    """Unpickle one batch and return ``(x uint8 (n,32,32,3), y uint8 (n,1))``."""
    d = _RestrictedUnpickler(io.BytesIO(raw), source).load()
    if not isinstance(d, dict):
        raise ValueError(f"{source}: expected a pickled dict, got {type(d).__name__}")
    label_key = b"labels" if b"labels" in d else b"fine_labels"
    missing = [k for k in (b"data", label_key) if k not in d]
    if missing:
        raise ValueError(f"{source}: missing keys {missing}; found {sorted(map(repr, d))}")
    data, labels = d[b"data"], d[label_key]
    if not isinstance(data, np.ndarray) or data.dtype.kind not in "ui" \
            or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        got = (f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray)
               else type(data).__name__)
        raise ValueError(f"{source}: b'data' should be an integer array (n, 3072), got {got}")
    labels = np.asarray(labels)
    if labels.dtype.kind not in "ui" or labels.shape != (data.shape[0],):
        raise ValueError(f"{source}: expected {data.shape[0]} integer labels, "
                         f"got {labels.dtype} {labels.shape}")
    if data.size and (data.min() < 0 or data.max() > 255):
        raise ValueError(f"{source}: pixel values outside 0..255")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(f"{source}: labels outside 0..255")
    x = data.astype(np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    y = labels.astype(np.uint8).reshape(-1, 1)
    return np.ascontiguousarray(x), y


def _read_folder(folder):
    names = TRAIN_BATCHES + (TEST_BATCH,)
    missing = [n for n in names if not os.path.isfile(os.path.join(folder, n))]
    if missing:
        raise FileNotFoundError(f"{folder}: missing batch files {missing}; "
                                f"expected {list(names)}. {HINT}")
    out = {}
    for n in names:
        p = os.path.join(folder, n)
        with open(p, "rb") as f:
            out[n] = _parse_batch(f.read(), p)
    return out


def _check_member_name(archive, name):
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or os.path.isabs(name) or (parts and ":" in parts[0]) \
            or ".." in parts:
        raise ValueError(f"{archive}: refused archive member {name!r} "
                         "(absolute path or '..' component)")


def _read_archive(archive):
    names = TRAIN_BATCHES + (TEST_BATCH,)
    out = {}
    try:
        tar = tarfile.open(archive, "r:*")
    except tarfile.TarError as e:
        raise ValueError(f"{archive}: not a readable tar archive ({e}). {HINT}") from e
    with tar:
        members = tar.getmembers()
        for m in members:
            _check_member_name(archive, m.name)
        for m in members:
            base = m.name.replace("\\", "/").rstrip("/").split("/")[-1]
            if base not in names or not m.isfile():
                continue
            if base in out:
                raise ValueError(f"{archive}: batch {base!r} appears more than once")
            f = tar.extractfile(m)
            out[base] = _parse_batch(f.read(), f"{archive}:{m.name}")
    missing = [n for n in names if n not in out]
    if missing:
        raise FileNotFoundError(f"{archive}: archive lacks batch files {missing}. {HINT}")
    return out


def load_data(path=None):
    """Return ``(x_train, y_train), (x_test, y_test)`` like ``keras.datasets.cifar10``.

    x is uint8 ``(n, 32, 32, 3)`` (channels last), y is uint8 ``(n, 1)``.
    ``path`` may name the extracted folder or the ``.tar.gz`` archive (absolute,
    or relative to the data folder); by default both usual names are tried.
    """
    if path is None:
        found = find_file(DIRNAME, alternatives=(f"{DIRNAME}_extracted/{DIRNAME}", ARCHIVE),
                          hint=HINT)
    else:
        found = find_file(path, hint=HINT)
    batches = _read_folder(found) if os.path.isdir(found) else _read_archive(found)
    x_train = np.concatenate([batches[n][0] for n in TRAIN_BATCHES])
    y_train = np.concatenate([batches[n][1] for n in TRAIN_BATCHES])
    x_test, y_test = batches[TEST_BATCH]
    return (x_train, y_train), (x_test, y_test)
