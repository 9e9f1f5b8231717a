"""predict pads odd batch sizes to power-of-two buckets (runtime/buckets.py) so a stream of sizes compiles a
bounded number of programs, without changing any output."""
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import layers
from fncompiler.runtime import buckets


@pytest.mark.parametrize("n, cap, expected", [(1, 32, 1), (3, 32, 4), (17, 32, 32), (31, 32, 32), (32, 32, 32),
                                              (5, 6, 6), (40, 32, 40)])
def test_bucket_size(n, cap, expected):
    assert buckets.bucket_size(n, cap) == expected


def test_pad_rows_repeats_the_last_row():
    a = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.testing.assert_array_equal(buckets.pad_rows([a], 4)[0], np.array([[0, 1], [2, 3], [4, 5], [4, 5]]))


def _numpy_forward(model, x):
    k1, b1, k2, b2 = model.get_weights()[:4]
    gamma, beta, mean, var = model.get_weights()[4:]
    h = np.maximum(x @ k1 + b1, 0) @ k2 + b2
    return gamma * (h - mean) / np.sqrt(var + 1e-3) + beta


def test_a_stream_of_odd_sizes_compiles_few_programs_and_changes_no_output():
    keras.utils.set_random_seed(0)
    inp = keras.Input((5,))
    h = layers.Dense(8, activation="relu")(inp)
    out = layers.BatchNormalization()(layers.Dense(3)(h))
    model = keras.Model(inp, out)
    model.layers[-1].set_weights([np.full(3, 1.5, np.float32), np.full(3, 0.1, np.float32),
                                  np.full(3, 0.2, np.float32), np.full(3, 2.0, np.float32)])
    x = np.random.default_rng(0).random((40, 5), dtype=np.float32)
    for n in range(1, 41):
        np.testing.assert_allclose(model.predict(x[:n], verbose=0), _numpy_forward(model, x[:n]),
                                   rtol=1e-5, atol=1e-6)
    # sizes 1..32 -> buckets 1, 2, 4, 8, 16, 32; 33..40 -> one batch of 32 plus a bucketed remainder
    assert model._predict_trainer.compiled.trace_counts["predict"] == 6


def test_cross_sample_lambda_is_not_padded():
    """A Lambda may mix samples (here: subtract the batch mean), so its graph runs each size unpadded."""
    inp = keras.Input((2,))
    out = layers.Lambda(lambda t: t - keras.ops.mean(t, axis=0, keepdims=True))(inp)
    model = keras.Model(inp, out)
    x = np.random.default_rng(1).random((3, 2), dtype=np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), x - x.mean(0, keepdims=True), rtol=1e-6, atol=1e-7)
    model.predict(x[:2], verbose=0)
    assert model._predict_trainer.compiled.trace_counts["predict"] == 2
