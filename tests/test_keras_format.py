"""Keras 3 files made by Keras (tests/data/keras_fixtures, made by make_fixtures.py there) load and predict what
Keras predicted; their .weights.h5 load into the same architecture built in fncompiler. No Keras import."""
import json
import os
import zipfile

import numpy as np
import pytest

import fncompiler as keras
from fncompiler import layers
from fncompiler.models import load_model
from fncompiler.saving import ModelFileError

HERE = os.path.join(os.path.dirname(__file__), "data", "keras_fixtures")
KINDS = ["mlp", "cnn", "ticket", "autoencoder", "attention", "sequential"]


def _batch(kind):
    d = np.load(os.path.join(HERE, f"{kind}.npz"))
    x = {n[2:]: d[n] for n in d.files if n.startswith("x:")}
    y = {n[2:]: d[n] for n in d.files if n.startswith("y:")}
    return (x if len(x) > 1 else next(iter(x.values()))), y


def _max_err(pred, y):
    if isinstance(pred, dict):
        assert sorted(pred) == sorted(y)
        return max(float(np.abs(np.asarray(pred[k]) - y[k]).max()) for k in y)
    return float(np.abs(np.asarray(pred) - y["0"]).max())


@pytest.mark.parametrize("kind", KINDS)
def test_keras_archive_predicts_what_keras_predicted(kind):
    model = load_model(os.path.join(HERE, f"{kind}.keras"))
    x, y = _batch(kind)
    assert _max_err(model.predict(x, verbose=0), y) < 1e-4


def _mlp():
    inputs = keras.Input(shape=(6,), name="features")
    x = layers.Dense(8, activation="relu")(inputs)
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(8, activation="relu")(x)
    return keras.Model(inputs, layers.Dense(3, activation="softmax", name="probs")(x))


def _ticket():
    title = keras.Input(shape=(None,), name="title")
    body = keras.Input(shape=(None,), name="body")
    tags = keras.Input(shape=(5,), name="tags")
    t = layers.LSTM(6, name="lstm")(layers.Embedding(50, 8, name="embedding")(title))
    b = layers.GRU(4, name="gru")(layers.Embedding(50, 8, name="embedding_1")(body))
    x = layers.concatenate([t, b, tags], name="concatenate")
    return keras.Model({"title": title, "body": body, "tags": tags},
                       {"priority": layers.Dense(1, name="priority")(x),
                        "department": layers.Dense(3, name="department")(x)})


def _attention():
    inputs = keras.Input(shape=(5, 8), name="seq")
    x = layers.Add()([inputs, layers.MultiHeadAttention(num_heads=2, key_dim=4)(inputs, inputs)])
    x = layers.GlobalAveragePooling1D()(layers.LayerNormalization()(x))
    return keras.Model(inputs, layers.Dense(2)(x))


def _cnn():
    inputs = keras.Input(shape=(8, 8, 3), name="image")
    x = layers.BatchNormalization()(layers.Conv2D(4, 3, padding="same")(inputs))
    x = layers.SeparableConv2D(6, 3, activation="relu")(layers.Activation("relu")(x))
    x = layers.GlobalAveragePooling2D()(layers.MaxPooling2D(2)(x))
    return keras.Model(inputs, layers.Dense(2)(x))


@pytest.mark.parametrize("kind,build", [("mlp", _mlp), ("ticket", _ticket), ("attention", _attention),
                                        ("cnn", _cnn)])
def test_keras_weights_h5_into_fncompiler_architecture(kind, build):
    # Layer names here are fncompiler's own auto names (not the file's): weights go by Keras's group paths.
    model = build()
    model.load_weights(os.path.join(HERE, f"{kind}.weights.h5"))
    x, y = _batch(kind)
    assert _max_err(model.predict(x, verbose=0), y) < 1e-4


def test_weights_h5_into_wrong_architecture_names_the_layer():
    inputs = keras.Input(shape=(6,))
    model = keras.Model(inputs, layers.Dense(3)(layers.Dense(8)(inputs)))
    with pytest.raises(ModelFileError, match="shape|no weights|does not have"):
        model.load_weights(os.path.join(HERE, "mlp.weights.h5"))


def test_keras_archive_compile_config_is_restored():
    model = load_model(os.path.join(HERE, "cnn.keras"))
    assert type(model.optimizer).__name__ == "SGD"
    x, _ = _batch("cnn")
    model.fit(x, np.zeros((8, 2), "float32"), batch_size=4, epochs=1, verbose=0)


def _h5_layout(data):
    import io

    import h5py
    datasets, names = {}, {}
    with h5py.File(io.BytesIO(data), "r") as f:
        def visit(path, obj):
            if path.startswith("optimizer"):
                return
            if isinstance(obj, h5py.Dataset):
                datasets[path] = tuple(obj.shape)
            elif "name" in obj.attrs and (path == "vars" or path.split("/")[-3:-2] == ["layers"]):
                names[path] = obj.attrs["name"]  # layer-level groups (what fncompiler's reader relies on)
        f.visititems(visit)
    return datasets, names


def _layer_summary(config):
    """(class_name, module, name, keras_history refs of inbound nodes) for every layer, nested models included."""
    out = []
    for layer in config["config"]["layers"]:
        refs = [a["config"]["keras_history"] for node in layer.get("inbound_nodes", [])
                for a in _flat(node["args"]) if isinstance(a, dict) and a.get("class_name") == "__keras_tensor__"]
        out.append((layer["class_name"], layer["module"], layer["name"], refs))
        if layer["class_name"] in ("Functional", "Sequential"):
            out.append(_layer_summary(layer))
    return out


def _flat(x):
    if isinstance(x, list):
        return [y for v in x for y in _flat(v)]
    return [x]


@pytest.mark.parametrize("kind", KINDS)
def test_saved_keras_archive_has_keras_layout(tmp_path, kind):
    src = os.path.join(HERE, f"{kind}.keras")
    out = str(tmp_path / f"{kind}.keras")
    load_model(src).save(out)
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(out) as b:
        assert sorted(b.namelist()) == sorted(a.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
        ref_cfg, cfg = json.loads(a.read("config.json")), json.loads(b.read("config.json"))
        assert json.loads(b.read("metadata.json"))["keras_version"].startswith("3.")
        ref_h5, h5 = a.read("model.weights.h5"), b.read("model.weights.h5")
    assert {"module", "class_name", "config", "registered_name", "compile_config"} <= set(cfg)
    assert (cfg["module"], cfg["class_name"]) == (ref_cfg["module"], ref_cfg["class_name"])
    if kind != "sequential":
        for key in ("input_layers", "output_layers"):
            assert cfg["config"][key] == ref_cfg["config"][key]
        # the same layers, modules and calls, in Keras's order (Keras matches weights to layers by that order)
        assert _layer_summary(cfg) == _layer_summary(ref_cfg)
    assert cfg["compile_config"]["optimizer"]["class_name"] == ref_cfg["compile_config"]["optimizer"]["class_name"]
    assert cfg["compile_config"]["optimizer"]["module"] == "keras.optimizers"
    assert _h5_layout(h5) == _h5_layout(ref_h5)
    x, y = _batch(kind)
    assert _max_err(load_model(out).predict(x, verbose=0), y) < 1e-4


@pytest.mark.parametrize("kind", ["mlp", "ticket", "attention"])
def test_saved_weights_h5_has_keras_layout(tmp_path, kind):
    out = str(tmp_path / f"{kind}.weights.h5")
    load_model(os.path.join(HERE, f"{kind}.keras")).save_weights(out)
    with open(os.path.join(HERE, f"{kind}.weights.h5"), "rb") as fh:
        ref = fh.read()
    with open(out, "rb") as fh:
        assert _h5_layout(fh.read()) == _h5_layout(ref)


def test_fncompiler_own_format_keeps_its_extension(tmp_path):
    model = _mlp()
    model.save(tmp_path / "m.fnc")
    with zipfile.ZipFile(tmp_path / "m.fnc") as zf:
        assert "weights.msgpack" in zf.namelist() and "hashes.json" in zf.namelist()
    # an old fncompiler file named .keras (msgpack inside) still loads: detected by content
    os.replace(tmp_path / "m.fnc", tmp_path / "old.keras")
    loaded = load_model(tmp_path / "old.keras")
    for a, b in zip(loaded.weights, model.weights):
        np.testing.assert_array_equal(np.asarray(a.value), np.asarray(b.value))


def test_cli_convert_keras_file_to_artifact(tmp_path, capsys):
    from fncompiler.__main__ import main
    from fncompiler.runtime.exported_loader import load_exported
    out = str(tmp_path / "mlp.fnexport")
    assert main(["convert", os.path.join(HERE, "mlp.keras"), "--export", out]) == 0
    text = capsys.readouterr().out
    assert "Passes for 'mlp'" in text and "converted" in text
    x, y = _batch("mlp")
    assert float(np.abs(np.asarray(load_exported(out)(x)) - y["0"]).max()) < 1e-4


def _optimizer_vars(path):
    import io

    import h5py
    with zipfile.ZipFile(path) as zf, h5py.File(io.BytesIO(zf.read("model.weights.h5")), "r") as f:
        g = f["optimizer/vars"]
        return [np.asarray(g[str(i)][()]) for i in range(len(g))]


@pytest.mark.parametrize("kind", KINDS)
def test_keras_optimizer_state_is_restored_and_written_back(tmp_path, kind):
    src = os.path.join(HERE, f"{kind}.keras")
    model = load_model(src)
    ref = _optimizer_vars(src)
    state = model._restored_opt_state
    assert int(state.iterations) == int(ref[0]) > 0
    np.testing.assert_allclose(float(state.learning_rate), float(ref[1]))
    out = str(tmp_path / f"{kind}.keras")
    model.save(out)
    written = _optimizer_vars(out)
    assert len(written) == len(ref)
    for a, b in zip(written, ref):
        np.testing.assert_array_equal(a, b)


def test_keras_rmsprop_slots_follow_keras_layer_names():
    # ticket's RMSprop: Keras lists velocities in its own layer order (department before priority); the
    # department kernel's velocity (15, 3) must land on fncompiler's department kernel whatever its position.
    src = os.path.join(HERE, "ticket.keras")
    model = load_model(src)
    ref = [a for a in _optimizer_vars(src)[2:] if a.shape == (15, 3)]
    velocities = model._restored_opt_state.inner[-1].velocities
    i = [id(w) for w in model.trainable_weights].index(id(model.get_layer("department").kernel))
    np.testing.assert_array_equal(np.asarray(velocities[i]), ref[0])
