"""What each pass changes, measured: IR nodes, HLO instructions, compile time, step time, memory, export size.

    python benchmarks/passes.py [--quick] [--models a,b] [--configs baseline,+scan] [--repeats 3] [--json out.json]

Each configuration compiles the train step and the predict step of one model with a given pass pipeline
and reports medians. Ratios are against the baseline pipeline (shape_inference + dtype_check only) in the
same run. With --repeats N the configurations of a model are measured N times, interleaved (baseline, +scan,
baseline, +scan, ...), and each number is the median of its N values (the machine's load drifts). `kernels`
counts the distinct fused computations XLA compiled for the train step: XLA compiles each distinct one once,
so this, not the instruction count, is what compile time follows on XLA:CPU.
"""
import argparse
import json
import re
import time

import jax
import jax.numpy as jnp
import numpy as np

import fncompiler as keras
from fncompiler import layers
from fncompiler.runtime import steps as steps_lib

BASE = ["shape_inference", "dtype_check"]


def mlp():
    x = keras.Input(shape=(784,))
    h = layers.Dense(64, activation="relu")(x)
    h = layers.Dense(64, activation="relu")(h)
    return keras.Model(x, layers.Dense(10)(h), name="mnist_mlp"), (784,), 10


def toy_resnet():
    x = keras.Input(shape=(32, 32, 3))
    h = layers.Conv2D(32, 3, activation="relu")(x)
    h = layers.Conv2D(64, 3, activation="relu")(h)
    b1 = layers.MaxPooling2D(3)(h)
    h = layers.Conv2D(64, 3, activation="relu", padding="same")(b1)
    h = layers.Conv2D(64, 3, activation="relu", padding="same")(h)
    b2 = layers.add([h, b1])
    h = layers.Conv2D(64, 3, activation="relu", padding="same")(b2)
    h = layers.Conv2D(64, 3, activation="relu", padding="same")(h)
    b3 = layers.add([h, b2])
    h = layers.Conv2D(64, 3, activation="relu")(b3)
    h = layers.GlobalAveragePooling2D()(h)
    h = layers.Dense(256, activation="relu")(h)
    h = layers.Dropout(0.5)(h)
    return keras.Model(x, layers.Dense(10)(h), name="toy_resnet"), (32, 32, 3), 10


def residual_dense(blocks=32, width=128):
    x = keras.Input(shape=(width,))
    h = layers.Dense(width)(x)
    for _ in range(blocks):
        y = layers.Dense(width, activation="relu")(h)
        y = layers.Dense(width)(y)
        h = layers.add([h, y])
    return keras.Model(x, layers.Dense(10)(h), name=f"residual_dense_{blocks}"), (width,), 10


def conv_bn(blocks=8):
    x = keras.Input(shape=(16, 16, 16))
    h = x
    for _ in range(blocks):
        y = layers.Conv2D(16, 3, padding="same", use_bias=False)(h)
        y = layers.BatchNormalization()(y)
        h = layers.add([h, layers.Activation("relu")(y)])
    return keras.Model(x, layers.Dense(10)(layers.GlobalAveragePooling2D()(h)), name=f"conv_bn_{blocks}"), \
        (16, 16, 16), 10


def transformer(blocks=24, seq=16, dim=64, heads=4):
    x = keras.Input(shape=(seq, dim))
    h = x
    for _ in range(blocks):
        a = layers.MultiHeadAttention(heads, dim // heads)(h, h)
        h = layers.LayerNormalization()(layers.add([h, a]))
        f = layers.Dense(dim * 2, activation="gelu")(h)
        f = layers.Dense(dim)(f)
        h = layers.LayerNormalization()(layers.add([h, f]))
    out = layers.Dense(10)(layers.GlobalAveragePooling1D()(h))
    return keras.Model(x, out, name=f"transformer_{blocks}"), (seq, dim), 10


def hlo_lines(text):
    """Instructions in HLO / StableHLO text (lines that assign a value)."""
    return sum(1 for line in text.splitlines() if " = " in line and not line.lstrip().startswith("//"))


def hlo_count(compiled_exe):
    return hlo_lines(compiled_exe.as_text())


def distinct_kernels(compiled_exe):
    """Distinct fused computations in the optimized HLO (instruction names and metadata ignored)."""
    bodies, current = set(), None
    for line in compiled_exe.as_text().splitlines():
        if re.match(r"^%\S*(fused_computation|wrapped|fusion)\S* ", line) and line.rstrip().endswith("{"):
            current = []
        elif line.startswith("}") and current is not None:
            bodies.add("\n".join(current))
            current = None
        elif current is not None:
            current.append(re.sub(r"%[\w.\-]+", "%", re.sub(r", metadata=\{[^}]*\}", "", line)).strip())
    return len(bodies)


def measure(build, pipeline, batch=32, steps=20, options=None):
    keras.utils.set_random_seed(0)
    model, in_shape, classes = build()
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cm = keras.compile_model(model, passes=pipeline, pass_options=options)
    out = {"ir_nodes_before": model.graph.number_of_nodes(),
           "ir_nodes_after": cm.graph("train").number_of_nodes()}
    x = [jnp.asarray(np.random.rand(batch, *in_shape).astype("float32"))]
    y = [jnp.asarray(np.random.randint(0, classes, batch).astype("int32"))]
    low = cm.lowered("train")
    state = steps_lib.initial_train_state([jnp.array(v.value) for v in low.trainable],
                                          [jnp.array(v.value) for v in low.non_trainable], model._compile_config, 0)
    start = time.perf_counter()
    exe = cm.step("train").lower(state, x, y, None).compile()
    out["compile_s"] = time.perf_counter() - start
    out["hlo_instructions"] = hlo_count(exe)
    out["kernels"] = distinct_kernels(exe)
    mem = exe.memory_analysis()
    if mem is not None:
        out["temp_bytes"] = int(getattr(mem, "temp_size_in_bytes", 0))
    state = exe(state, x, y, None)
    jax.block_until_ready(state)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        state = exe(state, x, y, None)
        jax.block_until_ready(state)
        times.append(time.perf_counter() - t)
    out["step_ms"] = float(np.median(times) * 1e3)
    pm = keras.compile_model(model, passes=pipeline, pass_options=options)
    pstart = time.perf_counter()
    pexe = pm.lower("predict", batch_size=batch).compile()
    out["predict_compile_s"] = time.perf_counter() - pstart
    out["predict_ops"] = {k: v for k, v in sorted(__import__("fncompiler").ir.count_ops(pm.graph("predict")).items())}
    out["predict_hlo_instructions"] = hlo_count(pexe)
    plow = pm.lowered("predict")
    weights = ([v.value for v in plow.trainable], [v.value for v in plow.non_trainable])
    jax.block_until_ready(pexe(*weights, x))
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        jax.block_until_ready(pexe(*weights, x))
        times.append(time.perf_counter() - t)
    out["predict_ms"] = float(np.median(times) * 1e3)
    import os
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:     # the ahead-of-time artifact of this pipeline (weights included)
        path = os.path.join(tmp, "model.fncx")
        try:
            keras.export(pm, path)
            out["export_bytes"] = os.path.getsize(path)
        except Exception as exc:                 # noqa: BLE001 - a pass whose graph cannot export: say so
            out["export_bytes"] = None
            out["export_error"] = f"{type(exc).__name__}: {exc}"[:200]
    return out


CONFIGS = {   # name -> (pipeline, pass options)
    "baseline": (BASE, None),
    "default": (None, None),
    "+fusion": (BASE + ["fusion"], None),
    # "always": on XLA:CPU the pass's "auto" policy declines (see docs/passes.md); this measures the scan itself
    "+scan": (BASE + ["scan_repeated_blocks"], {"scan_blocks": "always"}),
    "+fold_bn": (BASE + ["inference_specialization", "fold_batchnorm"], None),
    "+remat": (BASE + ["remat"], None),
    "+bf16": (BASE + ["mixed_precision"], {"dtype_policy": "mixed_bfloat16"}),
}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller deep models")
    ap.add_argument("--json", default=None)
    ap.add_argument("--models", default=None, help="comma-separated subset of the models")
    ap.add_argument("--configs", default=None, help="comma-separated subset of the configurations (the baseline "
                                                    "is always measured)")
    ap.add_argument("--repeats", type=int, default=1, help="interleaved repetitions; numbers are medians")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        raise ValueError(f"--repeats must be at least 1; received {args.repeats}.")
    configs = dict(CONFIGS)
    if args.configs:
        unknown = sorted(set(args.configs.split(",")) - set(CONFIGS))
        if unknown:
            raise ValueError(f"Unknown configurations {unknown}; expected some of {list(CONFIGS)}.")
        configs = {k: v for k, v in CONFIGS.items() if k == "baseline" or k in args.configs.split(",")}
    ap_models = args.models.split(",") if args.models else None
    models = {"mnist_mlp": mlp, "toy_resnet": toy_resnet,
              "residual_dense_32": (lambda: residual_dense(8 if args.quick else 32)),
              "conv_bn_8": conv_bn,
              "transformer_24": (lambda: transformer(4 if args.quick else 24))}
    if ap_models:
        models = {k: v for k, v in models.items() if k in ap_models}
    measure(mlp, BASE, steps=2)      # warm-up: the first step a process compiles pays one-time costs
    results = {}
    for mname, build in models.items():
        runs = {cname: [] for cname in configs}
        for _ in range(args.repeats):
            for cname, (pipeline, options) in configs.items():
                runs[cname].append(measure(build, pipeline, options=options))
        for cname, values in runs.items():
            r = {k: (float(np.median([v[k] for v in values])) if isinstance(values[0][k], float) else values[0][k])
                 for k in values[0]}
            results[f"{mname}/{cname}"] = r
            base = results[f"{mname}/baseline"]
            print(f"{mname:18s} {cname:9s} nodes {r['ir_nodes_before']:4d}->{r['ir_nodes_after']:4d}  "
                  f"hlo {r['hlo_instructions']:6d}  kernels {r['kernels']:4d}  compile {r['compile_s']:6.2f}s "
                  f"({base['compile_s'] / r['compile_s']:5.2f}x)  step {r['step_ms']:8.2f}ms "
                  f"({r['step_ms'] / base['step_ms']:5.2f}x)  temp {r.get('temp_bytes', 0) / 2**20:7.2f}MiB  "
                  f"predict hlo {r['predict_hlo_instructions']} {r['predict_ms']:.2f}ms "
                  f"({r['predict_ms'] / base['predict_ms']:5.2f}x)  export "
                  + (f"{r['export_bytes'] / 1024:.0f}KiB" if r.get("export_bytes") else "failed"), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"date": time.strftime("%Y-%m-%d"), "jax": jax.__version__, "results": results}, fh, indent=1)


if __name__ == "__main__":
    main()
