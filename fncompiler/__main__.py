"""Command line: `python -m fncompiler demo` (or the `fncompiler` script)."""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fncompiler", description="fncompiler command line")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="train the guide's MLP on the embedded digits data, compiled vs eager")
    demo.add_argument("--epochs", type=int, default=30)
    demo.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import main as demo_main
        accuracy = demo_main(epochs=args.epochs, seed=args.seed)
        return 0 if accuracy >= 0.93 else 1
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
