"""Gradient accumulation (runtime/accumulation.py): `compile(gradient_accumulation_steps=K)` or Keras's optimizer
argument. With a mean loss and equal batch sizes, K accumulated steps of batch B from the same weights give the
weights of one step on the K x B batch (SGD and Adam), whatever the execution strategy, and the steps in
between leave the weights unchanged."""
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import layers


def _data(n, features=6, outputs=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, features)).astype(np.float32), rng.normal(size=(n, outputs)).astype(np.float32)


def _model(optimizer, weights=None, **compile_kwargs):
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(6,))
    h = layers.Dense(8, activation="tanh")(inputs)
    model = keras.Model(inputs, layers.Dense(3)(h))
    if weights is not None:
        model.set_weights(weights)
    model.compile(optimizer=optimizer, loss="mse", **compile_kwargs)
    return model


def _optimizer(name, **kwargs):
    return keras.optimizers.SGD(0.1, **kwargs) if name == "sgd" else keras.optimizers.Adam(0.01, **kwargs)


def _close(a, b):
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("opt", ["sgd", "adam"])
@pytest.mark.parametrize("spe", [1, 4, "auto"])
def test_k_accumulated_batches_equal_one_step_on_a_k_times_larger_batch(opt, spe):
    K, B, updates = 4, 8, 3
    x, y = _data(K * B * updates)
    start = _model("sgd").get_weights()
    big = _model(_optimizer(opt), start, steps_per_execution=1)
    big.fit(x, y, batch_size=K * B, epochs=1, shuffle=False, verbose=0)
    acc = _model(_optimizer(opt), start, steps_per_execution=spe, gradient_accumulation_steps=K)
    acc.fit(x, y, batch_size=B, epochs=1, shuffle=False, verbose=0)
    _close(acc.get_weights(), big.get_weights())
    assert not np.allclose(acc.get_weights()[0], start[0])          # (it trained)
    # Keras's optimizer.iterations counts updates (steps // K): the optimizer state saved is the optimizer's own
    assert int(acc._trainer.opt_state.iterations) == updates == int(big._trainer.opt_state.iterations)
    if spe == 1:
        assert acc._trainer.compiled.trace_counts["train"] == 1       # one program for every batch


def test_sgd_accumulation_matches_numpy():
    """The reference in plain NumPy: a linear model, mse, the mean gradient of K batches applied once."""
    K, B, lr = 3, 4, 0.1
    x, y = _data(K * B, outputs=2)
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(6,))
    model = keras.Model(inputs, layers.Dense(2)(inputs))
    w0, b0 = model.get_weights()
    model.compile(optimizer=keras.optimizers.SGD(lr), loss="mse", gradient_accumulation_steps=K)
    model.fit(x, y, batch_size=B, epochs=1, shuffle=False, verbose=0)
    grads_w, grads_b = [], []
    for k in range(K):
        xb, yb = x[k * B:(k + 1) * B].astype(np.float64), y[k * B:(k + 1) * B].astype(np.float64)
        err = xb @ w0 + b0 - yb                                    # mse = mean over batch and outputs
        grads_w.append(2 * xb.T @ err / err.size)
        grads_b.append(2 * err.sum(0) / err.size)
    expected = [w0 - lr * np.mean(grads_w, 0), b0 - lr * np.mean(grads_b, 0)]
    _close(model.get_weights(), expected)


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_the_steps_in_between_leave_the_weights_unchanged(opt):
    K, B = 3, 5
    x, y = _data(K * B)
    start = _model("sgd").get_weights()
    acc = _model(_optimizer(opt), start, gradient_accumulation_steps=K)
    for k in range(K - 1):
        acc.train_on_batch(x[k * B:(k + 1) * B], y[k * B:(k + 1) * B])
        _close(acc.get_weights(), start)
        assert int(acc._trainer.opt_state.iterations) == 0
    acc.train_on_batch(x[(K - 1) * B:], y[(K - 1) * B:])
    big = _model(_optimizer(opt), start)
    big.train_on_batch(x, y)
    _close(acc.get_weights(), big.get_weights())
    assert not np.allclose(acc.get_weights()[0], start[0])


def test_several_epochs_with_a_k_that_does_not_divide_the_epoch():
    """5 batches per epoch, K=2, 2 epochs: the accumulator carries over the epoch boundary (batch 5 of epoch 1
    and batch 1 of epoch 2 make one update), as Keras's optimizer variables do."""
    K, B = 2, 4
    x, y = _data(5 * B)
    start = _model("sgd").get_weights()
    acc = _model(_optimizer("sgd"), start, steps_per_execution=1, gradient_accumulation_steps=K)
    acc.fit(x, y, batch_size=B, epochs=2, shuffle=False, verbose=0)
    big = _model(_optimizer("sgd"), start)
    batches = [(x[i * B:(i + 1) * B], y[i * B:(i + 1) * B]) for i in range(5)] * 2
    for k in range(0, 10, K):
        big.train_on_batch(np.concatenate([b[0] for b in batches[k:k + K]]),
                           np.concatenate([b[1] for b in batches[k:k + K]]))
    _close(acc.get_weights(), big.get_weights())
    assert int(acc._trainer.opt_state.iterations) == 5


def test_the_accumulator_carries_across_fits():
    """Batches left over at the end of one fit count towards the next update, as in Keras."""
    K, B = 4, 8
    x, y = _data(K * B)
    start = _model("sgd").get_weights()
    acc = _model(_optimizer("sgd"), start, steps_per_execution=1, gradient_accumulation_steps=K)
    acc.fit(x[:2 * B], y[:2 * B], batch_size=B, shuffle=False, verbose=0)        # 2 of 4: no update yet
    _close(acc.get_weights(), start)
    acc.fit(x[2 * B:], y[2 * B:], batch_size=B, shuffle=False, verbose=0)        # the other 2: one update
    big = _model(_optimizer("sgd"), start)
    big.train_on_batch(x, y)
    _close(acc.get_weights(), big.get_weights())


def test_the_optimizer_argument_is_the_same_mechanism():
    K, B = 2, 8
    x, y = _data(K * B * 2)
    start = _model("sgd").get_weights()
    a = _model(keras.optimizers.Adam(0.01, gradient_accumulation_steps=K), start, steps_per_execution=1)
    a.fit(x, y, batch_size=B, shuffle=False, verbose=0)
    b = _model(_optimizer("adam"), start, steps_per_execution=1, gradient_accumulation_steps=K)
    b.fit(x, y, batch_size=B, shuffle=False, verbose=0)
    np.testing.assert_array_equal(a.get_weights()[0], b.get_weights()[0])
    assert a.optimizer.get_config()["gradient_accumulation_steps"] == K
    # the same value in both places is accepted
    _model(keras.optimizers.Adam(gradient_accumulation_steps=K), start, gradient_accumulation_steps=K)


def test_invalid_steps_are_refused_with_clear_errors():
    with pytest.raises(ValueError, match=r"gradient_accumulation_steps must be an int >= 1.*received 0"):
        _model("sgd", gradient_accumulation_steps=0)
    for bad in ("2", 2.0, True):
        with pytest.raises(TypeError, match="gradient_accumulation_steps must be an int >= 1"):
            _model("sgd", gradient_accumulation_steps=bad)
    with pytest.raises(ValueError, match="must be an integer >= 2"):        # Keras's rule for the optimizer's
        keras.optimizers.SGD(gradient_accumulation_steps=1)
    with pytest.raises(TypeError, match="must be an integer >= 2 or None"):
        keras.optimizers.SGD(gradient_accumulation_steps="4")
    with pytest.raises(ValueError, match=r"gradient_accumulation_steps=3 but the optimizer 'adam' .*=2; give it in "
                                         r"one place"):
        _model(keras.optimizers.Adam(gradient_accumulation_steps=2), gradient_accumulation_steps=3)


def test_the_compile_argument_round_trips_through_the_compile_config():
    model = _model("sgd", gradient_accumulation_steps=3)
    config = model._compile_config.get_config()
    assert config["gradient_accumulation_steps"] == 3
    again = _model("sgd")
    again.compile_from_config(config)
    assert again._compile_config.gradient_accumulation_steps == 3
    assert "gradient_accumulation_steps" not in _model("sgd")._compile_config.get_config()    # Keras's layout
