"""Runs each script in examples/ in a fresh process (cwd: a temporary folder) and checks its output.

The two fastest examples run by default; the others are marked slow (`pytest -m slow`, or
`-m 'slow or not slow'` for all of them).
"""
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
FUNCTIONAL_API_DOC = ROOT / "docs" / "functional-api.md"
LAYERS_DOC = ROOT / "docs" / "layers.md"

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
# files each example writes into the folder given as its argument (nothing goes into its working folder)
WRITES = {
    "01_first_model.py": ["my_first_model.png", "my_first_model_with_shape_info.png"],
    "06_multi_input_output.py": ["multi_input_and_output_model.png"],
    "07_toy_resnet.py": ["mini_resnet.png"],
}


def run_script(path, cwd, *args):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, str(path), *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
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
    cwd, out = tmp_path / "cwd", tmp_path / "out"
    cwd.mkdir()
    code, output = run_script(EXAMPLES / name, cwd, *([out] if name in WRITES else []))
    assert code == 0, f"{name} exited with {code}:\n{output[-4000:]}"
    stem = name[:-3]
    assert f"OK {stem}" in output.splitlines(), output[-2000:]
    assert EXPECTED[name] in output, f"{name}: expected {EXPECTED[name]!r} in its output:\n{output[-2000:]}"
    assert list(cwd.iterdir()) == [], f"{name} wrote into its working folder: {list(cwd.iterdir())}"
    if name in WRITES:
        assert sorted(p.name for p in out.iterdir()) == sorted(WRITES[name])
        for written in WRITES[name]:
            assert (out / written).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", written


def _git_status():
    """`git status` of the checkout, ignored files included (bytecode caches aside), or None without git."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return None
    proc = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"], cwd=ROOT,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    return sorted(line for line in proc.stdout.splitlines() if "__pycache__" not in line and ".pyc" not in line)


def test_plotting_example_run_in_the_checkout_leaves_it_unchanged():
    """Run as a user does, from the repository root without an argument: the PNGs go to a new temporary folder."""
    before = _git_status()
    if before is None:
        pytest.skip("not a git checkout")
    code, output = run_script(EXAMPLES / "01_first_model.py", ROOT)
    assert code == 0, output[-4000:]
    written = [pathlib.Path(m) for m in re.findall(r"^wrote (\S+) \(", output, re.M)]
    try:
        assert [p.name for p in written] == ["my_first_model.png", "my_first_model_with_shape_info.png"], output
        for path in written:
            assert path.is_file() and ROOT not in path.resolve().parents, path
        assert _git_status() == before
    finally:
        for folder in {p.parent for p in written}:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_functional_api_doc_snippets(tmp_path):
    """The python blocks of docs/functional-api.md, run in order as one script."""
    blocks = re.findall(r"```python\n(.*?)```", FUNCTIONAL_API_DOC.read_text(), re.S)
    assert len(blocks) >= 10
    script = tmp_path / "functional_api_snippets.py"
    script.write_text("\n".join(blocks) + "\nprint('OK snippets')\n")
    code, output = run_script(script, tmp_path)
    assert code == 0, output[-4000:]
    assert "OK snippets" in output.splitlines()


def test_layers_doc_lists_every_public_layer():
    import fncompiler.layers as L
    text = LAYERS_DOC.read_text()
    names = sorted(n for n in dir(L) if n[0].isupper())
    missing = [n for n in names if not re.search(r"(?<![A-Za-z0-9_])" + re.escape(n) + r"(?![A-Za-z0-9_])", text)]
    assert not missing, f"docs/layers.md does not mention {missing}"
