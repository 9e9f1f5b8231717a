"""Import time of fncompiler, each statement in fresh interpreters: medians (and min / max) over --runs.

    python benchmarks/import_time.py [--runs 7] [--json F]

Statements timed: `import fncompiler` (lazy: loads nothing else), a serving process's
`from fncompiler.runtime import load_exported` (the loader: stdlib, NumPy, msgpack, JAX), `import jax`
alone (the floor under the loader), and a model-building script's `import fncompiler as keras;
keras.layers.Dense; keras.Model`. Each run is a new `python -c` that times its own statement with
perf_counter, so the interpreter's start-up is not counted.
"""
import argparse
import json
import statistics
import subprocess
import sys

STATEMENTS = {
    "import fncompiler": "import fncompiler",
    "from fncompiler.runtime import load_exported": "from fncompiler.runtime import load_exported",
    "import jax (reference)": "import jax",
    "import fncompiler as keras; keras.layers.Dense; keras.Model":
        "import fncompiler as keras; keras.layers.Dense; keras.Model",
}


def time_once(statement):
    code = ("import time; t = time.perf_counter()\n" + statement +
            "\nprint(repr(time.perf_counter() - t))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    results = {}
    for label, statement in STATEMENTS.items():
        times = [time_once(statement) for _ in range(args.runs)]
        results[label] = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
                          "runs": args.runs}
        print(f"{label:62s} median {results[label]['median_s'] * 1000:8.1f} ms   "
              f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}, {args.runs} fresh processes)",
              flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
