"""Steps that choose their XLA options by measurement, through the one tuner (runtime/tuner.py).

    TunedTrainStep(compiled)               `compile_model(model, autotune=True).step("train")`
    TunedInferenceStep(compiled, endpoint) predict / evaluate (`Trainer`), and compile_model(autotune=True)'s
                                           "predict" / "eval" steps

Candidates: strategies.option_candidates (the model's own options first; on CPU for conv models also the conv
option, measured; GPU / TPU: not measured, none).

TunedTrainStep: the first call per input signature compiles each candidate, runs each from copies of the
caller's state on the caller's batch (the caller's state is untouched until the chosen step trains on it),
checks each candidate's update against the reference's (tuner.update_mismatch <= 1e-2), times a few calls of
each and keeps the fastest (another must take < 95% of the reference's time).

TunedInferenceStep, per batch shape, tiered as in a JIT (which XLA:CPU conv path is fastest for inference
depends on the batch size, not monotonically: the toy ResNet's predict step with the conv option took 0.59x
XLA's default time at batch 32, 1.13x at 64, 1.26x at 128, 0.90x at 1024; benchmarks/xla_options.py --step
predict): a shape first runs the model's own program; its first call (compilation included; at least MIN_COST_S
when the program was compiled already) is timed, then MIN_COUNTED_CALLS calls, and later calls are counted at
their average time until they add up to PAYBACK x that first call. Then the shape is hot: the next call runs the
reference and each candidate on the same batch and checks the outputs (tuner.outputs_agree, rtol=RTOL); the
agreeing ones take turns on the following calls (each computes the caller's batch: timing wastes nothing; each
one's first turn is not counted) until each has MIN_CALLS calls over MIN_SECONDS, and the tuner keeps the
fastest (median per call). The eval step's donated metric states are copied for the check. Tuning is on with
`compile(steps_per_execution="auto")` (the default) or, for predict, an uncompiled model.
"""
import hashlib
import json
import statistics
import time

import jax

from . import host_eval, tuner as tuner_lib
from .strategies import option_candidates

__all__ = ["TunedTrainStep", "TunedInferenceStep"]


class TunedTrainStep:
    """Called like the train step (`state, x, y, sample_weight`): runs the step compiled with the options chosen
    for that input signature."""

    MIN_CALLS = 3            # timed calls per candidate: at least this many, and MIN_SECONDS of them
    MIN_SECONDS = 0.05
    MAX_CALLS = 50

    def __init__(self, compiled):
        self.compiled = compiled
        self.candidates = option_candidates(compiled.model, jax.devices()[0].platform)
        self.decisions = {}          # ((shape, dtype) of each batch array, ...) -> decision record
        self.last_decision = None

    @property
    def active(self):
        return len(self.candidates) > 1

    def __getattr__(self, name):     # lower, eval_shape, ...: the step with the model's own options
        if name in ("compiled", "candidates"):
            raise AttributeError(name)
        return getattr(self.compiled.untuned_step("train"), name)

    def _step(self, candidate):
        return candidate.program(self.compiled).untuned_step("train")

    def __call__(self, state, x, y, sample_weight=None):
        arrays = [a for a in list(x) + list(y) + [sample_weight] if a is not None]
        shapes = tuple((tuple(a.shape), str(a.dtype)) for a in arrays)
        entry = self.decisions.get(shapes)
        if entry is None:
            entry = self.decisions[shapes] = self._decide(state, x, y, sample_weight, arrays)
        self.last_decision = entry[1]
        return entry[0](state, x, y, sample_weight)

    def _decide(self, state, x, y, sample_weight, arrays):
        model, cfg = self.compiled.model, self.compiled.compile_config
        tuner = tuner_lib.Tuner(self.candidates, tuner_lib.signature(model, arrays, cfg) + "-step")
        chosen = tuner.cached()
        if chosen is None and len(tuner.candidates) == 1:
            chosen = tuner.decide(remember=False, reason="nothing to choose from")
        if chosen is None:
            before = host_eval.copy_tree(state)
            reference = None
            for candidate in tuner.candidates:
                step = self._step(candidate)
                try:
                    t0 = time.perf_counter()
                    out = jax.block_until_ready(step(host_eval.copy_tree(before), x, y, sample_weight))
                    first = time.perf_counter() - t0
                except Exception as exc:   # noqa: BLE001 - an option this XLA lacks: skip the candidate
                    if reference is None:
                        raise               # the model's own options: the caller's error
                    tuner.record_error(candidate, exc)
                    continue
                if reference is None:
                    reference = host_eval.copies(out[0])     # (the timed calls below donate `out`)
                elif not tuner.record_check(candidate, tuner_lib.update_mismatch(before[0], reference, out[0])):
                    continue
                calls, t0 = 0, time.perf_counter()
                while calls < self.MIN_CALLS or (time.perf_counter() - t0 < self.MIN_SECONDS
                                                 and calls < self.MAX_CALLS):
                    out = step(out, x, y, sample_weight)
                    calls += 1
                jax.block_until_ready(out)
                seconds = (time.perf_counter() - t0) / calls
                tuner.record_compile(candidate, first - seconds)
                tuner.record_time(candidate, seconds, calls)
            chosen = tuner.decide()
        return self._step(chosen), tuner.decision


class _Shape:
    """One batch shape's tuning state."""

    def __init__(self, tuner):
        self.tuner = tuner
        self.phase = "first"     # first -> count -> check -> compare -> decided
        self.first_s = None      # the first call's seconds (its compilation included), at least MIN_COST_S
        self.counted_s = 0.0     # the calls' seconds since: timed for the first MIN_COUNTED_CALLS, then estimated
        self.counted = 0
        self.contenders = []     # [(candidate, [seconds])] taking turns in "compare", the reference first
        self.turn = 0
        self.step = None         # the decided program

    @property
    def decision(self):
        return self.tuner.decision


class TunedInferenceStep:
    """Runs an inference step ("predict": `(tv, ntv, batch)`, or "eval": `(tv, ntv, states, x, y, sw)`, states
    donated) with the XLA options chosen for its batch shape (see the module docstring). `active` is False when
    there is nothing to choose from (then the caller runs its step itself)."""

    PAYBACK = 2.0
    MIN_COST_S = 0.2         # a compilation's cost when the first call found its program compiled already
    MIN_COUNTED_CALLS = 2
    MIN_CALLS = 5
    MIN_SECONDS = 0.05
    MAX_CALLS = 64
    RTOL = 1e-3

    def __init__(self, compiled, endpoint="predict"):
        if endpoint not in ("predict", "eval"):
            raise ValueError(f"TunedInferenceStep tunes 'predict' or 'eval' steps; received {endpoint!r}.")
        self.compiled = compiled
        self.endpoint = endpoint
        self.candidates = option_candidates(compiled.model, jax.devices()[0].platform)
        self.shapes = {}

    @property
    def active(self):
        return len(self.candidates) > 1

    def __getattr__(self, name):     # lower, eval_shape, ...: the step with the model's own options
        if name in ("compiled", "endpoint", "candidates"):
            raise AttributeError(name)
        return getattr(self.compiled.untuned_step(self.endpoint), name)

    def decisions(self):
        """{((shape, dtype), ...): decision record} for the batch shapes decided so far."""
        return {sig: s.decision for sig, s in self.shapes.items() if s.step is not None}

    def _step(self, candidate):
        return candidate.program(self.compiled).untuned_step(self.endpoint)

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
        own = json.dumps([cm.compiler_options, cm.pass_options, repr(cm.custom_passes)], sort_keys=True,
                         default=repr)
        cfg = cm.compile_config if self.endpoint == "eval" else None
        return (tuner_lib.signature(cm.model, batch, cfg) + "-" + self.endpoint + "-"
                + hashlib.sha256(own.encode()).hexdigest()[:8])

    def _start(self, batch):
        shape = _Shape(tuner_lib.Tuner(self.candidates, self._key(batch)))
        chosen = shape.tuner.cached()
        if chosen is not None:
            shape.step, shape.phase = self._step(chosen), "decided"
        return shape

    def _decided(self, shape, chosen):
        shape.step, shape.phase = self._step(chosen), "decided"

    @staticmethod
    def _timed(step, args):
        t0 = time.perf_counter()
        out = jax.block_until_ready(step(*args))
        return out, time.perf_counter() - t0

    def _tune(self, shape, args):
        tuner = shape.tuner
        reference = tuner.reference
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
            tried = [(c, self._donation_safe(args)) for c in tuner.candidates[1:]]
            out = jax.block_until_ready(self._step(reference)(*args))
            expected = jax.tree_util.tree_leaves(out)
            shape.contenders = [(reference, [])]
            for candidate, candidate_args in tried:
                try:
                    t0 = time.perf_counter()
                    got = jax.block_until_ready(self._step(candidate)(*candidate_args))
                    tuner.record_compile(candidate, time.perf_counter() - t0)
                except Exception as exc:   # noqa: BLE001 - an option this XLA lacks: skip the candidate
                    tuner.record_error(candidate, exc)
                    continue
                if tuner.record_check(candidate, agrees=tuner_lib.outputs_agree(
                        expected, jax.tree_util.tree_leaves(got), self.RTOL)):
                    shape.contenders.append((candidate, []))
            if len(shape.contenders) == 1:
                tuner.record_time(reference, shape.counted_s / max(shape.counted, 1), shape.counted)
                self._decided(shape, tuner.decide(reason="no other candidate agrees with the reference"))
            else:
                shape.phase = "compare"
            return out
        # compare: the contenders take turns on the caller's batches
        candidate, times = shape.contenders[shape.turn % len(shape.contenders)]
        shape.turn += 1
        out, seconds = self._timed(self._step(candidate), args)
        if shape.turn > len(shape.contenders):
            times.append(seconds)      # each contender's first turn is not counted (measured up to 1.5x slower)
        if all(len(t) >= self.MAX_CALLS or (len(t) >= self.MIN_CALLS and sum(t) >= self.MIN_SECONDS)
               for _, t in shape.contenders):
            for c, t in shape.contenders:
                tuner.record_time(c, statistics.median(t), len(t))
            self._decided(shape, tuner.decide())
        return out
