"""fncompiler.passes: the pass manager and one module per pass over the IR."""
from .manager import Pass, PassContext, PassError, PassManager, PassRecord, PassResult, get, order_passes, register
from .shape_inference import ShapeMismatchError, shape_inference
from .dtype_check import DtypeError, dtype_check
from .fusion import fusion
from .constant_folding import constant_folding

PIPELINES = {
    "train": ["shape_inference", "dtype_check", "fusion", "constant_folding"],
    "eval": ["shape_inference", "dtype_check", "fusion", "constant_folding"],
    "predict": ["shape_inference", "dtype_check", "fusion", "constant_folding"],
    "export": ["shape_inference", "dtype_check", "fusion", "constant_folding"],
}


def default_pipeline(mode):
    """The pass names run for `mode` ("train", "eval", "predict" or "export")."""
    if mode not in PIPELINES:
        raise ValueError(f"Unknown mode {mode!r}; expected one of {sorted(PIPELINES)}.")
    return list(PIPELINES[mode])


__all__ = ["Pass", "PassContext", "PassError", "PassManager", "PassRecord", "PassResult", "get", "order_passes",
           "register", "shape_inference", "dtype_check", "fusion", "constant_folding", "ShapeMismatchError",
           "DtypeError", "PIPELINES", "default_pipeline"]
