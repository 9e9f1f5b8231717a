"""Runs the seq2seq and timeseries-transformer programs of examples/real/ in fresh processes (cwd: a temporary
folder). Each takes 15-20 s on a 2-core CPU, so they are marked slow (`pytest -m slow`)."""
import os
import pathlib
import subprocess
import sys

import pytest

REAL = pathlib.Path(__file__).resolve().parent.parent / "examples" / "real"

# script -> lines its output must contain (each script asserts its own results and ends with "OK <name>")
EXPECTED = {
    "lstm_seq2seq.py": ["held-out sequences exactly right", "OK lstm_seq2seq"],
    "timeseries_classification_transformer.py": ["test accuracy:", "OK timeseries_classification_transformer"],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_program_runs_as_written(name, tmp_path):
    proc = subprocess.run([sys.executable, str(REAL / name)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    for line in EXPECTED[name]:
        assert line in out, out[-4000:]


def test_real_programs_exist_and_are_listed_here():
    for name in EXPECTED:
        assert (REAL / name).is_file(), name
