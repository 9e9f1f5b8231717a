"""`python -m fncompiler convert m.keras --export m.fnexport`: load a model file (a Keras 3 `.keras` archive or
fncompiler's own `.fnc`), compile it, print the compiler's pass report, and write the ahead-of-time artifact."""
import os


def configure_parser(parser):
    parser.add_argument("model_file", help="a Keras 3 .keras archive (or a fncompiler .fnc model file)")
    parser.add_argument("--export", required=True, metavar="ARTIFACT",
                        help="write the compiled predict step here (e.g. m.fnexport; see docs/export.md)")
    parser.add_argument("--platforms", default="cpu", help="comma-separated platforms, e.g. cpu,cuda,tpu")
    parser.add_argument("--batch-size", type=int, default=None, help="fix the batch size (default: symbolic)")
    parser.add_argument("--fold-weights", action="store_true", help="embed the weights in the module")
    return parser


def cli_main(args):
    from .models import load_model
    from .runtime import export as export_lib
    from .runtime.compiled import compile_model
    model = load_model(args.model_file, compile=False)
    compiled = compile_model(model)
    compiled.report(pass_mode="predict")
    sig = export_lib.export(compiled, args.export, platforms=tuple(p for p in args.platforms.split(",") if p),
                            batch_size=args.batch_size, fold_weights=args.fold_weights)
    ins = ", ".join(f"{e['name']}: {e['shape']} {e['dtype']}" for e in sig["inputs"])
    print(f"converted {args.model_file} -> {args.export} ({os.path.getsize(args.export)} bytes): predict({ins}) "
          f"on {sig['platforms']}")
    return 0
