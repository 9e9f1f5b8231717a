"""runtime.checkpoint (exact resume) and callbacks.ModelCheckpoint (Keras semantics + checkpoint=True)."""
import hashlib
import json
import os
import random
import zipfile

import jax
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import layers
from fncompiler.callbacks import ModelCheckpoint
from fncompiler.runtime import checkpoint
from fncompiler.runtime.checkpoint import CheckpointError
from fncompiler.saving import ModelFileError

X = np.random.default_rng(42).random((96, 8)).astype("float32")      # 6 full batches of 16: one compile per model
Y = np.random.default_rng(43).integers(0, 3, 96).astype("int32")
FIT = dict(batch_size=16, verbose=0, shuffle=True)


def build(compile=True):
    inputs = keras.Input((8,), name="x")
    h = layers.Dense(16, activation="relu", name="h")(inputs)
    h = layers.Dropout(0.3, name="drop")(h)
    h = layers.BatchNormalization(name="bn")(h)
    model = keras.Model(inputs, layers.Dense(3, name="out")(h), name="clf")
    if compile:
        model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def assert_same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for u, v in zip(wa, wb):
        np.testing.assert_array_equal(u, v)


@pytest.fixture(scope="module")
def uninterrupted():
    """4 epochs in one go (shuffle=True, Dropout, BatchNormalization statistics), seed 0."""
    keras.utils.set_random_seed(0)
    model = build()
    model.fit(X, Y, epochs=4, **FIT)
    return [w.copy() for w in model.get_weights()]


# -- the proof: exact resume -----------------------------------------------------------------------
def test_resume_from_checkpoint_is_bit_exact(tmp_path, uninterrupted):
    keras.utils.set_random_seed(0)
    first = build()
    first.fit(X, Y, epochs=2, **FIT)
    info = checkpoint.save(tmp_path / "run.fnckpt", first)
    assert (info.epoch, info.step) == (2, 2 * 6)
    # A fresh model, built from scratch in a different random state (other layer seeds, other initial weights,
    # NumPy's global RNG moved on): the checkpoint restores all of it.
    keras.utils.set_random_seed(123)
    np.random.rand(17)
    fresh = build()
    assert fresh.get_layer("drop").seed != first.get_layer("drop").seed
    info = checkpoint.restore(tmp_path / "run.fnckpt", fresh)
    assert info.epoch == 2 and info.step == 12
    fresh.fit(X, Y, epochs=4, initial_epoch=info.epoch, **FIT)
    for got, want in zip(fresh.get_weights(), uninterrupted):
        np.testing.assert_array_equal(got, want)


def test_model_checkpoint_callback_writes_resumable_checkpoints(tmp_path, uninterrupted):
    keras.utils.set_random_seed(0)
    model = build()
    cb = ModelCheckpoint(str(tmp_path / "ckpt" / "epoch-{epoch:02d}.fnckpt"), checkpoint=True, monitor="loss")
    model.fit(X, Y, epochs=4, callbacks=[cb], **FIT)
    assert sorted(os.listdir(tmp_path / "ckpt")) == [f"epoch-{e:02d}.fnckpt" for e in (1, 2, 3, 4)]
    for got, want in zip(model.get_weights(), uninterrupted):       # saving changes nothing in the run
        np.testing.assert_array_equal(got, want)
    meta = checkpoint.read_metadata(tmp_path / "ckpt" / "epoch-02.fnckpt")
    assert meta["epoch"] == 2 and meta["step"] == 12 and set(meta["logs"]) == {"loss"}
    fresh = build()
    info = checkpoint.restore(tmp_path / "ckpt" / "epoch-02.fnckpt", fresh)
    fresh.fit(X, Y, epochs=4, initial_epoch=info.epoch, **FIT)
    for got, want in zip(fresh.get_weights(), uninterrupted):
        np.testing.assert_array_equal(got, want)
    # restoring into the model that already trained (its trainer exists) rewinds it as well
    checkpoint.restore(tmp_path / "ckpt" / "epoch-03.fnckpt", model)
    model.fit(X, Y, epochs=4, initial_epoch=3, **FIT)
    for got, want in zip(model.get_weights(), uninterrupted):
        np.testing.assert_array_equal(got, want)


# -- contents and global RNG -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory):
    """A model trained one epoch (2 steps) and its checkpoint."""
    model = build()
    model.fit(X[:32], Y[:32], epochs=1, **FIT)
    path = tmp_path_factory.mktemp("ckpt") / "one.fnckpt"
    checkpoint.save(path, model)
    return model, path


def test_checkpoint_contents_and_round_trip(one_epoch):
    model, path = one_epoch
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["hashes.json", "metadata.json", "optimizer.msgpack", "rng.msgpack",
                                         "weights.msgpack"]
        meta = json.loads(zf.read("metadata.json"))
    assert meta["format"] == "fncompiler.checkpoint" and meta["epoch"] == 1 and meta["step"] == 2
    assert meta["learning_rate"] == pytest.approx(0.001) and meta["optimizer"] == "Adam"
    other = build()
    checkpoint.restore(path, other)
    assert_same_weights(model, other)
    for u, v in zip(jax.tree_util.tree_leaves(model._trainer.opt_state),
                    jax.tree_util.tree_leaves(other._restored_opt_state)):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    np.testing.assert_array_equal(np.asarray(model._trainer.rng_state), np.asarray(other._restored_rng_state))


def test_global_rng_state_is_saved_and_restored(tmp_path):
    model = build()
    np.random.seed(5)
    random.seed(5)
    checkpoint.save(tmp_path / "g.fnckpt", model)
    expected_np, expected_py = np.random.rand(4), random.random()
    np.random.rand(100)
    random.random()
    checkpoint.restore(tmp_path / "g.fnckpt", build())
    np.testing.assert_array_equal(np.random.rand(4), expected_np)
    assert random.random() == expected_py
    np.random.seed(9)
    before = np.random.get_state()[1].copy()
    checkpoint.restore(tmp_path / "g.fnckpt", build(), restore_global_rng=False)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_learning_rate_changed_by_callbacks_is_restored(tmp_path):
    model = build()
    model.optimizer.learning_rate = 0.0003      # e.g. ReduceLROnPlateau, after the epoch's last step
    checkpoint.save(tmp_path / "lr.fnckpt", model)
    fresh = build()
    checkpoint.restore(tmp_path / "lr.fnckpt", fresh)
    assert fresh.optimizer.learning_rate == pytest.approx(0.0003)


# -- errors ----------------------------------------------------------------------------------------
def test_restore_errors_leave_model_unchanged(one_epoch):
    model, path = one_epoch
    uncompiled = build(compile=False)
    before = [w.copy() for w in uncompiled.get_weights()]
    with pytest.raises(CheckpointError, match="not compiled: call model.compile"):
        checkpoint.restore(path, uncompiled)
    for u, v in zip(uncompiled.get_weights(), before):
        np.testing.assert_array_equal(u, v)
    checkpoint.restore(path, uncompiled, restore_optimizer=False)
    assert_same_weights(model, uncompiled)

    inputs = keras.Input((8,))
    other = keras.Model(inputs, layers.Dense(5)(inputs))
    other.compile(optimizer="adam", loss="mse")
    before = [w.copy() for w in other.get_weights()]
    with pytest.raises(CheckpointError, match="does not match model"):
        checkpoint.restore(path, other)
    for u, v in zip(other.get_weights(), before):
        np.testing.assert_array_equal(u, v)
    sgd = build(compile=False)
    sgd.compile(optimizer="sgd", loss="mse")
    with pytest.raises(CheckpointError, match="optimizer state does not match"):
        checkpoint.restore(path, sgd)


def _rewrite(path, out, change):
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    change(members)
    with zipfile.ZipFile(out, "w") as zf:
        for n, d in members.items():
            zf.writestr(n, d)
    return out


def _rehash(members):
    members["hashes.json"] = json.dumps({n: hashlib.sha256(d).hexdigest() for n, d in members.items()
                                         if n != "hashes.json"}).encode()


def test_corrupt_and_foreign_files(tmp_path, one_epoch):
    model, path = one_epoch
    raw = path.read_bytes()
    (tmp_path / "trunc.fnckpt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="not a readable fncompiler checkpoint|truncated"):
        checkpoint.restore(tmp_path / "trunc.fnckpt", build())
    with pytest.raises(FileNotFoundError):
        checkpoint.restore(tmp_path / "missing.fnckpt", build())
    model.save(tmp_path / "model.fnc")
    with pytest.raises(CheckpointError, match="use fncompiler.models.load_model"):
        checkpoint.restore(tmp_path / "model.fnc", build())
    flipped = _rewrite(path, tmp_path / "flip.fnckpt",
                       lambda m: m.update({"weights.msgpack": m["weights.msgpack"][:-1] + b"\x00"}))
    with pytest.raises(CheckpointError, match="sha256"):
        checkpoint.restore(flipped, build())

    def bad_key(m):
        from flax import serialization
        tree = serialization.msgpack_restore(m["rng.msgpack"])
        tree["trainer_key"] = np.zeros(3, np.float32)
        m["rng.msgpack"] = serialization.msgpack_serialize(tree)
        _rehash(m)
    with pytest.raises(CheckpointError, match="trainer's key must be a uint32 array"):
        checkpoint.restore(_rewrite(path, tmp_path / "key.fnckpt", bad_key), build())

    def newer(m):
        meta = json.loads(m["metadata.json"])
        meta["format_version"] = "9.0"
        m["metadata.json"] = json.dumps(meta).encode()
        _rehash(m)
    with pytest.raises(CheckpointError, match="newer than this fncompiler reads"):
        checkpoint.restore(_rewrite(path, tmp_path / "new.fnckpt", newer), build())
    with pytest.raises(CheckpointError, match="unexpected member"):
        checkpoint.restore(_rewrite(path, tmp_path / "x.fnckpt", lambda m: m.update({"x.py": b""})), build())
    assert issubclass(CheckpointError, ModelFileError)


# -- ModelCheckpoint: Keras semantics (driven directly, no fit) ------------------------------------
@pytest.fixture
def small_model():
    model = build()
    return model


def _drive(cb, model, logs_per_epoch):
    cb.set_model(model)
    cb.on_train_begin()
    for epoch, logs in enumerate(logs_per_epoch):
        cb.on_epoch_begin(epoch)
        cb.on_epoch_end(epoch, dict(logs))
    cb.on_train_end()


def test_filepath_formatting_and_full_model(tmp_path, small_model):
    cb = ModelCheckpoint(str(tmp_path / "m-{epoch:02d}-{val_loss:.2f}.fnc"))
    _drive(cb, small_model, [{"val_loss": 0.5}, {"val_loss": 0.25}])
    assert sorted(os.listdir(tmp_path)) == ["m-01-0.50.fnc", "m-02-0.25.fnc"]
    loaded = keras.models.load_model(tmp_path / "m-02-0.25.fnc")
    assert_same_weights(loaded, small_model)
    with pytest.raises(KeyError, match="Failed to format this callback filepath"):
        _drive(ModelCheckpoint(str(tmp_path / "{nope}.fnc")), small_model, [{"val_loss": 1.0}])


def test_save_best_only_min_max_threshold(tmp_path, small_model, capsys):
    cb = ModelCheckpoint(str(tmp_path / "best-{epoch}.fnc"), save_best_only=True, save_weights_only=True, verbose=1)
    _drive(cb, small_model, [{"val_loss": 1.0}, {"val_loss": 2.0}, {"val_loss": 0.5}, {"val_loss": 0.5}])
    assert sorted(os.listdir(tmp_path)) == ["best-1.fnc", "best-3.fnc"]
    out = capsys.readouterr().out
    assert "Epoch 3: val_loss improved from 1.00000 to 0.50000, saving model to" in out
    assert "Epoch 2: val_loss did not improve from 1.00000" in out
    fresh = build()
    fresh.load_weights(tmp_path / "best-3.fnc")
    assert_same_weights(fresh, small_model)

    d = tmp_path / "acc"
    cb = ModelCheckpoint(str(d / "{epoch}.fnc"), monitor="val_accuracy", save_best_only=True)   # auto -> max
    _drive(cb, small_model, [{"val_accuracy": 0.5}, {"val_accuracy": 0.4}, {"val_accuracy": 0.9}])
    assert sorted(os.listdir(d)) == ["1.fnc", "3.fnc"]
    d = tmp_path / "thr"
    cb = ModelCheckpoint(str(d / "{epoch}.fnc"), save_best_only=True, mode="min", initial_value_threshold=0.3)
    _drive(cb, small_model, [{"val_loss": 0.5}, {"val_loss": 0.2}])
    assert os.listdir(d) == ["2.fnc"]
    with pytest.warns(UserWarning, match="Can save best model only with val_loss available"):
        _drive(ModelCheckpoint(str(tmp_path / "w.fnc"), save_best_only=True), small_model, [{"loss": 1.0}])
    assert not (tmp_path / "w.fnc").exists()


def test_save_freq_counts_batches_and_saves_the_weights_of_that_batch(tmp_path):
    """Keras: an int save_freq saves after every N training batches, with the weights of that moment."""
    def fresh():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((8,))
        model = keras.Model(inputs, layers.Dense(3)(layers.Dense(16, activation="relu")(inputs)))
        model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model
    model = fresh()
    cb = ModelCheckpoint(str(tmp_path / "e{epoch}-b{batch}.fnc"), save_freq=4, save_weights_only=True)
    model.fit(X, Y, batch_size=16, epochs=2, shuffle=False, verbose=0, callbacks=[cb])   # 6 batches per epoch
    assert sorted(os.listdir(tmp_path)) == ["e1-b4.fnc", "e2-b2.fnc", "e2-b6.fnc"]
    reference = fresh()                                           # the same training, stopped after 4 batches
    reference.fit(X[:64], Y[:64], batch_size=16, epochs=1, shuffle=False, verbose=0)
    saved = fresh()
    saved.load_weights(tmp_path / "e1-b4.fnc")
    for a, b in zip(saved.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # saving mid-epoch does not disturb training: the same end weights as a run without the callback
    plain = fresh()
    plain.fit(X, Y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_save_freq_argument_checks():
    with pytest.raises(ValueError, match="save_freq"):
        ModelCheckpoint("x.fnc", save_freq=0)
    with pytest.raises(ValueError, match="save_freq"):
        ModelCheckpoint("x.fnc", save_freq="batch")
    with pytest.raises(ValueError, match="checkpoint=True"):
        ModelCheckpoint("x.fnc", checkpoint=True, save_weights_only=True)
    assert keras.callbacks.ModelCheckpoint is ModelCheckpoint
