"""Command line: `python -m fncompiler demo` / `export` / `convert` / `bench` (or the `fncompiler` script)."""
import argparse
import os
import subprocess
import sys


def _bench(args):
    """Run the repository's benchmarks/<name>.py (they live beside the package in a source checkout, not in
    an installed wheel) with this Python, passing the remaining arguments through."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = os.path.join(root, "benchmarks", f"{args.which}.py")
    if not os.path.isfile(script):
        print(f"fncompiler bench: {script} not found. The benchmarks ship with the source repository; run this "
              "from an editable install (pip install -e .) of a checkout.", file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, script] + list(args.rest), cwd=root)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fncompiler", description="fncompiler command line")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="train the guide's MLP on the embedded digits data, compiled vs eager")
    demo.add_argument("--epochs", type=int, default=30)
    demo.add_argument("--seed", type=int, default=0)
    from .runtime import export as export_cli
    export_cli.configure_parser(sub.add_parser("export", help="print a saved model's StableHLO (--mlir) or write an "
                                               "ahead-of-time artifact (-o FILE); see docs/export.md"))
    from . import convert as convert_cli
    convert_cli.configure_parser(sub.add_parser("convert", help="load a Keras 3 .keras file, compile it, print the "
                                                "pass report and write an AOT artifact (--export FILE)"))
    bench = sub.add_parser("bench", help="run a benchmark: fit (default), passes, scaling, constant_folding or xla_options; further arguments "
                                         "go to it (e.g. `fncompiler bench fit --quick`); see docs/benchmarks.md")
    bench.add_argument("which", nargs="?", default="fit", choices=("fit", "passes", "scaling", "constant_folding", "xla_options"))
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "bench":
        return _bench(args)
    if args.command == "demo":
        from .demo import main as demo_main
        accuracy = demo_main(epochs=args.epochs, seed=args.seed)
        return 0 if accuracy >= 0.93 else 1
    if args.command == "convert":
        return convert_cli.cli_main(args)
    if args.command == "export":
        return export_cli.cli_main(args)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
