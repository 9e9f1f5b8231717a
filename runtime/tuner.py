"""The one tuner: given candidate strategies and a reference, it checks, times, decides and caches.

fit (runtime/executor.py), the train step of `compile_model(autotune=True)` and predict / evaluate
(runtime/tuned_steps.py) all tune through a `Tuner`; they differ only in where their measurements come from
(fit's own batches as it trains; copies of the caller's state; the caller's inference batches).

    tuner = Tuner(candidates, key)          # candidates: strategies.Strategy, the reference first
    tuner.cached()                          # a decision an earlier run stored under `key` (None: tune)
    tuner.record_check(c, mismatch)         # c's result against the reference's on the same input
    tuner.record_compile(c, seconds)        # c's compilation (its first call, minus one step)
    tuner.record_time(c, seconds, steps)    # c's measured seconds per step (batch, call)
    tuner.decide(remaining_steps, current)  # -> the chosen Strategy; tuner.record: the decision record

The decision minimises the predicted time of the rest of the work: for each agreeing, timed candidate
    predicted_total_s = (compile_s if not yet compiled else 0) + remaining_steps x step_s
and the current strategy is kept unless another predicts < MARGIN (95%) of its total. Without a known
remaining length (a generator, compile_model's step, predict) the rule compares step_s alone. The decision
record names the chosen strategy and, per candidate, the numbers it was chosen on (compile_s, step_s,
predicted_total_s, the remaining steps) and the reason. Decisions are cached per model signature, batch
shape, compile arguments and device: in memory and in `$FNCOMPILER_CACHE_DIR/autotune.json` (default
`~/.cache/fncompiler`). A cached decision is used only if it names one of the current candidates (the file is
the user's: an edited or stale entry must not apply XLA options this tuner would not try).
"""
import hashlib
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from fncompiler import ir
from .platform_options import default_compiler_options

__all__ = ["Tuner", "signature", "store", "lookup", "cache_path", "update_mismatch", "outputs_agree", "MARGIN",
           "TOLERANCE"]

MARGIN = 0.95       # another strategy must predict < 95% of the current one's time to replace it
TOLERANCE = 1e-2    # largest accepted train-update mismatch (update_mismatch)
_MEMORY = {}


# -- the cache --------------------------------------------------------------------------------------
def cache_path():
    root = os.environ.get("FNCOMPILER_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "fncompiler")
    return os.path.join(root, "autotune.json")


def structure_text(graph):
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
    """A key for a decision: the model's structure (not its names), the compile arguments, the batch shapes,
    fncompiler's default XLA options (decisions were measured under them) and the device kind."""
    text = structure_text(model.graph) + repr([(tuple(a.shape), str(a.dtype)) for a in batch if a is not None])
    if compile_config is not None:
        text += json.dumps(compile_config.get_config(), sort_keys=True, default=repr)
    device = jax.devices()[0]
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
            json.dump(data, fh, indent=1, default=repr)
        os.replace(tmp, path)
    except OSError:
        pass   # a read-only home: the in-memory cache still works


def lookup(key):
    """The decision remembered under `key` (a dict), or None."""
    decision = _MEMORY.get(key)
    if decision is None:
        decision = _load().get(key)
        if decision is not None:
            _MEMORY[key] = decision
    return decision if isinstance(decision, dict) else None


# -- checks against the reference ---------------------------------------------------------------------
def update_mismatch(before, reference, candidate):
    """||candidate update - reference update|| / ||reference update|| over all trainable weights (0 when both
    left the weights unchanged). Comparing weights after many steps would reject correct options (RMSprop-like
    updates amplify rounding), so candidates are checked on one execution from the same state."""
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


# -- the tuner ----------------------------------------------------------------------------------------
class Tuner:
    """Measurements of candidate strategies (the reference first) and the decision between them."""

    def __init__(self, candidates, key=None, margin=None):
        if not candidates:
            raise ValueError("Tuner: no candidate strategies were given; pass the reference strategy first.")
        self.candidates = list(candidates)
        self.tried = list(candidates)      # (a reference that failed to compile stays in the record)
        self.key = key
        self.margin = MARGIN if margin is None else margin
        self.entries = {c.name: {"name": c.name, **c.describe()} for c in self.candidates}
        self.decision = None            # the decision record, once decided
        self.chosen = None              # the chosen Strategy

    @property
    def reference(self):
        return self.candidates[0]

    def entry(self, candidate):
        return self.entries[candidate.name]

    def drop_reference(self, exc):
        """The reference failed to compile (an XLA option this version lacks): the next candidate becomes the
        reference. Returns False when there is none."""
        self.record_error(self.candidates[0], exc)
        if len(self.candidates) == 1:
            return False
        self.candidates.pop(0)
        return True

    def skip(self, candidate, reason, estimated_compile_s=None):
        """Leave a candidate out before it is compiled (recorded with why, and its estimated compile time)."""
        entry = self.entry(candidate)
        entry["skipped"] = reason
        if estimated_compile_s is not None:
            entry["estimated_compile_s"] = float(estimated_compile_s)
        self.candidates = [c for c in self.candidates if c is not candidate]

    # -- measurements ---------------------------------------------------------------------------------
    def record_error(self, candidate, exc):
        self.entry(candidate)["error"] = f"{type(exc).__name__}: {exc}"[:300]

    def record_check(self, candidate, mismatch=None, agrees=None, tolerance=TOLERANCE):
        """The candidate's result against the reference's: a train update's mismatch (agrees when within
        `tolerance`), or `agrees` given directly (inference outputs, tuner.outputs_agree)."""
        entry = self.entry(candidate)
        if mismatch is not None:
            entry["update_mismatch"] = mismatch
            agrees = bool(mismatch <= tolerance)
        entry["agrees"] = bool(agrees)
        return entry["agrees"]

    def record_compile(self, candidate, seconds):
        entry = self.entry(candidate)
        entry["compile_s"] = max(float(seconds), 0.0)
        entry["compiled"] = True

    def record_time(self, candidate, seconds_per_step, steps):
        entry = self.entry(candidate)
        entry["step_s"] = float(seconds_per_step)
        entry["timed_steps"] = int(steps)
        entry.setdefault("agrees", True if candidate is self.reference else entry.get("agrees"))

    # -- the decision ---------------------------------------------------------------------------------
    def _predicted(self, entry, remaining, shape_compiles=0):
        compile_s = 0.0 if entry.get("compiled") else entry.get("compile_s", 0.0)
        if remaining is None:
            return entry["step_s"]
        # a batch shape the rest of the run brings that this candidate has not compiled: about one more compile
        return compile_s + shape_compiles * entry.get("compile_s", 0.0) + remaining * entry["step_s"]

    def decide(self, remaining_steps=None, current=None, remember=True, reason=None, shape_compiles=None):
        """Choose among the agreeing, timed candidates (see the module docstring) and record why. `current`: the
        strategy now running (default: the reference). `reason`: why tuning stopped early, if it did.
        `shape_compiles`: {candidate name: compilations of batch shapes the rest of the run brings that it has
        not compiled} (e.g. an epoch's smaller last batch)."""
        current = current or self.reference
        shape_compiles = shape_compiles or {}
        timed = [c for c in self.candidates if self.entry(c).get("agrees") and "step_s" in self.entry(c)]
        for c in timed:
            extra = shape_compiles.get(c.name, 0)
            self.entry(c)["predicted_total_s"] = self._predicted(self.entry(c), remaining_steps, extra)
            self.entry(c)["remaining_steps"] = remaining_steps
            if extra:
                self.entry(c)["shape_compiles"] = extra
        best = current if current in timed else (timed[0] if timed else current)
        for c in timed:
            if self.entry(c)["predicted_total_s"] < self.margin * self.entry(best)["predicted_total_s"]:
                best = c
        if reason is None:
            measure = "predicted time of the rest of the run" if remaining_steps is not None else "time per step"
            if best is current:
                reason = f"no candidate's {measure} is below {self.margin:.0%} of the current strategy's"
            else:
                reason = (f"lowest {measure}: {self.entry(best)['predicted_total_s']:.4g} s against the current "
                          f"{self.entry(current).get('predicted_total_s', float('nan')):.4g} s")
        self.chosen = best
        self.decision = {"name": best.name, **best.describe(), "remaining_steps": remaining_steps,
                         "reason": reason, "report": [dict(self.entries[c.name]) for c in self.tried]}
        if remember and self.key is not None:
            store(self.key, self.decision)
        return best

    def cached(self):
        """The candidate a stored decision under `key` names (equal name and settings), or None; it becomes
        this tuner's decision."""
        if self.key is None:
            return None
        stored = lookup(self.key)
        if stored is None:
            return None
        for c in self.candidates:
            if stored.get("name") == c.name and all(stored.get(k) == v for k, v in c.describe().items()):
                self.chosen, self.decision = c, {**stored, "cached": True}
                return c
        return None
