"""`compile_model(model)`: run the pass pipeline per mode, lower, and build the jitted step functions.

    compiled = fncompiler.compile_model(model)         # mode="jit" (default) or "eager"
    compiled.report()                                  # what each pass found/changed, and its time
    compiled.graph("predict")                          # the IR after the predict pipeline (or after a pass)
    compiled.as_text("train")                          # StableHLO text of the one train-step function
    compiled.predict(x)                                # the jitted predict step over the model's weights
"""
import collections
import time

import jax
import jax.numpy as jnp
import numpy as np

from fncompiler import ir
from fncompiler import passes as passes_lib
from . import accumulation, lowering, placement, steps, tuned_steps
from .platform_options import DEFAULT_COMPILER_OPTIONS, default_compiler_options

__all__ = ["CompiledModel", "compile_model", "default_compiler_options", "DEFAULT_COMPILER_OPTIONS"]


class _VariantCounts(collections.Counter):
    """An option variant's trace counts, which also count in its base model's `trace_counts` (the base's are the
    model's total: every program compiled for it, whatever the options)."""

    def __init__(self, base):
        super().__init__()
        self._base = base

    def __setitem__(self, key, value):
        self._base[key] += value - self[key]
        super().__setitem__(key, value)


class CompiledModel:
    def __init__(self, model, mode="jit", passes=None, compile_config=None, verify=False, compiler_options=None,
                 pass_options=None, autotune=False):
        if mode not in ("jit", "eager"):
            raise ValueError(f"compile_model: mode must be 'jit' or 'eager'; received {mode!r}.")
        if autotune and mode != "jit":
            raise ValueError("compile_model: autotune=True chooses XLA options for jitted steps; it needs "
                             f"mode='jit' (received mode={mode!r}).")
        self.autotune = bool(autotune)
        self.model = model
        self.mode = mode
        self.compile_config = compile_config
        self.verify = verify
        self._custom_passes = passes
        self._pipelines = {}     # pass mode -> (graph, records, stages)
        self._lowered = {}
        self._steps = {}
        self.trace_counts = collections.Counter()
        self.compile_seconds = {}
        self.compiler_options = {**default_compiler_options(), **dict(compiler_options or {})}
        self.pass_options = passes_lib.check_options(pass_options or {}, passes)
        self._variants = {}
        self._block_runs = {}    # pass mode -> repeated_block_runs()

    def with_options(self, compiler_options=None, pass_options=None):
        """This model with other XLA options and / or pass options (on top of its own) for its steps: with the
        same pass options it shares the passes and lowering (not run again); it has its own jitted steps and
        trace counts (which also count in this model's: `trace_counts` here is the total). Made once per
        setting, so a later fit that picks the same one reuses the compiled steps."""
        options = {**self.compiler_options, **dict(compiler_options or {})}
        passes = {**self.pass_options, **dict(pass_options or {})}
        if options == self.compiler_options and passes == self.pass_options:
            return self
        key = (tuple(sorted((k, repr(v)) for k, v in options.items())),
               tuple(sorted((k, repr(v)) for k, v in passes.items())))
        variant = self._variants.get(key)
        if variant is None:
            variant = CompiledModel(self.model, mode=self.mode, passes=self._custom_passes,
                                    compile_config=self.compile_config, verify=self.verify, pass_options=passes)
            variant.compiler_options = options
            if passes == self.pass_options:
                variant._pipelines, variant._lowered = self._pipelines, self._lowered
            variant.trace_counts = _VariantCounts(self.trace_counts)
            self._variants[key] = variant
        return variant

    @property
    def custom_passes(self):
        """The `passes=` this model was compiled with (None: each mode's default pipeline)."""
        return self._custom_passes

    def repeated_block_runs(self, pass_mode="train"):
        """Runs of repeated blocks in the `pass_mode` graph: None when there are none, else (report, scanned):
        the scan_repeated_blocks pass's report and whether this model's own program scans them (its policy,
        "auto" by default: passes/scan_blocks.py). A pipeline without that pass is asked with policy "never"."""
        found = self._block_runs.get(pass_mode, False)
        if found is False:
            record = next((r for r in self._pipeline(pass_mode)[1] if r.name == "scan_repeated_blocks"), None)
            if record is None:
                from fncompiler.passes import scan_blocks
                graph = ir.copy(self.graph(pass_mode))
                ctx = passes_lib.PassContext(mode=pass_mode, options={**self.pass_options, "scan_blocks": "never"})
                record = scan_blocks.run(graph, ctx)
            runs = record.changed or record.report.startswith("found")
            found = self._block_runs[pass_mode] = (record.report, bool(record.changed)) if runs else None
        return found

    # -- passes and lowering -----------------------------------------------------------------------
    def _pipeline(self, pass_mode):
        if pass_mode not in self._pipelines:
            names = self._custom_passes if self._custom_passes is not None else passes_lib.default_pipeline(pass_mode)
            manager = passes_lib.PassManager(names, verify=self.verify)
            base = self.model.graph if hasattr(self.model, "graph") else ir.build(self.model)
            ir.verify(base)
            ctx = passes_lib.PassContext(mode=pass_mode, options=self.pass_options)
            self._pipelines[pass_mode] = manager.run(base, ctx)
        return self._pipelines[pass_mode]

    def graph(self, stage="predict"):
        """The IR after the pipeline for a mode ("train"/"eval"/"predict"/"export"), or after the named pass
        (e.g. "shape_inference") of the predict pipeline, or "mode:pass" (e.g. "export:fold_batchnorm") for a
        pass of another mode's pipeline, or "input" for the IR before any pass. Print it with
        `fncompiler.ir.dump(graph)`, draw it with `fncompiler.utils.plot_model(graph, to_file=...)`."""
        if stage in passes_lib.PIPELINES:
            return self._pipeline(stage)[0]
        mode, _, name = stage.rpartition(":") if ":" in stage else ("predict", "", stage)
        if mode not in passes_lib.PIPELINES:
            raise ValueError(f"Unknown stage {stage!r}: {mode!r} is not a mode {sorted(passes_lib.PIPELINES)}.")
        stages = self._pipeline(mode)[2]
        if name not in stages:
            raise ValueError(f"Unknown stage {stage!r}; expected a mode {sorted(passes_lib.PIPELINES)} or one of "
                             f"{list(stages)}" + (f" (of the {mode} pipeline)." if mode != "predict" else "."))
        return stages[name]

    def lowered(self, pass_mode):
        if pass_mode not in self._lowered:
            self._lowered[pass_mode] = lowering.lower(self._pipeline(pass_mode)[0], self.model)
        return self._lowered[pass_mode]

    def _wrap(self, name, fn, donate=()):
        if self.mode == "eager":
            def eager(*args):
                with jax.disable_jit():
                    return fn(*args)
            return eager
        return placement.jit_step(fn, donate_argnums=donate, compiler_options=self.compiler_options)

    # -- steps -------------------------------------------------------------------------------------
    def step(self, endpoint):
        """The (jitted, or eager) step function for "train", "eval" or "predict". With `autotune=True`, "train" is
        a `tuned_steps.TunedTrainStep` (the step compiled with the XLA options measured fastest for its inputs at
        its first call) and "predict" / "eval" a `tuned_steps.TunedInferenceStep` (the same choice, per batch
        shape once the shape is hot), where there are options to choose from; both decide through
        runtime/tuner.py."""
        if self.autotune and endpoint in ("train", "predict", "eval"):
            tuned = self._steps.get(endpoint + ":tuned")
            if tuned is None:
                tuned = (tuned_steps.TunedTrainStep(self) if endpoint == "train"
                         else tuned_steps.TunedInferenceStep(self, endpoint))
                if endpoint != "train" and not tuned.active:
                    tuned = self.untuned_step(endpoint)
                self._steps[endpoint + ":tuned"] = tuned
            return tuned
        return self.untuned_step(endpoint)

    def untuned_step(self, endpoint):
        """The step for `endpoint` compiled with this model's own options (no tuner)."""
        if endpoint not in self._steps:
            if endpoint == "predict":
                low = self.lowered("predict")
                if low.folds:     # constant_folding split weight-only expressions off: residuals once per weights
                    self._steps[endpoint] = steps.FoldedPredictStep(
                        steps.make_residuals_fn(low, self.trace_counts),
                        steps.make_folded_predict_step(low, self.trace_counts), lambda f: self._wrap(endpoint, f))
                else:
                    fn = steps.make_predict_step(low, self.trace_counts)
                    self._steps[endpoint] = self._wrap(endpoint, fn)
            elif endpoint in ("train", "train_multi", "eval"):
                if self.compile_config is None:
                    raise RuntimeError(f"The {endpoint} step needs a compiled model: call model.compile(...) first.")
                cfg = self.compile_config
                if endpoint != "eval":    # what the train step applies (with gradient accumulation: accumulates)
                    cfg = accumulation.train_config(cfg)
                if endpoint == "train":
                    fn = steps.make_train_step(self.lowered("train"), cfg, self.trace_counts)
                    self._steps[endpoint] = self._wrap(endpoint, fn, donate=(0,))
                elif endpoint == "train_multi":
                    fn = steps.make_multi_train_step(self.lowered("train"), cfg, self.trace_counts)
                    self._steps[endpoint] = self._wrap(endpoint, fn, donate=(0,))
                else:
                    fn = steps.make_eval_step(self.lowered("eval"), cfg, self.trace_counts)
                    self._steps[endpoint] = self._wrap(endpoint, fn, donate=(2,))
            else:
                raise ValueError(f"Unknown endpoint {endpoint!r}; expected 'train', 'eval' or 'predict'.")
        return self._steps[endpoint]

    def weights(self, pass_mode="predict"):
        low = self.lowered(pass_mode)
        return [v.value for v in low.trainable], [v.value for v in low.non_trainable]

    def predict(self, x):
        """Run the predict step on one batch (arrays in the model's input structure)."""
        from . import data
        xs = [jnp.asarray(a) for a in data.flatten_x(self.model, x)]
        tv, ntv = self.weights("predict")
        out = self.step("predict")(tv, ntv, xs)
        return self.lowered("predict").pack_outputs(out)

    __call__ = predict

    # -- inspection --------------------------------------------------------------------------------
    def example_args(self, endpoint, batch_size=1, input_shapes=None):
        """Abstract arguments (`jax.ShapeDtypeStruct`s) of the step for `endpoint` at `batch_size`.
        `input_shapes`: one shape per model input without the batch axis (a list in `model.inputs` order, or a
        dict by input name), needed where an input has unknown non-batch dimensions (e.g. sequence lengths)."""
        low = self.lowered("predict" if endpoint == "predict" else endpoint)
        specs = [jax.ShapeDtypeStruct((batch_size,) + tuple(s.shape[1:]), s.dtype) for s in low.input_specs]
        if input_shapes is not None:
            specs = self._with_input_shapes(low, specs, input_shapes, batch_size)
        unknown = [s.shape for s in specs if any(d is None for d in s.shape[1:])]
        if unknown:
            raise ValueError(f"{endpoint}: input shapes {[tuple(s.shape) for s in low.input_specs]} of model "
                             f"{self.model.name!r} have unknown non-batch dimensions; pass `input_shapes=` with "
                             "one concrete shape per input, without the batch axis, e.g. "
                             f"input_shapes={[tuple(8 if d is None else d for d in s.shape[1:]) for s in low.input_specs]}.")
        tv = [jax.ShapeDtypeStruct(v.shape, v.dtype) for v in low.trainable]
        ntv = [jax.ShapeDtypeStruct(v.shape, v.dtype) for v in low.non_trainable]
        if endpoint == "predict":
            return (tv, ntv, specs)
        cfg = self.compile_config
        ys = steps.example_targets(low, cfg, batch_size, self._output_specs(low, tv, ntv, specs))
        if endpoint == "eval":
            return (tv, ntv, jax.eval_shape(steps.initial_metric_states, cfg), specs, ys, None)
        state = jax.eval_shape(lambda: steps.initial_train_state(
            [jnp.zeros(v.shape, v.dtype) for v in low.trainable], [jnp.zeros(v.shape, v.dtype) for v in low.non_trainable],
            cfg, 0))
        return (state, specs, ys, None)

    @staticmethod
    def _output_specs(low, tv, ntv, specs):
        """The outputs' shapes for these concrete input specs where the graph declares unknown non-batch
        dimensions (a target of a sequence output takes the length of its input), else None."""
        graph = low.graph
        declared = [graph.nodes[n]["output_specs"][i] for n, i in graph.graph["outputs"]]
        if not any(d is None for s in declared for d in tuple(s.shape)[1:]):
            return None
        outputs = jax.eval_shape(lambda t, n, x: low.forward(t, n, x, training=False)[0], tv, ntv, specs)
        return jax.tree_util.tree_leaves(outputs)

    def _with_input_shapes(self, low, specs, input_shapes, batch_size):
        names = [t.name for t in self.model.inputs]
        if isinstance(input_shapes, dict):
            extra = sorted(set(input_shapes) - set(names))
            if extra:
                raise ValueError(f"input_shapes names {extra} are not inputs of model {self.model.name!r}; "
                                 f"its inputs are {names}.")
            shapes = [input_shapes.get(n) for n in names]
        else:
            shapes = list(input_shapes)
            if len(specs) == 1 and shapes and all(isinstance(d, (int, np.integer)) for d in shapes):
                shapes = [shapes]      # one input's shape given on its own, e.g. input_shapes=(100,)
            if len(shapes) != len(specs):
                raise ValueError(f"input_shapes has {len(shapes)} shapes but model {self.model.name!r} has "
                                 f"{len(specs)} inputs {names}; pass one shape (without the batch axis) per input.")
        out = []
        for name, spec, known, shape in zip(names, specs, low.input_specs, shapes):
            if shape is None:
                out.append(spec)
                continue
            shape = tuple(shape)
            declared = tuple(known.shape[1:])
            if len(shape) != len(declared) or any(d is not None and d != s for d, s in zip(declared, shape)):
                raise ValueError(f"input_shapes[{name!r}] = {shape} does not fit the input's declared shape "
                                 f"{declared} (None = any size); give the shape without the batch axis.")
            out.append(jax.ShapeDtypeStruct((batch_size,) + shape, spec.dtype))
        return out

    def lower(self, endpoint="predict", batch_size=1, input_shapes=None):
        """The `jax.stages.Lowered` step for `endpoint` ("predict", "eval" or "train") at `batch_size`."""
        if self.mode == "eager":
            raise ValueError("as_text/lower need mode='jit'; this model was compiled with mode='eager'.")
        return self.step(endpoint).lower(*self.example_args(endpoint, batch_size, input_shapes))

    def as_text(self, endpoint="predict", batch_size=1, input_shapes=None):
        """The StableHLO (MLIR text) of the one jitted function for `endpoint`."""
        return self.lower(endpoint, batch_size, input_shapes).as_text()

    def records(self, pass_mode="predict"):
        return self._pipeline(pass_mode)[1]

    def report(self, pass_mode="predict", print_fn=None):
        """Print (and return) a table of the passes that ran: what each found or changed, and its time."""
        from rich import box
        from rich.console import Console
        from rich.table import Table
        records = self.records(pass_mode)
        table = Table(title=f"Passes for {self.model.name!r} ({pass_mode})", box=box.SIMPLE_HEAVY)
        for col in ("pass", "changed", "nodes", "time", "report"):
            table.add_column(col, no_wrap=col != "report")
        for r in records:
            table.add_row(r.name, "yes" if r.changed else "no", f"{r.nodes_before} -> {r.nodes_after}",
                          f"{r.seconds * 1e3:.1f} ms", r.report)
        console = Console(width=110, force_terminal=False, color_system=None, record=True)
        with console.capture() as cap:
            console.print(table)
        text = cap.get()
        (print_fn or print)(text.rstrip("\n"))
        return text


def compile_model(model, mode="jit", passes=None, verify=False, compile_config=None, compiler_options=None,
                  pass_options=None, autotune=False):
    """Compile a model: passes over its IR, lowering to pure functions, one jitted step per endpoint.

    mode: "jit" (XLA-compiled steps) or "eager" (the same lowered functions run op by op, for comparison).
    passes: a custom list of pass names or `fncompiler.passes.Pass` objects (default: the mode's pipeline).
    verify: run `ir.verify` after every pass.
    compiler_options: XLA compile options for every step (e.g. {"xla_cpu_experimental_ynn_fusion_type": ""}),
        on top of `default_compiler_options()` (on CPU {"xla_backend_optimization_level": 1}; pass
        {"xla_backend_optimization_level": 3} for XLA's own default, or set FNCOMPILER_XLA_DEFAULTS=0).
    pass_options: options the passes read (e.g. {"remat_policy": "dots_saveable", "scan_min_repeats": 4}); a key
        no pass declares (`Pass(options=...)`) raises ValueError naming it and the valid keys.
    autotune: the train step's XLA options chosen by measurement at its first call per input signature
        (runtime/tuned_steps.py through runtime/tuner.py: candidates checked against each other and timed on
        copies of the caller's state; the decision is cached per model signature and device), and the predict
        and eval steps' per batch shape once it is hot (the same modules). `fit`, `predict` and `evaluate` tune on their own; this is
        for code that calls `step(...)` itself.
    """
    if compile_config is None:
        compile_config = getattr(model, "_compile_config", None)
    return CompiledModel(model, mode=mode, passes=passes, compile_config=compile_config, verify=verify,
                         compiler_options=compiler_options, pass_options=pass_options, autotune=autotune)
