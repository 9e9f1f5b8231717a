"""Malicious and malformed model files: every Keras CVE pattern rebuilt as an fncompiler file, plus fuzzing.

Each crafted file carries a correct hashes.json (so only the payload is wrong) and a payload that, if anything in
it ran, would create a marker file; every test checks the file is refused with one of the project's errors and
that the marker does not exist.

The loader's contract, checked here: `load_model` returns a model or raises ModelFileError / UnsafeConfigError
(both ValueErrors) or FileNotFoundError; never a zipfile/zlib/json/msgpack/numpy/jax exception type, never a hang,
never a large allocation.
"""
import base64
import copy
import hashlib
import json
import marshal
import os
import pickle
import resource
import signal
import struct
import zipfile
import zlib

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fncompiler as keras
from fncompiler import layers
from fncompiler.saving import ModelFileError, UnsafeConfigError, file_format

ALLOWED = (ModelFileError, UnsafeConfigError)   # what a bad file may raise (FileNotFoundError: no file at all)
PROJECT_ERRORS = (ModelFileError, UnsafeConfigError, FileNotFoundError)


# -- building files ----------------------------------------------------------------------------------
def sha(data):
    return hashlib.sha256(data).hexdigest()


def pack(path, members, hashes=True):
    """A zip of {name: bytes} with a correct hashes.json."""
    members = {k: v for k, v in members.items() if k != "hashes.json"}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if hashes:
            zf.writestr("hashes.json", json.dumps({n: sha(d) for n, d in members.items()}))
    return path


def deflate(data):
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def raw_zip(path, entries, declared_entries=None):
    """A zip written byte by byte, so every header field can lie. Each entry: name, data (as stored), and
    optionally method (0 stored / 8 deflate), crc, size (declared uncompressed size), flags."""
    out, central = bytearray(), bytearray()
    for e in entries:
        name = e["name"].encode("utf-8") if isinstance(e["name"], str) else e["name"]
        data = e["data"]
        method, flags = e.get("method", 0), e.get("flags", 0x800)
        crc = e.get("crc", zlib.crc32(e.get("plain", data)))
        size = e.get("size", len(e.get("plain", data)))
        offset = len(out)
        out += struct.pack(zipfile.structFileHeader, b"PK\x03\x04", 20, 0, flags, method, 0, 0x21, crc, len(data),
                           size, len(name), 0) + name + data
        central += struct.pack(zipfile.structCentralDir, b"PK\x01\x02", 20, 3, 20, 0, flags, method, 0, 0x21, crc,
                               len(data), size, len(name), 0, 0, 0, 0, 0o644 << 16, offset) + name
    n = len(entries) if declared_entries is None else declared_entries
    cd_offset = len(out)
    out += central + struct.pack(zipfile.structEndArchive, b"PK\x05\x06", 0, 0, n, n, len(central), cd_offset, 0)
    path.write_bytes(bytes(out))
    return path


def hashed_entries(members, extra=()):
    """raw_zip entries for {name: bytes} (deflated) plus a correct hashes.json, then `extra` entries."""
    entries = [{"name": n, "data": deflate(d), "plain": d, "method": 8} for n, d in members.items()]
    hashes = json.dumps({n: sha(d) for n, d in members.items()}).encode()
    return entries + [{"name": "hashes.json", "data": hashes}] + list(extra)


def ndarray_ext(shape, dtype_name, buffer):
    return msgpack.ExtType(1, msgpack.packb((tuple(shape), dtype_name, buffer), use_bin_type=True))


def weights_blob(arrays, paths=None):
    paths = paths if paths is not None else [f"w/{i}" for i in range(len(arrays))]
    return msgpack.packb({"paths": paths, "arrays": {str(i): a for i, a in enumerate(arrays)}}, use_bin_type=True)


def load(path, **kwargs):
    return keras.models.load_model(path, **kwargs)


def refused(path, cls=ALLOWED, match=None, **kwargs):
    with pytest.raises(Exception) as info:
        load(path, **kwargs)
    err = info.value
    assert isinstance(err, cls) and type(err) in (ModelFileError, UnsafeConfigError), \
        f"{type(err).__module__}.{type(err).__name__}: {err}"
    if match:
        assert match.lower() in str(err).lower(), str(err)
    return err


# -- the base file -----------------------------------------------------------------------------------
def _base_model():
    keras.utils.set_random_seed(3)
    a, b = keras.Input(shape=(4,), name="a"), keras.Input(shape=(4,), name="b")
    shared = layers.Dense(3, activation="relu", name="shared")
    h = layers.concatenate([shared(a), shared(b)], name="cat")
    h = layers.Dropout(0.1, name="drop")(h)
    out = layers.Dense(2, name="out")(h)
    model = keras.Model([a, b], out, name="base")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse", metrics=["mae"])
    x = [np.ones((4, 4), "float32"), np.zeros((4, 4), "float32")]
    model.fit(x, np.ones((4, 2), "float32"), epochs=1, batch_size=4, verbose=0)
    return model


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    path = tmp_path_factory.mktemp("base") / "base.fnc"
    _base_model().save(path)
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist() if n != "hashes.json"}
    return {"path": path, "bytes": path.read_bytes(), "members": members,
            "config": json.loads(members["config.json"])}


def with_config(base, tmp_path, config, name="evil.fnc", **member_overrides):
    members = {**base["members"], "config.json": json.dumps(config).encode(), **member_overrides}
    return pack(tmp_path / name, members)


@pytest.fixture
def marker(tmp_path):
    m = tmp_path / "pwned"
    yield m
    assert not m.exists(), "a payload ran"


def test_base_file_loads(base):
    model = load(base["path"])
    assert model.name == "base" and len(model.weights) == 4
    assert "optimizer.msgpack" in base["members"]


# -- class names: nothing is imported or called by name ----------------------------------------------
def _layer(module, class_name, config, registered_name=None):
    return {"module": module, "class_name": class_name, "config": config, "registered_name": registered_name,
            "name": "evil", "inbound_nodes": []}


def _payloads(marker):
    touch = f"touch {marker}"
    src = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system": _layer("os", "system", {"command": touch}),
        "dotted os.system": _layer(None, "os.system", {"command": touch}),
        "builtins.eval": _layer("builtins", "eval", {"source": src}),
        "builtins.exec": _layer("builtins", "exec", {"source": src}),
        "subprocess.Popen": _layer("subprocess", "Popen", {"args": ["touch", str(marker)]}),
        "registered builtins>eval": _layer("builtins", "eval", {"source": src}, registered_name="builtins>eval"),
        "registered __import__": _layer("builtins", "__import__", {"name": "os"}, registered_name="builtins>__import__"),
        "keras.config.enable_unsafe_deserialization": _layer("keras.config", "enable_unsafe_deserialization", {}),
        "keras.src.utils.get_file": _layer("keras.src.utils", "get_file", {"origin": "file:///etc/passwd"}),
        "class_name is not a string": _layer("os", ["os", "system"], {"command": touch}),
        "registered_name is not a string": _layer("os", "Dense", {"units": 1}, registered_name={"a": 1}),
    }


@pytest.mark.parametrize("which", list(_payloads("m")))
def test_class_outside_the_registry_is_refused(base, tmp_path, marker, which):
    entry = _payloads(marker)[which]
    config = copy.deepcopy(base["config"])
    config["config"]["layers"].insert(0, entry)
    err = refused(with_config(base, tmp_path, config), UnsafeConfigError)
    assert "registry" in str(err) or "string" in str(err) or "Nothing is imported" in str(err)
    # The same payload as the whole model.
    refused(with_config(base, tmp_path, {k: v for k, v in entry.items() if k not in ("name", "inbound_nodes")},
                        name="top.fnc"), UnsafeConfigError)


def test_registered_name_cannot_redirect_a_builtin(base, tmp_path, marker):
    """'registered_name' resolves only in the registries: pointing it at builtins>eval changes nothing."""
    config = copy.deepcopy(base["config"])
    entry = next(e for e in config["config"]["layers"] if e["name"] == "out")
    entry["registered_name"] = "builtins>eval"
    entry["module"] = "builtins"
    model = load(with_config(base, tmp_path, config))
    assert type(model.get_layer("out")).__name__ == "Dense"


def test_custom_object_that_is_not_a_layer_is_never_called(base, tmp_path, marker):
    def helper(*args, **kwargs):  # e.g. a function the user passes for a Lambda layer
        marker.touch()

    config = copy.deepcopy(base["config"])
    config["config"]["layers"].insert(0, _layer("x", "helper", {"anything": 1}))
    refused(with_config(base, tmp_path, config), UnsafeConfigError, "not a Layer class",
            custom_objects={"helper": helper})


# -- Lambda: no code from files ----------------------------------------------------------------------
def _bytecode(marker):
    def payload(x):
        open(MARKER, "w").close()  # noqa: F821 - a global the attacker's code would define
        return x
    return base64.b64encode(marshal.dumps(payload.__code__)).decode("ascii")


def _lambda_entry(function, **extra):
    config = {"name": "lam", "trainable": True, "dtype": "float32", "function": function, "output_shape": None,
              "arguments": {}, **extra}
    return {"module": "keras.layers", "class_name": "Lambda", "config": config, "registered_name": None,
            "name": "lam", "inbound_nodes": []}


@pytest.mark.parametrize("style", ["keras3", "keras2", "named builtins.eval", "keras3 + unsafe switch",
                                   "code beside a known name"])
@pytest.mark.parametrize("safe_mode", [True, False])
def test_lambda_bytecode_is_refused(base, tmp_path, marker, style, safe_mode):
    code = _bytecode(marker)
    config = copy.deepcopy(base["config"])
    entries = config["config"]["layers"]
    if style == "keras3":
        entries.insert(0, _lambda_entry({"class_name": "__lambda__", "config": {"code": code, "defaults": None,
                                                                                 "closure": None}}))
    elif style == "keras2":
        entries.insert(0, _lambda_entry([code, None, None], function_type="lambda", module="__main__"))
    elif style == "named builtins.eval":
        entries.insert(0, _lambda_entry({"module": "builtins", "class_name": "function", "config": "eval",
                                         "registered_name": "function"}))
    elif style == "keras3 + unsafe switch":  # CVE-2025-1550: a "layer" that turns safe mode off, then bytecode
        entries.insert(0, _layer("keras.config", "enable_unsafe_deserialization", {}))
        entries.insert(1, _lambda_entry({"class_name": "__lambda__", "config": {"code": code}}))
    else:
        entries.insert(0, _lambda_entry({"class_name": "__lambda__", "config": {"name": "double", "code": code}}))
    refused(with_config(base, tmp_path, config), UnsafeConfigError, safe_mode=safe_mode,
            custom_objects={"double": lambda x: x * 2})


# -- a file cannot turn safety off -------------------------------------------------------------------
@pytest.mark.parametrize("where", ["top level", "model config", "layer config", "metadata"])
def test_safe_mode_key_is_refused(base, tmp_path, marker, where):
    config = copy.deepcopy(base["config"])
    overrides = {}
    if where == "top level":
        config["safe_mode"] = False
    elif where == "model config":
        config["config"]["safe_mode"] = False
    elif where == "layer config":
        config["config"]["layers"][1]["config"]["safe_mode"] = False
    else:
        meta = json.loads(base["members"]["metadata.json"])
        meta["safe_mode"] = False
        overrides["metadata.json"] = json.dumps(meta).encode()
    refused(with_config(base, tmp_path, config, **overrides), UnsafeConfigError, "safe_mode")


# -- nested identifiers: initializers, activations, regularizers, constraints, compile ---------------
def _nested_payloads(marker):
    evil = {"module": "os", "class_name": "system", "config": {"command": f"touch {marker}"}}
    evil_fn = {"module": "builtins", "class_name": "function", "config": "eval", "registered_name": "function"}
    return {
        "kernel_initializer": ("kernel_initializer", evil, "system"),
        "bias_initializer module path": ("bias_initializer", {**evil, "class_name": "os.system"}, "os.system"),
        "activation dict": ("activation", evil_fn, "eval"),
        "activation dotted": ("activation", "os.system", "os.system"),
        "activation class": ("activation", evil, "activation"),
        "kernel_regularizer": ("kernel_regularizer", evil, "system"),
        "kernel_constraint": ("kernel_constraint", evil, "system"),
        "dtype": ("dtype", "os.system", "os.system"),
    }


@pytest.mark.parametrize("which", list(_nested_payloads("m")))
def test_nested_identifier_outside_registry_is_refused(base, tmp_path, marker, which):
    key, value, name = _nested_payloads(marker)[which]
    config = copy.deepcopy(base["config"])
    next(e for e in config["config"]["layers"] if e["name"] == "out")["config"][key] = value
    refused(with_config(base, tmp_path, config), match=name)


def _compile_payloads(marker):
    evil = {"module": "os", "class_name": "system", "config": {"command": f"touch {marker}"}}
    evil_fn = {"module": "builtins", "class_name": "function", "config": "eval"}
    return {
        "optimizer": ("optimizer", evil),
        "optimizer name": ("optimizer", "os.system"),
        "learning_rate schedule": ("optimizer", {"class_name": "Adam", "config": {"learning_rate": evil}}),
        "loss class": ("loss", evil),
        "loss function": ("loss", evil_fn),
        "loss name": ("loss", "os.system"),
        "metric class": ("metrics", [evil]),
        "metric function": ("metrics", [evil_fn]),
        "run_eagerly": ("run_eagerly", "yes"),
    }


@pytest.mark.parametrize("which", list(_compile_payloads("m")))
def test_compile_config_outside_registry_is_refused(base, tmp_path, marker, which):
    key, value = _compile_payloads(marker)[which]
    config = copy.deepcopy(base["config"])
    config["compile_config"][key] = value
    refused(with_config(base, tmp_path, config), ModelFileError, "compile")
    assert not load(with_config(base, tmp_path, config, name="nc.fnc"), compile=False).compiled


def test_op_layer_names_only_registered_ops(base, tmp_path, marker):
    config = copy.deepcopy(base["config"])
    config["config"]["layers"].insert(0, {"class_name": "OpLayer", "config": {"name": "op", "op": "__import__"},
                                          "name": "op", "inbound_nodes": []})
    refused(with_config(base, tmp_path, config), ModelFileError, "Unknown op")


# -- archive members ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../x", "../../x", "/abs", "/etc/passwd", "a/../../x", "..\\x", "C:\\x", "C:/x",
                                  "config.json/../../x"])
@pytest.mark.parametrize("position", ["first", "last"])
def test_member_path_traversal_is_refused(base, tmp_path, marker, name, position):
    bad = {"name": name, "data": b"payload"}
    entries = hashed_entries(base["members"])
    entries = [bad] + entries if position == "first" else entries + [bad]
    err = refused(raw_zip(tmp_path / "slip.fnc", entries), UnsafeConfigError)
    assert repr(name) in str(err) and ("absolute" in str(err) or "climbs out" in str(err))
    assert not (tmp_path.parent / "x").exists() and not (tmp_path / "x").exists()


@pytest.mark.parametrize("name", ["evil.py", "config.json.bak", "__init__.py", "weights.h5", "model.pkl"])
def test_unexpected_member_is_refused(base, tmp_path, marker, name):
    members = {**base["members"], name: pickle.dumps({"x": 1})}
    refused(pack(tmp_path / "extra.fnc", members), ModelFileError, "unexpected member")


def test_duplicate_member_is_refused(base, tmp_path):
    config = base["members"]["config.json"]
    evil_config = json.dumps(_layer("os", "system", {})).encode()
    entries = hashed_entries(base["members"], extra=[{"name": "config.json", "data": evil_config}])
    refused(raw_zip(tmp_path / "dup.fnc", entries), ModelFileError, "more than one member")
    assert config  # the first copy is valid: an ambiguous archive is refused, not resolved either way


def test_too_many_members_is_refused_before_parsing(base, tmp_path):
    entries = [{"name": f"m{i}", "data": b""} for i in range(2000)]
    refused(raw_zip(tmp_path / "many.fnc", entries), ModelFileError, "2000 members")
    # A directory that claims 65535 entries it does not have.
    refused(raw_zip(tmp_path / "claims.fnc", hashed_entries(base["members"]), declared_entries=65535),
            ModelFileError, "65535 members")


def test_encrypted_and_unsupported_members_are_clean_errors(base, tmp_path):
    entries = hashed_entries(base["members"])
    entries[1] = {**entries[1], "flags": 0x801}  # "encrypted": zipfile would raise RuntimeError
    refused(raw_zip(tmp_path / "enc.fnc", entries), ModelFileError, "corrupt")
    entries = hashed_entries(base["members"])
    entries[1] = {**entries[1], "method": 99}  # zipfile would raise NotImplementedError
    refused(raw_zip(tmp_path / "m99.fnc", entries), ModelFileError, "corrupt")
    entries = hashed_entries(base["members"])
    entries[1] = {**entries[1], "data": b"\xff" * len(entries[1]["data"])}  # not deflate: zlib.error
    refused(raw_zip(tmp_path / "zlib.fnc", entries), ModelFileError, "corrupt")


# -- zip bombs ---------------------------------------------------------------------------------------
def test_zip_bomb_real_ratio(base, tmp_path):
    plain = bytes(32 * 1024 ** 2)  # 32 MiB of zeros -> ~32 KiB deflated
    data = deflate(plain)
    assert len(data) < 64 * 1024
    members = {**base["members"]}
    entries = [e for e in hashed_entries(members) if e["name"] != "weights.msgpack"]
    entries.insert(2, {"name": "weights.msgpack", "data": data, "plain": plain, "method": 8})
    refused(raw_zip(tmp_path / "bomb.fnc", entries), ModelFileError, "zip bomb")


def test_zip_bomb_multi_gigabyte_declared(base, tmp_path):
    small = deflate(bytes(1024))
    for name, size in (("weights.msgpack", 0xF000_0000), ("optimizer.msgpack", 0xFFFF_FFFF)):
        entries = [e for e in hashed_entries(base["members"]) if e["name"] != name]
        entries.append({"name": name, "data": small, "method": 8, "size": size, "crc": 0})
        path = raw_zip(tmp_path / f"declared-{name}.fnc", entries)
        assert path.stat().st_size < 64 * 1024
        refused(path, ModelFileError, "zip bomb")


def test_declared_size_over_member_limit(base, tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, 400_000, dtype=np.uint8).tobytes()
    entries = [e for e in hashed_entries(base["members"]) if e["name"] != "config.json"]
    entries.append({"name": "config.json", "data": noise, "size": 65 * 1024 ** 2, "crc": 0})
    refused(raw_zip(tmp_path / "big-json.fnc", entries), ModelFileError, "over the")


def test_declared_size_smaller_than_real_data(base, tmp_path):
    """A member that decompresses to far more than it declares is read only up to its declared size."""
    plain = bytes(50 * 1024 ** 2)
    entries = [e for e in hashed_entries(base["members"]) if e["name"] != "weights.msgpack"]
    entries.append({"name": "weights.msgpack", "data": deflate(plain), "method": 8, "size": 1000,
                    "crc": zlib.crc32(plain)})
    refused(raw_zip(tmp_path / "liar.fnc", entries), ModelFileError)


# -- weights.msgpack: shape bombs, dtypes, pickles ---------------------------------------------------
def _weights_payloads(marker):
    class Reduce:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    pickled = pickle.dumps(Reduce())
    eight = np.zeros(2, "float32").tobytes()
    return {
        "shape bomb 2**40": weights_blob([ndarray_ext((2 ** 40,), "float32", eight)]),
        "shape bomb 2D": weights_blob([ndarray_ext((2 ** 31, 2 ** 31), "float32", eight)]),
        "chunked shape bomb": weights_blob([{"__msgpack_chunked_array__": True, "shape": {"0": 2 ** 40},
                                             "chunks": {"0": ndarray_ext((2,), "float32", eight)}}]),
        "object dtype": weights_blob([ndarray_ext((1,), "O", pickled[:8])]),
        "object dtype pickle buffer": weights_blob([ndarray_ext((len(pickled),), "|O", pickled)]),
        "structured dtype with object": weights_blob([ndarray_ext((1,), "O,i4", bytes(12))]),
        "unicode dtype": weights_blob([ndarray_ext((1,), "<U2", bytes(8))]),
        "subarray dtype bomb": weights_blob([ndarray_ext((1,), "(100000,100000)f8", eight)]),
        "unknown ext (pickle)": weights_blob([msgpack.ExtType(99, pickled)]),
        "raw pickle bytes": weights_blob([pickled]),
        "pickle as the whole member": pickled,
        "not a table": msgpack.packb([1, 2, 3]),
        "keys not 0..n-1": msgpack.packb({"paths": ["a"], "arrays": {"7": ndarray_ext((1,), "float32", bytes(4))}},
                                         use_bin_type=True),
        "paths not strings": weights_blob([ndarray_ext((1,), "float32", bytes(4))], paths=[{"a": 1}]),
        "deep msgpack": b"\x91" * 100_000 + b"\xc0",
    }


@pytest.mark.parametrize("which", list(_weights_payloads("m")))
def test_malicious_weights_are_refused(base, tmp_path, marker, which):
    blob = _weights_payloads(marker)[which]
    members = {**base["members"], "weights.msgpack": blob}
    refused(pack(tmp_path / "w.fnc", members), ModelFileError)
    model = load(base["path"], compile=False)
    with pytest.raises(ModelFileError):
        model.load_weights(pack(tmp_path / "wo.fnc", {"metadata.json": base["members"]["metadata.json"],
                                                      "weights.msgpack": blob}))


def test_malicious_optimizer_state_is_refused(base, tmp_path, marker):
    opt = msgpack.unpackb(base["members"]["optimizer.msgpack"], raw=False, strict_map_key=False)
    bad_leaf = copy.deepcopy(opt)
    bad_leaf["iterations"] = ndarray_ext((1,), "O", bytes(8))
    string_leaf = copy.deepcopy(opt)
    string_leaf["iterations"] = "os.system"
    for blob in (msgpack.packb(bad_leaf, use_bin_type=True), msgpack.packb(string_leaf, use_bin_type=True),
                 msgpack.packb({"x": 1}), b"\xc1"):
        refused(pack(tmp_path / "o.fnc", {**base["members"], "optimizer.msgpack": blob}), ModelFileError,
                "optimizer.msgpack")


@pytest.mark.parametrize("where", ["units", "input batch_shape"])
def test_config_shape_bomb_is_refused_before_allocating(base, tmp_path, where):
    """Dense(units=2**40) in a few bytes of JSON would make XLA abort the process on allocation."""
    config = copy.deepcopy(base["config"])
    if where == "units":
        next(e for e in config["config"]["layers"] if e["name"] == "out")["config"]["units"] = 2 ** 40
    else:
        for e in config["config"]["layers"]:
            if e["class_name"] == "InputLayer":
                e["config"]["batch_shape"] = [None, 2 ** 40]
    refused(with_config(base, tmp_path, config), ModelFileError, "refusing to allocate")


# -- JSON --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("member", ["config.json", "metadata.json", "hashes.json"])
@pytest.mark.parametrize("depth", [100, 10_000, 200_000])
def test_deeply_nested_json_is_refused(base, tmp_path, member, depth):
    deep = ("[" * depth + "]" * depth).encode()
    if member == "hashes.json":
        entries = [e for e in hashed_entries(base["members"]) if e["name"] != "hashes.json"]
        entries.append({"name": "hashes.json", "data": deep})
        path = raw_zip(tmp_path / "deep.fnc", entries)
    else:
        path = pack(tmp_path / "deep.fnc", {**base["members"], member: deep})
    refused(path, ModelFileError, "json")


def test_deep_json_inside_a_layer_config(base, tmp_path):
    config = copy.deepcopy(base["config"])
    value = 0
    for _ in range(10_000):
        value = {"a": value}
    config["config"]["layers"][1]["config"]["kernel_initializer"] = value
    blob = _dumps_deep(config)
    refused(pack(tmp_path / "deep.fnc", {**base["members"], "config.json": blob}), ModelFileError, "json")


def _dumps_deep(obj):
    import sys
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:
        return json.dumps(obj).encode()
    finally:
        sys.setrecursionlimit(limit)


def test_huge_numbers_and_containers_in_json(base, tmp_path, monkeypatch):
    refused(pack(tmp_path / "int.fnc", {**base["members"], "config.json": b"[" + b"9" * 100_000 + b"]"}),
            ModelFileError, "json")
    monkeypatch.setitem(file_format.LIMITS, "json_containers", 1000)
    refused(pack(tmp_path / "many.fnc", {**base["members"], "config.json": b"[" + b"{}," * 2000 + b"{}]"}),
            ModelFileError, "objects/arrays")


# -- graph -------------------------------------------------------------------------------------------
def test_too_many_layers_is_refused_before_building(base, tmp_path):
    config = copy.deepcopy(base["config"])
    n = file_format.LIMITS["layers"] + 1
    config["config"]["layers"] = [{"class_name": "Identity", "config": {"name": f"i{i}"}} for i in range(n)]
    refused(with_config(base, tmp_path, config), ModelFileError, "limit")


def test_cycle_and_dangling_references_are_refused(base, tmp_path):
    config = copy.deepcopy(base["config"])
    layers_ = config["config"]["layers"]
    cat = next(e for e in layers_ if e["name"] == "cat")
    drop = next(e for e in layers_ if e["name"] == "drop")
    ref = copy.deepcopy(drop["inbound_nodes"][0]["args"][0])
    ref["config"]["keras_history"] = ["drop", 0, 0]
    cat["inbound_nodes"][0]["args"] = [[ref, ref]]
    refused(with_config(base, tmp_path, config), ModelFileError, "cycle")
    ref["config"]["keras_history"] = ["nowhere", 0, 0]
    refused(with_config(base, tmp_path, config, name="d.fnc"), ModelFileError, "does not define")
    ref["config"]["keras_history"] = ["a", "0", None]
    refused(with_config(base, tmp_path, config, name="h.fnc"), ModelFileError, "keras_history")


def test_layer_order_in_file_does_not_matter(base, tmp_path):
    config = copy.deepcopy(base["config"])
    config["config"]["layers"].reverse()
    model = load(with_config(base, tmp_path, config))
    x = [np.full((2, 4), 0.5, "float32"), np.full((2, 4), -0.5, "float32")]
    np.testing.assert_allclose(model.predict(x, verbose=0), load(base["path"]).predict(x, verbose=0), atol=1e-6)


@pytest.mark.parametrize("bad", [None, [], {}, "x", 1, ["a", 0, 0, 0], {"a": ["nope", 0, 0]}])
def test_bad_input_output_references(base, tmp_path, bad):
    config = copy.deepcopy(base["config"])
    config["config"]["output_layers"] = bad
    refused(with_config(base, tmp_path, config), ModelFileError)


@pytest.mark.parametrize("bad", [[1], "layers", {"a": 1}, None, [[{"class_name": "Dense"}]]])
def test_non_dict_configs_are_refused(base, tmp_path, bad):
    config = copy.deepcopy(base["config"])
    config["config"]["layers"] = bad
    refused(with_config(base, tmp_path, config))
    refused(with_config(base, tmp_path, bad, name="whole.fnc"))
    config = copy.deepcopy(base["config"])
    config["config"]["layers"][1]["config"] = bad
    refused(with_config(base, tmp_path, config, name="layer.fnc"))


# -- fuzzing -----------------------------------------------------------------------------------------
class Hang(BaseException):
    """Raised by the alarm: not an Exception, so no `except Exception` in the loader can swallow it."""


def _alarm(signum, frame):
    raise Hang("load_model took more than the per-example limit")


def check_outcome(path, seconds=20):
    """load_model either returns a model or raises one of ALLOWED; within `seconds`."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        model = load(path)
    except ALLOWED:
        return "refused"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert hasattr(model, "predict")
    return "loaded"


def _mutate(data, ops):
    data = bytearray(data)
    for kind, pos, value in ops:
        if not data:
            break
        i = pos % len(data)
        if kind == "flip":
            data[i] ^= 1 << (value % 8)
        elif kind == "set":
            data[i] = value
        elif kind == "insert":
            data[i:i] = bytes([value]) * (1 + value % 4)
        elif kind == "delete":
            del data[i:i + 1 + value % 8]
        elif kind == "truncate":
            del data[i:]
    return bytes(data)


byte_ops = st.lists(st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]),
                              st.integers(0, 2 ** 20), st.integers(0, 255)), min_size=1, max_size=6)

json_leaf = (st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | st.text(max_size=8)
             | st.sampled_from(["Dense", "InputLayer", "Functional", "Lambda", "os.system", "__keras_tensor__",
                                "__tuple__", "__slice__", "relu", "float32", "int8", "a", "out", "shared", "drop"]))
# Where edits start: anywhere, or inside the layer list / a layer's config / the compile config (where most of
# the loader's logic is).
json_path = st.tuples(st.sampled_from([(), ("config", "layers"), ("config", "layers"), ("compile_config",)]),
                      st.lists(st.integers(0, 1000), min_size=1, max_size=8)).map(lambda t: list(t[0]) + t[1])
json_value = st.recursive(
    json_leaf,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["class_name", "config", "name", "units", "layers", "inbound_nodes", "args", "kwargs",
                         "keras_history", "shape", "batch_shape", "dtype", "activation", "registered_name", "value",
                         "safe_mode", "rate", "seed"]) | st.text(max_size=4), children, max_size=4),
    max_leaves=12)


def _json_edit(tree, path, value, action):
    """Replace / delete / insert at the node reached by following `path` (keys, or indices mod the node's size)."""
    tree = copy.deepcopy(tree)
    parent, key, node = None, None, tree
    for step in path:
        if isinstance(step, str):
            if not (isinstance(node, dict) and step in node):
                break
            k = step
        elif isinstance(node, dict) and node:
            k = sorted(node)[step % len(node)]
        elif isinstance(node, list) and node:
            k = step % len(node)
        else:
            break
        parent, key, node = node, k, node[k]
    if parent is None:
        return value
    if action == "delete":
        del parent[key]
    elif action == "insert" and isinstance(node, list):
        node.insert(0, value)
    elif action == "insert" and isinstance(node, dict):
        node["extra"] = value
    else:
        parent[key] = value
    return tree


FUZZ = dict(deadline=None, database=None, derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                   HealthCheck.data_too_large])


def _fuzz_bytes(base, directory, ops):
    path = directory / "fuzz.fnc"
    path.write_bytes(_mutate(base["bytes"], ops))
    check_outcome(path)


def _fuzz_member(base, directory, member, ops):
    members = {**base["members"], member: _mutate(base["members"][member], ops)}
    check_outcome(pack(directory / "fuzz.fnc", members))


def _fuzz_json(base, directory, path, value, action):
    config = _json_edit(base["config"], path, value, action)
    check_outcome(pack(directory / "fuzz.fnc", {**base["members"], "config.json": json.dumps(config).encode()}))


def _rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def rss_guard():
    before = _rss_mib()
    yield
    assert _rss_mib() - before < 1024, "fuzzing grew peak memory by more than 1 GiB"


def test_fuzz_raw_bytes(base, fuzz_dir, rss_guard):
    @settings(max_examples=150, **FUZZ)
    @given(ops=byte_ops)
    def run(ops):
        _fuzz_bytes(base, fuzz_dir, ops)
    run()


def test_fuzz_members_with_valid_hashes(base, fuzz_dir, rss_guard):
    @settings(max_examples=150, **FUZZ)
    @given(member=st.sampled_from(sorted(base["members"])), ops=byte_ops)
    def run(member, ops):
        _fuzz_member(base, fuzz_dir, member, ops)
    run()


def test_fuzz_config_structure(base, fuzz_dir, rss_guard):
    @settings(max_examples=150, **FUZZ)
    @given(path=json_path, value=json_value,
           action=st.sampled_from(["replace", "delete", "insert"]))
    def run(path, value, action):
        _fuzz_json(base, fuzz_dir, path, value, action)
    run()


@pytest.mark.slow
def test_fuzz_slow(base, fuzz_dir, rss_guard):
    slow = {**FUZZ, "derandomize": False}

    @settings(max_examples=3000, **slow)
    @given(ops=byte_ops)
    def raw(ops):
        _fuzz_bytes(base, fuzz_dir, ops)

    @settings(max_examples=3000, **slow)
    @given(member=st.sampled_from(sorted(base["members"])), ops=byte_ops)
    def member(member, ops):
        _fuzz_member(base, fuzz_dir, member, ops)

    @settings(max_examples=3000, **slow)
    @given(path=json_path, value=json_value,
           action=st.sampled_from(["replace", "delete", "insert"]))
    def structure(path, value, action):
        _fuzz_json(base, fuzz_dir, path, value, action)

    raw()
    member()
    structure()
