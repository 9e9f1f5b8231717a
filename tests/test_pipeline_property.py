"""Property test: random DAGs of layers keep their outputs through every optimizing pass."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fncompiler as keras
from fncompiler import layers, ops, scope as scope_lib
from fncompiler.layers.layer import Layer
from fncompiler.passes import PassContext, PassManager
from fncompiler.runtime import buckets, lowering

WIDTH = 6
ALL = ["inline", "inference_specialization", "dead_code_elimination", "simplify", "cse", "fold_batchnorm", "fusion",
       "scan_repeated_blocks", "constant_folding"]


class Noise(Layer):
    """A weight-free user layer that is random in training (it declares nothing: the safe defaults hold)."""

    def compute_output_shape(self, input_shape):
        return input_shape

    def call(self, x, training=None):
        scope = scope_lib.current()
        key = scope.next_rng() if scope is not None and training else None
        return x if key is None else x + jax.random.normal(key, x.shape)


def _build(choices):
    """ops: list of (kind, a, b) choices; each adds one layer reading earlier tensors a/b (indices mod count)."""
    x = keras.Input(shape=(WIDTH,))
    tensors = [x]
    for kind, a, b in choices:
        t, u = tensors[a % len(tensors)], tensors[b % len(tensors)]
        if kind == "dense":
            y = layers.Dense(WIDTH)(t)
        elif kind == "relu":
            y = layers.Activation("relu")(t)
        elif kind == "tanh":
            y = layers.Activation("tanh")(t)
        elif kind == "add":
            y = layers.add([t, u])
        elif kind == "concat":
            y = layers.Dense(WIDTH)(layers.concatenate([t, u]))
        elif kind == "dropout":
            y = layers.Dropout(0.3)(t)
        elif kind == "bn":
            y = layers.BatchNormalization()(layers.Dense(WIDTH)(t))
        elif kind == "nested":
            i = keras.Input(shape=(WIDTH,))
            y = keras.Model(i, layers.Dense(WIDTH, activation="relu")(i))(t)
        elif kind == "nested_training":     # inline's keyword check: a call with training= stays a call
            i = keras.Input(shape=(WIDTH,))
            y = keras.Model(i, layers.Dropout(0.5, seed=3)(layers.Dense(WIDTH)(i)))(t, training=True)
        elif kind == "bn_axis":             # fold_batchnorm's axis check: BN over a non-channel axis
            h = layers.Dense(3)(layers.Reshape((2, WIDTH // 2))(t))
            y = layers.Reshape((WIDTH,))(layers.BatchNormalization(axis=1)(h))
        elif kind == "bn_training":         # batch statistics in every mode: not folded, mixes the batch
            y = layers.BatchNormalization()(layers.Dense(WIDTH)(t), training=True)
        elif kind == "batch_mean":          # an op that mixes the batch
            y = t - ops.mean(t, axis=0, keepdims=True)
        elif kind == "dropout_training":    # inference_specialization keeps a Dropout called with training=True
            y = layers.Dropout(0.5, seed=4)(t, training=True)
        elif kind == "noise":               # two independent draws on one input (CSE must keep both)
            y = layers.subtract([Noise()(t), Noise()(t)])
        else:
            y = layers.Reshape((WIDTH,))(layers.Reshape((2, WIDTH // 2))(t))
        tensors.append(y)
    return keras.Model(x, tensors[-1])


OPS = st.lists(st.tuples(st.sampled_from(["dense", "relu", "tanh", "add", "concat", "dropout", "bn", "nested",
                                          "reshape", "nested_training", "bn_axis", "bn_training", "batch_mean",
                                          "noise", "dropout_training"]),
                         st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=10)


def _outputs(model, graph, x):
    low = lowering.lower(graph, model)
    tv, ntv = [v.value for v in low.trainable], [v.value for v in low.non_trainable]
    residuals = low.residuals(tv, ntv) if low.folds else None   # constant_folding's weight-only parts, ahead
    out, _, _ = low.forward(tv, ntv, [jnp.asarray(x)], None, False, residuals=residuals)
    return np.asarray(out[0])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS, st.sampled_from(["predict", "eval", "train"]))
def test_every_pass_preserves_outputs(choices, mode):
    _check(choices, mode)


# each guarded case once in every mode, whatever the random draws above hit
@pytest.mark.parametrize("kind", ["nested_training", "bn_axis", "bn_training", "batch_mean", "noise",
                                  "dropout_training"])
@pytest.mark.parametrize("mode", ["predict", "eval", "train"])
def test_each_guarded_case(kind, mode):
    _check([(kind, 0, 0), ("relu", 1, 1)], mode)


def _check(choices, mode):
    model = _build(choices)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            rng = np.random.default_rng(0)
            n = layer.get_weights()[0].shape[0]
            layer.set_weights([rng.random(n) + 0.5, rng.random(n), rng.random(n), rng.random(n) + 0.5])
    x = np.random.default_rng(1).standard_normal((3, WIDTH)).astype("float32")
    graph, _, _ = PassManager(["shape_inference", "dtype_check"] + ALL, verify=True).run(
        model.graph, PassContext(mode, options={"fold_weight_expressions": True}))
    np.testing.assert_allclose(_outputs(model, graph, x), _outputs(model, model.graph, x), rtol=1e-5, atol=1e-5)
    if mode == "train":   # random layers are never merged: as many draws as the model wrote
        count = lambda g: sum(isinstance(d.get("layer"), Noise) for _, d in g.nodes(data=True))
        assert count(graph) == count(model.graph)
    if mode == "predict" and buckets.per_sample(graph):   # predict may pad this graph: padding changes no row
        padded = buckets.pad_rows([x], 4)[0]
        np.testing.assert_allclose(_outputs(model, graph, padded)[:3], _outputs(model, graph, x), rtol=1e-5,
                                   atol=1e-5)
