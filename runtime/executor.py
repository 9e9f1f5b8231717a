"""What fit's loop hands its executions to: "run this execution from this state" -> the new state.

    executor = Executor(compiled, strategy)          a fixed strategy (compile(steps_per_execution=N))
    executor = TuningExecutor(compiled, model, ...)  steps_per_execution="auto": chooses while fit trains
    executor.steps_per_execution()                   asked before each execution is formed
    executor.run(state, x, y, sw) -> state           one execution (a batch, or executions.StackedBatches)
    executor.epoch_end(state)                        between epochs (validation and callbacks are not timed)
    executor.to_base(state) / executor.in_base(state)  the state in the trainer's program's layout (see below)
    executor.strategy / executor.decision            the strategy in use; the decision record (tuning only)

Layouts: a strategy's program may lay out the train state differently from the trainer's own program (a
scanned-blocks program keeps each weight kind of the blocks stacked, runtime/lowering.py). The executor holds the
state in the layout of the strategy that ran last and converts it when another strategy runs (once per switch,
not per step); `to_base` gives the state back in the trainer's layout (fit calls it at each epoch's end, before
validation and the write-back), `in_base` the same without changing what the executor holds (a callback's
mid-epoch `sync_live`).

TuningExecutor tunes on fit's own batches and state, so nothing is computed twice except one check execution
per candidate. The candidates (strategies.fit_candidates, the reference first): on CPU a per-step jit compiled
for a quick start (platform_options.QUICK_CPU_OPTIONS), the per-step jit, a scan of 16 steps (not for conv
models on CPU, where a scan of conv gradients measured 7-23x slower), all of the model's own program, and for a
model with runs of repeated blocks the other block program: the unrolled one when the model's own program scans
them (scan_repeated_blocks' "auto" does for long runs in train mode: compile time flat in depth), else the
scanned one. The reference trains the first
batches (its first step is fit's normal first step) and is timed through fit's real loop (host copies and
stacking included). If the rest of the fit at the reference's speed is shorter than PAYOFF x compiling the
others (each estimated at the reference's first step), tuning stops there. Otherwise each other candidate is
compiled, checked once against the reference on the same batch(es) from the same state (tuner.update_mismatch
<= 1e-2), and timed on the following batches; then runtime/tuner.py decides on the predicted time of the rest of
the fit (remaining batches x step time, plus compile time where not yet compiled) and caches the decision; a
later fit of the same model and batch shape starts with it (one compilation, no tuning).
"""
import time

import jax

from fncompiler.passes import scan_blocks
from . import host_eval, lowering, tuner as tuner_lib
from .executions import StackedBatches, batches_in
from .platform_options import QUICK_MAX_PROGRAM_NODES
from .strategies import QUICK, Strategy, fit_candidates

__all__ = ["Executor", "TuningExecutor", "fixed"]


class Executor:
    """Runs every execution with one strategy."""

    def __init__(self, compiled, strategy):
        self.compiled = compiled
        self.strategy = strategy
        self.decision = None
        self.layout = None          # the train lowering whose layout the state is in (None: the trainer's)

    def steps_per_execution(self):
        return self.strategy.steps_per_execution

    def _base(self):
        return self.compiled.lowered("train")

    def _into(self, strategy, state):
        """`state` in `strategy`'s program layout (converted only when it is in another one)."""
        target = strategy.program(self.compiled).lowered("train")
        current = self.layout if self.layout is not None else self._base()
        if target is not current:
            state = lowering.convert_state(current, target, state)
            self.layout = target
        return state

    def _run(self, strategy, state, x, y, sw, per_step=False):
        state = self._into(strategy, state)
        if per_step:
            return strategy.run_per_step(self.compiled, state, x, y, sw)
        return strategy.run(self.compiled, state, x, y, sw)

    def in_base(self, state):
        """The state in the trainer's program layout, leaving what the executor holds as it is."""
        if self.layout is None or self.layout is self._base():
            return state
        return lowering.convert_state(self.layout, self._base(), state)

    def to_base(self, state):
        """The state in the trainer's program layout; the executor holds it so from now on."""
        state = self.in_base(state)
        self.layout = None
        return state

    def run(self, state, x, y, sw):
        return self._run(self.strategy, state, x, y, sw)

    def epoch_end(self, state):
        pass


def fixed(compiled, steps_per_execution):
    """The executor of compile(steps_per_execution=N)."""
    n = int(steps_per_execution)
    return Executor(compiled, Strategy("per-step jit" if n == 1 else f"scan x{n}", n))


class TuningExecutor(Executor):
    """Chooses the strategy while fit trains (see the module docstring)."""

    MIN_TIMED_BATCHES = 4        # and at least MIN_TIMED_SECONDS of them, unless `max_timed` are reached
    MIN_TIMED_SECONDS = 0.1
    MAX_TIMED_BATCHES = 256
    # Try a candidate when the rest of the fit takes >= PAYOFF x its estimated compile time. It was 0.25 (the
    # decision is remembered, so later fits of the same model start with it at no cost), but a fit tuned below
    # 1x cannot win back the compile within itself, and such short fits lost: benchmarks/depth.py (2026-12-04,
    # 24-step 3-epoch fits, fresh cache) measured the default fit of 4 and 8 transformer blocks 1.10x / 1.11x
    # the forced programs' fits, each having compiled a second program for a rest of ~0.2-0.5 s.
    PAYOFF = 1.0

    def __init__(self, compiled, steps_available, allow_scan=True, total_batches=None, memory=None,
                 partial_last_batch=False):
        """`steps_available`: batches per epoch (None: unknown); `total_batches`: batches this fit trains on (None:
        unknown, e.g. a generator: not tuned, started with the full compilation); `memory`: a dict kept across
        fits of one model ("first_step_s": the first tuned fit's first step, compilation included);
        `partial_last_batch`: each epoch ends with a smaller batch (a second input shape, which a strategy
        compiles once more when it first meets it)."""
        platform = jax.devices()[0].platform
        known = total_batches is not None
        blocks = None              # a run of repeated blocks whose program the user did not choose
        if known and "scan_blocks" not in compiled.pass_options:
            runs = compiled.repeated_block_runs("train")
            blocks = None if runs is None else ("scanned" if runs[1] else "unrolled")
        self.tuner = None
        candidates = fit_candidates(compiled.model, platform, steps_available, allow_scan, blocks=blocks,
                                    quick=known)
        super().__init__(compiled, candidates[0])
        self.candidates = candidates
        self.allow_scan = allow_scan
        self.total_batches = total_batches
        self.partial_last_batch = bool(partial_last_batch)
        self.steps_available = steps_available
        self.memory = memory if memory is not None else {}
        self.executed = 0
        self.first_step_s = None
        self.max_timed = self.MAX_TIMED_BATCHES
        if steps_available:        # each candidate times at most about a quarter of an epoch's batches
            self.max_timed = max(self.MIN_TIMED_BATCHES,
                                 min(self.MAX_TIMED_BATCHES, steps_available // (2 * len(candidates))))
        self.index = 0
        self.phase = "start"       # start -> first -> timing -> (next: check -> timing) ... -> decided
        self.rows = None           # the batch size of full batches
        self._timed = 0
        self._banked = 0.0
        self._t0 = None
        self._check_s = None       # the current candidate's check execution (its compilation included)

    # -- what the loop asks ----------------------------------------------------------------------------
    def steps_per_execution(self):
        if self.phase == "decided" or (self.phase in ("start", "first") and self.index == 0):
            return self.strategy.steps_per_execution if self.phase == "decided" else 1
        return self.tuner.candidates[self.index].steps_per_execution

    @property
    def reference(self):
        return self.tuner.reference

    def _finish(self, chosen):
        self.strategy = chosen
        self.decision = self.tuner.decision
        self.phase = "decided"

    def _decide(self, remember=True, reason=None):
        remaining = None if self.total_batches is None else max(self.total_batches - self.executed, 0)
        self._finish(self.tuner.decide(remaining, current=self.reference, remember=remember, reason=reason,
                                       shape_compiles=self._shape_compiles(remaining)))

    def _shape_compiles(self, remaining):
        """Per candidate, the compilations its rest of the fit adds for a batch shape it has not met: the epochs'
        smaller last batch, which the candidates were not timed on, and which the reference met already once an
        epoch has ended (a switch that saves less than that compile does not pay)."""
        if not self.partial_last_batch or not remaining:
            return {}
        met = self.steps_available is not None and self.executed >= self.steps_available
        return {c.name: 0 if (c is self.reference and met) else 1 for c in self.tuner.candidates}

    # -- timing ------------------------------------------------------------------------------------------
    def _enough(self, elapsed):
        """Enough timed batches: `max_timed`, or MIN_TIMED_BATCHES over MIN_TIMED_SECONDS, or (slow steps, e.g.
        convolutions on CPU) two batches over 4x MIN_TIMED_SECONDS."""
        return (self._timed >= self.max_timed
                or (self._timed >= self.MIN_TIMED_BATCHES and elapsed >= self.MIN_TIMED_SECONDS)
                or (self._timed >= 2 and elapsed >= 4 * self.MIN_TIMED_SECONDS))

    def _start_timing(self):
        self.phase = "timing"
        self._t0, self._banked, self._timed = None, 0.0, 0

    def _pause(self, state):
        """Stop the clock (after `state` is computed) until the next timed execution."""
        if self._t0 is not None:
            jax.block_until_ready(state)
            self._banked += time.perf_counter() - self._t0
            self._t0 = None

    def epoch_end(self, state):
        if self.phase == "timing":
            self._pause(state)

    def _compile_estimate(self, candidate):
        """A candidate's compile time before it is compiled: the reference's first step, for a candidate with
        other pass options (the other block program) scaled by its train graph's size against the reference's
        (an unrolled deep model is many times its scanned program: passes/scan_blocks.program_size)."""
        first = self.first_step_s or 0.0
        if candidate.pass_options == self.reference.pass_options:
            return first
        size = lambda strategy: scan_blocks.program_size(strategy.program(self.compiled).graph("train"))
        return first * max(1.0, size(candidate) / max(size(self.reference), 1))

    def _worth_tuning(self, seconds_per_batch):
        """Tuning costs about one compilation per candidate: a candidate is tried only when the rest of this fit,
        at the reference's speed, takes at least PAYOFF x its estimated compile time (the others are skipped,
        with why, in the decision record); tuning goes on if any candidate is left."""
        remaining_batches = self.total_batches - self.executed
        remaining = remaining_batches * seconds_per_batch
        for candidate in list(self.tuner.candidates[1:]):
            estimate = self._compile_estimate(candidate)
            if remaining < self.PAYOFF * estimate:
                self.tuner.skip(candidate, f"the rest of this fit ({remaining_batches} batches, ~{remaining:.3g} s) "
                                f"is shorter than {self.PAYOFF} x its estimated compile time ({estimate:.3g} s)",
                                estimate)
        return len(self.tuner.candidates) > 1

    # -- the loop's entry point --------------------------------------------------------------------------
    def run(self, state, x, y, sw):
        self.executed += batches_in(x)
        if self.phase == "decided":
            return self._run(self.strategy, state, x, y, sw)
        if self.phase == "start":
            return self._first(state, x, y, sw)
        if self.phase == "first":
            if len(self.tuner.candidates) == 1 or self.total_batches is None:   # nothing to choose, or no length
                self._decide(remember=False, reason="nothing to choose from" if len(self.tuner.candidates) == 1
                             else "a fit of unknown length is not tuned")
                return self._run(self.strategy, state, x, y, sw)
            self._start_timing()
        candidate = self.tuner.candidates[self.index]
        stacked = isinstance(x, StackedBatches)
        odd = not stacked and x and int(x[0].shape[0]) != self.rows          # e.g. the last, partial batch
        if odd or stacked != (candidate.steps_per_execution > 1):   # or a leftover single batch in a scan trial
            self._pause(state)                                      # not timed
            return self._run(self.reference, state, x, y, sw, per_step=True)
        if self.phase == "check":
            return self._check(candidate, state, x, y, sw)
        return self._time(candidate, state, x, y, sw)

    def _first(self, state, x, y, sw):
        """The very first execution: a cached decision, or fit's normal first step with the reference (if this XLA
        lacks one of the reference's options, the next candidate is the reference)."""
        arrays = [a for a in list(x) + list(y) if a is not None]
        self.rows = int(arrays[0].shape[0]) if arrays else None
        key = (tuner_lib.signature(self.compiled.model, arrays, self.compiled.compile_config)
               + ("" if self.allow_scan else "-per-step-only"))
        self.tuner = tuner_lib.Tuner(self.candidates, key)
        cached = self.tuner.cached()
        if cached is not None:                   # decided by an earlier fit: no tuning
            self._finish(cached)
            return self._run(self.strategy, state, x, y, sw)
        t0 = time.perf_counter()
        self._drop_quick_if_large()
        while True:
            try:
                state = self._run(self.reference, state, x, y, sw)
                break
            except Exception as exc:    # noqa: BLE001 - only an unknown XLA option is handled here
                if "compile option" not in str(exc) or not self.reference.compiler_options:
                    raise
                if not self.tuner.drop_reference(exc):
                    raise
        self.strategy = self.reference
        if len(self.tuner.candidates) > 1 and self.total_batches is not None:
            jax.block_until_ready(state)
            # The cost model's compile time: this first step's, or, when an earlier fit already compiled its
            # program, that fit's first step.
            measured = time.perf_counter() - t0
            self.first_step_s = max(measured, self.memory.get("first_step_s") or 0.0)
            self.memory.setdefault("first_step_s", measured)
        self.phase = "first"                     # (not before: the first step waits for nothing)
        return state

    def _drop_quick_if_large(self):
        """The quick-compiling reference only for a train graph of at most QUICK_MAX_PROGRAM_NODES nodes (a
        scanned run counts as its one block, passes/scan_blocks.program_size): larger ones compile slower with
        its options (platform_options); then the next candidate (the same step with the full options) is the
        reference and the first step."""
        if not self.reference.name.startswith(QUICK) or len(self.tuner.candidates) < 2:
            return
        nodes = scan_blocks.program_size(self.reference.program(self.compiled).graph("train"))
        if nodes > QUICK_MAX_PROGRAM_NODES:
            self.tuner.skip(self.reference, f"the train graph has {nodes} nodes (> {QUICK_MAX_PROGRAM_NODES}), "
                                            "where the quick options compile slower, not faster")

    def _next(self):
        self.index += 1
        self.phase = "check"
        if self.index >= len(self.tuner.candidates):
            self._decide()

    def _check(self, candidate, state, x, y, sw):
        """The candidate's first execution, from a copy of the state, against the reference's on the same
        batch(es); the reference's result trains on."""
        try:
            state = self._into(self.reference, state)
            before = host_eval.copy_tree(state)
            reference_low = self.layout if self.layout is not None else self._base()
            candidate_low = candidate.program(self.compiled).lowered("train")
            t0 = time.perf_counter()
            start = lowering.convert_state(reference_low, candidate_low, host_eval.copy_tree(state))
            got = jax.block_until_ready(candidate.run(self.compiled, start, x, y, sw))
            self._check_s = time.perf_counter() - t0
            got = lowering.convert_state(candidate_low, reference_low, got)     # compared in one layout
        except Exception as exc:                 # an option this XLA lacks: skip the candidate
            self.tuner.record_error(candidate, exc)
            state = self._run(self.reference, state, x, y, sw, per_step=True)
            self._next()
            return state
        state = self._run(self.reference, state, x, y, sw, per_step=True)
        if not self.tuner.record_check(candidate, tuner_lib.update_mismatch(before[0], state[0], got[0])):
            self._next()
            return state
        self._start_timing()
        return state

    def _time(self, candidate, state, x, y, sw):
        """Train with the candidate through fit's own loop until enough batches are timed."""
        if self._t0 is None:
            jax.block_until_ready(state)
            self._t0 = time.perf_counter()
        state = self._run(candidate, state, x, y, sw)
        self._timed += batches_in(x)
        if not self._enough(self._banked + time.perf_counter() - self._t0):
            return state
        jax.block_until_ready(state)
        elapsed = self._banked + time.perf_counter() - self._t0
        if not self._enough(elapsed):
            return state
        step_s = elapsed / self._timed
        self.tuner.record_time(candidate, step_s, self._timed)
        if self.index == 0:
            self.tuner.record_compile(candidate, (self.first_step_s or 0.0) - step_s)
            if not self._worth_tuning(step_s):
                self._decide(remember=False, reason=(
                    f"the rest of this fit ({self.total_batches - self.executed} batches) is shorter than "
                    f"{self.PAYOFF} x compiling any other candidate (first step {self.first_step_s:.2f} s; "
                    "estimates in the report): not tuned"))
                return state
        else:
            self.tuner.record_compile(candidate, self._check_s - step_s * batches_in(x))
        self.strategy = candidate
        self._next()
        return state
