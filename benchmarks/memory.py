"""Memory benchmark: the train step's memory per model (XLA's memory analysis and the process's peak RSS), with
fncompiler's remat pass off and on, against the hand-written JAX step and Keras 3's train step; and the largest
batch whose train step fits a fixed memory budget.

    python benchmarks/memory.py [--models mlp,...] [--configs fncompiler,fncompiler_remat,jax_jit,keras]
                                [--budget-mb 256] [--max-batch 65536] [--transformer-depth 4] [--json out.json]
                                [--md out.md]
    python benchmarks/memory.py --time-remat [--models ...] [--configs fncompiler,fncompiler_remat]
                                [--transformer-depth N]    # train step time, remat off vs on, one process

Models and batch sizes are benchmarks/fit.py's. Every (model, configuration) pair runs in its own fresh process.

Configurations:
  fncompiler        fncompiler.compile_model(model)'s train step (the default train pipeline)
  fncompiler_remat  the same with the "remat" pass appended (its default remat_mode "auto": ScanBlocks loop
                    bodies, and on backends other than XLA:CPU segments between cut points, under jax.checkpoint,
                    policy nothing_saveable: their activations are recomputed in the backward pass)
  fncompiler_remat_segments / fncompiler_remat_layers   the remat pass with remat_mode "segments" / "layers"
  fncompiler_unrolled / fncompiler_scan / fncompiler_scan_remat   pass_options scan_blocks "never" / "always" /
                    "always" with the remat pass
  (--transformer-depth N builds the transformer with N encoder blocks; fncompiler configurations only)
  jax_jit           the hand-written step of benchmarks/hand_written.py (jax.jit, donated state)
  keras             Keras 3's own jitted train step (JAX backend: `jax.jit(model.train_step, donate_argnums=0)`, as
                    Keras's make_train_function builds it), on the state Keras's fit uses

Numbers per configuration (at the model's batch size):
  xla_temp_mb, xla_argument_mb, xla_output_mb, xla_alias_mb: `compiled.memory_analysis()` of the train step
      (temporaries, arguments, outputs, and the outputs that reuse donated arguments)
  xla_peak_mb: temp + argument + output - alias, the step's device memory while it runs
  peak_rss_mb: the worker's peak resident memory (the JAX runtime, the compile and 3 executed steps)
  step_rss_growth_mb: peak RSS growth over the 3 executed steps alone (after compiling)
Largest batch: the train step's xla_peak_mb is measured (compiled, not run) at the batch size and at twice it;
it is close to linear in the batch (a + b * batch), so the largest batch within --budget-mb is solved from the
two, then compiled to check (stepping down 10% until it fits, at most 4 times), capped at --max-batch.
"""
import argparse
import json
import os
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import fit  # noqa: E402
import hand_written as hw_lib  # noqa: E402

CONFIGS = ("fncompiler", "fncompiler_remat", "fncompiler_remat_segments", "fncompiler_remat_layers",
           "fncompiler_unrolled", "fncompiler_scan", "fncompiler_scan_remat", "jax_jit", "keras")
DEFAULT_CONFIGS = ("fncompiler", "fncompiler_remat", "jax_jit", "keras")
# fncompiler configurations: (pass_options, whether the remat pass is appended)
FNCOMPILER = {"fncompiler": ({}, False), "fncompiler_remat": ({}, True),
              "fncompiler_remat_segments": ({"remat_mode": "segments"}, True),
              "fncompiler_remat_layers": ({"remat_mode": "layers"}, True),
              "fncompiler_unrolled": ({"scan_blocks": "never"}, False),
              "fncompiler_scan": ({"scan_blocks": "always"}, False),
              "fncompiler_scan_remat": ({"scan_blocks": "always"}, True)}
LABELS = {"fncompiler": "fncompiler train step", "fncompiler_remat": "fncompiler train step + remat pass",
          "fncompiler_remat_segments": "fncompiler + remat (remat_mode='segments')",
          "fncompiler_remat_layers": "fncompiler + remat (remat_mode='layers')",
          "fncompiler_unrolled": "fncompiler, scan_blocks='never'",
          "fncompiler_scan": "fncompiler, scan_blocks='always'",
          "fncompiler_scan_remat": "fncompiler, scan_blocks='always' + remat",
          "jax_jit": "hand-written jax.jit step", "keras": "Keras 3 train step (JAX backend)"}
MB = 1024.0 * 1024.0
EXECUTED_STEPS = 3


def memory_fields(compiled):
    """The memory analysis of a `jax.stages.Compiled`, in MiB (None where this backend does not report it)."""
    ma = compiled.memory_analysis()
    if ma is None:
        return {"xla_peak_mb": None}
    out = {}
    for key, attr in (("xla_temp_mb", "temp_size_in_bytes"), ("xla_argument_mb", "argument_size_in_bytes"),
                      ("xla_output_mb", "output_size_in_bytes"), ("xla_alias_mb", "alias_size_in_bytes"),
                      ("xla_code_mb", "generated_code_size_in_bytes")):
        value = getattr(ma, attr, None)
        out[key] = None if value is None else value / MB
    parts = [out.get(k) for k in ("xla_temp_mb", "xla_argument_mb", "xla_output_mb")]
    out["xla_peak_mb"] = None if None in parts else sum(parts) - (out.get("xla_alias_mb") or 0.0)
    return out


def largest_batch(peak_at, batch, budget_mb, cap):
    """The largest batch whose train step's xla_peak_mb (`peak_at(b)`, a compile) is within budget_mb, from a
    linear fit of two measurements, checked by a third; (batch, peak_mb, [(batch, peak_mb) measured])."""
    seen = []

    def measure(b):
        v = peak_at(b)
        seen.append((b, v))
        return v

    p1, p2 = measure(batch), measure(2 * batch)
    if p1 is None or p2 is None:
        return None, None, seen
    slope = max((p2 - p1) / batch, 1e-12)
    guess = int(min(cap, max(1, (budget_mb - (p1 - slope * batch)) / slope)))
    for _ in range(4):
        v = measure(guess)
        if v <= budget_mb:
            return guess, v, seen
        guess = max(1, int(guess * 0.9))
    return None, None, seen


def _abstract(tree):
    import jax
    return jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(getattr(a, "shape", ()), getattr(a, "dtype", None)),
                                  tree)


def _zeros(tree):
    import jax
    import jax.numpy as jnp
    return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), tree)


def _input_shapes(name):
    _, _, xs, _ = fit.make_data(name, 2)
    return [tuple(a.shape[1:]) for a in xs]


def _compiled_fncompiler(name, config, depth):
    """fncompiler's CompiledModel of `config` (FNCOMPILER: pass options, the remat pass appended or not) for
    fit.py's model `name` (the transformer with `depth` blocks), seeded."""
    import fncompiler as keras
    from fncompiler import passes
    keras.utils.set_random_seed(fit.SEED)
    if name == "transformer" and depth != 4:
        import zoo
        model = zoo.build_transformer(keras, depth=depth)
    else:
        model = fit.build_model(name, keras)
    model.compile(**fit.compile_kwargs(name, keras))
    options, with_remat = FNCOMPILER[config]
    pipeline = passes.default_pipeline("train") + ["remat"] if with_remat else None
    return keras.compile_model(model, passes=pipeline, pass_options=options)


def worker(args, result):
    import jax
    name, config = args.model, args.config
    bs = fit.SETUPS[name]["batch_size"]
    result["batch_size"] = bs

    if config.startswith("fncompiler"):
        cm = _compiled_fncompiler(name, config, args.transformer_depth)
        result["pass_reports"] = [r.report for r in cm.records("train") if r.name in ("remat", "scan_repeated_blocks")]
        shapes = _input_shapes(name)

        step = cm.step("train")

        def example(b):
            # abstract (state, inputs, targets, sample weights); a sequence target takes its length from the
            # concrete input shapes (CompiledModel.example_args)
            return cm.example_args("train", b, shapes)

        def lowered(b):
            return step.lower(*example(b))

        def run_args(b):
            return _zeros(example(b))
        result["notes"] = ["executed on zero weights and inputs of the step's shapes (memory does not depend on "
                           "the values)"]
    elif args.transformer_depth != 4 and name == "transformer":
        result["status"] = "skipped"
        result["error"] = "--transformer-depth applies to the fncompiler configurations only"
        return
    elif config == "jax_jit":
        init = fit.load_init(args.init)
        hw = hw_lib.HandWritten(name, init, fit.SETUPS[name]["lr"], fit.SEED)
        step = hw.make_train_step()
        state0 = hw.initial_state()

        def example(b):
            _, _, xs, ys = fit.make_data(name, b)
            return (state0, [a[:b] for a in xs], [a[:b] for a in ys])

        def lowered(b):
            return step.lower(*_abstract(example(b)))

        def run_args(b):
            st, xs, ys = example(b)
            return (hw.initial_state(), xs, ys)
    elif config == "keras":
        os.environ.setdefault("KERAS_BACKEND", "jax")
        try:
            import keras
        except ImportError as exc:
            result["status"] = "skipped"
            result["error"] = f"keras is not installed ({exc})"
            return
        init = fit.load_init(args.init)
        keras.utils.set_random_seed(fit.SEED)
        model = fit.build_model(name, keras)
        fit.set_init(model, init)
        model.compile(**fit.compile_kwargs(name, keras))
        x, y, _, _ = fit.make_data(name, bs)
        model.fit(x, y, batch_size=bs, epochs=1, steps_per_epoch=1, shuffle=False, verbose=0)   # builds the state
        state = model._get_jax_state(trainable_variables=True, non_trainable_variables=True,
                                     optimizer_variables=True, metrics_variables=True)
        step = jax.jit(model.train_step, donate_argnums=0)
        result["notes"] = ["Keras's train step: jax.jit(model.train_step, donate_argnums=0) on "
                           "model._get_jax_state(...) after one fit step, as Keras's fit calls it"]

        def data(b):
            bx, by, _, _ = fit.make_data(name, b)
            return (bx, by)

        def lowered(b):
            return step.lower(_abstract(state), _abstract(data(b)))

        def run_args(b):
            return (_zeros(_abstract(state)), data(b))
    else:
        raise ValueError(f"unknown configuration {config!r}")

    rss0 = common.peak_rss_mb()
    t0 = time.perf_counter()
    compiled = lowered(bs).compile()
    result["compile_s"] = time.perf_counter() - t0
    result.update(memory_fields(compiled))
    result["rss_before_compile_mb"] = rss0
    # 3 executed steps: RSS growth past the compile's peak (ru_maxrss only grows)
    with fit.section(result, "execute"):
        rss1 = common.peak_rss_mb()
        for _ in range(EXECUTED_STEPS):
            jax.block_until_ready(step(*run_args(bs)))      # fresh arguments each time: the steps donate their state
        result["step_rss_growth_mb"] = common.peak_rss_mb() - rss1
    result["peak_rss_mb"] = common.peak_rss_mb()

    if args.budget_mb:
        with fit.section(result, "largest_batch"):
            def peak_at(b):
                return memory_fields(lowered(b).compile()).get("xla_peak_mb")
            t0 = time.perf_counter()
            b, peak, seen = largest_batch(peak_at, bs, args.budget_mb, args.max_batch)
            result["largest_batch"] = b
            result["largest_batch_peak_mb"] = peak
            result["largest_batch_measured"] = seen
            result["largest_batch_capped"] = b == args.max_batch
            result["largest_batch_s"] = time.perf_counter() - t0


def time_remat(models, depth, configs=("fncompiler", "fncompiler_remat"), rounds=7, steps=3):
    """{model: {config: median step seconds, "ratio": remat / plain}}: the train steps of `configs`, compiled in this
    one process, timed alternately (`rounds` rounds of `steps` steps each; medians of the per-step times)."""
    import statistics
    import jax
    out = {}
    for name in models:
        steps_by = {}
        for config in configs:
            cm = _compiled_fncompiler(name, config, depth)
            bs = fit.SETUPS[name]["batch_size"]
            example = cm.example_args("train", bs, _input_shapes(name))
            compiled = cm.step("train").lower(*example).compile()
            jax.block_until_ready(compiled(*_zeros(example)))           # warm-up
            steps_by[config] = (compiled, example)
        times = {c: [] for c in configs}
        for _ in range(rounds):
            for c in configs:
                compiled, example = steps_by[c]
                for _ in range(steps):
                    args = _zeros(example)
                    jax.block_until_ready(args)
                    t0 = time.perf_counter()
                    jax.block_until_ready(compiled(*args))
                    times[c].append(time.perf_counter() - t0)
        entry = {c: statistics.median(v) for c, v in times.items()}
        entry["ratio"] = entry[configs[1]] / entry[configs[0]]
        out[name] = entry
        print(f"   {name}: train step {configs[0]} {entry[configs[0]] * 1e3:.2f} ms, {configs[1]} "
              f"{entry[configs[1]] * 1e3:.2f} ms: {entry['ratio']:.2f}x", flush=True)
    return out


def run_worker_main(args):
    result = {"model": args.model, "config": args.config, "label": LABELS.get(args.config, args.config),
              "status": "ok", "error": None, "notes": []}
    try:
        if args.config == "init":
            result.update(fit.worker_init(args))
        else:
            worker(args, result)
    except Exception as exc:     # noqa: BLE001 - reported, never fatal for the whole benchmark
        result["status"] = "error"
        result["error"] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        result["traceback"] = traceback.format_exc()[-4000:]
    result.setdefault("peak_rss_mb", common.peak_rss_mb())
    common.write_json(args.out, result)


def markdown(report):
    lines = [f"# fncompiler train-step memory ({report['date']})", "",
             f"- machine: {report['machine'].get('cpu_count')} CPUs, {report['machine']['platform']}; "
             f"versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items() if v is not None),
             f"- command: `{report['command']}`",
             f"- budget for the largest batch: {report['budget_mb']} MiB of XLA's peak (temp + arguments + outputs "
             f"- aliased), capped at {report['max_batch']}", ""]
    header = ["model", "batch", "configuration", "XLA peak MiB", "temp MiB", "args MiB", "out MiB", "alias MiB",
              "peak RSS MiB", "RSS growth over 3 steps MiB", f"largest batch in {report['budget_mb']} MiB",
              "vs Keras"]
    rows = []
    for mname, m in report["models"].items():
        keras_b = (m["configs"].get("keras") or {}).get("largest_batch")
        for cname, c in m["configs"].items():
            if c.get("status") != "ok":
                rows.append([mname, "-", LABELS.get(cname, cname), f"**{c.get('status', 'error').upper()}** "
                             + (c.get("error") or "")[:100]] + ["-"] * (len(header) - 4))
                continue
            lb = c.get("largest_batch")
            rows.append([mname, c.get("batch_size"), LABELS.get(cname, cname),
                         common.fmt(c.get("xla_peak_mb"), ".3g"), common.fmt(c.get("xla_temp_mb"), ".3g"),
                         common.fmt(c.get("xla_argument_mb"), ".3g"), common.fmt(c.get("xla_output_mb"), ".3g"),
                         common.fmt(c.get("xla_alias_mb"), ".3g"), common.fmt(c.get("peak_rss_mb"), ".0f"),
                         common.fmt(c.get("step_rss_growth_mb"), ".0f"),
                         "-" if lb is None else (f">= {lb} (cap)" if c.get("largest_batch_capped") else str(lb)),
                         common.fmt_ratio(common.ratio(lb, keras_b)) if cname != "keras" else "-"])
    lines.append(common.markdown_table(header, rows))
    errors = [(mn, cn, c) for mn, m in report["models"].items() for cn, c in m["configs"].items() if c.get("errors")]
    if errors:
        lines += ["", "Partial errors: " + "; ".join(f"{mn}/{cn} {part}: {msg[:160]}" for mn, cn, c in errors
                                                     for part, msg in c["errors"].items())]
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(fit.MODELS))
    p.add_argument("--configs", default=",".join(DEFAULT_CONFIGS))
    p.add_argument("--transformer-depth", type=int, default=4,
                   help="encoder blocks of the transformer model (fncompiler configurations only; default 4)")
    p.add_argument("--budget-mb", type=float, default=256.0,
                   help="memory budget for the largest-batch search (0: skip the search)")
    p.add_argument("--max-batch", type=int, default=65536)
    p.add_argument("--time-remat", action="store_true",
                   help="instead: time the fncompiler train step with the remat pass off and on, in this one process "
                        "(alternating rounds, medians) and print the ratio per model")
    p.add_argument("--json", default=None)
    p.add_argument("--md", default=None)
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per worker process")
    p.add_argument("--worker", dest="config", default=None, help=argparse.SUPPRESS)
    p.add_argument("--model", default=None, help=argparse.SUPPRESS)
    p.add_argument("--init", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.config is not None:
        run_worker_main(args)
        return 0
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    for m in models:
        if m not in fit.SETUPS:
            raise SystemExit(f"unknown model {m!r}; choose from {', '.join(fit.MODELS)}")
    for c in configs:
        if c not in CONFIGS:
            raise SystemExit(f"unknown configuration {c!r}; choose from {', '.join(CONFIGS)}")
    if args.time_remat:
        pair = tuple(configs) if len(configs) == 2 and all(c in FNCOMPILER for c in configs) else \
            ("fncompiler", "fncompiler_remat")
        timed = time_remat(models, args.transformer_depth, pair)
        if args.json:
            common.write_json(args.json, {"benchmark": "memory --time-remat", "date": common.now_iso(),
                                          "configs": list(pair), "models": timed})
        return 0
    report = {"benchmark": "memory", "date": common.now_iso(),
              "command": " ".join(["python", "benchmarks/memory.py"] + (sys.argv[1:] if argv is None else list(argv))),
              "machine": common.machine_info(), "versions": common.versions(), "budget_mb": args.budget_mb,
              "max_batch": args.max_batch, "models": {}}
    with tempfile.TemporaryDirectory(prefix="fncompiler_memory_bench_") as tmp:
        for mname in models:
            entry = {"configs": {}}
            report["models"][mname] = entry
            init_path = os.path.join(tmp, f"{mname}_init.npz")
            base = [os.path.abspath(__file__), "--model", mname, "--init", init_path,
                    "--budget-mb", str(args.budget_mb), "--max-batch", str(args.max_batch),
                    "--transformer-depth", str(args.transformer_depth)]
            print(f"== {mname}", flush=True)
            init = _run_one(base, mname, "init", tmp, args.timeout)
            if init.get("status") != "ok":
                entry["error"] = init.get("error")
                print(f"   init FAILED: {init.get('error')}", flush=True)
                continue
            for cname in configs:
                res = _run_one(base, mname, cname, tmp, args.timeout)
                entry["configs"][cname] = res
                if res.get("status") == "ok":
                    print(f"   {LABELS[cname]:40s} XLA peak {common.fmt(res.get('xla_peak_mb'), '.3g')} MiB, "
                          f"peak RSS {common.fmt(res.get('peak_rss_mb'), '.0f')} MiB, largest batch "
                          f"{res.get('largest_batch')}", flush=True)
                else:
                    print(f"   {LABELS[cname]:40s} {res.get('status', 'error').upper()}: "
                          f"{(res.get('error') or '')[:200]}", flush=True)
    md = markdown(report)
    print()
    print(md)
    if args.json:
        common.write_json(args.json, report)
    if args.md:
        with open(args.md, "w") as f:
            f.write(md)
    return 0


def _run_one(base, mname, cname, tmp, timeout):
    out = os.path.join(tmp, f"{mname}_{cname}.json")
    rc, stdout, stderr, wall = common.run_worker(base + ["--worker", cname, "--out", out], timeout)
    if os.path.exists(out):
        with open(out) as f:
            res = json.load(f)
        os.remove(out)
    else:
        res = {"config": cname, "status": "error",
               "error": ("timed out" if rc is None else f"worker exited with {rc} and no result") + ": "
               + (stderr or "")[-800:]}
    res["process_wall_s"] = wall
    return res


if __name__ == "__main__":
    sys.exit(main())
