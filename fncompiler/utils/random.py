"""Global seeding: ``set_random_seed``, ``global_seed`` and ``next_seed``.

fncompiler code that needs a fresh seed (weight initializers, dropout, data
shuffling) calls ``next_seed()``: after ``set_random_seed(s)`` the sequence of
seeds is a fixed function of ``s``; without a global seed it is random.
"""

from __future__ import annotations

import random as _pyrandom
import threading

import numpy as np

_MAX_SEED = 2**32  # numpy.random.seed accepts [0, 2**32)
_lock = threading.Lock()
_seed: int | None = None
_counter = 0


def set_random_seed(seed):
    """Seed Python's ``random``, NumPy's global RNG and fncompiler's global seed.

    Also restarts the ``next_seed()`` sequence.
    """
    global _seed, _counter
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"set_random_seed: seed must be an int, got {type(seed).__name__} {seed!r}")
    seed = int(seed)
    if not 0 <= seed < _MAX_SEED:
        raise ValueError(f"set_random_seed: seed must be in [0, 2**32), got {seed}")
    _pyrandom.seed(seed)
    np.random.seed(seed)
    with _lock:
        _seed = seed
        _counter = 0


def global_seed():
    """The seed passed to ``set_random_seed``, or None if it was never called."""
    return _seed


def next_seed() -> int:
    """A seed in ``[0, 2**31)``: deterministic per call index when a global seed is set."""
    global _counter
    with _lock:
        if _seed is None:
            return _pyrandom.SystemRandom().randrange(2**31)
        i = _counter
        _counter += 1
        seed = _seed
    state = np.random.SeedSequence([seed, i]).generate_state(1, dtype=np.uint32)[0]
    return int(state) & 0x7FFFFFFF
