"""model.save / load_model / save_weights / load_weights: round trips, training state, errors, atomicity."""
import hashlib
import json
import os
import stat
import zipfile

import jax
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import layers
from fncompiler.saving import ModelFileError, UnsafeConfigError, register_serializable

# -- helpers -----------------------------------------------------------------------------------------
def rng_data(n, *shape, seed=0):
    return np.random.default_rng(seed).standard_normal((n,) + shape).astype("float32")


def leaves(x):
    return [np.asarray(a) for a in jax.tree_util.tree_leaves(x)]


def assert_same_predictions(a, b, x, atol=1e-6):
    pa, pb = a.predict(x, verbose=0), b.predict(x, verbose=0)
    assert jax.tree_util.tree_structure(pa) == jax.tree_util.tree_structure(pb)
    for u, v in zip(leaves(pa), leaves(pb)):
        assert u.shape == v.shape
        np.testing.assert_allclose(u, v, atol=atol, rtol=0)


def assert_same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for u, v in zip(wa, wb):
        np.testing.assert_array_equal(u, v)


def read_zip(path):
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def write_zip(path, members, hashes=True):
    """A model file from {name: bytes}, with a correct hashes.json (so only the payload can be wrong)."""
    members = {k: v for k, v in members.items() if k != "hashes.json"}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if hashes:
            zf.writestr("hashes.json", json.dumps({n: hashlib.sha256(d).hexdigest() for n, d in members.items()}))
    return path


def small_model(units=3, name="small"):
    inp = keras.Input(shape=(4,), name="x")
    h = layers.Dense(units, activation="relu", name="d1")(inp)
    out = layers.Dense(2, name="d2")(h)
    return keras.Model(inp, out, name=name)


@pytest.fixture
def saved_small(tmp_path):
    m = small_model()
    m.compile(optimizer="adam", loss="mse")
    m.fit(rng_data(4, 4), rng_data(4, 2, seed=1), epochs=1, verbose=0)  # so the file has optimizer.msgpack
    path = tmp_path / "small.fnc"
    m.save(path)
    return m, path


# -- round trips -------------------------------------------------------------------------------------
def test_mlp_round_trip(tmp_path, mlp):
    x = rng_data(16, 784)
    path = tmp_path / "mlp.fnc"
    mlp.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.name == "mnist_model"
    assert [l.name for l in loaded.layers] == [l.name for l in mlp.layers]
    assert_same_weights(mlp, loaded)
    assert_same_predictions(mlp, loaded, x)
    assert not loaded.compiled  # saved uncompiled: nothing to restore


def test_file_layout(tmp_path, mlp):
    path = tmp_path / "mlp.fnc"
    mlp.save(path)
    members = read_zip(path)
    assert sorted(members) == ["config.json", "hashes.json", "metadata.json", "weights.msgpack"]
    meta = json.loads(members["metadata.json"])
    assert meta["format"] == "fncompiler.model" and meta["format_version"] == "1.0"
    hashes = json.loads(members["hashes.json"])
    assert hashes == {n: hashlib.sha256(d).hexdigest() for n, d in members.items() if n != "hashes.json"}
    config = json.loads(members["config.json"])
    assert config["class_name"] == "Functional"
    entries = config["config"]["layers"]
    assert [e["class_name"] for e in entries] == ["InputLayer", "Dense", "Dense", "Dense"]
    d2 = next(e for e in entries if e["name"] == "d2")
    assert d2["inbound_nodes"][0]["args"][0]["config"]["keras_history"] == ["d1", 0, 0]


def test_multi_input_multi_output_dict_round_trip(tmp_path):
    a = keras.Input(shape=(4,), name="a")
    b = keras.Input(shape=(3,), name="b")
    h = layers.concatenate([layers.Dense(5, name="da")(a), layers.Dense(5, name="db")(b)], name="cat")
    model = keras.Model({"a": a, "b": b}, {"score": layers.Dense(1, name="score")(h),
                                           "cls": layers.Dense(3, activation="softmax", name="cls")(h)})
    model.compile(optimizer="adam", loss={"score": "mse", "cls": "sparse_categorical_crossentropy"},
                  metrics={"cls": ["accuracy"]})
    x = {"a": rng_data(6, 4, seed=1), "b": rng_data(6, 3, seed=2)}
    path = tmp_path / "mimo.fnc"
    model.save(path)
    loaded = keras.models.load_model(path)
    out = loaded.predict(x, verbose=0)
    assert isinstance(out, dict) and sorted(out) == ["cls", "score"]
    assert out["score"].shape == (6, 1) and out["cls"].shape == (6, 3)
    assert_same_predictions(model, loaded, x)
    cfg = loaded.get_compile_config()
    assert cfg["loss"] == {"score": "mse", "cls": "sparse_categorical_crossentropy"}
    assert cfg["metrics"] == {"cls": ["accuracy"]}
    # The loaded model trains with the restored per-output losses.
    y = {"score": rng_data(6, 1, seed=3), "cls": np.arange(6, dtype="int32") % 3}
    logs = loaded.fit(x, y, epochs=1, verbose=0).history
    assert {"loss", "score_loss", "cls_loss", "cls_accuracy"} <= set(logs)


def test_shared_layer_round_trip(tmp_path):
    i1, i2 = keras.Input(shape=(4,), name="i1"), keras.Input(shape=(4,), name="i2")
    shared = layers.Dense(3, name="shared")
    model = keras.Model([i1, i2], layers.subtract([shared(i1), shared(i2)], name="diff"))
    path = tmp_path / "shared.fnc"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert len(loaded.weights) == 2  # one kernel, one bias: still shared
    shared_loaded = loaded.get_layer("shared")
    assert len(shared_loaded._inbound_nodes) == 2
    x = [rng_data(5, 4, seed=1), rng_data(5, 4, seed=2)]
    assert_same_predictions(model, loaded, x)
    # Shared means shared: equal inputs give exactly zero.
    np.testing.assert_array_equal(loaded.predict([x[0], x[0]], verbose=0), np.zeros((5, 3), "float32"))


def test_nested_model_round_trip(tmp_path):
    inner_in = keras.Input(shape=(4,), name="inner_in")
    inner = keras.Model(inner_in, layers.Dense(3, activation="tanh", name="inner_d")(inner_in), name="inner")
    outer_in = keras.Input(shape=(4,), name="outer_in")
    model = keras.Model(outer_in, layers.Dense(1, name="head")(inner(outer_in)), name="outer")
    path = tmp_path / "nested.fnc"
    model.save(path)
    config = json.loads(read_zip(path)["config.json"])
    nested = [e for e in config["config"]["layers"] if e["name"] == "inner"]
    assert nested and nested[0]["class_name"] == "Functional"
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.get_layer("inner"), keras.Model)
    assert_same_weights(model, loaded)
    assert_same_predictions(model, loaded, rng_data(7, 4))


def test_sequential_round_trip(tmp_path):
    model = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(6, activation="relu", name="s1"),
                              layers.Dense(2, name="s2")], name="seq")
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="mse", metrics=["mae"])
    path = tmp_path / "seq.fnc"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, keras.Sequential)
    assert [l.name for l in loaded.layers] == ["s1", "s2"]
    assert_same_predictions(model, loaded, rng_data(5, 4))
    assert type(loaded.optimizer).__name__ == "SGD"
    assert float(loaded.optimizer.learning_rate) == pytest.approx(0.05)


def test_compile_config_restored(tmp_path):
    model = small_model()
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.0123), loss="mean_squared_error",
                  metrics=["mae", "mse"])
    path = tmp_path / "c.fnc"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.compiled
    assert type(loaded.optimizer).__name__ == "Adam"
    assert float(loaded.optimizer.learning_rate) == pytest.approx(0.0123)
    cfg = loaded.get_compile_config()
    assert cfg["loss"] == "mean_squared_error"
    assert cfg["metrics"] == ["mae", "mse"]
    assert cfg["optimizer"]["config"]["learning_rate"] == pytest.approx(0.0123)
    x, y = rng_data(8, 4), rng_data(8, 2, seed=1)
    assert set(loaded.evaluate(x, y, verbose=0, return_dict=True)) == {"loss", "mae", "mse"}
    assert not keras.models.load_model(path, compile=False).compiled


def _build_for_resume():
    keras.utils.set_random_seed(7)
    model = small_model(units=16)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse", metrics=["mae"])
    return model


def test_optimizer_state_resume_is_bit_exact(tmp_path):
    x = np.linspace(-1, 1, 64 * 4, dtype="float32").reshape(64, 4)
    y = np.stack([np.sin(3 * x[:, 0]), x[:, 1] * x[:, 2]], axis=1).astype("float32")
    uninterrupted = _build_for_resume()
    uninterrupted.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)

    first = _build_for_resume()
    first.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    path = tmp_path / "ckpt.fnc"
    first.save(path)
    assert "optimizer.msgpack" in read_zip(path)
    resumed = keras.models.load_model(path)
    state = resumed._restored_opt_state
    assert int(state.iterations) == 4  # 64 samples / 16 per batch
    resumed.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    assert_same_weights(uninterrupted, resumed)

    # Without the optimizer state (fresh Adam moments) the result differs: the test above is not vacuous.
    fresh = keras.models.load_model(path)
    del fresh._restored_opt_state
    fresh.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    assert any(not np.array_equal(u, v) for u, v in zip(uninterrupted.get_weights(), fresh.get_weights()))


def test_resaving_a_loaded_model_keeps_optimizer_state(tmp_path):
    model = _build_for_resume()
    x, y = rng_data(32, 4), rng_data(32, 2, seed=1)
    model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    model.save(tmp_path / "a.fnc")
    keras.models.load_model(tmp_path / "a.fnc").save(tmp_path / "b.fnc")
    a, b = read_zip(tmp_path / "a.fnc"), read_zip(tmp_path / "b.fnc")
    assert a["optimizer.msgpack"] == b["optimizer.msgpack"]
    assert a["weights.msgpack"] == b["weights.msgpack"]


# -- custom classes ----------------------------------------------------------------------------------
class ScaleLayer(layers.Layer):
    """Multiplies by a learned per-feature scale and a constant factor."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="random_normal", name="scale")

    def call(self, x):
        return x * self.scale * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@register_serializable(package="fncompiler_tests")
class RegisteredScale(ScaleLayer):
    pass


def _custom_model(cls):
    inp = keras.Input(shape=(4,), name="x")
    return keras.Model(inp, layers.Dense(1, name="out")(cls(factor=3.0, name="scale")(inp)))


def test_custom_layer_via_custom_objects(tmp_path):
    model = _custom_model(ScaleLayer)
    path = tmp_path / "custom.fnc"
    model.save(path)
    with pytest.raises(UnsafeConfigError, match=r"ScaleLayer.*custom_objects"):
        keras.models.load_model(path)
    loaded = keras.models.load_model(path, custom_objects={"ScaleLayer": ScaleLayer})
    assert type(loaded.get_layer("scale")) is ScaleLayer and loaded.get_layer("scale").factor == 3.0
    assert_same_predictions(model, loaded, rng_data(6, 4))
    with keras.saving.custom_object_scope({"ScaleLayer": ScaleLayer}):
        assert_same_predictions(model, keras.models.load_model(path), rng_data(6, 4))


def test_custom_layer_via_register_serializable(tmp_path):
    model = _custom_model(RegisteredScale)
    path = tmp_path / "registered.fnc"
    model.save(path)
    entry = next(e for e in json.loads(read_zip(path)["config.json"])["config"]["layers"] if e["name"] == "scale")
    assert entry["registered_name"] == "fncompiler_tests>RegisteredScale"
    loaded = keras.models.load_model(path)
    assert type(loaded.get_layer("scale")) is RegisteredScale
    assert_same_predictions(model, loaded, rng_data(6, 4))


def test_from_config_with_custom_objects():
    model = _custom_model(ScaleLayer)
    config = json.loads(json.dumps(model.get_config()))
    rebuilt = keras.Model.from_config(config, custom_objects={"ScaleLayer": ScaleLayer})
    assert [type(l).__name__ for l in rebuilt.layers] == [type(l).__name__ for l in model.layers]
    rebuilt.set_weights(model.get_weights())
    assert_same_predictions(model, rebuilt, rng_data(3, 4))
    with pytest.raises(UnsafeConfigError, match="ScaleLayer"):
        keras.Model.from_config(config)


def test_lambda_needs_its_function_again(tmp_path):
    def double(x):
        return x * 2.0

    inp = keras.Input(shape=(4,), name="x")
    model = keras.Model(inp, layers.Dense(2, name="d")(layers.Lambda(double, name="twice")(inp)))
    path = tmp_path / "lambda.fnc"
    model.save(path)
    assert b"x * 2.0" not in read_zip(path)["config.json"]  # no code stored, only the name
    with pytest.raises(UnsafeConfigError, match=r"double.*custom_objects"):
        keras.models.load_model(path)
    with pytest.raises(UnsafeConfigError):
        keras.models.load_model(path, safe_mode=False)  # no mode makes a file run code
    loaded = keras.models.load_model(path, custom_objects={"double": double})
    assert_same_predictions(model, loaded, rng_data(4, 4))


# -- weights only ------------------------------------------------------------------------------------
def test_save_weights_load_weights_round_trip(tmp_path):
    keras.utils.set_random_seed(1)
    source = small_model()
    keras.utils.set_random_seed(2)
    target = small_model()
    assert any(not np.array_equal(u, v) for u, v in zip(source.get_weights(), target.get_weights()))
    path = tmp_path / "w.fnc"
    source.save_weights(path)
    assert sorted(read_zip(path)) == ["hashes.json", "metadata.json", "weights.msgpack"]
    target.load_weights(path)
    assert_same_weights(source, target)
    assert_same_predictions(source, target, rng_data(5, 4))
    with pytest.raises(ModelFileError, match="config.json"):
        keras.models.load_model(path)  # a weights file is not a model file


def test_load_weights_into_different_architecture_names_first_difference(tmp_path):
    path = tmp_path / "w.fnc"
    small_model(units=3).save_weights(path)
    with pytest.raises(ModelFileError) as info:
        small_model(units=5).load_weights(path)
    msg = str(info.value)
    assert "d1/kernel" in msg and "(4, 5)" in msg and "(4, 3)" in msg

    inp = keras.Input(shape=(4,), name="x")
    h = layers.Dense(3, activation="relu", name="d1")(inp)
    deeper = keras.Model(inp, layers.Dense(2, name="d3")(layers.Dense(4, name="d2")(h)))
    with pytest.raises(ModelFileError) as info:
        deeper.load_weights(path)
    msg = str(info.value)
    assert "Weight 2" in msg and "d2/kernel" in msg and "(3, 4)" in msg and "(3, 2)" in msg

    shallower = keras.Model(inp, layers.Dense(3, name="only")(inp))
    with pytest.raises(ModelFileError, match=r"holds 4 weights, but the model has 2.*'d2/kernel'.*\(3, 2\)"):
        keras.Model(inp, layers.Dense(3, name="e1")(inp)).load_weights(path)
    shallower.load_weights(path, skip_mismatch=True)  # skips what does not fit, keeps the rest


# -- errors ------------------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.fnc"):
        keras.models.load_model(tmp_path / "nope.fnc")
    with pytest.raises(FileNotFoundError):
        small_model().load_weights(tmp_path / "nope.fnc")


def _assert_clean_error(path, match=None, cls=ModelFileError):
    with pytest.raises(Exception) as info:
        keras.models.load_model(path)
    assert type(info.value) is cls, f"{type(info.value).__name__}: {info.value}"
    assert isinstance(info.value, ValueError)
    if match:
        assert match in str(info.value), str(info.value)
    return info.value


def test_truncated_random_and_incomplete_files(tmp_path, saved_small):
    _, path = saved_small
    data = path.read_bytes()
    for cut in (0, 10, len(data) // 3, len(data) // 2, len(data) - 30, len(data) - 1):
        bad = tmp_path / f"cut{cut}.fnc"
        bad.write_bytes(data[:cut])
        err = _assert_clean_error(bad)
        assert "model file" in str(err) or "corrupt" in str(err) or "truncated" in str(err)
    noise = tmp_path / "noise.fnc"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _assert_clean_error(noise, "not a fncompiler model file")
    members = read_zip(path)
    no_config = write_zip(tmp_path / "noconfig.fnc", {k: v for k, v in members.items() if k != "config.json"})
    _assert_clean_error(no_config, "missing 'config.json'")
    no_meta = write_zip(tmp_path / "nometa.fnc", {k: v for k, v in members.items() if k != "metadata.json"})
    _assert_clean_error(no_meta, "missing 'metadata.json'")
    no_hashes = write_zip(tmp_path / "nohashes.fnc", members, hashes=False)
    _assert_clean_error(no_hashes, "missing 'hashes.json'")
    (tmp_path / "dir.fnc").mkdir()
    _assert_clean_error(tmp_path / "dir.fnc", "directory")


def test_corrupt_member_and_hash_mismatch(tmp_path, saved_small):
    _, path = saved_small
    members = read_zip(path)
    # A member changed after saving: hashes.json no longer matches.
    tampered = dict(members)
    tampered["config.json"] = members["config.json"].replace(b'"relu"', b'"tanh"')
    with zipfile.ZipFile(tmp_path / "t.fnc", "w") as zf:
        for name, data in tampered.items():
            zf.writestr(name, data)
    _assert_clean_error(tmp_path / "t.fnc", "sha256")
    # A flipped byte inside the stored (uncompressed) weights: the zip CRC catches it first.
    with zipfile.ZipFile(tmp_path / "s.fnc", "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    raw = bytearray((tmp_path / "s.fnc").read_bytes())
    at = raw.index(members["weights.msgpack"][:16]) + 40
    raw[at] ^= 0xFF
    (tmp_path / "s.fnc").write_bytes(bytes(raw))
    _assert_clean_error(tmp_path / "s.fnc", "corrupt")
    # A member removed after saving, its hash still listed.
    with zipfile.ZipFile(tmp_path / "r.fnc", "w") as zf:
        for name, data in members.items():
            if name != "optimizer.msgpack":
                zf.writestr(name, data)
    _assert_clean_error(tmp_path / "r.fnc", "lists 'optimizer.msgpack'")
    # Valid hashes, but the payload itself is not msgpack / not JSON.
    _assert_clean_error(write_zip(tmp_path / "w.fnc", {**members, "weights.msgpack": b"\xc1\xc1\xc1"}), "corrupt")
    _assert_clean_error(write_zip(tmp_path / "j.fnc", {**members, "config.json": b"{not json"}), "not valid JSON")
    _assert_clean_error(write_zip(tmp_path / "a.fnc", {**members, "config.json": b"[1, 2]"}), "must hold an object")
    _assert_clean_error(write_zip(tmp_path / "i.fnc", {**members, "config.json": b"1" * 5000}), "not valid JSON")


def test_newer_major_format_version_is_refused(tmp_path, saved_small):
    _, path = saved_small
    members = read_zip(path)
    meta = json.loads(members["metadata.json"])
    meta["format_version"] = "2.0"
    newer = {**members, "metadata.json": json.dumps(meta).encode(), "weights.bin": b"new member"}
    err = _assert_clean_error(write_zip(tmp_path / "v2.fnc", newer), "2.0")
    assert "newer" in str(err) and "Upgrade fncompiler" in str(err)
    meta["format_version"] = "1.7"  # a newer minor version of the same major loads
    loaded = keras.models.load_model(write_zip(tmp_path / "v17.fnc", {**members,
                                                                     "metadata.json": json.dumps(meta).encode()}))
    assert len(loaded.weights) == 4
    for bad in (2, None, "one", ""):
        meta["format_version"] = bad
        _assert_clean_error(write_zip(tmp_path / "vbad.fnc", {**members, "metadata.json": json.dumps(meta).encode()}),
                            "format_version")
    meta = {"format": "keras", "format_version": "1.0"}
    _assert_clean_error(write_zip(tmp_path / "k.fnc", {**members, "metadata.json": json.dumps(meta).encode()}),
                        "not a fncompiler model file")


def test_overwrite_false(tmp_path, saved_small):
    model, path = saved_small
    with pytest.raises(FileExistsError):
        model.save(path, overwrite=False)


# -- atomic writes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("exc", [OSError("No space left on device (simulated)"), KeyboardInterrupt()])
def test_atomic_save_keeps_previous_file(tmp_path, monkeypatch, exc):
    model = small_model()
    model.compile(optimizer="adam", loss="mse")
    path = tmp_path / "model.fnc"
    model.save(path)
    before = path.read_bytes()
    model.set_weights([w + 1.0 for w in model.get_weights()])  # a new save would differ
    original = zipfile.ZipFile.writestr
    calls = []

    def failing_writestr(self, *args, **kwargs):
        calls.append(args[0])
        if len(calls) > 1:
            raise exc
        return original(self, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", failing_writestr)
    with pytest.raises(type(exc)):
        model.save(path)
    assert len(calls) == 2  # failed after the first member was written
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.fnc"]  # no temp file left behind
    with pytest.raises(type(exc)):
        model.save(tmp_path / "new.fnc")
    assert os.listdir(tmp_path) == ["model.fnc"]
    monkeypatch.undo()
    keras.models.load_model(path)  # the old file is still a valid model


def test_saved_file_mode_follows_umask_and_existing_file(tmp_path):
    model = small_model()
    path = tmp_path / "m.fnc"
    model.save(path)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask  # not mkstemp's 0o600
    os.chmod(path, 0o640)
    model.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_save_into_missing_folder_or_onto_directory(tmp_path):
    model = small_model()
    with pytest.raises(FileNotFoundError):
        model.save(tmp_path / "no" / "such" / "m.fnc")
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError):
        model.save(tmp_path / "d")
    assert os.listdir(tmp_path / "d") == [] and sorted(os.listdir(tmp_path)) == ["d"]

