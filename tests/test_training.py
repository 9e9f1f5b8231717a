"""The training API: fit/evaluate/predict on real data, logs, callbacks, and clear errors for bad input."""
import csv

import numpy as np
import pytest

import fncompiler as keras
from fncompiler import callbacks, layers


def digits_mlp(seed=0):
    inputs = keras.Input(shape=(64,), name="digits")
    x = layers.Dense(64, activation="relu")(inputs)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(10)(x)
    model = keras.Model(inputs, outputs, name="digits_mlp")
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  optimizer=keras.optimizers.RMSprop(), metrics=["accuracy"])
    return model


def test_mlp_learns_the_digits(digits_flat):
    (x, y), (xt, yt) = digits_flat
    model = digits_mlp()
    history = model.fit(x, y, batch_size=32, epochs=12, validation_split=0.2, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history.history["loss"]) == 12
    assert history.history["loss"][-1] < history.history["loss"][0] / 5
    loss, acc = model.evaluate(xt, yt, verbose=0)
    assert acc >= 0.93
    preds = model.predict(xt, verbose=0)
    assert preds.shape == (len(xt), 10)
    assert np.mean(preds.argmax(-1) == yt) == pytest.approx(acc, abs=1e-6)


def test_validation_split_takes_the_last_samples(digits_flat):
    (x, y), _ = digits_flat
    x, y = x[:500], y[:500]
    model = digits_mlp()
    history = model.fit(x, y, batch_size=50, epochs=1, validation_split=0.2, shuffle=False, verbose=0)
    val_loss, val_acc = model.evaluate(x[400:], y[400:], batch_size=50, verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(val_loss, rel=1e-5)
    assert history.history["val_accuracy"][0] == pytest.approx(val_acc, rel=1e-6)


def test_logged_loss_is_the_batch_size_weighted_mean(digits_flat):
    (x, y), _ = digits_flat
    x, y = x[:70], y[:70]
    model = digits_mlp()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=True), metrics=["accuracy"])
    history = model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    logits = model.predict(x, verbose=0)
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - \
        logits.max(-1, keepdims=True)
    expected = -np.mean(logp[np.arange(70), y])
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-5)
    assert history.history["accuracy"][0] == pytest.approx(np.mean(logits.argmax(-1) == y), abs=1e-6)


def test_progress_lines(digits_flat, capsys):
    (x, y), _ = digits_flat
    model = digits_mlp()
    model.fit(x[:128], y[:128], batch_size=64, epochs=1, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 1/1" in out
    line = [l for l in out.splitlines() if l.startswith("2/2")][-1]
    assert "━" * 20 in line and "/step - accuracy: " in line and " - loss: " in line
    model.evaluate(x[:128], y[:128], batch_size=64, verbose=2)
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert out.startswith("2/2 - ") and "accuracy: " in out


class Recorder(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def on_train_begin(self, logs=None):
        self.events.append("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(f"epoch_begin {epoch}")

    def on_train_batch_end(self, batch, logs=None):
        self.events.append(f"batch_end {batch} {sorted(logs)}")

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(f"epoch_end {epoch} {sorted(logs)}")

    def on_train_end(self, logs=None):
        self.events.append("train_end")


def test_callback_hooks_order_and_logs(digits_flat):
    (x, y), _ = digits_flat
    rec = Recorder()
    model = digits_mlp()
    model.fit(x[:64], y[:64], batch_size=32, epochs=2, callbacks=[rec], verbose=0, initial_epoch=1)
    assert rec.events == ["train_begin", "epoch_begin 1", "batch_end 0 ['accuracy', 'loss']",
                          "batch_end 1 ['accuracy', 'loss']", "epoch_end 1 ['accuracy', 'loss']", "train_end"]


def test_early_stopping_and_restore_best_weights(digits_flat):
    (x, y), _ = digits_flat

    class WorseEachEpoch(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = float(epoch)          # monotonically worse after epoch 0
    class Snap(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append([w.copy() for w in self.model.get_weights()])
    seen = []
    model = digits_mlp()
    stop = callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    history = model.fit(x[:64], y[:64], epochs=10, callbacks=[WorseEachEpoch(), Snap(), stop], verbose=0)
    assert len(history.history["loss"]) == 3 and stop.stopped_epoch == 2 and stop.best_epoch == 0
    # the weights are the best epoch's (0), not the last's
    assert not np.array_equal(seen[0][0], seen[-1][0])
    for restored, best in zip(model.get_weights(), seen[0]):
        np.testing.assert_array_equal(restored, best)


def test_weights_a_callback_sets_at_epoch_start_are_the_ones_trained(digits_flat):
    (x, y), _ = digits_flat
    model = digits_mlp()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    target = [np.full_like(w, 0.01 * (i + 1)) for i, w in enumerate(model.get_weights())]

    class SetAtStart(callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                self.model.set_weights(target)
    history = model.fit(x[:64], y[:64], batch_size=32, epochs=2, callbacks=[SetAtStart()], verbose=0)
    for got, want in zip(model.get_weights(), target):       # learning rate 0: the set weights stay
        np.testing.assert_array_equal(got, want)
    # and epoch 1's loss is the loss of those weights (every logit equal: log(10))
    assert history.history["loss"][1] == pytest.approx(np.log(10.0), rel=1e-5)


def test_learning_rate_scheduler_changes_the_step_without_retracing(digits_flat):
    (x, y), _ = digits_flat
    model = digits_mlp()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    seen = []
    sched = callbacks.LearningRateScheduler(lambda epoch, lr: 0.0 if epoch >= 1 else lr)

    class Snap(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append([w.copy() for w in self.model.get_weights()])
    history = model.fit(x[:64], y[:64], batch_size=32, epochs=3, callbacks=[sched, Snap()], verbose=0, shuffle=False)
    np.testing.assert_array_equal(seen[1][0], seen[2][0])       # lr 0 from epoch 1 on: no change
    assert history.history["learning_rate"] == [0.1, 0.0, 0.0]
    assert model._trainer.compiled.trace_counts["train"] == 1


def test_reduce_lr_on_plateau_and_terminate_on_nan(digits_flat):
    (x, y), _ = digits_flat
    model = digits_mlp()

    class Flat(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = 1.0
    reduce = callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1)
    model.fit(x[:32], y[:32], epochs=3, callbacks=[Flat(), reduce], verbose=0)
    assert model.optimizer.learning_rate == pytest.approx(0.001 * 0.25)
    bad = np.full_like(x[:64], np.nan)
    history = model.fit(bad, y[:64], batch_size=32, epochs=5, callbacks=[callbacks.TerminateOnNaN()], verbose=0)
    assert len(history.history["loss"]) == 1 and np.isnan(history.history["loss"][0])


def test_csv_logger(tmp_path, digits_flat):
    (x, y), _ = digits_flat
    path = tmp_path / "log.csv"
    model = digits_mlp()
    model.fit(x[:64], y[:64], epochs=2, callbacks=[callbacks.CSVLogger(path)], verbose=0)
    rows = list(csv.DictReader(open(path)))
    assert [r["epoch"] for r in rows] == ["0", "1"] and set(rows[0]) == {"epoch", "accuracy", "loss"}


def test_generators_and_validation_data(digits_flat):
    (x, y), (xt, yt) = digits_flat

    def batches():
        for i in range(0, 256, 32):
            yield x[i:i + 32], y[i:i + 32]
    model = digits_mlp()
    history = model.fit(batches(), epochs=1, validation_data=(xt[:64], yt[:64]), verbose=0)
    val_loss, val_acc = model.evaluate(xt[:64], yt[:64], verbose=0)   # the epoch's validation: final weights
    assert history.history["val_loss"] == pytest.approx([val_loss], rel=1e-5)
    assert history.history["val_accuracy"] == pytest.approx([val_acc], abs=1e-6)
    assert history.history["loss"][0] > 0 and 0 <= history.history["accuracy"][0] <= 1
    assert model.evaluate(((xt[i:i + 32], yt[i:i + 32]) for i in range(0, 64, 32)), verbose=0)[1] == \
        pytest.approx(model.evaluate(xt[:64], yt[:64], verbose=0)[1])


def test_a_generator_without_validation_data_trains_like_the_arrays(digits_flat):
    (x, y), _ = digits_flat

    def batches():
        for i in range(0, 256, 32):
            yield x[i:i + 32], y[i:i + 32]
    from_generator = digits_mlp()
    from_arrays = digits_mlp()
    from_arrays.set_weights(from_generator.get_weights())
    history = from_generator.fit(batches(), epochs=1, verbose=0)
    expected = from_arrays.fit(x[:256], y[:256], batch_size=32, epochs=1, shuffle=False, verbose=0)
    assert set(history.history) == {"loss", "accuracy"}
    assert history.history["loss"] == pytest.approx(expected.history["loss"], rel=1e-5)
    for a, b in zip(from_generator.get_weights(), from_arrays.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_errors_are_clear(digits_flat):
    (x, y), _ = digits_flat
    model = digits_mlp()
    with pytest.raises(ValueError, match=r'Input 0 \("digits"\) of model "digits_mlp" has the wrong shape: '
                                         r"expected \(None, 64\).*received \(10, 8, 8\)"):
        model.fit(x[:10].reshape(10, 8, 8), y[:10], verbose=0)
    with pytest.raises(ValueError, match="x has 10 samples but y has 9"):
        model.fit(x[:10], y[:9], verbose=0)
    with pytest.raises(ValueError, match="Unknown.*'mean_sqared_error'"):
        model.compile(optimizer="adam", loss="mean_sqared_error")
    with pytest.raises(ValueError, match="'adamm'"):
        model.compile(optimizer="adamm", loss="mse")
    with pytest.raises(ValueError, match="'acuracy'"):
        model.compile(optimizer="adam", loss="mse", metrics=["acuracy"])
    fresh = keras.Model(model.inputs, model.outputs)
    with pytest.raises(RuntimeError, match="compile"):
        fresh.fit(x[:10], y[:10])
    with pytest.raises(ValueError, match="Model 'digits_mlp' expects 1 input"):
        model.predict([x[:2], x[:2]], verbose=0)


def test_graph_construction_errors_name_the_layer():
    with pytest.raises(ValueError, match=r'Input 0 of layer "dense_bad" is incompatible with the layer: expected '
                                         r"min_ndim=2, found ndim=1"):
        layers.Dense(3, name="dense_bad")(keras.Input(batch_shape=(5,)))
    a, b = keras.Input(shape=(3,)), keras.Input(shape=(4, 2))
    with pytest.raises(ValueError, match="Concatenate.*same rank"):
        layers.concatenate([a, b])
    c = keras.Input(shape=(3,))
    with pytest.raises(ValueError, match="not connected to its inputs.*Input"):
        keras.Model(a, layers.add([a, c]))
    d1 = layers.Dense(2, name="same")
    d2 = layers.Dense(2, name="same")
    with pytest.raises(ValueError, match="'same' is used by 2 different layers"):
        keras.Model(a, d2(d1(a)))


def test_symbolic_ops_and_operators_match_numpy():
    inp = keras.Input(shape=(4,))
    w = np.arange(8, dtype="float32").reshape(4, 2)
    out = keras.ops.concatenate([(inp + 1.0)[:, :2] * 2.0, inp @ w, keras.ops.sum(inp, axis=-1, keepdims=True)],
                                axis=-1)
    model = keras.Model(inp, out)
    assert out.shape == (None, 5)
    x = np.random.rand(3, 4).astype("float32")
    expected = np.concatenate([(x + 1)[:, :2] * 2, x @ w, x.sum(-1, keepdims=True)], axis=-1)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(keras.ops.matmul(x, w)), x @ w, rtol=1e-6)


def test_flatten_x_passes_a_matching_array_through_and_checks_the_rest():
    """One NumPy array of the input's shape and dtype goes in as is (no copy, no per-call checks: predict's
    common case); anything else takes the checked path: conversion, shape errors, dict inputs."""
    from fncompiler.runtime import data as data_lib
    inputs = keras.Input(shape=(4, 3), name="seq")
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    x = np.zeros((5, 4, 3), np.float32)
    checked = model.flatten_inputs
    model.flatten_inputs = lambda value: pytest.fail("the matching array took the checked path")
    assert data_lib.flatten_x(model, x)[0] is x
    model.flatten_inputs = checked
    converted = data_lib.flatten_x(model, x.astype(np.float64))[0]
    assert converted.dtype == np.float32 and converted.shape == (5, 4, 3)
    assert data_lib.flatten_x(model, {"seq": x})[0] is x
    with pytest.raises(ValueError, match=r'Input 0 \("seq"\).*wrong shape.*\(None, 4, 3\).*\(5, 3, 4\)'):
        data_lib.flatten_x(model, np.zeros((5, 3, 4), np.float32))
    with pytest.raises(ValueError, match="wrong shape"):
        data_lib.flatten_x(model, np.zeros((4, 3), np.float32))        # no batch axis
    ints = keras.Input(shape=(3,), dtype="int32")
    ids = keras.Model(ints, keras.layers.Embedding(10, 2)(ints))
    with pytest.raises(TypeError, match="non-integral"):
        data_lib.flatten_x(ids, np.full((2, 3), 0.5, np.float32))
    assert data_lib.flatten_x(ids, np.ones((2, 3), np.int32))[0].dtype == np.int32


def test_flatten_x_follows_a_sequential_model_rebuilt_for_another_shape():
    from fncompiler.runtime import data as data_lib
    model = keras.Sequential([keras.layers.Activation("relu")])
    model.build((None, 4))
    assert data_lib.flatten_x(model, np.zeros((5, 4), np.float32))[0].shape == (5, 4)
    model.build((None, 3))
    with pytest.raises(ValueError, match="wrong shape"):
        data_lib.flatten_x(model, np.zeros((5, 4), np.float32))
    assert data_lib.flatten_x(model, np.zeros((5, 3), np.float32))[0].shape == (5, 3)
