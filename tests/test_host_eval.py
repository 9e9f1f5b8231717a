"""runtime/host_eval: small jaxprs evaluated with NumPy must give exactly what the jitted program gives."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fncompiler as keras
from fncompiler.runtime import host_eval, steps
from fncompiler.runtime.trainer import Trainer

# tests of what the host path does (host_calls, no XLA compilation) only hold where it is on (CPU)
host_path = pytest.mark.skipif(not host_eval.host_path_on(),
                               reason="the host path is off on accelerators (runtime/host_eval.py)")


def _both(fn, *args, jit=False):
    """(host results, reference results): the reference is op-by-op jax (each primitive rounded on its own,
    which is what the host reproduces bit for bit), or the jitted program (XLA may fuse a*b+c into one rounding)."""
    closed = jax.make_jaxpr(fn)(*args)
    host = host_eval.evaluate(closed, jax.tree_util.tree_leaves(args))
    if jit:
        ref = jax.jit(fn)(*args)
    else:
        with jax.disable_jit():
            ref = fn(*args)
    return host, [np.asarray(r) for r in jax.tree_util.tree_leaves(ref)]


def _assert_same(host, ref, rtol=0.0):
    assert len(host) == len(ref)
    for h, r in zip(host, ref):
        assert h.dtype == r.dtype and h.shape == r.shape
        if rtol:
            np.testing.assert_allclose(h, r, rtol=rtol, atol=0)
        else:
            np.testing.assert_array_equal(h, r)


# One case per rule: (function, arguments).
X = np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5
I = np.arange(6, dtype=np.int32).reshape(2, 3)
CASES = {
    "broadcast_in_dim": (lambda x: jnp.broadcast_to(x[:, None, :], (3, 2, 4)), X),
    "convert int->float": (lambda i: i.astype(jnp.float32) * 0.5, I),
    "copy": (lambda x: jnp.array(x, copy=True), X),
    "arithmetic": (lambda x: (x + 1.5) * x - x / 3.0, X),
    "max/min/neg/abs": (lambda x: jnp.maximum(-x, 1.0) + jnp.minimum(jnp.abs(x), 2.0), X),
    "sqrt": (lambda x: jnp.sqrt(jnp.abs(x)), X),
    "compare/select": (lambda x: jnp.where(x > 0, x, 0.0) + jnp.where(x == 0.5, 1.0, 2.0), X),
    "logic": (lambda x: jnp.logical_and(x > -2, jnp.logical_not(x > 3)) | (x < -5), X),
    "slice/reshape/transpose": (lambda x: jnp.transpose(x[1:, ::2].reshape(2, 2)), X),
    "concat/expand/squeeze": (lambda x: jnp.squeeze(jnp.concatenate([x, x], 0)[None], 0), X),
    "reduce": (lambda x: (jnp.sum(x, axis=1), jnp.max(x, axis=0), jnp.min(x)), X),
    "int arithmetic": (lambda i: i * 3 - i + jnp.maximum(i, 2), I),
    "nested jit": (lambda x: jax.jit(lambda y: y * 2.0)(x) + 1.0, X),
    "zeros_like": (lambda x: (jnp.zeros_like(x), jnp.full((2,), 0.1, jnp.float32), jnp.zeros((), jnp.int32)), X),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rule_matches_jax(name):
    fn, arg = CASES[name]
    _assert_same(*_both(fn, arg))                       # exactly op-by-op jax
    _assert_same(*_both(fn, arg, jit=True), rtol=1e-6)   # and the compiled program up to fused rounding


@given(st.integers(min_value=-(2 ** 31), max_value=2 ** 31 - 1))
@settings(max_examples=50, deadline=None)
def test_threefry_seed_matches_jax(seed):
    fn = lambda s: jax.random.key_data(jax.random.key(s))
    _assert_same(*_both(fn, np.int32(seed)))


@pytest.mark.parametrize("fn, arg", [
    (lambda i: i // 2, I),                                   # integer division: XLA truncates, NumPy floors
    (lambda x: x.astype(jnp.int32), X),                      # float -> int cast
    (lambda x: jnp.exp(x), X),                               # transcendental: XLA's approximation
    (lambda s: jax.random.uniform(jax.random.key(s), (3,)), np.int32(1)),
])
def test_unsupported_raises(fn, arg):
    with pytest.raises(host_eval.Unsupported):
        host_eval.evaluate(jax.make_jaxpr(fn)(arg), [arg])


@host_path
def test_host_or_jit_falls_back_with_same_values():
    calls = host_eval.HostOrJit(lambda x: jnp.exp(x) + 1.0)
    np.testing.assert_array_equal(np.asarray(calls(X)), np.asarray(jax.jit(lambda x: jnp.exp(x) + 1.0)(X)))
    assert calls.host_calls == 0
    exact = host_eval.HostOrJit(lambda x: x * 2.0 + 1.0)
    out = exact(X)
    assert isinstance(out, jax.Array) and exact.host_calls == 1
    np.testing.assert_array_equal(np.asarray(out), X * 2.0 + 1.0)
    on_host = host_eval.HostOrJit(lambda x: x * 2.0 + 1.0, on_device=False)(X)    # values read on the host
    assert type(on_host) is np.ndarray
    np.testing.assert_array_equal(on_host, X * 2.0 + 1.0)


def _trainer(optimizer, metrics):
    inputs = keras.Input(shape=(5,))
    h = keras.layers.Dense(4, activation="relu")(inputs)
    h = keras.layers.BatchNormalization()(h)
    out = keras.layers.Dense(3)(h)
    model = keras.Model(inputs, out)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=metrics)
    t = Trainer(model, model._compile_config)
    t._ensure_resolved()
    t.rng_seed = 1234
    return t


@host_path
@pytest.mark.parametrize("optimizer", ["rmsprop", "adam", "sgd", "adamw", "adagrad", "nadam", "adamax",
                                       "adadelta", "lion"])
def test_initial_train_state_is_the_jitted_one(optimizer):
    t = _trainer(optimizer, ["accuracy"])
    tvars, ntvars = t._variables()
    state = t._initial_state(tvars, ntvars)
    assert t._init_fn.host_calls == 1                        # computed on the host: no XLA compilation
    cfg = t.cfg
    ref = jax.jit(lambda tr, nt, seed: steps.initial_train_state(tr, nt, cfg, seed))(
        [v.value for v in tvars], [v.value for v in ntvars], np.int32(1234))
    h_leaves, h_tree = jax.tree_util.tree_flatten(state)
    r_leaves, r_tree = jax.tree_util.tree_flatten(ref)
    assert h_tree == r_tree
    for h, r in zip(h_leaves, r_leaves):
        assert h.dtype == r.dtype and h.shape == r.shape and h.weak_type == r.weak_type
        np.testing.assert_array_equal(np.asarray(h), np.asarray(r))
    # fresh buffers: donating the state must not invalidate the model's weights
    assert all(h.unsafe_buffer_pointer() != v.value.unsafe_buffer_pointer()
               for h, v in zip(state[0], tvars))


def test_logs_match_jitted_metric_results():
    t = _trainer("adam", ["accuracy", keras.metrics.SparseCategoricalAccuracy(name="sca")])
    rng = np.random.default_rng(0)
    cfg = t.cfg
    states = steps.initial_metric_states(cfg)
    states = jax.tree_util.tree_map(lambda a: np.asarray(rng.random(np.shape(a)) * 7, np.asarray(a).dtype), states)
    logs = t._logs(states)
    ref = jax.device_get(jax.jit(lambda s: steps.metric_results(cfg, s))(states))
    assert logs == {k: float(v) for k, v in ref.items()}


@host_path
def test_fit_compiles_one_train_program_with_host_state():
    """The host-built first state has the train step's own signature: one trace, one compile, across epochs."""
    t = _trainer("rmsprop", ["accuracy"])
    model = t.model
    x = np.random.default_rng(0).random((64, 5), dtype=np.float32)
    y = np.arange(64) % 3
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=1)
    with jax.log_compiles(True):
        import logging
        records = []

        class H(logging.Handler):
            def emit(self, record):
                records.append(record.getMessage())
        handler = H()
        logging.getLogger("jax").addHandler(handler)
        try:
            model.fit(x, y, batch_size=16, epochs=3, verbose=0, shuffle=False)
        finally:
            logging.getLogger("jax").removeHandler(handler)
    traces = [r for r in records if r.startswith("Finished tracing") and "train_step" in r]
    compiles = [r for r in records if r.startswith("Finished XLA compilation")]
    assert len(traces) == 1, traces
    assert not any("jit(init)" in r or "<lambda>" in r for r in compiles), compiles
