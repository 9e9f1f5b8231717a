"""Command line: `python -m fncompiler demo` / `python -m fncompiler export` (or the `fncompiler` script)."""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fncompiler", description="fncompiler command line")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="train the guide's MLP on the embedded digits data, compiled vs eager")
    demo.add_argument("--epochs", type=int, default=30)
    demo.add_argument("--seed", type=int, default=0)
    from .runtime import export as export_cli
    export_cli.configure_parser(sub.add_parser("export", help="print a saved model's StableHLO (--mlir) or write an "
                                               "ahead-of-time artifact (-o FILE); see docs/export.md"))
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import main as demo_main
        accuracy = demo_main(epochs=args.epochs, seed=args.seed)
        return 0 if accuracy >= 0.93 else 1
    if args.command == "export":
        return export_cli.cli_main(args)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
