"""XLA compile options: compile time and step time of each model's train step under each option set.

    python benchmarks/xla_options.py [--models mlp,resnet,ticket,autoencoder] [--options xla,ours,opt0,opt2,...]
                                     [--repeats 3] [--steps 30] [--step train|predict] [--batches 1,32,1024]
                                     [--json out.json]

fncompiler compiles its steps with `default_compiler_options()` (on CPU LLVM's -O1 pipeline instead of XLA's
default -O3). This is the measurement behind that choice: for each of fit.py's four models, the train step
(fncompiler's own, at the benchmark's batch size) is lowered once and compiled under each option set, each
compile fresh (`jax.clear_caches()` before each), then run on a batch of zeros. Reported: median compile seconds and
median step milliseconds over the repeats (configurations interleaved), and ratios to XLA's own default.
`--step predict --batches ...` measures the predict step at each batch size instead (what predict's tuner,
runtime/tuned_steps.py, chooses between at run time).
"""
import argparse
import json
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fit as fit_bench          # noqa: E402  (the models and data of benchmarks/fit.py)
import fncompiler as keras       # noqa: E402

OPTIONS = {
    "xla": {"xla_backend_optimization_level": 3},      # XLA:CPU's default
    "ours": None,                                      # fncompiler's default_compiler_options()
    "opt0": {"xla_backend_optimization_level": 0},
    "opt2": {"xla_backend_optimization_level": 2},
    "quick": "first",      # the autotuner's first candidate for the model (fit's first step on CPU), over ours
    "ynn_off": "conv",     # ours + the autotuner's conv option (platform_options.CPU_CONV_OPTIONS)
}
# Input shapes without the batch axis where a model's inputs have unknown lengths.
INPUT_SHAPES = {"ticket": [(12,), (100,), (12,)]}


def measure(name, option_names, repeats, steps, endpoint="train", batch=None):
    from fncompiler.runtime.compiled import compile_model, default_compiler_options
    model = fit_bench.build_model(name, keras)
    model.compile(**fit_bench.compile_kwargs(name, keras))
    cm = compile_model(model, compile_config=model._compile_config)
    batch = batch or fit_bench.SETUPS[name]["batch_size"]
    shapes = INPUT_SHAPES.get(name)
    lowered = cm.lower(endpoint, batch, shapes)
    specs = cm.example_args(endpoint, batch, shapes)
    make = lambda: jax.tree_util.tree_map(
        lambda s: np.zeros(s.shape, s.dtype) if isinstance(s, jax.ShapeDtypeStruct) else s, specs)
    rows = {o: {"compile_s": [], "step_ms": []} for o in option_names}
    resolved = {o: _options(o, model, default_compiler_options()) for o in option_names}
    for r in range(repeats):
        for o in option_names:
            options = resolved[o]
            jax.clear_caches()          # a fresh compile, not JAX's in-memory executable cache
            t = time.perf_counter()
            exe = lowered.compile(compiler_options=options)
            rows[o]["compile_s"].append(time.perf_counter() - t)
            jax.block_until_ready(exe(*make()))
            times = []
            for _ in range(steps):
                args = make()
                t = time.perf_counter()
                jax.block_until_ready(exe(*args))
                times.append(time.perf_counter() - t)
            rows[o]["step_ms"].append(float(np.median(times)) * 1e3)
    out = {}
    for o, v in rows.items():
        out[o] = {"compile_s": float(np.median(v["compile_s"])), "step_ms": float(np.median(v["step_ms"])),
                  "options": resolved[o]}
    return out


def _options(name, model, defaults):
    """The XLA options of option set `name` for `model`."""
    from fncompiler.runtime import platform_options, strategies
    spec = OPTIONS[name]
    if spec is None:
        return dict(defaults)
    if spec == "first":
        return {**defaults, **strategies.fit_candidates(model, "cpu", None)[0].compiler_options}
    if spec == "conv":
        return {**defaults, **platform_options.CPU_CONV_OPTIONS}
    return dict(spec)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="mlp,resnet,ticket,autoencoder")
    ap.add_argument("--options", default="xla,ours,opt0,opt2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--step", choices=("train", "predict"), default="train")
    ap.add_argument("--batches", default="", help="batch sizes (default: each model's fit batch size)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",") if b] or [None]
    option_names = [o for o in args.options.split(",") if o]
    unknown = sorted(set(option_names) - set(OPTIONS))
    if unknown:
        raise SystemExit(f"unknown option sets {unknown}; choose from {sorted(OPTIONS)}")
    if "xla" not in option_names:
        option_names.insert(0, "xla")
    report = {"device": str(jax.devices()[0]), "jax": jax.__version__, "step": args.step, "models": {}}
    print(f"| model | batch | options | {args.step} step compile s | vs XLA default | vs ours | step ms "
          "| vs XLA default | vs ours |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in [m for m in args.models.split(",") if m]:
        for batch in batches:
            steps = args.steps if name not in ("resnet", "autoencoder") else max(5, args.steps // 4)
            res = measure(name, option_names, args.repeats, steps, args.step, batch)
            report["models"][name if batch is None else f"{name}@{batch}"] = res
            _print_rows(name, batch or fit_bench.SETUPS[name]["batch_size"], res)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)


def _print_rows(name, batch, res):
    base, ours = res["xla"], res.get("ours")
    vs_ours = lambda v, k: f"{v[k] / ours[k]:.2f}x" if ours else "-"
    for o, v in res.items():
        print(f"| {name} | {batch} | {o} {json.dumps(v['options'])} | {v['compile_s']:.3f} | "
              f"{v['compile_s'] / base['compile_s']:.2f}x | {vs_ours(v, 'compile_s')} | {v['step_ms']:.2f} | "
              f"{v['step_ms'] / base['step_ms']:.2f}x | {vs_ours(v, 'step_ms')} |", flush=True)


if __name__ == "__main__":
    main()
