"""The inference steps' XLA options (`predict`, `evaluate`), chosen per batch shape by measurement while they run.

Which XLA:CPU convolution path is fastest for inference depends on the batch size, and not monotonically:
the toy ResNet's predict step with the conv option (autotune.CPU_CONV_OPTIONS) against XLA's default took
0.59x the time at batch 32, 1.13x at 64, 1.26x at 128 and 0.90x at 1024 (benchmarks/xla_options.py
--step predict), and in some processes the order at 1024 flips (0.86x in most, 1.1x in one of four). No fixed
rule gets all of these right; a measurement in the process does.

Tuning is tiered, as in a JIT: a batch shape that predict runs rarely is never tuned. Each shape (a bucket,
runtime/buckets.py) first runs the model's own program; its first call (compilation included; at least
MIN_COST_S when the program was compiled already, e.g. the eval step by fit's validation) is timed, then its
next MIN_COUNTED_CALLS calls (these wait for their results), and later calls are counted at their average
time, without waiting, until they add up to PAYBACK x that first call. Then the shape is hot: the next call runs
the model's program and each candidate on the same batch and checks the candidate's outputs against the
model's (outputs_agree: rtol=RTOL of the output's scale, at least 8 ulps of its dtype); the agreeing
candidates and the model's program then take turns on the following calls (each call computes the user's
batch, so timing wastes nothing; each one's first turn is not counted) until each has MIN_CALLS calls over
MIN_SECONDS, and the fastest is kept (a candidate must take < MARGIN of the model's time, median per call). Tuning thus costs at most about one compilation per candidate for a shape that has already
run PAYBACK x as long as one, and nothing for other shapes or models without candidates.

The eval step is tuned the same way in `evaluate()` (its metric states, donated to each call, are copied for
the check; fit's validation keeps the model's program, so tuning never lands inside fit's epochs).

Decisions are cached like fit's (autotune.store / lookup; the key adds the endpoint, the compile arguments for
eval, and the CompiledModel's own options and passes), so a later process compiles only the chosen program. A cached decision is used only if its options are one of the current
candidates'. Tuning is on with `compile(steps_per_execution="auto")` (the default) or, for predict, an
uncompiled model: a fixed steps_per_execution turns the autotuner off.
"""
import hashlib
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from . import autotune, host_eval


candidates = autotune.option_candidates          # the option sets to try, the model's own first


def outputs_agree(reference, candidate, rtol):
    """Whether every candidate output is within `rtol` (at least 8 ulps of its dtype: bfloat16 and float16 round
    coarsely) of the reference, relative to the reference output's largest magnitude (so outputs near zero do not
    fail on rounding), with NaNs in the same places; other dtypes must be equal."""
    for r, c in zip(reference, candidate):
        r, c = np.asarray(r), np.asarray(c)
        if r.shape != c.shape or r.dtype != c.dtype:
            return False
        if not jnp.issubdtype(r.dtype, jnp.inexact):
            if not np.array_equal(r, c):
                return False
            continue
        tol = max(rtol, 8 * float(jnp.finfo(r.dtype).eps))
        wide = np.complex128 if jnp.issubdtype(r.dtype, jnp.complexfloating) else np.float64
        r, c = r.astype(wide), c.astype(wide)
        finite = np.isfinite(r)
        scale = float(np.max(np.abs(r[finite]))) if finite.any() else 0.0
        if not np.allclose(c, r, rtol=tol, atol=tol * scale, equal_nan=True):
            return False
    return True


class _Shape:
    """One batch shape's tuning state."""

    def __init__(self, key):
        self.key = key
        self.phase = "first"     # first -> count -> check -> compare -> decided
        self.first_s = None      # the first call's seconds (its compilation included), at least MIN_COST_S
        self.counted_s = 0.0     # the calls' seconds since: timed for the first MIN_COUNTED_CALLS, then estimated
        self.counted = 0
        self.contenders = []     # [entry] taking turns in "compare", the model's own program first
        self.turn = 0
        self.report = []
        self.decision = None
        self.step = None         # the decided program


class InferenceTuner:
    """Runs an inference step ("predict": `(tv, ntv, batch)`, or "eval": `(tv, ntv, states, x, y, sw)`, states
    donated) with the XLA options chosen for its batch shape (see the module docstring). `active` is False when
    there is nothing to choose from (then the trainer calls its step itself)."""

    PAYBACK = 2.0
    MIN_COST_S = 0.2         # a compilation's cost when the first call found its program compiled already
    MIN_COUNTED_CALLS = 2
    MIN_CALLS = 5
    MIN_SECONDS = 0.05
    MAX_CALLS = 64
    MARGIN = autotune.OnlineTuner.MARGIN
    RTOL = 1e-3

    def __init__(self, compiled, endpoint="predict"):
        if endpoint not in ("predict", "eval"):
            raise ValueError(f"InferenceTuner tunes 'predict' or 'eval' steps; received {endpoint!r}.")
        self.compiled = compiled
        self.endpoint = endpoint
        self.trials = candidates(compiled.model, jax.devices()[0].platform)
        self.shapes = {}

    @property
    def active(self):
        return len(self.trials) > 1

    def __getattr__(self, name):     # lower, eval_shape, ...: the step with the model's own options
        if name in ("compiled", "endpoint"):
            raise AttributeError(name)
        return getattr(self.compiled._step(self.endpoint), name)

    def decisions(self):
        """{((shape, dtype), ...): decision} for the batch shapes decided so far."""
        return {sig: s.decision for sig, s in self.shapes.items() if s.decision is not None}

    def _step(self, trial):
        return self.compiled.with_options(trial["compiler_options"])._step(self.endpoint)

    def _batch(self, args):
        """The batch arrays of a call's arguments (what its shape is taken from)."""
        if self.endpoint == "predict":
            return list(args[2])
        sample_weight = args[5] if len(args) > 5 else None
        return [a for a in list(args[3]) + list(args[4]) + [sample_weight] if a is not None]

    def _donation_safe(self, args):
        """`args` whose donated part (eval's metric states) is a copy, for a call whose arguments are used again."""
        if self.endpoint == "predict":
            return args
        return args[:2] + (host_eval.copy_tree(args[2]),) + args[3:]

    def __call__(self, *args):
        batch = self._batch(args)
        sig = tuple((tuple(a.shape), str(a.dtype)) for a in batch)
        shape = self.shapes.get(sig)
        if shape is None:
            shape = self.shapes[sig] = self._start(batch)
        if shape.step is not None:
            return shape.step(*args)
        return self._tune(shape, args)

    def _key(self, batch):
        """The cache key of a batch shape: the model's signature (with the compile arguments for eval, whose
        outputs are the loss and metrics), the endpoint, and this CompiledModel's own options and passes."""
        cm = self.compiled
        own = json.dumps([cm.compiler_options, cm.pass_options, repr(cm._custom_passes)], sort_keys=True, default=repr)
        cfg = cm.compile_config if self.endpoint == "eval" else None
        return (autotune.signature(cm.model, batch, cfg) + "-" + self.endpoint + "-"
                + hashlib.sha256(own.encode()).hexdigest()[:8])

    def _start(self, batch):
        shape = _Shape(self._key(batch))
        cached = autotune.lookup(shape.key, self.trials, ("compiler_options",))
        if cached is not None:         # (a decision for options this tuner would not try is ignored)
            trial = next(t for t in self.trials if t["compiler_options"] == cached["compiler_options"])
            self._decide(shape, {**cached, "name": trial["name"]}, trial, remember=False)
        return shape

    def _decide(self, shape, decision, trial, remember=True):
        shape.decision = decision
        shape.step = self._step(trial)
        shape.phase = "decided"
        if remember:
            autotune.store(shape.key, decision)

    @staticmethod
    def _timed(step, args):
        t0 = time.perf_counter()
        out = jax.block_until_ready(step(*args))
        return out, time.perf_counter() - t0

    def _tune(self, shape, args):
        reference = self.trials[0]
        if shape.phase == "first":
            traces = self.compiled.trace_counts[self.endpoint]
            out, seconds = self._timed(self._step(reference), args)
            if self.compiled.trace_counts[self.endpoint] == traces:    # compiled before (e.g. by fit's validation)
                seconds = max(seconds, self.MIN_COST_S)
            shape.first_s, shape.phase = seconds, "count"
            return out
        if shape.phase == "count":
            if shape.counted < self.MIN_COUNTED_CALLS:     # timed (waits for the result) ...
                out, seconds = self._timed(self._step(reference), args)
                shape.counted_s += seconds
            else:                                          # ... then estimated, so calls overlap again
                out = self._step(reference)(*args)
                shape.counted_s += shape.counted_s / shape.counted
            shape.counted += 1
            if shape.counted >= self.MIN_COUNTED_CALLS and shape.counted_s >= self.PAYBACK * shape.first_s:
                shape.phase = "check"     # hot: the next call checks the candidates
            return out
        if shape.phase == "check":
            tried = [(trial, self._donation_safe(args)) for trial in self.trials[1:]]
            out = jax.block_until_ready(self._step(reference)(*args))
            expected = jax.tree_util.tree_leaves(out)
            shape.contenders = [{**reference, "times": []}]
            for trial, trial_args in tried:
                entry = dict(trial)
                try:
                    got = jax.block_until_ready(self._step(trial)(*trial_args))
                except Exception as exc:   # noqa: BLE001 - an option this XLA lacks: skip the candidate
                    shape.report.append({**entry, "error": f"{type(exc).__name__}: {exc}"[:300]})
                    continue
                if outputs_agree(expected, jax.tree_util.tree_leaves(got), self.RTOL):
                    shape.contenders.append({**entry, "agrees": True, "times": []})
                else:
                    shape.report.append({**entry, "agrees": False})
            if len(shape.contenders) == 1:
                self._decide(shape, {**reference, "report": shape.report}, reference)
            else:
                shape.phase = "compare"
            return out
        # compare: the contenders take turns on the caller's batches
        entry = shape.contenders[shape.turn % len(shape.contenders)]
        shape.turn += 1
        out, seconds = self._timed(self._step(entry), args)
        if entry.get("warm"):
            entry["times"].append(seconds)
        else:
            entry["warm"] = True      # each contender's first turn is not counted (measured up to 1.5x slower)
        if all(len(e["times"]) >= self.MAX_CALLS
               or (len(e["times"]) >= self.MIN_CALLS and sum(e["times"]) >= self.MIN_SECONDS)
               for e in shape.contenders):
            timed = [{k: v for k, v in e.items() if k not in ("times", "warm")}
                     | {"seconds_per_call": statistics.median(e["times"]), "timed_calls": len(e["times"])}
                     for e in shape.contenders]
            best = autotune.fastest(timed, "seconds_per_call", self.MARGIN)
            trial = next(t for t in self.trials if t["name"] == best["name"])
            self._decide(shape, {"name": best["name"], "compiler_options": best["compiler_options"],
                                 "report": timed + shape.report}, trial)
        return out
