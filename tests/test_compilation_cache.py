"""The persistent compilation cache: a second process reuses the first one's compiled train step."""
import os
import subprocess
import sys

SCRIPT = r"""
import sys, time, numpy as np
from fncompiler.runtime import enable_compilation_cache
enable_compilation_cache(sys.argv[1])
import fncompiler as keras
from fncompiler import layers
keras.utils.set_random_seed(0)
x = keras.Input(shape=(8,))
model = keras.Model(x, layers.Dense(3)(layers.Dense(16, activation="relu")(x)))
model.compile(optimizer="adam", loss="mse")
model.fit(np.ones((32, 8), "float32"), np.zeros((32, 3), "float32"), epochs=1, verbose=0)
print("ENTRIES", len([f for f in __import__("os").listdir(sys.argv[1])]))
"""


def test_second_process_finds_the_cached_executables(tmp_path):
    cache = tmp_path / "xla"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    first = subprocess.run([sys.executable, "-c", SCRIPT, str(cache)], capture_output=True, text=True, env=env,
                           timeout=120)
    assert first.returncode == 0, first.stderr[-2000:]
    n_first = int(first.stdout.split("ENTRIES")[-1])
    assert n_first >= 1
    second = subprocess.run([sys.executable, "-c", SCRIPT, str(cache)], capture_output=True, text=True, env=env,
                            timeout=120)
    assert second.returncode == 0, second.stderr[-2000:]
    assert int(second.stdout.split("ENTRIES")[-1]) == n_first     # nothing new was compiled and stored
