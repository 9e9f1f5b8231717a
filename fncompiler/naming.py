"""Unique default names for layers and models, as Keras forms them ("dense", "dense_1", ...)."""
import re
import threading

_counts = {}
_lock = threading.Lock()


def to_snake_case(name):
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    s = re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()
    return s.replace("__", "_")


def uniquify(base):
    """Return `base` the first time, then `base_1`, `base_2`, ... for this process."""
    with _lock:
        n = _counts.get(base, 0)
        _counts[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def reset():
    with _lock:
        _counts.clear()
