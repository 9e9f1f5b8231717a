"""Execution strategies: ways to run a model's train batches, each a small object with one interface.

    strategy.run(compiled, state, x, y, sw)        -> state   one execution (a batch or StackedBatches)
    strategy.run_per_step(compiled, state, x, y, sw) -> state the same batches one jitted step each
    strategy.program(compiled)                     the CompiledModel variant it compiles (options, passes)
    strategy.describe()                            its settings, as the tuner records and caches them

The strategies (`fit_candidates` lists them per platform, the reference first):
    per-step jit          one jitted train step per batch
    scan xN               N batches stacked, one `lax.scan` over N train steps per call
    + XLA options         either, compiled with an option set (platform_options: measured on CPU only)
    other block program   for a model with a run of repeated blocks: the unrolled program (pass_options=
                          {"scan_blocks": "never"}) when the model's own scans the run (compile time flat in
                          depth; scan_repeated_blocks' "auto" does for long runs in train mode), else the
                          scanned one ({"scan_blocks": "always"})
Gradient accumulation (runtime/accumulation.py) changes what a train step computes, not how batches are run:
it is a compile argument every strategy carries, not a candidate (docs/adding-a-strategy.md).
"""
from . import placement
from .executions import StackedBatches
from .platform_options import CPU_CONV_OPTIONS, QUICK_CPU_OPTIONS, has_conv

__all__ = ["Strategy", "fit_candidates", "option_candidates", "SCAN_STEPS", "QUICK", "SCANNED_BLOCKS",
           "UNROLLED_BLOCKS"]

SCAN_STEPS = 16
QUICK = "per-step jit, quick compile"
SCANNED_BLOCKS = {"scan_blocks": "always"}
UNROLLED_BLOCKS = {"scan_blocks": "never"}


class Strategy:
    """One way to run train executions (see the module docstring). Equal settings, equal behaviour: the tuner
    compares, records and caches strategies by `name` and `describe()`."""

    def __init__(self, name, steps_per_execution=1, compiler_options=None, pass_options=None):
        self.name = name
        self.steps_per_execution = int(steps_per_execution)
        self.compiler_options = dict(compiler_options or {})
        self.pass_options = dict(pass_options or {})
        self._program = None     # (compiled, its variant for this strategy)

    def describe(self):
        return {"steps_per_execution": self.steps_per_execution, "compiler_options": dict(self.compiler_options),
                "pass_options": dict(self.pass_options)}

    def __repr__(self):
        return f"Strategy({self.name!r}, {self.describe()})"

    def program(self, compiled):
        """The CompiledModel this strategy's steps come from: `compiled` with its options and pass options
        (made once per setting by CompiledModel.with_options, so later fits reuse the compiled steps)."""
        cached = self._program
        if cached is not None and cached[0] is compiled:      # (asked once per execution: fit's hot path)
            return cached[1]
        program = compiled.with_options(self.compiler_options, self.pass_options)
        self._program = (compiled, program)
        return program

    def run(self, compiled, state, x, y, sw):
        """One execution: StackedBatches as one `train_multi` (lax.scan) call, otherwise one batch."""
        program = self.program(compiled)
        if isinstance(x, StackedBatches):
            return program.step("train_multi")(state, x.xs, x.ys, x.sws)
        return program.step("train")(state, placement.place_batch(x), placement.place_batch(y),
                                     None if sw is None else placement.place_batch([sw])[0])

    def run_per_step(self, compiled, state, x, y, sw):
        """The execution's batches one train step each (a reference for a stacked execution)."""
        if not isinstance(x, StackedBatches):
            return self.run(compiled, state, x, y, sw)
        step = self.program(compiled).step("train")
        for j in range(len(x)):
            state = step(state, *x.batch(j))
        return state


def option_candidates(model, platform):
    """The XLA option sets to try for one step called on its own (compile_model's train step, predict and
    evaluate), the model's own first: on CPU for models with convolutions also the conv option (measured).
    GPU / TPU: not measured, so nothing but XLA's defaults."""
    out = [Strategy("default options")]
    if platform == "cpu" and has_conv(model):
        out.append(Strategy("conv option (ynn off)", compiler_options=CPU_CONV_OPTIONS))
    return out


def fit_candidates(model, platform, steps_available, allow_scan=True, blocks=None, quick=True):
    """fit's strategies, the reference (the first step's) first. `steps_available`: batches per epoch (None if
    unknown). `blocks`: the model has a run of repeated blocks and its own program "scanned" or "unrolled" them
    (None: no run, or the user chose with pass_options["scan_blocks"]): the other block program is a candidate,
    so the tuner weighs its compile time and step time over the rest of the fit. `quick`: on CPU, start with the
    quick-compiling per-step jit (off for a fit of unknown length, which is not tuned)."""
    if platform == "cpu" and has_conv(model):
        # Conv training on XLA:CPU: the conv option in both (measured 1.1-2x faster per train step on fit.py's
        # two conv models), no scan of steps (a scan of conv gradients measured 7-23x slower).
        out = [Strategy("per-step jit + ynn off", compiler_options=CPU_CONV_OPTIONS)]
        if quick:
            out.insert(0, Strategy(QUICK, compiler_options={**QUICK_CPU_OPTIONS, **CPU_CONV_OPTIONS}))
    else:
        out = [Strategy("per-step jit")]
        if platform == "cpu" and quick:
            out.insert(0, Strategy(QUICK, compiler_options=QUICK_CPU_OPTIONS))
        if allow_scan and (steps_available is None or steps_available >= 2 * SCAN_STEPS):
            out.append(Strategy(f"scan x{SCAN_STEPS}", SCAN_STEPS))
    if blocks == "unrolled" and platform == "cpu" and has_conv(model):
        blocks = None       # scanned conv blocks on XLA:CPU: measured ~10x slower steps (passes/scan_blocks.py)
    if blocks is not None:
        other = "unrolled" if blocks == "scanned" else "scanned"
        for s in out:
            s.name += f" ({blocks} blocks)"
        base = out[1] if len(out) > 1 and out[0].name.startswith(QUICK) else out[0]   # full compile options
        out.append(Strategy(f"per-step jit ({other} blocks)", compiler_options=base.compiler_options,
                            pass_options=UNROLLED_BLOCKS if other == "unrolled" else SCANNED_BLOCKS))
    return out
