"""Property test: random DAGs of layers keep their outputs through every optimizing pass."""
import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fncompiler as keras
from fncompiler import layers
from fncompiler.passes import PassContext, PassManager
from fncompiler.runtime import lowering

WIDTH = 6
ALL = ["inline", "inference_specialization", "dead_code_elimination", "simplify", "cse", "fold_batchnorm", "fusion",
       "scan_repeated_blocks", "constant_folding"]


def _build(ops):
    """ops: list of (kind, a, b) choices; each adds one layer reading earlier tensors a/b (indices mod count)."""
    x = keras.Input(shape=(WIDTH,))
    tensors = [x]
    for kind, a, b in ops:
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
        else:
            y = layers.Reshape((WIDTH,))(layers.Reshape((2, WIDTH // 2))(t))
        tensors.append(y)
    return keras.Model(x, tensors[-1])


OPS = st.lists(st.tuples(st.sampled_from(["dense", "relu", "tanh", "add", "concat", "dropout", "bn", "nested",
                                          "reshape"]),
                         st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=10)


def _outputs(model, graph, x):
    low = lowering.lower(graph, model)
    tv, ntv = [v.value for v in low.trainable], [v.value for v in low.non_trainable]
    residuals = low.residuals(tv, ntv) if low.folds else None   # constant_folding's weight-only parts, ahead
    out, _, _ = low.forward(tv, ntv, [jnp.asarray(x)], None, False, residuals=residuals)
    return np.asarray(out[0])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS, st.sampled_from(["predict", "eval", "train"]))
def test_every_pass_preserves_outputs(ops, mode):
    model = _build(ops)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            rng = np.random.default_rng(0)
            layer.set_weights([rng.random(WIDTH) + 0.5, rng.random(WIDTH), rng.random(WIDTH), rng.random(WIDTH) + 0.5])
    x = np.random.default_rng(1).standard_normal((3, WIDTH)).astype("float32")
    graph, _, _ = PassManager(["shape_inference", "dtype_check"] + ALL, verify=True).run(
        model.graph, PassContext(mode, options={"fold_weight_expressions": True}))
    np.testing.assert_allclose(_outputs(model, graph, x), _outputs(model, model.graph, x), rtol=1e-5, atol=1e-5)
