"""Runs each script in examples/ in a fresh process (cwd: a temporary folder) and checks its output.

The two fastest examples run by default; the others are marked slow (`pytest -m slow`, or
`-m 'slow or not slow'` for all of them).
"""
import os
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"

# script -> a line (substring) its output must contain, besides its closing "OK <name>"
EXPECTED = {
    "01_first_model.py": "Total params: 55,050",
    "02_training_evaluation_inference.py": "Test accuracy:",
    "03_save_and_serialize.py": "training resumed where it stopped",
    "04_encoder_autoencoder.py": "reconstruction MSE on the test images",
    "05_nested_models.py": "nested encoder == standalone encoder",
    "06_multi_input_output.py": "list and dict compile() agree",
    "07_toy_resnet.py": "Total params: 223,242",
    "08_shared_layers.py": "siamese([a, b]) == siamese([b, a])",
    "09_feature_extraction.py": "VGG19: 26 layers, 143,667,240 parameters",
    "10_custom_layers.py": "registered NoisyScale saved and loaded without custom_objects",
    "11_when_to_use_functional.py": "rebuilt from its config alone",
    "12_mixing_styles.py": "MaskedMean ignored the padding",
    "13_compile_model.py": "inline pass: inlined 2 nested models",
}
FAST = {"01_first_model.py", "11_when_to_use_functional.py"}
# files each example leaves in its working folder
WRITES = {
    "01_first_model.py": ["my_first_model.png", "my_first_model_with_shape_info.png"],
    "06_multi_input_output.py": ["multi_input_and_output_model.png"],
    "07_toy_resnet.py": ["mini_resnet.png"],
}


def run_example(name, cwd):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, str(EXAMPLES / name)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def test_every_example_is_tested_and_listed():
    scripts = sorted(p.name for p in EXAMPLES.glob("[0-9][0-9]_*.py"))
    assert scripts == sorted(EXPECTED)
    readme = (EXAMPLES / "README.md").read_text()
    missing = [name for name in scripts if name not in readme]
    assert not missing, f"examples/README.md does not list {missing}"


@pytest.mark.parametrize("name", [pytest.param(n, marks=() if n in FAST else pytest.mark.slow)
                                  for n in sorted(EXPECTED)])
def test_example(name, tmp_path):
    code, output = run_example(name, tmp_path)
    assert code == 0, f"{name} exited with {code}:\n{output[-4000:]}"
    stem = name[:-3]
    assert f"OK {stem}" in output.splitlines(), output[-2000:]
    assert EXPECTED[name] in output, f"{name}: expected {EXPECTED[name]!r} in its output:\n{output[-2000:]}"
    for written in WRITES.get(name, []):
        path = tmp_path / written
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", written
