"""The XLA options fncompiler compiles with, and the option sets the tuner may try, per platform.

Only XLA:CPU's were measured (benchmarks/xla_options.py, benchmarks/fit.py; numbers below). GPU and TPU
were not measured: there fncompiler uses XLA's own defaults and offers the tuner no option sets, only the
execution strategies (per-step jit, scan of N steps, the scanned-blocks program).

    default_compiler_options(platform)   every step's options (a user's `compiler_options` override them)
    QUICK_CPU_OPTIONS                    fit's first train step on CPU: compiles sooner, runs a bit slower
    QUICK_MAX_PROGRAM_NODES              ... for train graphs up to this size (larger ones compile slower)
    CPU_CONV_OPTIONS                     conv models on CPU: 1.1-2x faster training
    has_conv(model)                      whether a model computes a convolution
"""
import os

import jax

from fncompiler import ir

# XLA options every step is compiled with, per platform (a user's `compiler_options` override them).
# CPU: LLVM's -O1 pipeline instead of XLA's default -O3. Measured on fit.py's four models (benchmarks/
# xla_options.py, 3 interleaved repeats): the train step compiles in 0.84-0.99x the time (ResNet 0.99 -> 0.89 s,
# ticket 1.26 -> 1.08 s, autoencoder 1.03 -> 0.86 s) and runs as fast (0.94-1.00x: the heavy kernels are library
# calls, and fusions are vectorized before LLVM). -O0 compiles faster still but runs up to 7.8x slower.
# GPU, TPU: not measured; XLA's defaults.
DEFAULT_COMPILER_OPTIONS = {"cpu": {"xla_backend_optimization_level": 1}}

# XLA:CPU's elemental IR emitters instead of its MLIR fusion emitters (which compile one LLVM module per fusion):
# fit.py's four train steps compile in 0.60-0.78x the time and run 1.0-1.3x slower (benchmarks/xla_options.py).
QUICK_CPU_OPTIONS = {"xla_cpu_use_fusion_emitters": False}
# ... but only for small programs: the elemental emitters put every fusion into one LLVM module, while the fusion
# emitters compile each kind of fusion on its own (a deep model's repeated blocks share them), so past a size the
# quick options compile slower. Measured 2026-12-04 (train step lowered once, compiled under each option set,
# medians of 2, quiet 2-core CPU; train-graph nodes (passes/scan_blocks.program_size) / StableHLO ops of the
# lowered step -> compile time with QUICK_CPU_OPTIONS vs without): MLP 4 / 335 0.78x, seq2seq 5 / 692 0.70x,
# ticket 10 / 866 0.60x, 1-block transformer 12 / 1201 0.62x, autoencoder 13 / 636 0.52x, toy ResNet 15 / 891
# 0.67x, 2-block transformer 19 / 2028 0.95x, 4-block 33 / 3682 1.51x, ResNet-20 73 / 4336 1.26x (with the conv
# option too: 1.85x, against 0.61-0.74x on the two small conv models). fit's first step uses the quick options
# while the train graph has at most this many nodes: a count known before anything is traced (counting the
# lowered step's operations instead cost a trace whenever the quick program was then dropped, ~0.15 s at
# 2 blocks, more than choosing either side gains near the break-even).
QUICK_MAX_PROGRAM_NODES = 20
# XLA:CPU convolutions off the YNN path: 1.1-2x faster conv training on fit.py's two conv models; for inference
# the effect depends on the batch size (0.59x at batch 32, 1.26x at 128 for the toy ResNet's predict step), so
# predict and evaluate decide it per batch shape by measurement.
CPU_CONV_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}

CONV_OPS = {"Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
            "DepthwiseConv2D", "SeparableConv2D", "ConvLSTM2D"}


def default_compiler_options(platform=None):
    """The XLA options fncompiler compiles with on `platform` (default: the default device's);
    FNCOMPILER_XLA_DEFAULTS=0 turns them off."""
    if os.environ.get("FNCOMPILER_XLA_DEFAULTS", "1") == "0":
        return {}
    platform = platform or jax.devices()[0].platform
    return dict(DEFAULT_COMPILER_OPTIONS.get(platform, {}))


def has_conv(model):
    """Whether the model computes a convolution: an op of its IR, or a layer (or a subclass of one) anywhere
    inside it (a subclassed model is a single IR node)."""
    if any(ir.count_ops(model.graph).get(op) for op in CONV_OPS):
        return True
    seen, stack = set(), list(getattr(model, "layers", None) or [])
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if any(cls.__name__ in CONV_OPS for cls in type(layer).__mro__):
            return True
        stack.extend(getattr(layer, "_layers", None) or [])
        stack.extend(getattr(layer, "layers", None) or [])
    return False
