"""fncompiler.distribution: Keras 3's distribution API over jax.sharding / jax.distributed.

The multi-device cases run in subprocesses: `XLA_FLAGS=--xla_force_host_platform_device_count=N` must be set
before JAX starts, and this test process already started JAX with one CPU device. Each script prints one JSON
line that the test checks. The fast default run includes one of them (data parallel on 4 devices); the others
are marked slow (`-m 'slow or not slow'` runs everything).
"""
import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fncompiler as keras
from fncompiler import distribution, layers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "distributed_worker.py")

# Shared prelude of the subprocess scripts: the guide's MLP (784-64-64-10), fixed random data, one fit.
PRELUDE = textwrap.dedent("""
    import json, sys
    import numpy as np
    import jax
    import fncompiler as keras
    from fncompiler import distribution, layers

    def build():
        keras.utils.set_random_seed(1234)
        inputs = keras.Input(shape=(784,), name="pixels")
        x = layers.Dense(64, activation="relu", name="d1")(inputs)
        x = layers.Dense(64, activation="relu", name="d2")(x)
        outputs = layers.Dense(10, name="logits")(x)
        model = keras.Model(inputs=inputs, outputs=outputs, name="mnist_model")
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        return model

    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 784)).astype("float32")      # 32 + 32 + 26: the last batch is partial and
    Y = rng.integers(0, 10, size=90).astype("int32")      # 26 is not divisible by 4 (it gets replicated)

    def train(model):
        history = model.fit(X, Y, batch_size=32, epochs=2, shuffle=False, verbose=0)
        return history.history

    def max_diff(a, b):
        return max(float(np.max(np.abs(np.asarray(p) - np.asarray(q)))) for p, q in zip(a, b))

    def report(**values):
        print("RESULT " + json.dumps(values), flush=True)
""")


def run_script(body, devices=4, timeout=240):
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(body)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"script failed (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return json.loads(lines[-1][len("RESULT "):])


# -- multi-device, in subprocesses --------------------------------------------------------------------------------

def test_data_parallel_matches_single_device_on_4_devices():
    r = run_script("""
        ref = build()
        ref_hist = train(ref)
        ref_pred = ref.predict(X, verbose=0)

        dist = distribution.DataParallel(devices=distribution.list_devices())
        distribution.set_distribution(dist)
        model = build()
        hist = train(model)
        kernel = model.get_layer("d1").kernel.value
        report(devices=jax.device_count(), mesh=list(dist.device_mesh.shape),
               weights=max_diff(ref.get_weights(), model.get_weights()),
               loss=max_diff(ref_hist["loss"], hist["loss"]), acc=max_diff(ref_hist["accuracy"], hist["accuracy"]),
               pred=max_diff(ref_pred, model.predict(X, verbose=0)),
               traces=model._trainer.compiled.trace_counts["train"],
               ref_traces=ref._trainer.compiled.trace_counts["train"],
               kernel_devices=len(kernel.sharding.device_set), kernel_spec=list(kernel.sharding.spec),
               batch_spec=list(distribution.get_distribution().place_batch(X[:32]).sharding.spec),
               partial_replicated=distribution.get_distribution().place_batch(X[:26]).sharding.is_fully_replicated,
               eval=max_diff(ref.evaluate(X, Y, verbose=0), model.evaluate(X, Y, verbose=0)))
    """)
    assert r["devices"] == 4 and r["mesh"] == [4]
    assert r["weights"] < 1e-5, r
    assert r["loss"] < 1e-5 and r["acc"] < 1e-6 and r["pred"] < 1e-5 and r["eval"] < 1e-5, r
    # one trace for the full batches, one more for the final partial batch (26 rows), as on one device
    assert r["traces"] == 2 == r["ref_traces"], r
    assert r["kernel_devices"] == 4 and r["kernel_spec"] in ([None, None], [])
    assert r["batch_spec"] == ["batch"] and r["partial_replicated"] is True


@pytest.mark.slow
def test_model_parallel_layout_map_splits_dense_kernels():
    r = run_script("""
        from fncompiler.runtime import placement
        ref = build()
        train(ref)
        ref_pred = ref.predict(X, verbose=0)

        mesh = distribution.DeviceMesh(shape=(2, 2), axis_names=("batch", "model"),
                                       devices=distribution.list_devices())
        layout_map = distribution.LayoutMap(mesh)
        layout_map["d1/kernel"] = distribution.TensorLayout(axes=(None, "model"))
        layout_map["d2/kernel"] = (None, "model")
        dist = distribution.ModelParallel(layout_map=layout_map, batch_dim_name="batch")
        with dist.scope():
            model = build()
            hist = train(model)
            pred = model.predict(X, verbose=0)
            layouts = {v.path: str(distribution.layout_of(v)) for v in model.weights}
            specs = {v.path: list(v.value.sharding.spec) for v in model.weights}
            shard_shape = list(model.get_layer("d1").kernel.value.addressable_shards[0].data.shape)
            # optimizer slots that mirror the kernels (Adam's moments) take the kernels' layout
            state = model._trainer._start_state()          # what the next fit would start from
            slot_specs = sorted({tuple(leaf.sharding.spec) for leaf in jax.tree.leaves(state[2])
                                 if getattr(leaf, "shape", None) == (784, 64)})
            # N batches stacked for one lax.scan execution (steps_per_execution) split along axis 1
            stacked = placement.place_batch([np.stack([X[:32]] * 3)], batch_axis=1)[0]
            stacked_spec = list(stacked.sharding.spec)
        report(weights=max_diff(ref.get_weights(), model.get_weights()), pred=max_diff(ref_pred, pred),
               layouts=layouts, specs=specs, shard_shape=shard_shape, slot_specs=slot_specs, stacked_spec=stacked_spec,
               traces=model._trainer.compiled.trace_counts["train"],
               outside=distribution.get_distribution() is None)
    """)
    assert r["weights"] < 1e-5 and r["pred"] < 1e-5, r
    assert r["layouts"]["d1/kernel"] == "(None, 'model')" and r["layouts"]["d2/kernel"] == "(None, 'model')"
    assert r["layouts"]["logits/kernel"] == "replicated" and r["layouts"]["d1/bias"] == "replicated"
    # the kernels really are split: the output axis (64) over "model" (2 devices) -> 32 columns per device
    assert r["specs"]["d1/kernel"] == [None, "model"]
    assert r["specs"]["d2/kernel"] == [None, "model"]
    assert r["shard_shape"] == [784, 32]
    assert r["slot_specs"] == [[None, "model"]], r       # Adam's m and v follow the kernel
    assert r["stacked_spec"] == [None, "batch"], r
    assert r["traces"] == 2 and r["outside"]


@pytest.mark.slow
def test_donated_state_keeps_its_layout_with_jit_step():
    """`placement.jit_step` (jit with out_shardings = the donated argument's shardings, what runtime/compiled.py
    should use): every leaf of the new train state has its input's layout (a replicated bias next to a
    column-split kernel stays replicated; plain jit lets propagation split it), and the donated buffers are
    consumed."""
    r = run_script("""
        import jax.numpy as jnp
        from fncompiler.runtime import compiled, placement

        def _wrap(self, name, fn, donate=()):
            return placement.jit_step(fn, donate_argnums=donate, compiler_options=self.compiler_options)
        compiled.CompiledModel._wrap = _wrap

        mesh = distribution.DeviceMesh((2, 2), ("batch", "model"))
        layout_map = distribution.LayoutMap(mesh)
        layout_map["d.*/kernel"] = (None, "model")
        ref = build()
        train(ref)
        with distribution.ModelParallel(layout_map=layout_map).scope():
            model = build()
            train(model)
            specs = {v.path: list(v.value.sharding.spec) for v in model.weights}
            traces = model._trainer.compiled.trace_counts["train"]
            step = model._trainer.compiled.step("train")
            state = jax.tree.map(lambda a: jnp.array(a, copy=True), model._trainer._start_state())
            old = jax.tree.leaves(state)
            new = jax.tree.leaves(step(state, *placement.place_batch([[X[:32]], [Y[:32]]]), None))
            same = [a.sharding.is_equivalent_to(b.sharding, a.ndim) for a, b in zip(new, old)]
            donated = [a.is_deleted() for a in old]
        report(specs=specs, traces=traces, same=same, donated=donated,
               weights=max_diff(ref.get_weights(), model.get_weights()))
    """)
    specs = r["specs"]
    assert specs["d1/bias"] in ([None], []) and specs["d1/kernel"] == [None, "model"], r
    assert all(r["same"]) and len(r["same"]) > 10, r
    assert all(r["donated"]), r
    assert r["traces"] == 2 and r["weights"] < 1e-5, r


@pytest.mark.slow
def test_checkpoint_of_data_parallel_training_loads_without_distribution(tmp_path):
    path = str(tmp_path / "dp_model.keras")
    r = run_script(f"""
        dist = distribution.DataParallel()
        distribution.set_distribution(dist)
        model = build()
        train(model)
        sharded_pred = model.predict(X, verbose=0)
        model.save({path!r})
        distribution.set_distribution(None)
        loaded = keras.saving.load_model({path!r})
        loaded_pred = loaded.predict(X, verbose=0)
        devices = sorted({{d.id for w in loaded.weights for d in w.value.sharding.device_set}})
        report(pred=max_diff(sharded_pred, loaded_pred), weights=max_diff(model.get_weights(), loaded.get_weights()),
               devices=devices)
    """)
    assert r["pred"] < 1e-6 and r["weights"] == 0.0, r
    assert r["devices"] == [0], r   # loaded without a distribution: plain single-device arrays


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_like_one(tmp_path):
    """Two processes on 127.0.0.1 (2 CPU devices each, gloo collectives), each feeding its half of every global
    batch, end on the weights of one process training on the whole batches."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    ref_dir, mp_dir = tmp_path / "ref", tmp_path / "mp"
    ref_dir.mkdir()
    mp_dir.mkdir()
    subprocess.run([sys.executable, WORKER, "--out", str(ref_dir), "--reference"], env=env, cwd=ROOT, check=True,
                   capture_output=True, timeout=120)
    address = f"127.0.0.1:{_free_port()}"
    procs = [subprocess.Popen([sys.executable, WORKER, "--out", str(mp_dir), "--coordinator", address,
                               "--num-processes", "2", "--process-id", str(i)], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=120)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert all(p.returncode == 0 for p in procs), "\n\n".join(outputs)
    ref = np.load(ref_dir / "weights_0.npz")
    ref_result = json.loads((ref_dir / "result_0.json").read_text())
    for pid in range(2):
        result = json.loads((mp_dir / f"result_{pid}.json").read_text())
        assert result["process_count"] == 2 and result["devices"] == 4 and result["local_devices"] == 2
        got = np.load(mp_dir / f"weights_{pid}.npz")
        assert max(float(np.max(np.abs(ref[k] - got[k]))) for k in ref.files) < 1e-5
        np.testing.assert_allclose(result["history"]["loss"], ref_result["history"]["loss"], rtol=1e-5)
        np.testing.assert_allclose(result["evaluate"], ref_result["evaluate"], rtol=1e-5)
        assert result["traces"]["train"] == 2      # full batches + the final partial (gathered, replicated) one


@pytest.mark.slow
def test_benchmark_script_runs():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "scaling.py"), "--devices", "1,2",
                           "--steps", "3", "--batch-size", "64"], cwd=ROOT, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "devices" in proc.stdout and "ms/step" in proc.stdout


# -- API, in this process (one device) ----------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _no_distribution_leaks():
    yield
    assert distribution.get_distribution() is None
    distribution.set_distribution(None)


def test_list_devices_and_mesh():
    devices = distribution.list_devices()
    assert devices and all(":" in d for d in devices)
    assert distribution.list_devices("cpu")[0] == "cpu:0"
    mesh = distribution.DeviceMesh((1,), ["batch"], devices[:1])
    assert mesh.shape == (1,) and mesh.axis_names == ("batch",) and mesh.devices.shape == (1,)
    assert mesh.jax_mesh.axis_names == ("batch",)
    with pytest.raises(ValueError, match="same size"):
        distribution.DeviceMesh((1, 1), ["batch"], devices[:1])
    with pytest.raises(ValueError, match="number of devices"):
        distribution.DeviceMesh((2,), ["batch"], devices[:1])
    with pytest.raises(ValueError, match="Unknown device"):
        distribution.DeviceMesh((1,), ["batch"], ["cpu:99"]).jax_mesh


def test_layout_map_regex_lookup():
    mesh = distribution.DeviceMesh((1, 1), ("batch", "model"), distribution.list_devices()[:1])
    layout_map = distribution.LayoutMap(mesh)
    layout_map["d.*/kernel"] = (None, "model")
    layout_map["bias"] = distribution.TensorLayout(("model",))
    assert layout_map["d1/kernel"].axes == (None, "model") and layout_map["d1/kernel"].device_mesh is mesh
    assert layout_map["dense_2/kernel"].axes == (None, "model")
    assert layout_map["logits/bias"].axes == ("model",)
    assert layout_map["logits/gamma"] is None
    assert len(layout_map) == 2 and list(layout_map) == ["d.*/kernel", "bias"]
    with pytest.raises(ValueError, match="already exist"):
        layout_map["bias"] = ("model",)
    layout_map["d1"] = (None, None)
    with pytest.raises(ValueError, match="matches multiple"):
        layout_map["d1/kernel"]
    with pytest.raises(ValueError, match="Invalid axis names"):
        layout_map["x"] = ("data",)
    with pytest.raises(ValueError, match="should be a TensorLayout"):
        layout_map["y"] = "model"


def test_tensor_layout_checks_rank_and_divisibility():
    mesh = distribution.DeviceMesh((1,), ("model",), distribution.list_devices()[:1])
    layout = distribution.TensorLayout((None, "model"), mesh)
    assert str(layout) == "(None, 'model')" and str(distribution.TensorLayout((None,), mesh)) == "replicated"
    with pytest.raises(ValueError, match="rank"):
        layout.check_shape((3,), "weight 'w'")
    with pytest.raises(ValueError, match="Cannot override"):
        layout.device_mesh = mesh
    two = distribution.DeviceMesh((2,), ("model",), ["cpu:0", "cpu:0"])   # only its axis sizes are used here
    distribution.TensorLayout((None, "model"), two).check_shape((3, 4), "weight 'ok'")
    with pytest.raises(ValueError, match="weight 'd/kernel'.*not divisible by 2"):
        distribution.TensorLayout((None, "model"), two).check_shape((4, 3), "weight 'd/kernel'")


def test_set_get_scope_and_layout_of(mlp):
    assert distribution.get_distribution() is None and distribution.layout_of(mlp.weights[0]) is None
    dist = distribution.DataParallel()
    assert dist.batch_dim_name == "batch" and dist.device_mesh.shape == (len(distribution.list_devices()),)
    with dist.scope():
        assert distribution.get_distribution() is dist and distribution.distribution() is dist
        layout = distribution.layout_of(mlp.weights[0])
        assert layout.axes == (None, None) and str(layout) == "replicated"
    assert distribution.get_distribution() is None
    with pytest.raises(ValueError, match="Distribution"):
        distribution.set_distribution("data_parallel")
    with pytest.raises(ValueError, match="layout_map"):
        distribution.ModelParallel(batch_dim_name="batch")


def test_initialize_maps_keras_arguments_to_jax(monkeypatch):
    import jax
    calls = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: calls.append(kw))
    distribution.initialize("10.0.0.1:1234,10.0.0.2:2345", num_processes=2, process_id=1)
    distribution.initialize_distributed(coordinator_address="10.0.0.1:99", num_processes=4, process_id=3)
    monkeypatch.setenv("KERAS_DISTRIBUTION_JOB_ADDRESSES", "10.0.0.9:1")
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "8")
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", "5")
    distribution.initialize()
    assert calls == [dict(coordinator_address="10.0.0.1:1234", num_processes=2, process_id=1),
                     dict(coordinator_address="10.0.0.1:99", num_processes=4, process_id=3),
                     dict(coordinator_address="10.0.0.9:1", num_processes=8, process_id=5)]


def test_data_parallel_on_one_device_trains_like_no_distribution(mlp):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 784)).astype("float32")
    y = rng.integers(0, 10, size=40).astype("int32")
    init = mlp.get_weights()

    def fit():
        mlp.set_weights(init)
        mlp.compile(optimizer=keras.optimizers.SGD(0.1),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        mlp.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
        return mlp.get_weights()

    plain = fit()
    with distribution.DataParallel().scope():
        dp = fit()
    for a, b in zip(plain, dp):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_jit_step_keeps_layout_and_takes_compiler_options():
    import jax
    import jax.numpy as jnp
    from fncompiler.runtime import placement

    def step(state, x):
        return [state[0] + x.sum(), state[1] * 2.0]

    for options in ({}, {"xla_cpu_experimental_ynn_fusion_type": ""}):
        f = placement.jit_step(step, donate_argnums=(0,), compiler_options=options)
        plain = f([jnp.zeros(()), jnp.ones((3,))], jnp.ones((4, 2)))
        dist = distribution.DataParallel()
        with dist.scope():
            state = placement.place_tree([jnp.zeros(()), jnp.ones((3,))])
            out = f(state, placement.place_batch([np.ones((4, 2), np.float32)])[0])
            out = f(out, placement.place_batch([np.ones((4, 2), np.float32)])[0])
        assert float(plain[0]) == 8.0 and float(out[0]) == 16.0 and np.allclose(out[1], 4.0)
        assert all(a.sharding.mesh == dist.device_mesh.jax_mesh for a in out)
        assert "jit_step" in f.lower([jnp.zeros(()), jnp.ones((3,))], jnp.ones((4, 2))).as_text()


@pytest.mark.slow
def test_autotuned_scan_under_data_parallel_matches_per_step(tmp_path):
    """The default strategy ("auto") tunes under a distribution too: the scan candidate runs on batches split
    over the data axis, agrees with the per-step reference, and training ends with the same weights."""
    r = run_script(f"""
        import os
        os.environ["FNCOMPILER_CACHE_DIR"] = {str(tmp_path)!r}
        from fncompiler.runtime import executor
        executor.TuningExecutor.PAYOFF = 0.0        # a short fit: tune anyway
        X = rng.normal(size=(1024, 784)).astype("float32")
        Y = rng.integers(0, 10, size=1024).astype("int32")
        ref = build()
        ref.compile(optimizer=keras.optimizers.Adam(1e-3), steps_per_execution=1,
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        ref_hist = train(ref)
        distribution.set_distribution(distribution.DataParallel(devices=distribution.list_devices()))
        model = build()
        hist = train(model)
        d = model._trainer.autotune_decision
        report(name=d["name"], mismatch=[e.get("update_mismatch") for e in d["report"]],
               weights=max_diff(ref.get_weights(), model.get_weights()), loss=max_diff(ref_hist["loss"], hist["loss"]),
               multi=model._trainer.compiled.trace_counts["train_multi"])
    """)
    assert r["weights"] < 1e-5 and r["loss"] < 1e-5, r
    assert r["mismatch"][1] is not None and r["mismatch"][1] < 1e-3, r
    if r["name"] == "scan x16":
        assert r["multi"] == 1, r
