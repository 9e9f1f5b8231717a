"""`compile_model(model, autotune=True)`: the train step's XLA options chosen by measurement, for code that calls
the compiled steps itself (fit has its own online tuner, runtime/autotune.py).

The first call of `compiled.step("train")` for an input signature compiles each candidate (the model's own
options and, on CPU for models with convolutions, those plus autotune.CPU_CONV_OPTIONS), runs each from copies
of the caller's state on the caller's batch (the caller's state is left alone until the chosen step trains on
it), checks each candidate's weight update against the first candidate's (autotune.update_mismatch, at most
1e-2 of the update's size), times a few calls of each, and keeps the fastest correct one (another candidate must
take < 95% of the first's time). Decisions are cached like fit's (in memory and in
`$FNCOMPILER_CACHE_DIR/autotune.json`), keyed by the model's structure, compile arguments, batch shapes and
device, so a later process compiles only the chosen step. "predict" and "eval" are tuned per batch shape by
runtime/inference_tuner.py; "train_multi" keeps the model's options.
"""
import time

import jax

from . import autotune, host_eval


step_candidates = autotune.option_candidates     # the option sets to try, the model's own first


class TunedTrainStep:
    """What `step("train")` returns for `compile_model(..., autotune=True)`: called like the train step
    (`state, x, y, sample_weight`), it runs the step compiled with the options chosen for that input signature."""

    MIN_CALLS = 3            # timed calls per candidate: at least this many, and MIN_SECONDS of them
    MIN_SECONDS = 0.05
    MAX_CALLS = 50
    MARGIN = autotune.OnlineTuner.MARGIN
    TOLERANCE = autotune.OnlineTuner.TOLERANCE

    def __init__(self, compiled):
        self.compiled = compiled
        self.decisions = {}          # ((shape, dtype) of each batch array, ...) -> decision
        self.last_decision = None

    def _default_step(self):
        return self.compiled._step("train")

    def __getattr__(self, name):     # lower, eval_shape, ...: the step with the model's own options
        return getattr(self._default_step(), name)

    def __call__(self, state, x, y, sample_weight=None):
        arrays = [a for a in list(x) + list(y) + [sample_weight] if a is not None]
        shapes = tuple((tuple(a.shape), str(a.dtype)) for a in arrays)
        decision = self.decisions.get(shapes)
        if decision is None:
            decision = self.decisions[shapes] = self._decide(state, x, y, sample_weight, arrays)
        self.last_decision = decision
        return self.compiled.with_options(decision["compiler_options"])._step("train")(state, x, y, sample_weight)

    def _decide(self, state, x, y, sample_weight, arrays):
        model, cfg = self.compiled.model, self.compiled.compile_config
        trials = step_candidates(model, jax.devices()[0].platform)
        if len(trials) == 1:
            return {**trials[0], "report": []}
        key = autotune.signature(model, arrays, cfg) + "-step"
        cached = autotune.lookup(key, trials)
        if cached is not None:
            return cached
        before = host_eval.copy_tree(state)
        report, reference = [], None
        for trial in trials:
            entry = dict(trial)
            step = self.compiled.with_options(trial["compiler_options"])._step("train")
            try:
                out = jax.block_until_ready(step(host_eval.copy_tree(before), x, y, sample_weight))
            except Exception as exc:   # noqa: BLE001 - an option this XLA lacks: skip the candidate
                if reference is None:
                    raise               # the model's own options: the caller's error
                entry["error"] = f"{type(exc).__name__}: {exc}"[:300]
                report.append(entry)
                continue
            if reference is None:
                reference = host_eval.copies(out[0])     # (the timed calls below donate `out`)
            else:
                entry["update_mismatch"] = autotune.update_mismatch(before[0], reference, out[0])
                if not entry["update_mismatch"] <= self.TOLERANCE:
                    report.append({**entry, "agrees": False})
                    continue
            calls, t0 = 0, time.perf_counter()
            while calls < self.MIN_CALLS or (time.perf_counter() - t0 < self.MIN_SECONDS and calls < self.MAX_CALLS):
                out = step(out, x, y, sample_weight)
                calls += 1
            jax.block_until_ready(out)
            report.append({**entry, "agrees": True, "seconds_per_call": (time.perf_counter() - t0) / calls,
                           "timed_calls": calls})
        best = autotune.fastest([r for r in report if r.get("agrees")], "seconds_per_call", self.MARGIN)
        decision = {"name": best["name"], "compiler_options": best["compiler_options"], "report": report}
        autotune.store(key, decision)
        return decision
