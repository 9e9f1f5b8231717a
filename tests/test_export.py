"""fncompiler.export / runtime.load_exported: ahead-of-time artifacts, symbolic batch, platforms, folded weights,
the BatchNormalization-free export graph, what cannot be exported, and checked loading (in a fresh process too)."""
import ast
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import zipfile

import jax
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import layers
from fncompiler.runtime import exported_loader, load_exported
from fncompiler.runtime.export import ExportError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOADER = os.path.join(ROOT, "runtime", "exported_loader.py")


def data(n, *shape, seed=0):
    return np.random.default_rng(seed).standard_normal((n,) + shape).astype("float32")


def mlp():
    inputs = keras.Input((12,), name="features")
    x = layers.Dense(32, activation="relu", name="d1")(inputs)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(4, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="mlp")


def two_in_two_out():
    a = keras.Input((3,), name="a")
    b = keras.Input((4, 2), name="b")
    x = layers.Concatenate()([a, layers.Flatten()(b)])
    h = layers.Dense(16, activation="tanh", name="h")(x)
    return keras.Model({"a": a, "b": b}, {"score": layers.Dense(1, name="score")(h),
                                          "logits": layers.Dense(5, name="logits")(h)}, name="two")


def rewrite(path, out, change=None, drop=(), add=None, rehash=True):
    """Copy the artifact at `path` to `out` with members changed (and hashes.json recomputed)."""
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    for name, fn in (change or {}).items():
        members[name] = fn(members[name])
    for name in drop:
        members.pop(name)
    members.update(add or {})
    if rehash:
        members["hashes.json"] = json.dumps({n: hashlib.sha256(d).hexdigest() for n, d in members.items()
                                             if n != "hashes.json"}).encode()
    with zipfile.ZipFile(out, "w") as zf:
        for name, d in members.items():
            zf.writestr(name, d)
    return out


def edit_signature(fn):
    def change(raw):
        sig = json.loads(raw)
        fn(sig)
        return json.dumps(sig).encode()
    return change


@pytest.fixture(scope="module")
def mlp_artifact(tmp_path_factory):
    keras.utils.set_random_seed(7)
    model = mlp()
    path = str(tmp_path_factory.mktemp("export") / "mlp.fnexport")
    sig = keras.export(model, path)
    return model, path, sig


# -- the artifact ----------------------------------------------------------------------------------
def test_artifact_members_and_signature(mlp_artifact):
    model, path, sig = mlp_artifact
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["hashes.json", "module.jax_export", "signature.json", "weights.msgpack"]
        on_disk = json.loads(zf.read("signature.json"))
    assert on_disk == sig
    assert sig["format"] == "fncompiler.exported" and sig["format_version"] == "1.0"
    assert sig["fncompiler_version"] == keras.__version__ and sig["jax_version"] == jax.__version__
    assert sig["calling_convention_version"] == jax.export.deserialize(
        bytearray(zipfile.ZipFile(path).read("module.jax_export"))).calling_convention_version
    assert sig["platforms"] == ["cpu"] and sig["endpoint"] == "predict" and sig["batch_size"] is None
    assert sig["inputs"] == [{"name": "features", "shape": [None, 12], "dtype": "float32"}]
    assert sig["outputs"] == [{"name": "probs", "shape": [None, 4], "dtype": "float32"}]
    assert [w["path"] for w in sig["weights"]] == [v.path for v in model.weights]
    assert sig["fold_weights"] is False and sig["output_structure"] == 0
    # no temp files left behind by the atomic write
    assert [f for f in os.listdir(os.path.dirname(path)) if f.startswith(".tmp")] == []


def test_exported_module_has_symbolic_batch(mlp_artifact):
    _, path, _ = mlp_artifact
    loaded = load_exported(path)
    avals = loaded.exported.in_avals
    assert str(avals[-1].shape[0]) == "b" and avals[-1].shape[1] == 12
    assert str(loaded.exported.out_avals[0].shape[0]) == "b"
    assert "stablehlo" in loaded.mlir_module()


def test_fresh_process_runs_artifact_without_model_code(mlp_artifact, tmp_path):
    """The artifact runs in a process where importing any fncompiler module fails: the loader is loaded from its
    file path, and batch sizes 1, 7 and 64 run from ONE artifact."""
    model, path, _ = mlp_artifact
    xs = {f"x{n}": data(n, 12, seed=n) for n in (1, 7, 64)}
    np.savez(tmp_path / "in.npz", **xs)
    script = textwrap.dedent(f"""
        import importlib.abc, importlib.util, sys
        import numpy as np

        class Refuse(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "fncompiler" or name.startswith("fncompiler.") or name in ("layers", "models", "passes") \\
                        or name.startswith("flax"):
                    raise ImportError(f"blocked in this test: {{name}}")
                return None
        sys.meta_path.insert(0, Refuse())
        try:
            import fncompiler.layers
            raise SystemExit("fncompiler should not be importable here")
        except ImportError:
            pass
        spec = importlib.util.spec_from_file_location("exported_loader", {LOADER!r})
        loader = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loader)
        model = loader.load_exported({path!r})
        xs = np.load({str(tmp_path / "in.npz")!r})
        out = {{k: model(xs[k]) for k in xs.files}}
        np.savez({str(tmp_path / "out.npz")!r}, **out)
        bad = sorted(m for m in sys.modules if m.startswith(("fncompiler", "flax", "optax", "networkx")))
        print("MODULES", bad)
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=str(tmp_path),
                          env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MODULES []" in proc.stdout
    out = np.load(tmp_path / "out.npz")
    for n in (1, 7, 64):
        got = out[f"x{n}"]
        assert got.shape == (n, 4)
        np.testing.assert_allclose(got, model.predict(xs[f"x{n}"], verbose=0), atol=1e-6, rtol=0)


def test_loader_imports_only_jax_numpy_msgpack_and_stdlib():
    tree = ast.parse(open(LOADER).read())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "the loader may not import relative (fncompiler) modules"
            roots.add(node.module.split(".")[0])
    assert roots <= {"hashlib", "json", "math", "os", "re", "zipfile", "jax", "numpy", "msgpack"}, roots


def test_in_process_loader_matches_predict(mlp_artifact):
    model, path, _ = mlp_artifact
    loaded = load_exported(path)
    assert loaded.input_names == ["features"] and loaded.output_names == ["probs"]
    x = data(33, 12, seed=3)
    np.testing.assert_allclose(loaded(x), model.predict(x, verbose=0), atol=1e-6, rtol=0)
    np.testing.assert_allclose(loaded([x]), loaded({"features": x}), atol=0, rtol=0)
    np.testing.assert_allclose(loaded.predict(x, batch_size=10), model.predict(x, verbose=0), atol=1e-6, rtol=0)
    # float64 and integer data convert like model.predict
    np.testing.assert_allclose(loaded(x.astype("float64")), loaded(x), atol=0, rtol=0)
    assert loaded(np.ones((2, 12), "int64")).shape == (2, 4)


def test_multi_input_multi_output_dict_model(tmp_path):
    model = two_in_two_out()
    path = str(tmp_path / "two.fnexport")
    sig = keras.export(model, path)
    assert [i["name"] for i in sig["inputs"]] == ["a", "b"]
    assert sig["inputs"][1]["shape"] == [None, 4, 2]
    loaded = load_exported(path)
    for n in (1, 7, 64):
        x = {"a": data(n, 3, seed=n), "b": data(n, 4, 2, seed=n + 1)}
        got, want = loaded(x), model.predict(x, verbose=0)
        assert isinstance(got, dict) and sorted(got) == sorted(want) == ["logits", "score"]
        for k in want:
            assert got[k].shape == want[k].shape
            np.testing.assert_allclose(got[k], want[k], atol=1e-6, rtol=0)
        got_list = loaded([x["a"], x["b"]])
        np.testing.assert_array_equal(got_list["score"], got["score"])


def test_recurrent_and_transposed_conv_models_export_with_a_symbolic_batch(tmp_path, monkeypatch):
    """Layers that choose their schedule from static sizes (recurrent layers' inference projection, transposed
    convolutions' padding) also trace with the symbolic batch of an export, and the artifact computes what
    predict does at every batch size (the in-loop projection forced on for predict: a different schedule, the
    same values)."""
    from fncompiler.layers import recurrent
    keras.utils.set_random_seed(0)
    seq = keras.Input((10, 8), name="seq")
    img = keras.Input((5, 5, 3), name="img")
    h = layers.LSTM(16)(seq)
    g = layers.GlobalAveragePooling2D()(layers.Conv2DTranspose(4, 3, padding="valid")(img))
    model = keras.Model([seq, img], layers.Dense(2)(layers.concatenate([h, g])), name="mixed")
    path = str(tmp_path / "mixed.fnexport")
    keras.export(model, path)
    loaded = load_exported(path)
    monkeypatch.setattr(recurrent, "UP_FRONT_PROJECTION_MAX_BYTES", 0)
    for n in (1, 9):
        x = [data(n, 10, 8, seed=n), data(n, 5, 5, 3, seed=n + 1)]
        np.testing.assert_allclose(np.asarray(loaded(x)), model.predict(x, verbose=0), atol=1e-5, rtol=1e-5)


def test_list_outputs_keep_list_structure(tmp_path):
    a = keras.Input((5,), name="a")
    h = layers.Dense(6, name="h")(a)
    model = keras.Model(a, [layers.Dense(2, name="p")(h), layers.Dense(3, name="q")(h)])
    path = str(tmp_path / "list.fnexport")
    keras.export(model, path)
    x = data(9, 5)
    got, want = load_exported(path)(x), model.predict(x, verbose=0)
    assert isinstance(got, list) and len(got) == 2
    for u, v in zip(got, want):
        np.testing.assert_allclose(u, v, atol=1e-6, rtol=0)


def test_fold_weights(mlp_artifact, tmp_path):
    model, path, _ = mlp_artifact
    folded = str(tmp_path / "folded.fnexport")
    sig = keras.export(model, folded, fold_weights=True)
    assert sig["fold_weights"] is True and sig["weights"] == [] and sig["arguments"] == "inputs"
    with zipfile.ZipFile(folded) as zf:
        assert "weights.msgpack" not in zf.namelist()
    loaded = load_exported(folded)
    assert len(loaded.exported.in_avals) == 1     # only the input: the weights are constants in the module
    for n in (1, 7, 64):
        x = data(n, 12, seed=n)
        np.testing.assert_allclose(loaded(x), model.predict(x, verbose=0), atol=1e-6, rtol=1e-6)
    unfolded = load_exported(path)
    assert len(unfolded.exported.in_avals) == 1 + len(model.weights)


def test_multi_platform_lowering_on_cpu_machine(tmp_path):
    model = two_in_two_out()
    path = str(tmp_path / "multi.fnexport")
    sig = keras.export(model, path, platforms=("cpu", "cuda", "tpu"))
    assert sig["platforms"] == ["cpu", "cuda", "tpu"]
    loaded = load_exported(path)
    assert loaded.platforms == ("cpu", "cuda", "tpu")
    x = {"a": data(4, 3), "b": data(4, 4, 2)}
    np.testing.assert_allclose(loaded(x)["logits"], model.predict(x, verbose=0)["logits"], atol=1e-6, rtol=0)


def test_platform_names_checked_and_wrong_platform_is_a_clear_error(tmp_path):
    model = mlp()
    with pytest.raises(ValueError, match="Unknown platform"):
        keras.export(model, str(tmp_path / "x.fnexport"), platforms=("cpu", "metal"))
    path = str(tmp_path / "tpu.fnexport")
    keras.export(model, path, platforms=("tpu",))
    loaded = load_exported(path)
    with pytest.raises(RuntimeError, match=r"exported for platforms \['tpu'\]; this process runs on 'cpu'"):
        loaded(data(2, 12))


def test_fixed_batch_size(tmp_path):
    model = mlp()
    path = str(tmp_path / "fixed.fnexport")
    sig = keras.export(model, path, batch_size=8)
    assert sig["batch_size"] == 8 and sig["inputs"][0]["shape"] == [8, 12] and sig["outputs"][0]["shape"] == [8, 4]
    loaded = load_exported(path)
    x = data(8, 12)
    np.testing.assert_allclose(loaded(x), model.predict(x, verbose=0), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="fixed batch size of 8; received a batch of 7"):
        loaded(data(7, 12))


def test_batchnorm_is_folded_away_in_export_graph(tmp_path):
    inputs = keras.Input((6,), name="x")
    x = layers.Dense(8, name="dense")(inputs)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.Activation("relu")(x)
    model = keras.Model(inputs, layers.Dense(3, name="out")(x))
    rng = np.random.default_rng(0)
    bn = model.get_layer("bn")
    bn.set_weights([rng.uniform(0.5, 2.0, 8).astype("float32"), rng.normal(size=8).astype("float32"),
                    rng.normal(size=8).astype("float32"), rng.uniform(0.5, 3.0, 8).astype("float32")])
    compiled = keras.compile_model(model)
    ops = [d["op"] for _, d in compiled.graph("export").nodes(data=True)]
    assert "BatchNormalization" not in ops and "FoldedBatchNorm" in ops
    path = str(tmp_path / "bn.fnexport")
    keras.export(compiled, path)        # a CompiledModel is accepted as well
    loaded = load_exported(path)
    for n in (1, 7, 64):
        xb = data(n, 6, seed=n)
        np.testing.assert_allclose(loaded(xb), model.predict(xb, verbose=0), atol=1e-5, rtol=0)
    folded = str(tmp_path / "bn_folded.fnexport")
    keras.export(model, folded, fold_weights=True)
    np.testing.assert_allclose(load_exported(folded)(data(5, 6)), model.predict(data(5, 6), verbose=0), atol=1e-5)


# -- what cannot be exported -----------------------------------------------------------------------
class HostCallback(layers.Layer):
    def call(self, x):
        return jax.pure_callback(lambda a: np.asarray(a) * 2, jax.ShapeDtypeStruct(x.shape, x.dtype), x)


class DebugCallback(layers.Layer):
    def call(self, x):
        jax.debug.callback(lambda a: None, x)
        return x


class NeedsConcreteBatch(layers.Layer):
    def call(self, x):
        return x * float(int(x.shape[0]))


class PythonSideEffect(layers.Layer):
    calls = 0

    def call(self, x):
        type(self).calls += 1           # runs while tracing only: not part of the exported module
        return x + 1.0


def model_with(layer):
    inputs = keras.Input((3,), name="x")
    return keras.Model(inputs, layer(layers.Dense(2, name="d")(inputs)), name="m")


@pytest.mark.parametrize("cls,prim", [(HostCallback, "pure_callback"), (DebugCallback, "debug_callback")])
def test_host_callbacks_are_refused_naming_the_layer(tmp_path, cls, prim):
    model = model_with(cls(name="culprit"))
    path = tmp_path / "cb.fnexport"
    with pytest.raises(ExportError, match=rf"layer 'culprit' calls {prim}.*test_export.py"):
        keras.export(model, str(path))
    assert not path.exists() and os.listdir(tmp_path) == []
    # the model itself still works (the layer's call was only wrapped for the diagnosis)
    assert "call" not in model.get_layer("culprit").__dict__


def test_concrete_batch_code_names_layer_and_fixed_batch_works(tmp_path):
    model = model_with(NeedsConcreteBatch(name="batchy"))
    with pytest.raises(ExportError, match=r"layer 'batchy'.*batch_size=N"):
        keras.export(model, str(tmp_path / "a.fnexport"))
    path = str(tmp_path / "b.fnexport")
    keras.export(model, path, batch_size=4)
    x = data(4, 3)
    np.testing.assert_allclose(load_exported(path)(x), model.predict(x, verbose=0), atol=1e-6)


def test_python_side_effects_are_traced_away(tmp_path):
    model = model_with(PythonSideEffect(name="effect"))
    path = str(tmp_path / "fx.fnexport")
    keras.export(model, path)
    loaded = load_exported(path)
    before = PythonSideEffect.calls
    loaded(data(3, 3))
    loaded(data(5, 3))
    assert PythonSideEffect.calls == before


def test_only_predict_can_be_exported(tmp_path):
    with pytest.raises(ValueError, match="only 'predict'"):
        keras.export(mlp(), str(tmp_path / "t.fnexport"), endpoint="train")
    with pytest.raises(TypeError, match="Model or a CompiledModel"):
        keras.export(object(), str(tmp_path / "t.fnexport"))


# -- input checks ----------------------------------------------------------------------------------
def test_input_errors_are_clear(tmp_path):
    path = str(tmp_path / "two.fnexport")
    keras.export(two_in_two_out(), path)
    loaded = load_exported(path)
    with pytest.raises(ValueError, match=r'Input 1 \("b"\) has the wrong shape: .*\(None, 4, 2\).*\(3, 4, 3\)'):
        loaded({"a": data(3, 3), "b": data(3, 4, 3)})
    with pytest.raises(ValueError, match=r"missing \['b'\]"):
        loaded({"a": data(3, 3)})
    with pytest.raises(ValueError, match=r"unknown \['c'\]"):
        loaded({"a": data(3, 3), "b": data(3, 4, 2), "c": data(3, 1)})
    with pytest.raises(ValueError, match="takes 2 inputs"):
        loaded([data(3, 3)])
    with pytest.raises(ValueError, match="different batch sizes"):
        loaded({"a": data(3, 3), "b": data(4, 4, 2)})
    with pytest.raises(TypeError, match=r'Input 0 \("a"\) expects float32 data; received dtype <U'):
        loaded({"a": np.full((3, 3), "x"), "b": data(3, 4, 2)})


# -- corrupt artifacts -----------------------------------------------------------------------------
def test_corrupt_and_truncated_artifacts(mlp_artifact, tmp_path):
    _, path, _ = mlp_artifact
    raw = open(path, "rb").read()
    err = exported_loader.ExportedArtifactError
    truncated = tmp_path / "trunc.fnexport"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(err, match="not an exported fncompiler artifact|truncated|corrupt"):
        load_exported(str(truncated))
    garbage = tmp_path / "garbage.fnexport"
    garbage.write_bytes(b"\x00" * 300)
    with pytest.raises(err, match="not an exported fncompiler artifact"):
        load_exported(str(garbage))
    with pytest.raises(FileNotFoundError):
        load_exported(str(tmp_path / "missing.fnexport"))
    flipped = rewrite(path, tmp_path / "flip.fnexport", {"module.jax_export": lambda d: d[:100] + bytes([d[100] ^ 1])
                                                         + d[101:]}, rehash=False)
    with pytest.raises(err, match="module.jax_export.*sha256"):
        load_exported(str(flipped))
    garbled = rewrite(path, tmp_path / "garbled.fnexport", {"module.jax_export": lambda d: b"\x07" * len(d)})
    with pytest.raises(err, match="cannot be deserialized"):
        load_exported(str(garbled))
    extra = rewrite(path, tmp_path / "extra.fnexport", add={"evil.py": b"print(1)"})
    with pytest.raises(err, match="unexpected member 'evil.py'"):
        load_exported(str(extra))
    slip = rewrite(path, tmp_path / "slip.fnexport", add={"../x": b""})
    with pytest.raises(err, match="unsafe path"):
        load_exported(str(slip))
    no_weights = rewrite(path, tmp_path / "now.fnexport", drop=("weights.msgpack",))
    with pytest.raises(err, match="missing 'weights.msgpack'"):
        load_exported(str(no_weights))


@pytest.mark.parametrize("edit,message", [
    (lambda s: s.update(format="fncompiler.model"), "is not an exported fncompiler artifact"),
    (lambda s: s.update(format_version="2.0"), "newer than this loader reads"),
    (lambda s: s.update(calling_convention_version=10 ** 6), "calling convention version 1000000"),
    (lambda s: s.update(platforms=["cpu", "tpu"]), "names platforms"),
    (lambda s: s["inputs"][0].update(shape=[None, 13]), r"input 'features' is float32\[None, 13\] in signature"),
    (lambda s: s["outputs"][0].update(shape=[3, 4]), r"output 'probs'"),
    (lambda s: s["inputs"][0].update(dtype="object"), "not allowed"),
    (lambda s: s["weights"][0].update(shape=[1, 2]), "weight 0"),
    (lambda s: s.update(output_structure={"list": [0, 0]}), "output index"),
    (lambda s: s.update(endpoint="train"), "endpoint 'train'"),
])
def test_signature_is_checked(mlp_artifact, tmp_path, edit, message):
    _, path, _ = mlp_artifact
    bad = rewrite(path, tmp_path / "bad.fnexport", {"signature.json": edit_signature(edit)})
    with pytest.raises(exported_loader.ExportedArtifactError, match=message):
        load_exported(str(bad))


# -- command line ----------------------------------------------------------------------------------
def test_cli_export_mlir_and_artifact(tmp_path, capsys):
    from fncompiler.__main__ import main
    model = mlp()
    model_file = str(tmp_path / "mlp.fnc")
    model.save(model_file)
    assert main(["export", "--mlir", model_file]) == 0
    text = capsys.readouterr().out
    assert "func.func public @main" in text and "stablehlo" in text
    out = str(tmp_path / "cli.fnexport")
    assert main(["export", model_file, "-o", out, "--platforms", "cpu,cuda"]) == 0
    assert "wrote" in capsys.readouterr().out
    loaded = load_exported(out)
    assert loaded.platforms == ("cpu", "cuda")
    x = data(3, 12)
    np.testing.assert_allclose(loaded(x), model.predict(x, verbose=0), atol=1e-6)


def test_unknown_sequence_length_stays_symbolic(tmp_path):
    ids = keras.Input((None,), dtype="int32", name="ids")
    x = layers.GlobalAveragePooling1D()(layers.Embedding(50, 8)(ids))
    model = keras.Model(ids, layers.Dense(2)(x))
    path = str(tmp_path / "seq.fnexport")
    sig = keras.export(model, path)
    assert sig["inputs"] == [{"name": "ids", "shape": [None, None], "dtype": "int32"}]
    loaded = load_exported(path)
    for n, t in ((1, 3), (4, 11)):
        x = np.random.default_rng(t).integers(0, 50, (n, t))
        np.testing.assert_allclose(loaded(x), model.predict(x, verbose=0), atol=1e-6, rtol=0)
