"""`import fncompiler` is lazy (PEP 562): a serving process that loads an exported artifact through
`fncompiler.runtime` imports none of the model-building code, and every Keras name still resolves on use."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np

import fncompiler

# fncompiler modules a serving process may load: the package, the runtime package and what its __init__ pulls
SERVING_MODULES = {"fncompiler", "fncompiler.runtime", "fncompiler.runtime.exported_loader",
                   "fncompiler.runtime.cache"}
# third-party packages only model building uses
MODEL_BUILDING_DEPS = ("flax", "optax", "networkx", "rich", "pydot", "pygraphviz")  # (jax.export uses flatbuffers)


def run_fresh(script, cwd):
    """Runs `script` in a fresh interpreter; returns the JSON it prints on its last line."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          timeout=240, cwd=str(cwd), env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_serving_process_loads_and_runs_an_artifact_without_model_code(tmp_path):
    artifact = tmp_path / "mlp.fnexport"
    x = np.random.default_rng(0).standard_normal((5, 6)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    # process 1: build, export, and record the model's own predictions
    run_fresh(f"""
        import json, numpy as np
        import fncompiler as keras
        keras.utils.set_random_seed(3)
        inputs = keras.Input((6,), name="features")
        h = keras.layers.Dense(8, activation="tanh", name="hidden")(inputs)
        model = keras.Model(inputs, keras.layers.Dense(3, name="out")(h))
        keras.export(model, {str(artifact)!r})
        np.save("expected.npy", model.predict(np.load("x.npy"), verbose=0))
        print(json.dumps("ok"))
    """, tmp_path)
    # process 2: a serving process, through the package as a user writes it (both spellings)
    got = run_fresh(f"""
        import json, sys, numpy as np
        from fncompiler.runtime import load_exported
        import fncompiler.runtime.exported_loader as loader_module
        served = load_exported({str(artifact)!r})
        y = np.asarray(served(np.load("x.npy")))
        y2 = np.asarray(loader_module.load_exported({str(artifact)!r})(np.load("x.npy")))
        np.save("served.npy", y)
        mods = sorted(m for m in sys.modules if m == "fncompiler" or m.startswith("fncompiler."))
        deps = sorted({{m.split(".")[0] for m in sys.modules}} & set({MODEL_BUILDING_DEPS!r}))
        print(json.dumps({{"fncompiler": mods, "deps": deps, "same": bool((y == y2).all())}}))
    """, tmp_path)
    assert set(got["fncompiler"]) <= SERVING_MODULES, got["fncompiler"]
    assert not any(m.startswith(("fncompiler.layers", "fncompiler.models", "fncompiler.ops", "fncompiler.passes"))
                   for m in got["fncompiler"])
    assert got["deps"] == [], got["deps"]
    assert got["same"]
    # the served predictions are the model's (independent reference: the exporting process's predict)
    np.testing.assert_allclose(np.load(tmp_path / "served.npy"), np.load(tmp_path / "expected.npy"),
                               rtol=1e-5, atol=1e-6)


def test_import_fncompiler_loads_nothing_until_used(tmp_path):
    got = run_fresh("""
        import json, sys
        import fncompiler
        before = sorted(m for m in sys.modules if m.startswith("fncompiler."))
        jax_before = "jax" in sys.modules
        import fncompiler as keras
        dense = keras.layers.Dense
        from fncompiler import Model, layers, utils
        after = sorted(m for m in sys.modules if m.startswith("fncompiler."))
        print(json.dumps({"before": before, "jax_before": jax_before, "after": after,
                          "dense": dense.__module__, "model": Model.__module__,
                          "same": layers.Dense is dense and utils.plot_model is keras.utils.plot_model}))
    """, tmp_path)
    assert got["before"] == [] and got["jax_before"] is False
    assert "fncompiler.layers" in got["after"] and "fncompiler.models" in got["after"]
    assert got["dense"] == "fncompiler.layers.core" and got["model"] == "fncompiler.models.model" and got["same"]


def test_every_listed_name_resolves_and_dir_lists_them():
    listed = dir(fncompiler)
    for name in fncompiler.__all__:
        assert name in listed, name
        assert getattr(fncompiler, name) is not None, name
    for name in ("Input", "Model", "Sequential", "layers", "ops", "losses", "metrics", "optimizers", "callbacks",
                 "datasets", "utils", "models", "applications", "saving", "compile_model", "export", "runtime"):
        assert name in fncompiler.__all__, name
    assert fncompiler.Model is fncompiler.models.Model and fncompiler.Input is fncompiler.layers.Input
    assert fncompiler.compile_model is fncompiler.runtime.compiled.compile_model
    assert callable(fncompiler.export) and fncompiler.export.__module__ == "fncompiler.runtime.export"
    ns = {}
    exec("from fncompiler import *", ns)
    assert {"Model", "layers", "compile_model"} <= set(ns)
    try:
        fncompiler.no_such_name
    except AttributeError as err:
        assert "no_such_name" in str(err)
    else:
        raise AssertionError("an unknown attribute must raise AttributeError")
