"""Helpers shared by the benchmark scripts: environment facts, timing, memory, worker subprocesses, tables.

Nothing here imports JAX or fncompiler at module level, so a parent process that only orchestrates
workers stays light.
"""
import datetime
import importlib
import importlib.metadata
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- environment -----------------------------------------------------------------------------------------
def version_of(module_name):
    """The installed distribution's version (read from its metadata, so nothing is imported: Keras, for one,
    fails to import here without KERAS_BACKEND set, while the benchmark's workers set it), else the module's
    __version__, or None when it is neither installed nor importable."""
    try:
        return importlib.metadata.version(module_name)
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        module = importlib.import_module(module_name)
    except Exception:      # noqa: BLE001 - any import failure means "not available"
        return None
    return getattr(module, "__version__", "unknown")


def machine_info():
    info = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "python": platform.python_version(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def versions(names=("fncompiler", "jax", "jaxlib", "optax", "numpy", "keras")):
    return {name: version_of(name) for name in names}


def jax_backend():
    """The JAX default backend, its devices, and the persistent compilation cache if one is configured
    (a warm cache makes times to first step look shorter). Imports JAX."""
    import jax
    return {"backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
            "compilation_cache_dir": jax.config.jax_compilation_cache_dir or None}


def now_iso():
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


# -- measurements ----------------------------------------------------------------------------------------
def peak_rss_mb():
    """Peak resident set size of this process, in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def timed_calls(fn, n, warmup=1):
    """Seconds per call of `fn()` (which must block until its result is ready), n times after warmup."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def timed_alternating(fns, n, block=20, warmup=1):
    """Seconds per call of each of `fns` (each blocks until its result is ready), n calls each, taken in
    alternating blocks of `block` calls: every function samples the same stretches of a noisy machine (short
    calls on this shared 2-core CPU drift by up to 2x over a few seconds), and each block is still a run of
    back-to-back calls, as a caller's loop would make them."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    out = [[] for _ in fns]
    while len(out[0]) < n:
        for fn, times in zip(fns, out):
            for _ in range(min(block, n - len(times))):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
    return out


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


# -- worker subprocesses ---------------------------------------------------------------------------------
def run_worker(argv, timeout, env=None):
    """Run `python argv...` in a fresh interpreter; returns (returncode, stdout, stderr, seconds).

    A worker that outlives `timeout` is killed (its process only, it was started by us) and reported as rc=None.
    """
    full_env = dict(os.environ)
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    if env:
        full_env.update(env)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable] + list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=full_env, cwd=REPO)
    try:
        out, err = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        rc = None
    return rc, out, err, time.perf_counter() - t0


def write_json(path, obj):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False, default=_json_default)
        f.write("\n")
    os.replace(tmp, path)


def _json_default(obj):
    try:
        import numpy as np
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:
        pass
    return str(obj)


# -- formatting ------------------------------------------------------------------------------------------
def fmt(value, spec=".3g", none="-"):
    if value is None:
        return none
    if isinstance(value, str):
        return value
    return format(value, spec)


def fmt_ratio(value):
    return "-" if value is None else f"{value:.2f}x"


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines)
