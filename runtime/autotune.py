"""The execution-strategy autotuner (`compile(steps_per_execution="auto")`), run online inside `fit`.

Candidates: one jitted step per batch; N steps as one `lax.scan` over N stacked batches (not for
convolutional models on XLA:CPU, where a scan of conv gradients measured 7-23x slower). On CPU the first
candidate, the reference, is the per-step jit compiled for a quick start (QUICK_CPU_OPTIONS: XLA's elemental
emitters instead of its MLIR fusion emitters, which compile one LLVM module per fusion): fit.py's four train
steps compile in 0.60-0.78x the time and run 1.0-1.3x slower (benchmarks/xla_options.py), so fit's first step
comes sooner and the tuner decides, on measurements, whether the full compilation pays for the rest of the fit.
CPU train steps of models with convolutions are compiled with an XLA:CPU option (CPU_CONV_OPTIONS) that
measured 1.1-2x faster for conv training.

Tuning happens on fit's own batches and state, so nothing is computed twice except one check execution per
candidate: the first candidate trains on the first batches (its first step is fit's normal first step) and is
timed through fit's real loop (host copies and stacking included); then each other candidate is compiled,
checked once against the first on the same batch(es) from the same state (its weight update must match to
1e-2 of the update's size: comparing weights after many steps rejects correct options, because RMSprop-like
updates amplify rounding), and timed on the following batches. The fastest correct one (the first unless a
candidate is at least 5% faster) is kept for the rest of the fit; a fit too short to pay for compiling the
others keeps the first. XLA options chosen this way apply to the train steps only (`Trainer.train_compiled`);
eval and predict choose their own per batch shape (runtime/inference_tuner.py: the conv option's effect on
inference depends on the batch size). Decisions are cached per model signature, batch shape and device, in memory and
in `$FNCOMPILER_CACHE_DIR/autotune.json` (default `~/.cache/fncompiler`); a later fit looks its decision up
before its first step and starts with the decided strategy (one compilation, no tuning).
"""
import hashlib
import json
import os
import time

import jax
import numpy as np

from fncompiler import ir
from . import host_eval

CONV_OPS = {"Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
            "DepthwiseConv2D", "SeparableConv2D", "ConvLSTM2D"}
CPU_CONV_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}
# The first steps' compilation on CPU: elemental IR emitters, not one MLIR module per fusion (see above).
QUICK_CPU_OPTIONS = {"xla_cpu_use_fusion_emitters": False}
QUICK = "per-step jit, quick compile"
SCAN_STEPS = 16
_MEMORY = {}


def cache_path():
    root = os.environ.get("FNCOMPILER_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "fncompiler")
    return os.path.join(root, "autotune.json")


def _structure(graph):
    """The IR's structure without its names: each node's op, config (minus `name` and `seed`: a layer built
    with seed=None draws one, and neither changes the program's speed), arguments, inputs (by position) and
    output specs, in topological order. Two models built alike get the same text, in any process."""
    order = ir.topo_order(graph)
    position = {nid: i for i, nid in enumerate(order)}
    lines = []
    for nid in order:
        data = graph.nodes[nid]
        config = {k: v for k, v in (data.get("config") or {}).items() if k not in ("name", "seed")}
        inputs = [(position[src], i) for src, i in ir.input_edges(graph, nid)] if data["kind"] != "input" else []
        lines.append(json.dumps([data["op"], config, repr(data.get("arguments")), inputs,
                                 [repr(s) for s in data["output_specs"]]], sort_keys=True, default=repr))
    lines.append(repr([(position[n], i) for n, i in graph.graph["outputs"]]))
    return "\n".join(lines)


def signature(model, batch, compile_config=None):
    """A key for the decision: the model's structure (not its names), the compile arguments, the batch shapes
    and the device kind."""
    text = _structure(model.graph) + repr([(tuple(a.shape), str(a.dtype)) for a in batch if a is not None])
    if compile_config is not None:
        text += json.dumps(compile_config.get_config(), sort_keys=True, default=repr)
    device = jax.devices()[0]
    from .compiled import default_compiler_options     # decisions were measured under these options
    text += json.dumps(default_compiler_options(device.platform), sort_keys=True)
    return hashlib.sha256(f"{text}|{device.platform}|{device.device_kind}".encode()).hexdigest()[:24]


def _load():
    try:
        with open(cache_path()) as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def store(key, decision):
    """Remember a decision under `key`: in memory and in the cache file (best effort: a read-only home keeps
    the in-memory one)."""
    _MEMORY[key] = decision
    path = cache_path()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = _load()
        data[key] = decision
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(data, fh, indent=1)
        os.replace(tmp, path)
    except OSError:
        pass   # a read-only home: the in-memory cache still works


def lookup(key, trials=None, fields=("name", "compiler_options")):
    """The decision remembered under `key`, or None. With `trials`, only a decision that is one of them (equal on
    `fields`), returned with the trial's values: the cache file is the user's, and an entry from another
    version, a damaged or an edited file must not apply options (XLA debug options can write files) or
    strategies this tuner would not try."""
    decision = _MEMORY.get(key)
    if decision is None:
        decision = _load().get(key)
        if decision is not None:
            _MEMORY[key] = decision
    if decision is None or trials is None:
        return decision
    if not isinstance(decision, dict):
        return None
    for trial in trials:
        if all(decision.get(f) == trial.get(f) for f in fields):
            return {**decision, **{f: trial[f] for f in fields}}
    return None


def has_conv(model):
    """Whether the model computes a convolution: an op of its IR, or a layer (or a subclass of one) anywhere
    inside it (a subclassed model is a single IR node)."""
    if any(ir.count_ops(model.graph).get(op) for op in CONV_OPS):
        return True
    seen, stack = set(), list(getattr(model, "layers", None) or [])
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if any(cls.__name__ in CONV_OPS for cls in type(layer).__mro__):
            return True
        stack.extend(getattr(layer, "_layers", None) or [])
        stack.extend(getattr(layer, "layers", None) or [])
    return False


def option_candidates(model, platform):
    """The XLA option sets to try for one step called on its own (compile_model's train-step tuner, the inference
    tuner), the model's own first: on CPU for models with convolutions, also the conv option."""
    out = [{"name": "default options", "compiler_options": {}}]
    if platform == "cpu" and has_conv(model):
        out.append({"name": "conv option (ynn off)", "compiler_options": dict(CPU_CONV_OPTIONS)})
    return out


def candidates(model, platform, steps_available, allow_scan=True):
    """The strategies to try, the reference (the first step's) first. `steps_available`: batches per epoch (None if
    unknown, e.g. a generator without steps_per_epoch). On CPU the quick-compiling per-step jit comes first."""
    if platform == "cpu" and has_conv(model):
        # Conv training on XLA:CPU: the conv option in both (it measured 1.1-2x faster per train step on
        # fit.py's two conv models; eval and predict keep XLA's default), no scan (7-23x slower).
        quick = {**QUICK_CPU_OPTIONS, **CPU_CONV_OPTIONS}
        return [{"name": QUICK, "steps_per_execution": 1, "compiler_options": quick},
                {"name": "per-step jit + ynn off", "steps_per_execution": 1, "compiler_options": CPU_CONV_OPTIONS}]
    out = []
    if platform == "cpu":
        out.append({"name": QUICK, "steps_per_execution": 1, "compiler_options": dict(QUICK_CPU_OPTIONS)})
    out.append({"name": "per-step jit", "steps_per_execution": 1, "compiler_options": {}})
    enough = steps_available is None or steps_available >= 2 * SCAN_STEPS
    if allow_scan and enough:
        out.append({"name": f"scan x{SCAN_STEPS}", "steps_per_execution": SCAN_STEPS, "compiler_options": {}})
    return out


def fastest(timed, key, margin):
    """Of timed, correct candidates (the reference's entry first, when it was timed), the one to keep: the first,
    unless a later one takes less than `margin` of the time (`entry[key]`) of the best so far. Shared by fit's
    online tuner and compile_model's step tuner."""
    best = timed[0]
    for entry in timed[1:]:
        if entry[key] < margin * best[key]:
            best = entry
    return best


def update_mismatch(before, reference, candidate):
    """||candidate update - reference update|| / ||reference update|| over all trainable weights (0 when both
    left the weights unchanged)."""
    diff = ref = 0.0
    for b, r, c in zip(before, reference, candidate):
        b, r, c = (np.asarray(a, np.float64) for a in (b, r, c))
        if not np.all(np.isfinite(c)):
            return float("inf")
        diff += float(np.sum((c - r) ** 2))
        ref += float(np.sum((r - b) ** 2))
    if ref == 0.0:
        return 0.0 if diff == 0.0 else float("inf")
    return float(np.sqrt(diff / ref))


class OnlineTuner:
    """Chooses the execution strategy while `fit` trains (see the module docstring). The fit loop asks
    `steps_per_execution()` before forming each execution and hands every execution to `run`, which trains
    on it (with the strategy under trial) and returns the new state."""

    MIN_TIMED_BATCHES = 4        # and at least MIN_TIMED_SECONDS of them, unless `max_timed` are reached
    MIN_TIMED_SECONDS = 0.1
    MAX_TIMED_BATCHES = 256
    MARGIN = 0.95                # a candidate must take < 95% of the reference's time per batch
    TOLERANCE = 1e-2             # largest accepted update mismatch (see update_mismatch)
    # Tune when the rest of the fit takes >= PAYOFF x the candidates' compile time. Below 1 because the decision
    # is remembered: later fits of the same model start with it at no cost.
    PAYOFF = 0.25

    def __init__(self, trainer, steps_available, allow_scan=True, total_batches=None):
        self.trainer = trainer
        self.total_batches = total_batches     # batches this fit will train on (None: unknown, e.g. a generator)
        self._executed = 0
        self._first_step_s = None
        self.allow_scan = allow_scan
        platform = jax.devices()[0].platform
        self.trials = candidates(trainer.model, platform, steps_available, allow_scan)
        if total_batches is None:     # a fit of unknown length is not tuned: start with the full compilation
            self.trials = [t for t in self.trials if t["name"] != QUICK]
        # Each trial times at most about a quarter of an epoch's batches (when the epoch length is known), so
        # tuning ends within the first epoch or two.
        self.max_timed = self.MAX_TIMED_BATCHES
        if steps_available:
            self.max_timed = max(self.MIN_TIMED_BATCHES,
                                 min(self.MAX_TIMED_BATCHES, steps_available // (2 * len(self.trials))))
        self.index = 0
        self.phase = "start"     # start -> first -> timing -> (next trial: check -> timing) ... -> decided
        self.decision = None
        self.report = []
        self.key = None
        self._timed = 0
        self._banked = 0.0
        self._t0 = None
        self._entry = None       # the trial being timed, after its check
        self._rows = None        # the batch size of full batches

    # -- what the loop asks ------------------------------------------------------------------------
    def steps_per_execution(self):
        if self.decision is not None:
            return int(self.decision["steps_per_execution"])
        if self.phase in ("start", "first") and self.index == 0:
            return 1
        return int(self.trials[self.index]["steps_per_execution"])

    # -- helpers -----------------------------------------------------------------------------------
    def _cm(self, trial):
        """The trial's CompiledModel: the trainer's own, or its variant with the trial's XLA options (kept by the
        trainer's CompiledModel, so later fits reuse its compiled steps)."""
        return self.trainer.compiled.with_options(trial["compiler_options"])

    @property
    def reference(self):
        """The reference strategy's program: the first trial's (it trains the first batches)."""
        return self._cm(self.trials[0])

    def _first_execute(self, state, bx, by, bsw):
        """The first step, with the first trial's program; if this XLA lacks one of its options (they are
        debug options, which XLA versions add and drop), that trial is dropped and the next one is the
        reference."""
        while True:
            try:
                return self._execute(self.reference, state, bx, by, bsw)
            except Exception as exc:    # noqa: BLE001 - only an unknown XLA option is handled here
                if "compile option" not in str(exc) or len(self.trials) == 1 or not self.trials[0]["compiler_options"]:
                    raise
                self.report.append({**self.trials.pop(0), "error": f"{type(exc).__name__}: {exc}"[:300]})

    @staticmethod
    def _execute(cm, state, bx, by, bsw):
        from .trainer import run_execution
        return run_execution(cm, state, bx, by, bsw)

    def _reference_execute(self, state, bx, by, bsw):
        """The reference strategy (one step per batch) on an execution, also on a stacked group."""
        from .trainer import _Group
        if not isinstance(bx, _Group):
            return self._execute(self.reference, state, bx, by, bsw)
        step = self.reference.step("train")
        for j in range(bx.xs[0].shape[0]):
            state = step(state, [a[j] for a in bx.xs], [None if a is None else a[j] for a in bx.ys],
                         None if bx.sws is None else bx.sws[j])
        return state

    @staticmethod
    def _batches_in(bx):
        from .trainer import _Group
        return int(bx.xs[0].shape[0]) if isinstance(bx, _Group) else 1

    def _finish_trial(self, state, entry):
        self.report.append(entry)
        self.index += 1
        self.phase = "check"
        if self.index >= len(self.trials):
            self._decide()
        return state

    def _decide(self, remember=True):
        timed = [r for r in self.report if r.get("agrees") and r.get("seconds_per_batch") is not None]
        chosen = fastest(timed, "seconds_per_batch", self.MARGIN) if timed else {**self.trials[0]}
        self.decision = {"name": chosen["name"], "steps_per_execution": chosen["steps_per_execution"],
                         "compiler_options": chosen["compiler_options"], "report": self.report}
        if self.key is not None and remember:     # only real measurements are remembered
            store(self.key, self.decision)
        self._apply()

    def _apply(self):
        trial = next((t for t in self.trials if t["name"] == self.decision["name"]), None)
        if trial is None:
            trial = {"name": self.decision["name"], "compiler_options": self.decision["compiler_options"]}
        cm = self._cm(trial)
        self.trainer.train_compiled = None if cm is self.trainer.compiled else cm     # (eval / predict: their own)
        self.trainer.autotune_decision = self.decision

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
        """Validation and callbacks run between epochs: a measurement in progress pauses across them."""
        if self.decision is None and self.phase == "timing":
            self._pause(state)

    # -- the loop's entry point --------------------------------------------------------------------
    def run(self, state, bx, by, bsw):
        self._executed += self._batches_in(bx)
        return self._run(state, bx, by, bsw)

    def _worth_tuning(self, seconds_per_batch):
        """Tuning costs about one more compilation per candidate (the first step's time is the measure of one):
        it is done only when the rest of this fit, at the reference's speed, takes longer than that."""
        if self.total_batches is None:
            return False
        remaining = (self.total_batches - self._executed) * seconds_per_batch
        return remaining >= self.PAYOFF * (len(self.trials) - 1) * (self._first_step_s or 0.0)

    def _run(self, state, bx, by, bsw):
        from .trainer import _Group
        if self.decision is not None:
            return self._execute(self.trainer._train_cm(), state, bx, by, bsw)
        if self.phase == "start":                    # the very first execution: fit's normal first step
            arrays = [a for a in list(bx) + list(by) if a is not None]
            self._rows = int(arrays[0].shape[0]) if arrays else None
            self.key = (signature(self.trainer.model, arrays, self.trainer.cfg)
                        + ("" if self.allow_scan else "-per-step-only"))
            cached = lookup(self.key, self.trials, ("name", "steps_per_execution", "compiler_options"))
            if cached is not None:                   # decided by an earlier fit: no tuning
                self.decision = cached
                self._apply()
                return self._execute(self.trainer._train_cm(), state, bx, by, bsw)
            t0 = time.perf_counter()
            state = self._first_execute(state, bx, by, bsw)
            if len(self.trials) > 1 and self.total_batches is not None:
                jax.block_until_ready(state)
                # The cost model's compile time: this first step's, or, when an earlier fit already compiled
                # its program, that fit's first step (the trainer remembers it).
                measured = time.perf_counter() - t0
                self._first_step_s = max(measured, self.trainer.first_step_seconds or 0.0)
                if self.trainer.first_step_seconds is None:
                    self.trainer.first_step_seconds = measured
            self.phase = "first"                     # (not before: the first step waits for nothing)
            return state
        if self.phase == "first":
            if len(self.trials) == 1 or self.total_batches is None:     # nothing to choose, or no cost model
                self._decide(remember=False)
                return self._execute(self.trainer._train_cm(), state, bx, by, bsw)
            self._start_timing()
        trial = self.trials[self.index]
        grouped = isinstance(bx, _Group)
        odd = not grouped and bx and int(bx[0].shape[0]) != self._rows       # e.g. the last, partial batch
        if odd or grouped != (trial["steps_per_execution"] > 1):  # or a leftover single batch in a scan trial
            self._pause(state)                                # not timed
            return self._reference_execute(state, bx, by, bsw)
        if self.phase == "check":
            entry = dict(trial)
            try:
                cm = self._cm(trial)
                before = host_eval.copy_tree(state)
                candidate = self._execute(cm, host_eval.copy_tree(state), bx, by, bsw)
            except Exception as exc:                 # an option this XLA lacks: skip the candidate
                entry["error"] = f"{type(exc).__name__}: {exc}"[:300]
                return self._finish_trial(self._reference_execute(state, bx, by, bsw), entry)
            state = self._reference_execute(state, bx, by, bsw)
            mismatch = update_mismatch(before[0], state[0], candidate[0])
            entry["update_mismatch"] = mismatch
            if not mismatch <= self.TOLERANCE:
                entry["agrees"] = False
                return self._finish_trial(state, entry)
            self._entry = entry
            self._start_timing()
            return state
        # timing: train with the trial's strategy through fit's own loop
        if self._t0 is None:
            jax.block_until_ready(state)
            self._t0 = time.perf_counter()
        state = self._execute(self._cm(trial), state, bx, by, bsw)
        self._timed += self._batches_in(bx)
        if self._enough(self._banked + time.perf_counter() - self._t0):
            jax.block_until_ready(state)
            elapsed = self._banked + time.perf_counter() - self._t0
            if self._enough(elapsed):
                entry = self._entry if self._entry is not None else dict(trial)
                entry.update(agrees=True, seconds_per_batch=elapsed / self._timed, timed_batches=self._timed)
                self._entry = None
                if self.index == 0 and not self._worth_tuning(entry["seconds_per_batch"]):
                    entry["note"] = (f"the rest of this fit ({self.total_batches - self._executed} batches) is "
                                     f"shorter than compiling the other candidates ({self._first_step_s:.2f} s "
                                     "each): not tuned")
                    self.report.append(entry)
                    self._decide(remember=False)
                    return state
                return self._finish_trial(state, entry)
        return state
