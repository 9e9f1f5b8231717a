"""The execution-strategy autotuner (`compile(steps_per_execution="auto")`).

Candidates: one jitted step per batch; N steps as one `lax.scan` over device-resident batches; and, on CPU
for models with convolutions, the same with an XLA:CPU compile option that measured faster for conv
gradients. Each candidate is compiled, run from a copy of the same train state on the same batches,
checked to compute the same weights as the reference (per-step jit) within a tolerance, and timed; the
fastest correct one is kept. Decisions are cached per model signature, batch shape and device, in memory and
in `$FNCOMPILER_CACHE_DIR/autotune.json` (default `~/.cache/fncompiler`).
"""
import hashlib
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from fncompiler import ir

CONV_OPS = {"Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
            "DepthwiseConv2D", "SeparableConv2D", "ConvLSTM2D"}
CPU_CONV_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}
SCAN_STEPS = 16
_MEMORY = {}


def cache_path():
    root = os.environ.get("FNCOMPILER_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "fncompiler")
    return os.path.join(root, "autotune.json")


def signature(model, batch):
    """A key for the decision: the model's IR text, the batch shapes and the device kind."""
    text = ir.dump(model.graph) + repr([(tuple(a.shape), str(a.dtype)) for a in batch if a is not None])
    device = jax.devices()[0]
    return hashlib.sha256(f"{text}|{device.platform}|{device.device_kind}".encode()).hexdigest()[:24]


def _load():
    try:
        with open(cache_path()) as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _store(key, decision):
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


def lookup(key):
    if key in _MEMORY:
        return _MEMORY[key]
    decision = _load().get(key)
    if decision is not None:
        _MEMORY[key] = decision
    return decision


def candidates(model, platform, steps_available):
    out = [{"name": "per-step jit", "steps_per_execution": 1, "compiler_options": {}}]
    if steps_available >= 2 * SCAN_STEPS:
        out.append({"name": f"scan x{SCAN_STEPS}", "steps_per_execution": SCAN_STEPS, "compiler_options": {}})
    has_conv = any(ir.count_ops(model.graph).get(op) for op in CONV_OPS)
    if platform == "cpu" and has_conv:
        out.append({"name": "per-step jit + ynn off", "steps_per_execution": 1, "compiler_options": CPU_CONV_OPTIONS})
    return out


def _copy(tree):
    return jax.tree_util.tree_map(lambda x: jnp.array(x, copy=True), tree)


def measure(trainer, candidate, state, batches, repeats=4):
    """(seconds per batch, final trainable weights) of running `batches` with the candidate from `state`."""
    from .compiled import compile_model
    cm = compile_model(trainer.model, compile_config=trainer.cfg, compiler_options=candidate["compiler_options"])
    n = candidate["steps_per_execution"]
    results = None
    best = float("inf")
    for rep in range(repeats + 1):                      # the first run compiles
        st = _copy(state)
        start = time.perf_counter()
        if n == 1:
            step = cm.step("train")
            for bx, by, bsw in batches:
                st = step(st, bx, by, bsw)
        else:
            step = cm.step("train_multi")
            for g in range(0, len(batches) - n + 1, n):
                group = batches[g:g + n]
                xs = [jnp.stack([b[0][k] for b in group]) for k in range(len(group[0][0]))]
                ys = [None if group[0][1][k] is None else jnp.stack([b[1][k] for b in group])
                      for k in range(len(group[0][1]))]
                st = step(st, xs, ys, None)
        jax.block_until_ready(st)
        if rep:
            best = min(best, (time.perf_counter() - start) / len(batches))
        results = st[0]
    return best, results, cm


def choose(trainer, state, batches, tolerance=1e-4):
    """Time each candidate on the same batches from the same state; return the fastest that agrees."""
    platform = jax.devices()[0].platform
    report, reference, best = [], None, None
    for cand in candidates(trainer.model, platform, len(batches)):
        try:
            seconds, weights, cm = measure(trainer, cand, state, batches)
        except Exception as exc:                         # an option this XLA lacks: skip the candidate
            report.append({**cand, "error": f"{type(exc).__name__}: {exc}"[:200]})
            continue
        if reference is None:
            reference = weights
            agrees = True
        else:
            agrees = all(np.allclose(np.asarray(a), np.asarray(b), rtol=tolerance, atol=tolerance)
                         for a, b in zip(reference, weights))
        report.append({**cand, "seconds_per_batch": seconds, "agrees": agrees})
        if agrees and (best is None or seconds < best[0]):
            best = (seconds, cand, cm)
    return best[1], best[2], report
