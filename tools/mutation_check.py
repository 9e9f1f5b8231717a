"""Mutation check: break each guarded line on purpose, run the tests named for it, expect a failure.

    python tools/mutation_check.py            # every entry of MUTATIONS; prints a Markdown table row each

Each entry is (file, original line, mutated line, pytest arguments). The original text must occur exactly once
in the file; it is replaced, the tests run (-x -q), and the file is restored whatever happens. "caught" means
the tests failed with the guard broken (what we want); "MISSED" means they still passed: the guard has no test.
See docs/testing.md.
"""
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

MUTATIONS = [
    ("runtime/buckets.py", "if check is None or not check(", "if False and not check(",
     ["tests/test_layer_declarations.py", "-k", "batch_mean or undeclared"]),
    ("fncompiler/ops/op_layer.py", "return all(isinstance(a, int) and a % rank != 0 for a in axes)", "return True",
     ["tests/test_layer_declarations.py", "-k", "batch_mean or per_op"]),
    ("fncompiler/layers/normalization.py", "    is_batch_independent = batch_independent_unless_training", "",
     ["tests/test_layer_declarations.py", "-k", "batchnorm"]),
    ("passes/cse.py", '(ctx.mode == "train" and _random(data["layer"]))', "False",
     ["tests/test_layer_declarations.py", "-k", "cse"]),
    ("passes/fold_batchnorm.py", "if axis is None or axis % rank != rank - 1:", "if axis is None:",
     ["tests/test_pipeline_property.py"]),
    ("passes/fold_batchnorm.py", 'return not kwargs.get("training")', "return True",
     ["tests/test_pipeline_property.py"]),
    ("passes/inline.py", "if kwargs or len(args) != 1:", "if len(args) != 1:",
     ["tests/test_pipeline_property.py"]),
    ("passes/inference.py", 'if kwargs.get("training"):', "if False:",
     ["tests/test_optimizing_passes.py", "tests/test_pipeline_property.py"]),
    ("fncompiler/callbacks/monitors.py", "self.model.set_weights(self.best_weights)", "pass",
     ["tests/test_training.py", "-k", "early_stopping"]),
    ("runtime/trainer.py", "state = self._start_state_from_variables(state)[:2] + tuple(state[2:])", "pass",
     ["tests/test_training.py", "-k", "epoch_start"]),
    ("runtime/steps.py", 'extra = {"sample_weight": sample_weight} if e.weighted else {}', "extra = {}",
     ["tests/test_compile_arguments.py"]),
    ("passes/manager.py", "    if unknown:\n        raise ValueError(f\"pass_options", "    if False:\n        raise ValueError(f\"pass_options",
     ["tests/test_compile_arguments.py"]),
    ("runtime/compile_config.py", "        if jit_compile is False:\n            self.run_eagerly = True", "",
     ["tests/test_compile_arguments.py"]),
    ("runtime/interpreter.py", "raise named from error", "raise",
     ["tests/test_step_errors.py"]),
]


def run_one(path, original, mutated, tests):
    file = ROOT / path
    text = file.read_text()
    if text.count(original) != 1:
        return "not applied (original text not found exactly once)"
    try:
        file.write_text(text.replace(original, mutated))
        proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                              cwd=ROOT, capture_output=True, text=True)
    finally:
        file.write_text(text)
    return "caught" if proc.returncode != 0 else "MISSED"


def main():
    print("| file | guard broken | tests | result |\n|---|---|---|---|")
    missed = 0
    for path, original, mutated, tests in MUTATIONS:
        result = run_one(path, original, mutated, tests)
        missed += result != "caught"
        shown = original.strip().splitlines()[0]
        print(f"| {path} | `{shown}` | {' '.join(tests)} | {result} |", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
