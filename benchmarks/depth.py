"""Depth benchmark: the transformer of benchmarks/zoo.py at 2..32 blocks, unrolled and scanned.

    python benchmarks/depth.py [--quick] [--depths 2,4,8,16,32] [--programs unrolled,scanned,default]
                               [--samples N] [--batch B] [--epochs E] [--rounds R] [--json out.json] [--md out.md]

Every (depth, program) pair runs in its own fresh Python process (benchmarks/common.run_worker), one after
another; with --rounds R each pair runs R times (the order alternating) and the table shows medians.

Programs:
  unrolled  the train program with pass_options={"scan_blocks": "never"}: one copy of each block in the step
  scanned   pass_options={"scan_blocks": "always"}: the repeated blocks as one lax.scan over stacked weights,
            which the train state keeps stacked (passes/scan_blocks.py, runtime/lowering.py); on XLA:CPU its
            loop body is rematerialized (scan_remat "auto")
  scanned_plain  the same with {"scan_remat": "never"}: the loop stores every block's residuals
  default   model.fit with the default compile arguments (steps_per_execution="auto": whatever the runtime
            chooses)
The two forced programs use compile(steps_per_execution=1), so they measure the block strategy alone.

Per (depth, program), two fresh processes. The first: time to first step (model build + a fit stopped by a
callback at its first on_train_batch_end: passes, tracing, XLA compile, the first step, what a user waits
for), then the train step's trace + lower and XLA compile times and its HLO size, measured on the step function
alone (forced programs only). The second: the whole E-epoch fit's wall time (model build included, no callback
but an epoch timer), steady-state step time (median over epochs 2..E of epoch seconds / steps), the
train-step compile counts and the loss of every epoch. The parent checks that the scanned fit's losses match the unrolled fit's (same initial weights, same
batches: shuffle=False) within --rtol. Data: zoo.make_data_transformer, synthetic tokens and labels.
"""
import argparse
import json
import math
import os
import re
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

DEPTHS = (2, 4, 8, 16, 32)
PROGRAMS = ("unrolled", "scanned", "scanned_plain", "default")
# the pass options each forced program compiles with (passes/scan_blocks.py)
POLICY = {"unrolled": {"scan_blocks": "never"}, "scanned": {"scan_blocks": "always"},
          "scanned_plain": {"scan_blocks": "always", "scan_remat": "never"}}
SEED = 1234
FULL = dict(samples=512, batch=32, epochs=3, sizes={})          # zoo.TRANSFORMER's sizes
QUICK = dict(samples=256, batch=32, epochs=3, sizes=dict(vocab=500, length=32, embed_dim=32, heads=2, ff_dim=64))


# -- worker ------------------------------------------------------------------------------------------------
def _build(keras, zoo, depth, program, sizes):
    """A fresh model (the same initial weights in every process: seeded) compiled for `program`."""
    keras.utils.set_random_seed(SEED)
    model = zoo.build_transformer(keras, depth=depth, **sizes)
    extra = {} if program == "default" else {"steps_per_execution": 1}
    model.compile(**zoo.compile_kwargs_transformer(keras), **extra)
    if program != "default":
        force_program(keras, model, POLICY[program])
    return model


def force_program(keras, model, pass_options):
    """Make `model.fit` train the program compiled with `pass_options`."""
    trainer = model._get_trainer()
    trainer.compiled = keras.compile_model(model, compile_config=model._compile_config,
                                           pass_options=dict(pass_options))
    return trainer.compiled


def _weights_digest(model):
    import numpy as np
    return float(sum(np.abs(np.asarray(w, np.float64)).sum() for w in model.get_weights()))


def _step_compile(keras, model, x, y, batch):
    """(trace + lower seconds, XLA compile seconds, HLO facts) of the model's train step for one batch."""
    import jax
    import jax.numpy as jnp
    from fncompiler.runtime import steps as steps_lib
    cm = model._get_trainer().compiled
    cfg = model._compile_config
    low = cm.lowered("train")
    state = steps_lib.initial_train_state([jnp.array(v.value) for v in low.trainable],
                                          [jnp.array(v.value) for v in low.non_trainable], cfg, 0)
    counter = {"train": 0}
    fn = jax.jit(steps_lib.make_train_step(low, cfg, counter), donate_argnums=0)
    xs, ys = [jnp.asarray(x[:batch])], [jnp.asarray(y[:batch])]
    t0 = time.perf_counter()
    lowered = fn.lower(state, xs, ys, None)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    text = compiled.as_text()
    facts = {"fusions": len(re.findall(r"= \S+ fusion\(", text)), "hlo_instructions": len(re.findall(r"^\s+\S+ = ", text, re.M)),
             "program_trainable_arrays": len(low.trainable), "model_trainable_arrays": len(low.model_trainable),
             "stacked_state": low.stacked, "xla_temp_mb": _temp_mb(compiled)}
    return t1 - t0, t2 - t1, facts


def _temp_mb(compiled):
    try:
        return compiled.memory_analysis().temp_size_in_bytes / 2 ** 20
    except Exception:       # noqa: BLE001 - a backend without memory analysis
        return None


def worker(args, result):
    import numpy as np
    import jax
    import jax.numpy as jnp
    import fncompiler as keras
    import zoo
    jax.block_until_ready(jnp.zeros(()) + 1)
    sizes = json.loads(args.sizes)
    x, y, _, _ = zoo.make_data_transformer(args.samples, **sizes)
    fit_kwargs = dict(batch_size=args.batch, shuffle=False, verbose=0)
    steps = math.ceil(args.samples / args.batch)

    class FirstStep(keras.callbacks.Callback):
        t = None

        def on_train_batch_end(self, batch, logs=None):
            if self.t is None:
                self.t = time.perf_counter()
                self.model.stop_training = True

    class EpochTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.t = [time.perf_counter()]

        def on_epoch_end(self, epoch, logs=None):
            self.t.append(time.perf_counter())

    if args.phase == "first":
        # time to first step, on a fresh model in a fresh process
        t0 = time.perf_counter()
        model = _build(keras, zoo, args.depth, args.program, sizes)
        cb = FirstStep()
        model.fit(x, y, epochs=1, callbacks=[cb], **fit_kwargs)
        result["time_to_first_step_s"] = None if cb.t is None else cb.t - t0
        records = model._get_trainer().compiled._pipeline("train")[1]
        result["scan_report"] = next((r.report for r in records if r.name == "scan_repeated_blocks"), None)
        # the train step's compile, measured on the step function alone (forced programs)
        if args.program != "default":
            trace_s, compile_s, facts = _step_compile(keras, model, x, y, args.batch)
            result.update(step_trace_lower_s=trace_s, step_xla_compile_s=compile_s, **facts)
        result["peak_rss_mb_first"] = common.peak_rss_mb()
        return
    # the whole fit, in another fresh process, from the same initial weights
    t0 = time.perf_counter()
    model = _build(keras, zoo, args.depth, args.program, sizes)
    result["initial_weights_digest"] = _weights_digest(model)
    timer = EpochTimer()
    hist = model.fit(x, y, epochs=args.epochs, callbacks=[timer], **fit_kwargs)
    result["fit_wall_s"] = time.perf_counter() - t0          # model build + compile + all epochs
    epochs = [b - a for a, b in zip(timer.t, timer.t[1:])]
    result["epoch_seconds"] = epochs
    result["step_s"] = common.median([e / steps for e in epochs[1:]]) if len(epochs) > 1 else None
    result["losses"] = [float(v) for v in hist.history["loss"]]
    trainer = model._get_trainer()
    result["train_compiles"] = {k: v for k, v in trainer.compiled.trace_counts.items() if v}
    result["final_weights_digest"] = _weights_digest(model)
    decision = getattr(trainer, "decision_record", None) or getattr(trainer, "decision", None)
    if decision is not None:
        result["decision"] = decision if isinstance(decision, (dict, list, str)) else repr(decision)
    result["peak_rss_mb"] = common.peak_rss_mb()


def worker_main(args):
    result = {"depth": args.depth, "program": args.program, "status": "ok", "error": None}
    try:
        worker(args, result)
    except Exception as err:      # noqa: BLE001 - reported in the table, the other runs go on
        result.update(status="error", error=f"{type(err).__name__}: {err}", traceback=traceback.format_exc()[-3000:])
    common.write_json(args.out, result)


# -- parent ------------------------------------------------------------------------------------------------
def _run(args, depth, program, tmp, setup):
    """Both phases of one (depth, program), each in its own fresh process; their results merged."""
    res = {"depth": depth, "program": program, "status": "ok", "error": None, "worker_wall_s": 0.0}
    for phase in ("first", "fit"):
        out = os.path.join(tmp, f"d{depth}_{program}_{phase}.json")
        cache = tempfile.mkdtemp(prefix=f"cache_{depth}_{program}_{phase}_", dir=tmp)   # a fresh autotuner cache
        argv = [os.path.abspath(__file__), "--worker", program, "--phase", phase, "--depth", str(depth),
                "--out", out, "--samples", str(setup["samples"]), "--batch", str(setup["batch"]),
                "--epochs", str(setup["epochs"]), "--sizes", json.dumps(setup["sizes"])]
        rc, stdout, stderr, wall = common.run_worker(argv, args.timeout, env={"FNCOMPILER_CACHE_DIR": cache})
        if os.path.exists(out):
            with open(out) as f:
                part = json.load(f)
            os.remove(out)
        else:
            part = {"status": "error", "stderr": stderr[-2000:],
                    "error": f"worker rc={rc} (timeout {args.timeout}s)" if rc is None else f"worker rc={rc}"}
        res["worker_wall_s"] += wall
        if part.get("status") != "ok":
            res.update(status="error", error=f"{phase}: {part.get('error')}",
                       detail=part.get("traceback") or part.get("stderr"))
            return res
        res.update({k: v for k, v in part.items() if k not in ("status", "error")})
    return res


MEDIAN_FIELDS = ("time_to_first_step_s", "step_trace_lower_s", "step_xla_compile_s", "step_s", "fit_wall_s",
                 "peak_rss_mb")


def _combine(runs):
    ok = [r for r in runs if r.get("status") == "ok"]
    if not ok:
        return dict(runs[0], rounds=len(runs))
    out = dict(ok[0])
    for k in MEDIAN_FIELDS:
        out[k] = common.median([r.get(k) for r in ok])
    out["rounds"] = len(ok)
    out["all_rounds"] = {k: [r.get(k) for r in ok] for k in MEDIAN_FIELDS}
    return out


def _check(results, depths, rtol):
    """Per depth: whether the scanned (and default) fit's epoch losses match the unrolled fit's."""
    for d in depths:
        ref = results.get(f"{d}/unrolled")
        for p in ("scanned", "scanned_plain", "default"):
            r = results.get(f"{d}/{p}")
            if not ref or not r or ref.get("status") != "ok" or r.get("status") != "ok":
                continue
            same_init = math.isclose(ref["initial_weights_digest"], r["initial_weights_digest"], rel_tol=1e-9)
            worst = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(r["losses"], ref["losses"]))
            r["loss_rel_diff"] = worst
            r["matches_unrolled"] = bool(same_init and worst <= rtol)


def table(results, depths, programs):
    header = ["depth", "program", "first step s", "first step / 4-block", "step trace+lower s",
              "step XLA compile s", "HLO fusions", "step XLA temp MiB", "step ms", "3-epoch fit s", "fit / unrolled", "compiles",
              "losses match"]
    rows = []
    for d in depths:
        for p in programs:
            r = results.get(f"{d}/{p}")
            if r is None:
                continue
            if r.get("status") != "ok":
                rows.append([d, p, "error: " + str(r.get("error"))[:80]] + [""] * (len(header) - 3))
                continue
            four = results.get(f"4/{p}") or {}
            unrolled = results.get(f"{d}/unrolled") or {}
            match = r.get("matches_unrolled")
            rows.append([d, p, common.fmt(r.get("time_to_first_step_s")),
                         common.fmt_ratio(common.ratio(r.get("time_to_first_step_s"), four.get("time_to_first_step_s"))),
                         common.fmt(r.get("step_trace_lower_s")), common.fmt(r.get("step_xla_compile_s")),
                         common.fmt(r.get("fusions")), common.fmt(r.get("xla_temp_mb")),
                         common.fmt(None if r.get("step_s") is None else r["step_s"] * 1e3),
                         common.fmt(r.get("fit_wall_s")),
                         common.fmt_ratio(common.ratio(r.get("fit_wall_s"), unrolled.get("fit_wall_s"))),
                         sum((r.get("train_compiles") or {}).values()),
                         "-" if match is None else ("yes" if match else f"NO ({r.get('loss_rel_diff'):.1e})")])
    return common.markdown_table(header, rows)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller transformer and fewer samples")
    p.add_argument("--depths", default=",".join(map(str, DEPTHS)))
    p.add_argument("--programs", default=",".join(PROGRAMS))
    p.add_argument("--samples", type=int, default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None, help="epochs of the timed fit (>= 2)")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--rtol", type=float, default=1e-4, help="epoch losses: scanned vs unrolled")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per worker process")
    p.add_argument("--json", default=None)
    p.add_argument("--md", default=None)
    p.add_argument("--worker", dest="program", default=None, help=argparse.SUPPRESS)
    p.add_argument("--depth", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--phase", choices=("first", "fit"), default="fit", help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    p.add_argument("--sizes", default="{}", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.program is not None:
        worker_main(args)
        return 0
    setup = dict(QUICK if args.quick else FULL)
    for k in ("samples", "batch", "epochs"):
        if getattr(args, k) is not None:
            setup[k] = getattr(args, k)
    if setup["epochs"] < 2:
        raise SystemExit("--epochs must be at least 2 (the steady-state step time reads epochs 2..E)")
    depths = [int(d) for d in args.depths.split(",") if d.strip()]
    programs = [p.strip() for p in args.programs.split(",") if p.strip()]
    unknown = sorted(set(programs) - set(PROGRAMS))
    if unknown:
        raise SystemExit(f"--programs: unknown {unknown}; expected some of {list(PROGRAMS)}")
    report = {"date": common.now_iso(), "machine": common.machine_info(), "versions": common.versions(),
              "setup": setup, "note": "each (depth, program) in a fresh process; medians over rounds", "runs": {}}
    pairs = [(d, p) for d in depths for p in programs]
    runs = {f"{d}/{p}": [] for d, p in pairs}
    with tempfile.TemporaryDirectory(prefix="depth_bench_") as tmp:
        for rnd in range(args.rounds):
            for d, p in (pairs if rnd % 2 == 0 else pairs[::-1]):
                res = _run(args, d, p, tmp, setup)
                runs[f"{d}/{p}"].append(res)
                print(f"depth {d:>2} {p:<8} round {rnd + 1}: " + (
                    f"first step {res['time_to_first_step_s']:.2f} s, step {1e3 * (res['step_s'] or 0):.1f} ms, "
                    f"fit {res['fit_wall_s']:.2f} s" if res.get("status") == "ok" else f"ERROR {res.get('error')}"),
                    flush=True)
    results = {k: _combine(v) for k, v in runs.items()}
    _check(results, depths, args.rtol)
    report["runs"] = results
    md = table(results, depths, programs)
    print(md)
    if args.json:
        common.write_json(args.json, report)
    if args.md:
        with open(args.md, "w") as f:
            f.write(md + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
