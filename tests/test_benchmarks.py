"""benchmarks/fit.py end to end on a tiny MLP run: the JSON it writes, and fncompiler's losses matching the
hand-written JAX baseline's."""
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "benchmarks", "fit.py")


def test_fit_benchmark_quick_mlp(tmp_path):
    out_json, out_md = tmp_path / "fit.json", tmp_path / "fit.md"
    env = dict(os.environ, FNCOMPILER_BENCH_SAMPLES="320")
    proc = subprocess.run(
        [sys.executable, SCRIPT, "--quick", "--models", "mlp", "--configs", "jax_jit,fncompiler,keras",
         "--predict-calls", "20", "--predict-big-calls", "2", "--json", str(out_json), "--md", str(out_md),
         "--timeout", "300"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out_json.read_text())

    for key in ("benchmark", "date", "quick", "command", "machine", "versions", "backend", "models"):
        assert key in report, key
    assert report["quick"] is True
    assert report["machine"]["cpu_count"] == os.cpu_count()
    assert report["versions"]["jax"]

    mlp = report["models"]["mlp"]
    assert mlp["setup"]["samples"] == 320 and mlp["setup"]["epochs"] >= 3
    configs = mlp["configs"]
    assert set(configs) == {"jax_jit", "fncompiler", "keras"}
    if report["versions"]["keras"] is None:
        assert configs["keras"]["status"] == "skipped"

    for name in ("jax_jit", "fncompiler"):
        c = configs[name]
        assert c["status"] == "ok", c.get("error")
        assert not c.get("errors"), c.get("errors")
        for key in ("epoch_seconds", "epoch_median_s", "first_epoch_s", "time_to_first_step_s", "compile_counts",
                    "losses", "predict", "peak_rss_mb", "loss_check"):
            assert c.get(key) is not None, (name, key)
        assert len(c["epoch_seconds"]) == mlp["setup"]["epochs"]
        assert c["compile_counts"]["train"] >= 1      # fncompiler's: with the tuner's XLA option variants
        for key in ("batch1_predict_ms", "batch1_raw_ms", "batch1_predict_over_raw", "big_predict_samples_per_s",
                    "big_raw_samples_per_s"):
            assert c["predict"][key] > 0, (name, key)

    check = configs["fncompiler"]["loss_check"]
    assert check["ok"] is True, check
    assert check["max_rel_diff"] <= check["rtol"]
    assert check["init_loss_rel_diff"] <= check["init_loss_rtol"]
    assert len(check["values"]) == mlp["setup"]["epochs"]
    assert "FAIL" not in proc.stdout

    ratios = mlp["ratios"]["fncompiler/jax_jit"]
    assert ratios["epoch"] > 0 and ratios["time_to_first_step"] > 0

    md = out_md.read_text()
    assert '| mlp | fncompiler fit (default: steps_per_execution="auto") | ok' in md
    assert "cpu" in md.lower()
    assert "s/epoch vs hand-written jit <= 1.05x on every model: mlp" in md       # the goals summary
    assert configs["fncompiler"]["predict"]["batch1_predict_over_raw_numpy"] > 0


def test_bench_command_runs_the_repository_benchmarks():
    proc = subprocess.run([sys.executable, "-m", "fncompiler", "bench", "fit", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "--quick" in proc.stdout, proc.stderr[-2000:]


def test_passes_benchmark_reports_what_fold_batchnorm_changes(tmp_path):
    out = tmp_path / "passes.json"
    proc = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "passes.py"), "--quick", "--models",
                           "conv_bn_8", "--configs", "+fold_bn", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads(out.read_text())["results"]
    base, folded = results["conv_bn_8/baseline"], results["conv_bn_8/+fold_bn"]
    assert base["predict_ops"].get("BatchNormalization", 0) > 0
    assert "BatchNormalization" not in folded["predict_ops"]          # folded into the convolutions
    for r in (base, folded):
        assert r["export_bytes"] > 0 and r["hlo_instructions"] > 0 and r["kernels"] > 0 and r["compile_s"] > 0


def test_xla_options_benchmark_measures_each_option_set(tmp_path):
    """benchmarks/xla_options.py compiles the MLP's train step under XLA's default and fncompiler's options:
    every option set gets a fresh compile and a step time, and the JSON records the options used."""
    out = tmp_path / "xla.json"
    proc = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "xla_options.py"), "--models", "mlp",
                           "--options", "ours,opt0,quick", "--repeats", "1", "--steps", "3", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    res = json.loads(out.read_text())["models"]["mlp"]
    assert set(res) == {"xla", "ours", "opt0", "quick"}      # XLA's default is always the reference
    assert res["xla"]["options"] == {"xla_backend_optimization_level": 3}
    assert res["opt0"]["options"] == {"xla_backend_optimization_level": 0}
    from fncompiler.runtime import platform_options
    from fncompiler.runtime.compiled import default_compiler_options
    # "quick": the autotuner's first candidate on CPU (fit's first step), over fncompiler's defaults
    assert res["quick"]["options"] == {**default_compiler_options("cpu"), **platform_options.QUICK_CPU_OPTIONS}
    for r in res.values():
        assert r["compile_s"] > 0.01 and r["step_ms"] > 0     # a real compile each time, not a cache hit
    assert "| mlp | 64 | xla" in proc.stdout
    # --step predict --batches: the predict step at each batch size (what the inference tuner chooses between)
    proc = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "xla_options.py"), "--models", "mlp",
                           "--options", "ours", "--step", "predict", "--batches", "1,8", "--repeats", "1",
                           "--steps", "3", "--json", str(out)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["step"] == "predict" and set(report["models"]) == {"mlp@1", "mlp@8"}
    assert all(r["step_ms"] > 0 for m in report["models"].values() for r in m.values())
    assert "| mlp | 8 | ours" in proc.stdout
