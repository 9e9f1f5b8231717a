"""XLA compile options: fncompiler's per-platform defaults, a user's overrides, and steps called inside a
user's own trace (where JAX takes options only at the top level)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fncompiler as keras
from fncompiler.runtime import compiled as compiled_lib, host_eval, placement


def _model():
    inputs = keras.Input(shape=(6,))
    outputs = keras.layers.Dense(3)(keras.layers.Dense(8, activation="relu")(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    return model


def test_defaults_per_platform_and_user_override(monkeypatch):
    assert compiled_lib.default_compiler_options("cpu") == {"xla_backend_optimization_level": 1}
    assert compiled_lib.default_compiler_options("gpu") == {}
    platform = jax.devices()[0].platform
    model = _model()
    cm = keras.compile_model(model)
    assert cm.compiler_options == compiled_lib.default_compiler_options(platform)
    cm = keras.compile_model(model, compiler_options={"xla_backend_optimization_level": 3})
    assert cm.compiler_options["xla_backend_optimization_level"] == 3        # the user's value wins
    monkeypatch.setenv("FNCOMPILER_XLA_DEFAULTS", "0")
    assert keras.compile_model(model).compiler_options == {}


def test_default_options_compute_the_same_predictions(monkeypatch):
    model = _model()
    x = np.random.default_rng(0).random((5, 6), dtype=np.float32)
    ours = keras.compile_model(model).predict(x)
    monkeypatch.setenv("FNCOMPILER_XLA_DEFAULTS", "0")
    xla = keras.compile_model(model).predict(x)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(xla), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("donate", [(), (0,)])
def test_step_with_options_inside_a_users_trace(donate):
    """A step compiled with options still works under the user's jax.jit and jax.grad (options apply to the
    outermost program only), and at the top level it keeps one executable per signature."""
    traces = []

    def step(w, x):
        traces.append(1)
        return w * x

    f = placement.jit_step(step, donate_argnums=donate, compiler_options={"xla_backend_optimization_level": 1})
    x = jnp.arange(3.0)
    np.testing.assert_allclose(jax.jit(lambda w: f(w, x) + 1.0)(jnp.ones(3)), [1.0, 2.0, 3.0])
    if not donate:       # (grad runs the primal eagerly: a donating step would consume the user's array)
        np.testing.assert_allclose(jax.grad(lambda w: f(w, x).sum())(jnp.ones(3)), [0.0, 1.0, 2.0])
    before = len(traces)
    for _ in range(3):
        out = f(jnp.ones(3), x)
    np.testing.assert_allclose(out, [0.0, 1.0, 2.0])
    assert len(traces) - before <= 1          # no retrace per call (the trace may be shared with the nested one)


def test_host_copies_are_fresh_and_keep_device_and_values():
    arrays = [jnp.arange(6.0).reshape(2, 3), jnp.ones((4,), jnp.int32)]
    out = host_eval.copies(arrays)
    for a, b in zip(arrays, out):
        assert b.dtype == a.dtype and b.shape == a.shape and b.sharding == a.sharding
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert a.unsafe_buffer_pointer() != b.unsafe_buffer_pointer()


def test_host_copies_keep_commitment_so_a_jitted_step_does_not_compile_again():
    """A jitted step's executable cache tells committed from uncommitted arguments: copies of its own outputs
    (uncommitted) must stay uncommitted, or the next call compiles the step again (the autotuner timed a compile
    as step time this way)."""
    compiles = []
    step = jax.jit(lambda w, x: (w + x * 2.0, (w * x).sum()))
    loose = step(jnp.ones(3), jnp.ones(3))[0]               # a step's output: uncommitted
    placed = jax.device_put(np.ones(3, np.float32), jax.devices()[0])       # committed by the user
    out = host_eval.copies([loose, placed])
    assert [a.committed for a in out] == [loose.committed, placed.committed] == [False, True]
    step(loose, jnp.ones(3))
    with jax.log_compiles(True):
        import logging
        handler = logging.Handler()
        handler.emit = lambda record: compiles.append(record.getMessage())
        logger = logging.getLogger("jax")
        logger.addHandler(handler)
        try:
            step(host_eval.copies([loose])[0], jnp.ones(3))
        finally:
            logger.removeHandler(handler)
    assert not [m for m in compiles if "Compiling" in m], compiles


def test_host_copy_tree_keeps_structure():
    tree = {"a": [jnp.ones((2,)), jnp.zeros((), jnp.int32)], "b": jnp.arange(3.0)}
    out = host_eval.copy_tree(tree)
    assert jax.tree_util.tree_structure(out) == jax.tree_util.tree_structure(tree)
    for a, b in zip(jax.tree_util.tree_leaves(tree), jax.tree_util.tree_leaves(out)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert b.dtype == a.dtype and a.unsafe_buffer_pointer() != b.unsafe_buffer_pointer()
