"""BackupAndRestore (exact resume of an interrupted fit), LambdaCallback, ProgbarLogger and TensorBoard (event
files read back with tensorboardX's own protobufs)."""
import glob
import os
import struct

import numpy as np
import pytest

import fncompiler as keras
from fncompiler import callbacks, layers

RNG = np.random.default_rng(1)
X = RNG.normal(size=(48, 5)).astype(np.float32)
Y = (X[:, :1] > 0).astype(np.float32)
FIT = dict(batch_size=8, verbose=0)


def build():
    inputs = keras.Input(shape=(5,))
    x = layers.Dense(8, activation="relu")(inputs)
    x = layers.Dropout(0.3, name="drop")(x)
    model = keras.Model(inputs, layers.Dense(1, activation="sigmoid")(x))
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


class Boom(callbacks.Callback):
    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at:
            raise RuntimeError("interrupted")


def test_backup_and_restore_resumes_an_interrupted_fit_exactly(tmp_path):
    keras.utils.set_random_seed(0)
    model = build()
    model.fit(X, Y, epochs=4, **FIT)
    want = [w.copy() for w in model.get_weights()]

    keras.utils.set_random_seed(0)
    model = build()
    backup = callbacks.BackupAndRestore(tmp_path / "backup")
    with pytest.raises(RuntimeError, match="interrupted"):
        model.fit(X, Y, epochs=4, callbacks=[backup, Boom(at=1)], **FIT)      # dies after epoch 2 was backed up
    assert os.path.exists(tmp_path / "backup" / "latest.fnckpt")
    seen = []
    model.fit(X, Y, epochs=4, callbacks=[backup, callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seen.append(epoch))], **FIT)
    assert seen == [2, 3]
    for got, exp in zip(model.get_weights(), want):
        np.testing.assert_array_equal(got, exp)
    assert not os.path.exists(tmp_path / "backup" / "latest.fnckpt")      # deleted after a finished fit


def test_lambda_callback_hooks_and_batch_alias():
    events = []
    cb = callbacks.LambdaCallback(on_train_begin=lambda logs: events.append("begin"),
                                  on_batch_end=lambda batch, logs: events.append(("batch", batch, "loss" in logs)),
                                  on_epoch_end=lambda epoch, logs: events.append(("epoch", epoch)))
    build().fit(X, Y, epochs=2, batch_size=24, verbose=0, callbacks=[cb])
    assert events == ["begin", ("batch", 0, True), ("batch", 1, True), ("epoch", 0), ("batch", 0, True),
                      ("batch", 1, True), ("epoch", 1)]
    with pytest.raises(TypeError, match="unknown hooks"):
        callbacks.LambdaCallback(on_nothing=print)


def test_progbar_logger_replaces_fits_own_bar(capsys):
    build().fit(X, Y, epochs=2, batch_size=24, verbose=2, callbacks=[callbacks.ProgbarLogger()])
    out = capsys.readouterr().out
    assert out.count("Epoch 1/2") == 1 and out.count("Epoch 2/2") == 1 and "loss" in out


def _events(folder):
    """(tag, step, value) of every scalar in the folder's event files: TFRecord framing, tensorboardX's protobuf."""
    from tensorboardX.proto import event_pb2
    out = []
    for path in sorted(glob.glob(os.path.join(folder, "events.out.tfevents.*"))):
        data = open(path, "rb").read()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            for v in event.summary.value:
                out.append((v.tag, event.step, v.simple_value))
    return out


def test_tensorboard_writes_epoch_and_batch_scalars(tmp_path):
    pytest.importorskip("tensorboardX")
    model = build()
    tb = callbacks.TensorBoard(log_dir=tmp_path, update_freq=2)
    h = model.fit(X, Y, epochs=2, batch_size=12, validation_data=(X, Y), verbose=0, callbacks=[tb])
    train, val = _events(tmp_path / "train"), _events(tmp_path / "validation")
    epoch_loss = [(s, v) for t, s, v in train if t == "epoch_loss"]
    np.testing.assert_allclose([v for _, v in epoch_loss], h.history["loss"], rtol=1e-6)
    assert [s for s, _ in epoch_loss] == [0, 1]
    np.testing.assert_allclose([v for t, _, v in val if t == "epoch_accuracy"], h.history["val_accuracy"],
                               rtol=1e-6)
    assert [s for t, s, _ in train if t == "batch_loss"] == [2, 4, 6, 8]       # 4 batches per epoch, every 2nd
    assert any(t == "epoch_learning_rate" for t, _, _ in train)


class _TestHooks(callbacks.Callback):
    def __init__(self, events):
        super().__init__()
        self.events = events

    def on_test_begin(self, logs=None):
        self.events.append("test_begin")

    def on_test_batch_begin(self, batch, logs=None):
        self.events.append(f"test_batch_begin {batch}")

    def on_test_batch_end(self, batch, logs=None):
        self.events.append(f"test_batch_end {batch} {sorted(logs)}")

    def on_test_end(self, logs=None):
        self.events.append(f"test_end {sorted(logs)} {logs['loss']:.6f}")

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(f"epoch_end {sorted(logs)} {logs['val_loss']:.6f}")


@pytest.mark.parametrize("as_dataset", [False, True])
def test_fit_validation_calls_the_test_hooks_as_keras_does(as_dataset):
    """Keras 3 runs fit's validation through the callbacks' test hooks: on_test_begin, a begin/end pair per
    validation batch, on_test_end with the unprefixed logs, then on_epoch_end with them as val_*."""
    inp = keras.Input((3,))
    model = keras.Model(inp, layers.Dense(1)(inp))
    model.compile("sgd", "mse")
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 3)).astype("float32"), rng.random((16, 1)).astype("float32")
    events = []
    if as_dataset:
        class Batches(keras.utils.PyDataset):
            def __len__(self):
                return 2

            def __getitem__(self, i):
                return x[12 + 2 * i:14 + 2 * i], y[12 + 2 * i:14 + 2 * i]
        val = Batches()
        model.fit(x[:12], y[:12], batch_size=4, epochs=1, validation_data=val, verbose=0, callbacks=[_TestHooks(events)])
    else:
        model.fit(x, y, batch_size=2, epochs=1, validation_split=0.25, verbose=0, callbacks=[_TestHooks(events)])
    val_loss = float(np.mean((model.predict(x[12:], verbose=0) - y[12:]) ** 2))
    assert events == ["test_begin", "test_batch_begin 0", "test_batch_end 0 ['loss']", "test_batch_begin 1",
                      "test_batch_end 1 ['loss']", f"test_end ['loss'] {val_loss:.6f}",
                      f"epoch_end ['loss', 'val_loss'] {val_loss:.6f}"]
