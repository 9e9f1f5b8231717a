"""Constant folding of weight-only expressions in predict: what it changes in the per-batch step.

    python benchmarks/constant_folding.py [--quick] [--rounds 5] [--json out.json]

For each model and configuration, compiles the predict step with `compile_model(model, passes=..., pass_options=...)`
and reports: IR nodes, StableHLO and compiled HLO instruction counts of the per-batch step, its compile time, the
pass pipeline's time, the one-off residual computation (the weight-only part, once per weight version) and the
median predict-step time per batch size (same weights every call, so the residuals come from the cache, as in
`model.predict` over many batches). Configurations run interleaved, `--rounds` times, and the median over rounds
is reported, so a slow moment of a shared machine hits all configurations alike.
"""
import argparse
import importlib.util
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

import fncompiler as keras
from fncompiler import layers


def _passes_benchmark():
    """benchmarks/passes.py, loaded by path (a plain `import passes` could find the source tree's passes/)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "passes.py")
    spec = importlib.util.spec_from_file_location("fncompiler_bench_passes", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_PB = _passes_benchmark()
hlo_count = _PB.hlo_lines
FOLD = {"fold_weight_expressions": True}
PREDICT = ["shape_inference", "dtype_check", "inline", "inference_specialization", "dead_code_elimination",
           "simplify", "cse"]


def bn_after_merge(blocks=6, size=16, channels=32):
    """BatchNormalization after Add and after pooling: nothing for fold_batchnorm to fold into."""
    x = keras.Input(shape=(size, size, channels))
    h = layers.Conv2D(channels, 3, padding="same")(x)
    for i in range(blocks):
        y = layers.Conv2D(channels, 3, padding="same", activation="relu")(h)
        h = layers.BatchNormalization()(layers.add([h, y]))
        if i % 2 == 1:
            h = layers.BatchNormalization()(layers.AveragePooling2D(1)(h))
    return keras.Model(x, layers.Dense(10)(layers.GlobalAveragePooling2D()(h)), name="bn_after_merge"), \
        (size, size, channels)


def conv_bn(blocks=8):
    return _PB.conv_bn(blocks)[:2]


def dense_bn(blocks=8, width=256):
    x = keras.Input(shape=(width,))
    h = x
    for _ in range(blocks):
        y = layers.Dense(width, use_bias=False)(h)
        y = layers.BatchNormalization()(y)
        h = layers.add([h, layers.Activation("relu")(y)])
    return keras.Model(x, layers.Dense(10)(h), name="dense_bn"), (width,)


def residual_dense(blocks=32, width=128):
    return _PB.residual_dense(blocks, width)[:2]


BF16 = {"dtype_policy": "mixed_bfloat16"}
SCAN = {"scan_blocks": "always"}      # scan_repeated_blocks declines by itself on XLA:CPU ("auto")
CONFIGS = {   # name -> (passes, pass options)
    "default": (PREDICT + ["constant_folding"], None),
    "+fold_weights": (PREDICT + ["constant_folding"], FOLD),
    "+fold_bn": (PREDICT + ["fold_batchnorm", "constant_folding"], None),
    "+fold_bn+fold_weights": (PREDICT + ["fold_batchnorm", "constant_folding"], FOLD),
    "+scan": (PREDICT + ["scan_repeated_blocks", "constant_folding"], SCAN),
    "+scan+fold_weights": (PREDICT + ["scan_repeated_blocks", "constant_folding"], {**SCAN, **FOLD}),
    "+bf16": (PREDICT + ["mixed_precision", "constant_folding"], BF16),
    "+bf16+fold_weights": (PREDICT + ["mixed_precision", "constant_folding"], {**BF16, **FOLD}),
}
MODEL_CONFIGS = {"bn_after_merge": ["default", "+fold_weights"],
                 "conv_bn": ["default", "+fold_weights", "+fold_bn", "+fold_bn+fold_weights"],
                 "dense_bn": ["default", "+fold_weights", "+fold_bn", "+fold_bn+fold_weights"],
                 "residual_dense": ["default", "+fold_weights", "+scan", "+scan+fold_weights", "+bf16",
                                    "+bf16+fold_weights"]}


def randomize(model, seed=0):
    """BatchNormalization weights and moving statistics away from their initial values (so that nothing folds
    to a no-op); other weights keep their initializers."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ != "BatchNormalization":
            continue
        for w in layer.weights:
            if "variance" in w.path or "gamma" in w.path:
                w.assign((rng.random(w.shape) * 0.5 + 0.75).astype("float32"))
            else:
                w.assign((rng.random(w.shape) * 0.2 - 0.1).astype("float32"))


def prepare(model, cname, in_shape, batches):
    passes, options = CONFIGS[cname]
    cm = keras.compile_model(model, passes=passes, pass_options=options)
    graph = cm.graph("predict")
    out = {"pass_s": sum(r.seconds for r in cm.records("predict")), "ir_nodes": graph.number_of_nodes(),
           "report": next(r.report for r in cm.records("predict") if r.name == "constant_folding")}
    tv, ntv = cm.weights("predict")
    step = cm.step("predict")
    out["stablehlo"] = hlo_count(cm.as_text("predict", batch_size=batches[0]))
    start = time.perf_counter()
    exe = cm.lower("predict", batch_size=batches[0]).compile()
    out["compile_s"] = time.perf_counter() - start
    out["hlo"] = hlo_count(exe.as_text())
    if hasattr(step, "residuals"):
        res_fn = step._residuals
        jax.block_until_ready(res_fn(tv, ntv))
        t = time.perf_counter()
        for _ in range(20):
            jax.block_until_ready(res_fn(tv, ntv))
        out["residuals_ms"] = (time.perf_counter() - t) / 20 * 1e3
    xs = {b: [jnp.asarray(np.random.default_rng(b).random((b,) + in_shape).astype("float32"))] for b in batches}
    for b in batches:
        jax.block_until_ready(step(tv, ntv, xs[b]))           # compile + warm up
    return out, cm, step, (tv, ntv), xs


def time_calls(step, weights, x, calls):
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        jax.block_until_ready(step(*weights, x))
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--models", default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    batches = [1, 32] if args.quick else [1, 32, 256]
    models = {"bn_after_merge": bn_after_merge, "conv_bn": conv_bn, "dense_bn": dense_bn,
              "residual_dense": (lambda: residual_dense(8 if args.quick else 32))}
    if args.models:
        models = {k: v for k, v in models.items() if k in args.models.split(",")}
    results = {}
    for mname, build in models.items():
        keras.utils.set_random_seed(0)
        model, in_shape = build()
        randomize(model)
        prepared = {c: prepare(model, c, in_shape, batches) for c in MODEL_CONFIGS[mname]}
        ref = np.asarray(prepared["default"][2](*prepared["default"][3], prepared["default"][4][batches[-1]])[0])
        times = {c: {b: [] for b in batches} for c in prepared}
        for _ in range(args.rounds):
            for b in batches:
                for c, (_, _, step, weights, xs) in prepared.items():
                    times[c][b].append(time_calls(step, weights, xs[b], args.calls))
        for c, (out, cm, step, weights, xs) in prepared.items():
            got = np.asarray(step(*weights, xs[batches[-1]])[0])
            out["max_rel_diff_vs_default"] = float(np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-30))
            out["predict_ms"] = {b: float(np.median(times[c][b])) for b in batches}
            out["predict_ms_best_round"] = {b: float(np.min(times[c][b])) for b in batches}
            out["predict_traces"] = cm.trace_counts["predict"]
            out["residual_traces"] = cm.trace_counts["predict_residuals"]
            results[f"{mname}/{c}"] = out
            base = results[f"{mname}/default"]
            print(f"{mname:15s} {c:22s} nodes {out['ir_nodes']:3d}  stablehlo {out['stablehlo']:4d}  "
                  f"hlo {out['hlo']:4d}  compile {out['compile_s']:.3f}s  passes {out['pass_s'] * 1e3:6.1f}ms  "
                  + (f"residuals {out['residuals_ms']:.3f}ms  " if "residuals_ms" in out else "")
                  + "  ".join(f"b{b} {out['predict_ms'][b]:.3f}ms ({out['predict_ms'][b] / base['predict_ms'][b]:.2f}x, "
                              f"best {out['predict_ms_best_round'][b] / base['predict_ms_best_round'][b]:.2f}x)"
                              for b in batches)
                  + f"  diff {out['max_rel_diff_vs_default']:.1e}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"date": time.strftime("%Y-%m-%d"), "jax": jax.__version__, "machine": platform.machine(),
                       "cpus": __import__("os").cpu_count(), "backend": jax.default_backend(),
                       "rounds": args.rounds, "calls": args.calls, "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
