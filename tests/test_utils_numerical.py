"""Tests for fncompiler.utils.numerical and fncompiler.utils.random."""

import random

import numpy as np
import pytest

from fncompiler.utils import numerical
from fncompiler.utils import random as fnrandom
from fncompiler.utils.numerical import normalize, to_categorical


def _ref_one_hot(y, k):
    return (np.asarray(y).reshape(-1)[:, None] == np.arange(k)[None, :]).astype(np.float32)


def test_to_categorical_1d():
    y = np.array([0, 2, 1, 2, 4])
    out = to_categorical(y)
    assert out.dtype == np.float32 and out.shape == (5, 5)
    np.testing.assert_array_equal(out, _ref_one_hot(y, 5))


def test_to_categorical_column_input_is_squeezed():
    y = np.array([[3], [0], [1]])
    out = to_categorical(y, num_classes=6)
    assert out.shape == (3, 6)
    np.testing.assert_array_equal(out, _ref_one_hot(y, 6))


def test_to_categorical_nd_and_list():
    y = np.array([[1, 0], [2, 2]])
    out = to_categorical(y, 3)
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out.reshape(-1, 3), _ref_one_hot(y, 3))
    np.testing.assert_array_equal(to_categorical([1, 0], 2), [[0, 1], [1, 0]])
    # A lone trailing 1 in a 1-D input is not squeezed.
    assert to_categorical(np.array([0]), 2).shape == (1, 2)


def test_to_categorical_out_of_range():
    with pytest.raises(ValueError, match="num_classes=3"):
        to_categorical([0, 3], 3)
    with pytest.raises(ValueError):
        to_categorical([-1, 1], 3)


def test_normalize_l2_and_l1():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, -1.0]])
    out = normalize(x)
    np.testing.assert_allclose(out, [[0.6, 0.8], [0, 0], [2**-0.5, -(2**-0.5)]])
    out1 = normalize(x, axis=0, order=1)
    np.testing.assert_allclose(out1, x / np.abs(x).sum(axis=0, keepdims=True))
    assert numerical.normalize(np.array([3, 4])).tolist() == pytest.approx([0.6, 0.8])


def test_normalize_jax_array():
    jnp = pytest.importorskip("jax.numpy")
    out = normalize(jnp.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(np.asarray(out), [[0.6, 0.8], [0, 0]], rtol=1e-6)


def test_set_random_seed_and_next_seed():
    fnrandom.set_random_seed(123)
    assert fnrandom.global_seed() == 123
    a = [random.random(), np.random.rand(), fnrandom.next_seed(), fnrandom.next_seed()]
    fnrandom.set_random_seed(123)
    b = [random.random(), np.random.rand(), fnrandom.next_seed(), fnrandom.next_seed()]
    assert a == b
    assert a[2] != a[3] and all(0 <= s < 2**31 for s in a[2:])
    fnrandom.set_random_seed(124)
    assert fnrandom.next_seed() != a[2]
    with pytest.raises(ValueError):
        fnrandom.set_random_seed(1.5)


def test_next_seed_without_global_seed(monkeypatch):
    monkeypatch.setattr(fnrandom, "_seed", None)
    assert fnrandom.global_seed() is None
    seeds = {fnrandom.next_seed() for _ in range(8)}
    assert len(seeds) > 1 and all(isinstance(s, int) for s in seeds)
