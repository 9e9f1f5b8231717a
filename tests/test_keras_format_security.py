"""Hostile Keras-format files, each built here, refused before anything is built or run (no Keras import)."""
import io
import json
import os
import zipfile

import h5py
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import layers
from fncompiler.models import load_model
from fncompiler.saving import ModelFileError, UnsafeConfigError

HERE = os.path.join(os.path.dirname(__file__), "data", "keras_fixtures")


def _members(kind="mlp"):
    with zipfile.ZipFile(os.path.join(HERE, f"{kind}.keras")) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _write(tmp_path, members, name="m.keras"):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    return str(path)


def _with_config(tmp_path, edit):
    members = _members()
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config).encode()
    return _write(tmp_path, members)


def _dense_layer(config):
    return next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")


def test_lambda_with_bytecode_is_refused(tmp_path):
    def edit(config):
        layer = _dense_layer(config)
        layer["class_name"] = "Lambda"
        layer["config"] = {"name": layer["name"], "function": {"class_name": "__lambda__", "config": {
            "code": "4wEAAAAAAAAAAAAAAAEAAAADAAAAQwAAAHMEAAAAfABTAKkBTqkAKQHaAXhyAQAAAHIBAAAA+gE8bGFtYmRhPg==",
            "defaults": None, "closure": None}}}
    with pytest.raises(UnsafeConfigError, match="Lambda"):
        load_model(_with_config(tmp_path, edit))


@pytest.mark.parametrize("module,class_name", [("os", "system"), ("builtins", "eval"),
                                               ("keras.src.utils", "get_file")])
def test_class_outside_registries_is_refused(tmp_path, module, class_name):
    def edit(config):
        layer = _dense_layer(config)
        layer["module"], layer["class_name"] = module, class_name
    with pytest.raises(UnsafeConfigError, match=f"Unknown class '{class_name}'"):
        load_model(_with_config(tmp_path, edit))


def test_reduce_style_custom_config_is_refused(tmp_path):
    def edit(config):
        _dense_layer(config)["config"]["kernel_initializer"] = {
            "class_name": "__reduce__", "module": "os", "config": {"args": ["echo hacked"], "fn": "system"}}
    with pytest.raises((UnsafeConfigError, ModelFileError)):
        load_model(_with_config(tmp_path, edit))


@pytest.mark.parametrize("where", ["config", "metadata"])
def test_safe_mode_key_is_refused(tmp_path, where):
    members = _members()
    target = "config.json" if where == "config" else "metadata.json"
    obj = json.loads(members[target])
    obj["safe_mode"] = False
    members[target] = json.dumps(obj).encode()
    with pytest.raises(UnsafeConfigError, match="safe_mode"):
        load_model(_write(tmp_path, members), safe_mode=False)


def test_non_neutral_keras_option_is_refused_naming_layer_and_option(tmp_path):
    def edit(config):
        _dense_layer(config)["config"]["quantization_config"] = {"mode": "int8"}
    with pytest.raises(ModelFileError, match="quantization_config.*not supported|Dense 'dense'"):
        load_model(_with_config(tmp_path, edit))


def test_extra_member_is_refused(tmp_path):
    members = _members()
    members["assets/evil.py"] = b"print('x')"
    with pytest.raises(ModelFileError, match="unexpected member"):
        load_model(_write(tmp_path, members))


def _h5_bytes(build):
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.create_group("layers/dense/vars").attrs["name"] = "dense"
        build(f)
    return buf.getvalue()


def _archive_with_h5(tmp_path, build):
    members = _members()
    members["model.weights.h5"] = _h5_bytes(build)
    return _write(tmp_path, members)


HOSTILE = {
    "external link": (lambda f: f.__setitem__("layers/dense/vars/0", h5py.ExternalLink("/etc/passwd", "/x")),
                      "external link"),
    "soft link": (lambda f: (f.create_dataset("other", data=np.zeros(3, "f4")),
                             f.__setitem__("layers/dense/vars/0", h5py.SoftLink("/other"))), "soft link"),
    "string dtype": (lambda f: f.create_dataset("layers/dense/vars/0", data=np.array([b"abc"])), "dtype"),
    "compound dtype": (lambda f: f.create_dataset("layers/dense/vars/0",
                                                  data=np.zeros(2, dtype=[("a", "f4"), ("b", "i4")])), "dtype"),
    "huge declared shape": (lambda f: f.create_dataset("layers/dense/vars/0", shape=(10 ** 6, 10 ** 4),
                                                       dtype="f4"), "declare"),
    "compression filter": (lambda f: f.create_dataset("layers/dense/vars/0", data=np.zeros((64, 64), "f4"),
                                                      compression="gzip"), "filters"),
}


def _virtual(f):
    layout = h5py.VirtualLayout(shape=(4,), dtype="f4")
    layout[:] = h5py.VirtualSource("/etc/other.h5", "data", shape=(4,))
    f.create_virtual_dataset("layers/dense/vars/0", layout, fillvalue=0)


HOSTILE["virtual dataset"] = (_virtual, "virtual")


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_hdf5_in_archive_is_refused(tmp_path, case):
    build, message = HOSTILE[case]
    with pytest.raises(ModelFileError, match=message):
        load_model(_archive_with_h5(tmp_path, build))


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_weights_h5_is_refused(tmp_path, case):
    build, message = HOSTILE[case]
    path = tmp_path / "w.weights.h5"
    path.write_bytes(_h5_bytes(build))
    inputs = keras.Input(shape=(6,))
    model = keras.Model(inputs, layers.Dense(8)(inputs))
    before = [np.asarray(w.value).copy() for w in model.weights]
    with pytest.raises(ModelFileError, match=message):
        model.load_weights(str(path))
    for w, b in zip(model.weights, before):
        np.testing.assert_array_equal(np.asarray(w.value), b)


def test_not_hdf5_member_is_refused(tmp_path):
    members = _members()
    members["model.weights.h5"] = b"not an hdf5 file at all"
    with pytest.raises(ModelFileError, match="not an HDF5 file"):
        load_model(_write(tmp_path, members))


def test_unsupported_layer_class_names_it_and_lists_supported(tmp_path):
    def edit(config):
        _dense_layer(config)["class_name"] = "SpectralNormalization"
    with pytest.raises(UnsafeConfigError, match="Unknown class 'SpectralNormalization'.*supports: .*Dense.*LSTM"):
        load_model(_with_config(tmp_path, edit))


def test_custom_class_in_keras_file_resolves_only_through_custom_objects(tmp_path):
    class MyDense(layers.Dense):
        pass

    def edit(config):
        layer = _dense_layer(config)
        layer["module"], layer["class_name"], layer["registered_name"] = "my_pkg.layers", "MyDense", "my_pkg>MyDense"
    path = _with_config(tmp_path, edit)
    with pytest.raises(UnsafeConfigError, match="MyDense"):
        load_model(path)
    model = load_model(path, custom_objects={"my_pkg>MyDense": MyDense})
    assert any(type(layer) is MyDense for layer in model.layers)
    d = np.load(os.path.join(HERE, "mlp.npz"))
    np.testing.assert_allclose(model.predict(d["x:features"], verbose=0), d["y:0"], atol=1e-4)
