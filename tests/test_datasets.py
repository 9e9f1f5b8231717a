"""Tests for fncompiler.datasets (mnist, cifar10, digits) -- all offline, generated files."""

import io
import os
import pickle
import struct
import tarfile

import numpy as np
import pytest

from fncompiler.datasets import _paths, cifar10, digits, mnist


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """An empty data folder in $FNCOMPILER_DATA_DIR, and a HOME without ~/.keras."""
    d = tmp_path / "data"
    d.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("FNCOMPILER_DATA_DIR", str(d))
    monkeypatch.setenv("HOME", str(home))
    return d


# ---------------------------------------------------------------- paths

def test_data_dir_env_and_default(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("FNCOMPILER_DATA_DIR", raising=False)
    assert _paths.data_dir() == os.path.join(str(tmp_path), ".keras", "datasets")
    monkeypatch.setenv("FNCOMPILER_DATA_DIR", str(tmp_path / "x"))
    assert _paths.data_dir() == str(tmp_path / "x")


# ---------------------------------------------------------------- mnist

def _write_mnist(path, n_train=7, n_test=3, drop=()):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, (n_train,), dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, (n_test,), dtype=np.uint8),
    }
    np.savez(path, **{k: v for k, v in arrays.items() if k not in drop})
    return arrays


def test_mnist_load_from_data_dir(data_dir):
    ref = _write_mnist(data_dir / "mnist.npz")
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    assert x_train.shape == (7, 28, 28) and x_train.dtype == np.uint8
    assert x_test.shape == (3, 28, 28)
    np.testing.assert_array_equal(x_train, ref["x_train"])
    np.testing.assert_array_equal(y_train, ref["y_train"])
    np.testing.assert_array_equal(x_test, ref["x_test"])
    np.testing.assert_array_equal(y_test, ref["y_test"])


def test_mnist_absolute_path(tmp_path, data_dir):
    p = tmp_path / "elsewhere.npz"
    ref = _write_mnist(p, n_train=4, n_test=2)
    (x_train, _), (_, y_test) = mnist.load_data(str(p))
    np.testing.assert_array_equal(x_train, ref["x_train"])
    np.testing.assert_array_equal(y_test, ref["y_test"])


def test_mnist_missing_file_error(data_dir):
    with pytest.raises(FileNotFoundError) as info:
        mnist.load_data()
    assert isinstance(info.value, OSError)
    msg = str(info.value)
    assert "mnist.npz" in msg
    assert str(data_dir) in msg  # the folder searched, and where to put it
    assert os.path.join(str(data_dir), "mnist.npz") in msg
    assert "FNCOMPILER_DATA_DIR" in msg
    assert "download" in msg


def test_mnist_missing_keys(data_dir):
    _write_mnist(data_dir / "mnist.npz", drop=("y_test", "x_train"))
    with pytest.raises(ValueError, match=r"missing.*x_train.*y_test"):
        mnist.load_data()


def test_mnist_refuses_pickled_object_arrays(data_dir):
    arrays = _write_mnist(data_dir / "mnist.npz")
    arrays["y_test"] = np.array([{"a": 1}], dtype=object)
    np.savez(data_dir / "mnist.npz", **arrays)
    with pytest.raises(ValueError, match="mnist.npz"):
        mnist.load_data()


# ---------------------------------------------------------------- cifar10

class _Py2StylePickler(pickle._Pickler):
    """Protocol-2 pickler that writes bytes as Python 2 ``str`` (BINSTRING), as the
    real CIFAR-10 files do, instead of Python 3's ``_codecs.encode(...)`` call."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_bytes(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_bytes


def _dumps(obj):
    """Pickle like the official files: protocol 2, py2 strings, numpy.core module path."""
    buf = io.BytesIO()
    _Py2StylePickler(buf, protocol=2).dump(obj)
    raw = buf.getvalue()
    assert b"_codecs" not in raw
    return raw.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def _cifar_batch(n, seed):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, n)]
    d = {b"batch_label": b"batch %d" % seed, b"labels": labels, b"data": data,
         b"filenames": [b"img_%d.png" % i for i in range(n)]}
    return d, _dumps(d)


def _cifar_batches(sizes=(3, 4, 2, 5, 1), n_test=6):
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    return {name: _cifar_batch(n, seed) for seed, (name, n) in
            enumerate(zip(names, list(sizes) + [n_test]))}


def _expected(batches):
    def to_hwc(d):
        return d[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    train = [batches[f"data_batch_{i}"][0] for i in range(1, 6)]
    test = batches["test_batch"][0]
    return ((np.concatenate([to_hwc(d) for d in train]),
             np.concatenate([d[b"labels"] for d in train]).reshape(-1, 1)),
            (to_hwc(test), np.array(test[b"labels"]).reshape(-1, 1)))


def _check_cifar(result, batches, sizes, n_test):
    (x_train, y_train), (x_test, y_test) = result
    (ex_train, ey_train), (ex_test, ey_test) = _expected(batches)
    n = sum(sizes)
    assert x_train.shape == (n, 32, 32, 3) and x_train.dtype == np.uint8
    assert y_train.shape == (n, 1) and y_train.dtype == np.uint8
    assert x_test.shape == (n_test, 32, 32, 3) and y_test.shape == (n_test, 1)
    np.testing.assert_array_equal(x_train, ex_train)
    np.testing.assert_array_equal(y_train, ey_train)
    np.testing.assert_array_equal(x_test, ex_test)
    np.testing.assert_array_equal(y_test, ey_test)


def _write_folder(folder, batches):
    folder.mkdir(parents=True)
    for name, (_, raw) in batches.items():
        (folder / name).write_bytes(raw)


def _add_member(tar, name, raw):
    info = tarfile.TarInfo(name)
    info.size = len(raw)
    tar.addfile(info, io.BytesIO(raw))


def _write_archive(path, batches, extra=()):
    with tarfile.open(path, "w:gz") as tar:
        for name, raw in extra:
            _add_member(tar, name, raw)
        for name, (_, raw) in batches.items():
            _add_member(tar, f"cifar-10-batches-py/{name}", raw)


def test_cifar10_channel_layout():
    # Row layout is channel-major: 1024 reds, 1024 greens, 1024 blues.
    d = {b"data": np.concatenate([np.full(1024, 1), np.full(1024, 2), np.full(1024, 3)])
         .astype(np.uint8)[None], b"labels": [7]}
    x, y = cifar10._parse_batch(_dumps(d), "t")
    assert x.shape == (1, 32, 32, 3)
    assert x[0, 5, 9].tolist() == [1, 2, 3]
    assert y.tolist() == [[7]]


@pytest.mark.parametrize("sizes,n_test", [((3, 4, 2, 5, 1), 6), ((2, 2, 2, 2, 2), 3)])
def test_cifar10_from_folder(data_dir, sizes, n_test):
    batches = _cifar_batches(sizes, n_test)
    _write_folder(data_dir / "cifar-10-batches-py", batches)
    _check_cifar(cifar10.load_data(), batches, sizes, n_test)


def test_cifar10_from_archive(data_dir):
    sizes, n_test = (1, 2, 3, 4, 5), 4
    batches = _cifar_batches(sizes, n_test)
    _write_archive(data_dir / "cifar-10-python.tar.gz", batches)
    assert not (data_dir / "cifar-10-batches-py").exists()
    _check_cifar(cifar10.load_data(), batches, sizes, n_test)
    assert sorted(os.listdir(data_dir)) == ["cifar-10-python.tar.gz"]  # nothing extracted


def test_cifar10_missing_error(data_dir):
    with pytest.raises(FileNotFoundError) as info:
        cifar10.load_data()
    msg = str(info.value)
    assert "cifar-10-batches-py" in msg and "cifar-10-python.tar.gz" in msg
    assert str(data_dir) in msg and "FNCOMPILER_DATA_DIR" in msg


def test_cifar10_folder_missing_batch(data_dir):
    batches = _cifar_batches()
    del batches["data_batch_3"]
    _write_folder(data_dir / "cifar-10-batches-py", batches)
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        cifar10.load_data()


class _Evil:
    def __init__(self, call, arg):
        self.call, self.arg = call, arg

    def __reduce__(self):
        return (self.call, (self.arg,))


@pytest.mark.parametrize("kind", ["os.system", "builtins.eval", "builtins.exec"])
def test_cifar10_refuses_malicious_pickle(data_dir, tmp_path, kind):
    marker = tmp_path / "pwned"
    code = f"open({str(marker)!r}, 'w').write('x')"
    if kind == "os.system":
        payload = _Evil(os.system, f"touch {marker}")
    elif kind == "builtins.eval":
        payload = _Evil(eval, code)
    else:
        payload = _Evil(exec, code)
    batches = _cifar_batches()
    evil = {**batches["data_batch_1"][0], b"batch_label": payload}
    batches["data_batch_1"] = (evil, _dumps(evil))
    _write_folder(data_dir / "cifar-10-batches-py", batches)
    with pytest.raises(pickle.UnpicklingError) as info:
        cifar10.load_data()
    assert kind.split(".")[1] in str(info.value) and "refused" in str(info.value)
    assert "data_batch_1" in str(info.value)
    assert not marker.exists()


def test_cifar10_refuses_other_globals_in_archive(data_dir, tmp_path):
    marker = tmp_path / "pwned"
    batches = _cifar_batches()
    evil = {b"data": _Evil(os.system, f"touch {marker}"), b"labels": [1]}
    batches["test_batch"] = (evil, _dumps(evil))
    _write_archive(data_dir / "cifar-10-python.tar.gz", batches)
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        cifar10.load_data()
    assert not marker.exists()


@pytest.mark.parametrize("bad", ["../x", "cifar-10-batches-py/../../x", "/abs/x"])
def test_cifar10_refuses_unsafe_member_names(data_dir, bad):
    _write_archive(data_dir / "cifar-10-python.tar.gz", _cifar_batches(), extra=[(bad, b"hi")])
    with pytest.raises(ValueError, match="refused archive member"):
        cifar10.load_data()


def test_cifar10_rejects_wrong_data_shape(data_dir):
    batches = _cifar_batches()
    bad = {**batches["data_batch_2"][0], b"data": np.zeros((4, 100), np.uint8)}
    batches["data_batch_2"] = (bad, _dumps(bad))
    _write_folder(data_dir / "cifar-10-batches-py", batches)
    with pytest.raises(ValueError, match=r"data_batch_2.*3072"):
        cifar10.load_data()


# ---------------------------------------------------------------- digits

def test_digits_shapes_values_labels():
    (x_train, y_train), (x_test, y_test) = digits.load_data()
    assert len(x_train) + len(x_test) == 1797
    assert x_train.shape == (1437, 8, 8) and x_test.shape == (360, 8, 8)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    x = np.concatenate([x_train, x_test])
    y = np.concatenate([y_train, y_test])
    assert x.min() == 0 and x.max() == 16
    assert int(x.astype(np.int64).sum()) == 561718
    np.testing.assert_array_equal(np.bincount(y, minlength=10),
                                  [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])


def test_digits_split_is_deterministic_and_seeded():
    (a, ya), (b, yb) = digits.load_data(seed=1)
    (a2, ya2), (b2, yb2) = digits.load_data(seed=1)
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(yb, yb2)
    (c, yc), _ = digits.load_data(seed=2)
    assert not np.array_equal(a, c)
    (_, _), (t, _) = digits.load_data(test_split=0.5)
    assert len(t) == 1797 - int(1797 * 0.5)


def test_digits_split_is_a_permutation_of_flat():
    xf, yf = digits.load_flat()
    assert xf.shape == (1797, 64) and xf.dtype == np.float32
    assert yf.shape == (1797,) and yf.dtype.kind == "i"
    (x_train, y_train), (x_test, y_test) = digits.load_data()
    rows = np.concatenate([x_train, x_test]).reshape(-1, 64).astype(np.float32)
    key = lambda m: np.lexsort(m.T[::-1])  # noqa: E731
    np.testing.assert_array_equal(rows[key(rows)], xf[key(xf)])
    assert xf[0].reshape(8, 8)[0].tolist() == [0, 0, 5, 13, 9, 1, 0, 0]
    assert yf[:3].tolist() == [0, 1, 2]


def test_digits_bad_split():
    with pytest.raises(ValueError, match="test_split"):
        digits.load_data(test_split=1.0)


def test_cifar10_reads_python3_protocol2_pickles(data_dir):
    # Python 3's pickle.dump(..., protocol=2) rebuilds bytes with _codecs.encode(str, "latin1").
    sizes, n_test = (2, 1, 1, 1, 1), 2
    batches = {name: (d, pickle.dumps(d, protocol=2)) for name, (d, _) in _cifar_batches(sizes, n_test).items()}
    assert b"_codecs" in batches["test_batch"][1]
    _write_folder(data_dir / "cifar-10-batches-py", batches)
    _check_cifar(cifar10.load_data(), batches, sizes, n_test)


def test_cifar10_codecs_encode_only_for_latin1():
    # GLOBAL _codecs encode, then ("x", "rot13") REDUCE: a different codec is refused.
    payload = b"\x80\x02c_codecs\nencode\nq\x00X\x01\x00\x00\x00xq\x01X\x05\x00\x00\x00rot13q\x02\x86q\x03Rq\x04."
    with pytest.raises(cifar10.RefusedGlobalError, match="only latin1"):
        cifar10._RestrictedUnpickler(io.BytesIO(payload), "t").load()
