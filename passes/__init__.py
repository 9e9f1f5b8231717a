"""fncompiler.passes: the pass manager and one module per pass over the IR."""
from .manager import (Pass, PassContext, PassError, PassManager, PassRecord, PassResult, check_options, get,
                      order_passes, register)
from .shape_inference import ShapeMismatchError, shape_inference
from .dtype_check import DtypeError, dtype_check
from .fusion import fusion
from .constant_folding import constant_folding
from .inline import inline_nested_models
from .dead_code import dead_code_elimination
from .cse import common_subexpression_elimination
from .inference import inference_specialization
from .fold_batchnorm import fold_batchnorm
from .scan_blocks import ScanBlocks, scan_repeated_blocks
from .simplify import simplify
from .remat import remat
from .mixed_precision import mixed_precision
from .layouts import layouts

# Each mode's pipeline; the manager still orders passes by their requirements. Passes that measured no gain
# (see docs/passes.md) are registered but left out: name them in compile_model(model, passes=[...]).
# scan_repeated_blocks runs in train mode, where its "auto" policy decides (passes/scan_blocks.py).
PIPELINES = {
    "train": ["shape_inference", "dtype_check", "inline", "simplify", "cse", "scan_repeated_blocks", "constant_folding",
              "layouts"],
    "eval": ["shape_inference", "dtype_check", "inline", "inference_specialization", "dead_code_elimination",
             "simplify", "cse", "constant_folding", "layouts"],
    "predict": ["shape_inference", "dtype_check", "inline", "inference_specialization", "dead_code_elimination",
                "simplify", "cse", "constant_folding", "layouts"],
    "export": ["shape_inference", "dtype_check", "inline", "inference_specialization", "dead_code_elimination",
               "simplify", "cse", "fold_batchnorm", "constant_folding"],
}


def default_pipeline(mode):
    """The pass names run for `mode` ("train", "eval", "predict" or "export")."""
    if mode not in PIPELINES:
        raise ValueError(f"Unknown mode {mode!r}; expected one of {sorted(PIPELINES)}.")
    return list(PIPELINES[mode])


__all__ = ["Pass", "PassContext", "PassError", "PassManager", "PassRecord", "PassResult", "get", "order_passes",
           "register", "shape_inference", "dtype_check", "fusion", "constant_folding", "ShapeMismatchError",
           "DtypeError", "PIPELINES", "default_pipeline", "inline_nested_models", "dead_code_elimination",
           "common_subexpression_elimination", "inference_specialization", "fold_batchnorm", "scan_repeated_blocks", "ScanBlocks", "simplify", "remat", "mixed_precision", "layouts"]
