"""Runs every script in examples/real/ (keras.io-style programs on local synthetic data) in a fresh process and
checks that it ends with "OK <script name>". Each script checks its own results (accuracies, agreement of the
end-to-end model) with asserts, so a wrong result fails here too."""
import os
import pathlib
import subprocess
import sys

import pytest

REAL = pathlib.Path(__file__).resolve().parent.parent / "examples" / "real"
SCRIPTS = sorted(p.name for p in REAL.glob("*.py"))
SLOW = {"image_classification_with_augmentation.py"}     # ~15 s on the shared CPU machine: `pytest -m slow`


def test_there_are_real_examples():
    assert len(SCRIPTS) >= 3


@pytest.mark.parametrize("script", [pytest.param(s, marks=pytest.mark.slow) if s in SLOW else s for s in SCRIPTS])
def test_real_example_runs(script, tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, str(REAL / script)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert f"OK {script[:-3]}" in proc.stdout, output[-4000:]
