"""What a layer declares to the passes (Layer.batch_independent / is_batch_independent, random_in_training,
identity_in, keep_float32, index_input), and the bugs that reading class names instead caused."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import layers, ops, scope as scope_lib
from fncompiler.layers.layer import Layer
from fncompiler.ops.op_layer import OpLayer
from fncompiler.passes import PassContext, PassManager


def _predict_traces(model):
    return model._predict_trainer.compiled.trace_counts["predict"]


def test_batch_mean_op_is_not_padded_and_predicts_the_right_rows():
    inp = keras.Input((4,))
    model = keras.Model(inp, inp - ops.mean(inp, axis=0, keepdims=True))
    x = np.random.default_rng(0).random((3, 4), dtype=np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), x - x.mean(0, keepdims=True), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(model.predict(x[:2], verbose=0), x[:2] - x[:2].mean(0, keepdims=True),
                               rtol=1e-6, atol=1e-6)
    assert _predict_traces(model) == 2          # one program per size: nothing padded


def test_per_sample_op_is_still_padded():
    inp = keras.Input((4,))
    model = keras.Model(inp, inp - ops.mean(inp, axis=-1, keepdims=True))
    x = np.random.default_rng(1).random((7, 4), dtype=np.float32)
    for n in (3, 4):                              # both pad to the bucket of 4
        np.testing.assert_allclose(model.predict(x[:n], verbose=0), x[:n] - x[:n].mean(1, keepdims=True),
                                   rtol=1e-6, atol=1e-6)
    assert _predict_traces(model) == 1


@pytest.mark.parametrize("op, arguments, ranks, expected", [
    ("add", ((0, 1), {}), (2, 2), True),
    ("mean", ((0,), {"axis": 0}), (2,), False),
    ("mean", ((0,), {"axis": -2}), (2,), False),        # -2 of rank 2 is the batch axis
    ("mean", ((0,), {"axis": -1}), (2,), True),
    ("mean", ((0,), {}), (2,), False),                  # all axes
    ("sum", ((0, (1, 2)), {}), (3,), True),             # axis given positionally
    ("softmax", ((0,), {}), (2,), True),                # default axis -1
    ("concatenate", (([0, 1],), {}), (2, 2), False),    # default axis 0 stacks rows
    ("concatenate", (([0, 1],), {"axis": -1}), (2, 2), True),
    ("expand_dims", ((0, 0), {}), (2,), False),
    ("expand_dims", ((0, -1), {}), (2,), True),
    ("reshape", ((0, (-1,)), {}), (2,), False),
    ("matmul", ((0, 1), {}), (2, 2), False),
])
def test_op_layer_answers_per_op_and_axis(op, arguments, ranks, expected):
    assert OpLayer(op).is_batch_independent(arguments, ranks) is expected


class Centre(Layer):
    """A user layer that subtracts the batch mean: it declares nothing, so it must not be padded."""

    def call(self, x):
        return x - jnp.mean(x, axis=0, keepdims=True)


class Double(Layer):
    batch_independent = True
    random_in_training = False

    def call(self, x):
        return 2 * x


def test_undeclared_user_layer_is_not_padded_and_a_declared_one_is():
    x = np.random.default_rng(2).random((3, 2), dtype=np.float32)
    inp = keras.Input((2,))
    centred = keras.Model(inp, Centre()(inp))
    np.testing.assert_allclose(centred.predict(x, verbose=0), x - x.mean(0, keepdims=True), rtol=1e-6, atol=1e-6)
    inp = keras.Input((2,))
    doubled = keras.Model(inp, Double()(inp))
    doubled.predict(x, verbose=0)
    doubled.predict(x[:4], verbose=0)
    np.testing.assert_allclose(doubled.predict(x[:2], verbose=0), 2 * x[:2], rtol=1e-6)
    assert _predict_traces(doubled) == 2          # buckets 4 (for 3) and 2


def test_batchnorm_with_batch_statistics_in_predict_is_not_padded():
    inp = keras.Input((3,))
    model = keras.Model(inp, layers.BatchNormalization(epsilon=1e-3)(inp, training=True))
    x = np.random.default_rng(3).random((3, 3), dtype=np.float32)
    mean, var = x.mean(0), x.var(0)
    np.testing.assert_allclose(model.predict(x, verbose=0), (x - mean) / np.sqrt(var + 1e-3), rtol=1e-4, atol=1e-5)
    assert layers.BatchNormalization().is_batch_independent(((0,), {}), (2,), training=False)
    assert not layers.BatchNormalization().is_batch_independent(((0,), {}), (2,), training=True)


class Noise(Layer):
    """A weight-free user noise layer: random in training (it declares nothing, so the default holds)."""

    def call(self, x, training=None):
        if not training:
            return x
        key = scope_lib.current().next_rng()
        return x + jax.random.normal(key, x.shape)


def _forward_train(model, graph, x):
    from fncompiler.runtime import lowering
    low = lowering.lower(graph, model)
    out, _, _ = low.forward([v.value for v in low.trainable], [v.value for v in low.non_trainable],
                            [jnp.asarray(x)], jax.random.key(0), True)
    return np.asarray(out[0])


def test_cse_keeps_two_user_noise_layers_apart_in_training():
    inp = keras.Input((8,))
    model = keras.Model(inp, layers.subtract([Noise()(inp), Noise()(inp)]))
    g, records, _ = PassManager(["shape_inference", "cse"], verify=True).run(model.graph, PassContext("train"))
    assert records[-1].report == "merged 0 duplicate nodes"
    diff = _forward_train(model, g, np.zeros((4, 8), np.float32))
    assert np.abs(diff).max() > 0.1               # two independent draws, not a - a
    # in predict both are the identity and identical: merged
    g, records, _ = PassManager(["shape_inference", "cse"], verify=True).run(model.graph, PassContext("predict"))
    assert records[-1].report.startswith("merged 1 duplicate nodes")


def test_cse_merges_user_layers_that_declare_no_randomness_in_training():
    inp = keras.Input((2,))
    model = keras.Model(inp, layers.add([Double()(inp), Double()(inp)]))
    g, records, _ = PassManager(["shape_inference", "cse"], verify=True).run(model.graph, PassContext("train"))
    assert records[-1].report.startswith("merged 1 duplicate nodes")


def test_built_in_declarations():
    assert layers.Dropout(0.5).random_in_training and layers.GaussianNoise(0.1).random_in_training
    assert not layers.Dense(2).random_in_training and layers.Dense(2).batch_independent
    assert layers.LSTM(2, dropout=0.2).random_in_training and not layers.LSTM(2).random_in_training
    assert not layers.Lambda(lambda t: t).batch_independent
    assert Layer.random_in_training and not Layer.batch_independent      # the safe defaults
    assert layers.Dropout(0.5).identity_in == ("eval", "predict", "export")
    assert layers.ActivityRegularization().identity_in == ("predict", "export")
    assert layers.BatchNormalization().keep_float32 and layers.Softmax().keep_float32
    assert layers.Embedding(3, 2).index_input
