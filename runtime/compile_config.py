"""What `model.compile(...)` asked for, resolved per model output: losses, weights, metrics, optimizer."""
import dataclasses

from fncompiler import losses as losses_lib
from fncompiler import metrics as metrics_lib
from fncompiler import optimizers as optimizers_lib
from . import accumulation


@dataclasses.dataclass
class MetricEntry:
    name: str          # the log key ("loss", "priority_loss", "accuracy", "department_accuracy")
    kind: str          # "loss" (total), "output_loss" (one output's loss), "metric"
    output: int        # flat output index (-1 for the total loss)
    metric: object = None
    weighted: bool = False   # a weighted_metrics entry: updated with the batch's sample weights


def _per_output(value, names, what):
    """A compile argument given as one value, a list, or a dict keyed by output name -> list per output."""
    n = len(names)
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ValueError(f"compile(): {what} given for unknown outputs {unknown}; the model's outputs are {names}.")
        return [value.get(k) for k in names]
    if isinstance(value, (list, tuple)) and what not in ("metrics", "weighted_metrics"):
        if len(value) != n:
            raise ValueError(f"compile(): the model has {n} outputs {names}, but {what} is a list of {len(value)}.")
        return list(value)
    return [value] * n


class CompileConfig:
    def __init__(self, optimizer, loss, loss_weights, metrics, weighted_metrics, run_eagerly, steps_per_execution,
                 jit_compile, gradient_accumulation_steps=None):
        self.optimizer = optimizer
        self.loss = loss
        self.loss_weights = loss_weights
        self.metrics = metrics
        self.weighted_metrics = weighted_metrics
        self.run_eagerly = bool(run_eagerly)
        if steps_per_execution == "auto":
            self.steps_per_execution = "auto"
        else:
            try:
                spe = 1 if steps_per_execution is None else int(steps_per_execution)
            except (TypeError, ValueError):
                spe = 0
            if spe < 1:
                raise ValueError(f"compile(): steps_per_execution must be a positive int or 'auto'; received "
                                 f"{steps_per_execution!r}.")
            self.steps_per_execution = spe
        # Keras: jit_compile=False runs the steps without XLA; here that is the eager interpreter (run_eagerly)
        if jit_compile not in (True, False, "auto"):
            raise ValueError(f"compile(): jit_compile must be True, False or 'auto'; received {jit_compile!r}.")
        if jit_compile is True and self.run_eagerly:
            raise ValueError("compile(): jit_compile=True and run_eagerly=True contradict each other; pass one.")
        if jit_compile is False:
            self.run_eagerly = True
        self.jit_compile = jit_compile
        # K >= 1 (1: off), from this argument or the optimizer's own (runtime/accumulation.py)
        self.gradient_accumulation_steps = accumulation.resolve_steps(gradient_accumulation_steps, optimizer)
        self._accumulation_arg = gradient_accumulation_steps
        self.auto_scale_loss = True
        self.resolved = False

    @classmethod
    def create(cls, model, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
               run_eagerly=False, steps_per_execution="auto", jit_compile="auto", auto_scale_loss=True,
               gradient_accumulation_steps=None):
        opt = optimizers_lib.get(optimizer)
        _check_auto_scale_loss(model, auto_scale_loss)
        # Validate names now, so a typo fails at compile() rather than at fit().
        for leaf in (loss.values() if isinstance(loss, dict) else loss if isinstance(loss, (list, tuple)) else [loss]):
            if leaf is not None:
                losses_lib.get(leaf)
        for what, value in (("metrics", metrics), ("weighted_metrics", weighted_metrics)):
            if value is not None and not isinstance(value, (list, tuple, dict)):
                raise TypeError(f"compile(): `{what}` must be a list or a dict keyed by output name; received "
                                f"{type(value).__name__}: {value!r}. Wrap it in a list: {what}=[{value!r}].")
            for leaf in _flat_metric_ids(value):
                if isinstance(leaf, str):
                    metrics_lib.resolve(leaf)
        cfg = cls(opt, loss, loss_weights, metrics, weighted_metrics, run_eagerly, steps_per_execution, jit_compile,
                  gradient_accumulation_steps)
        cfg.auto_scale_loss = auto_scale_loss
        names = getattr(model, "output_names", None)
        outputs = getattr(model, "outputs", None)
        if names is not None and outputs:
            cfg.resolve(names, [t.shape for t in outputs])
        return cfg

    def resolve(self, output_names, output_shapes):
        """Bind losses, loss weights and metrics to the model's flat outputs."""
        self.output_names = list(output_names)
        n = len(self.output_names)
        loss_list = _per_output(self.loss, self.output_names, "loss")
        self.losses = [None if l is None else losses_lib.as_loss(l) for l in loss_list]
        if all(l is None for l in self.losses) and self.loss is not None:
            raise ValueError(f"compile(): no loss applies to any of the outputs {self.output_names}.")
        if self.loss_weights is None:
            self.weights = [1.0] * n
        else:
            w = _per_output(self.loss_weights, self.output_names, "loss_weights")
            self.weights = [1.0 if x is None else float(x) for x in w]
        entries = [MetricEntry("loss", "loss", -1)]
        with_loss = [i for i, l in enumerate(self.losses) if l is not None]
        if n > 1:
            for i in with_loss:
                entries.append(MetricEntry(f"{self.output_names[i]}_loss", "output_loss", i))
        for what, weighted in (("metrics", False), ("weighted_metrics", True)):
            value = getattr(self, what)
            per_out = _per_output(value, self.output_names, what) if isinstance(value, dict) else [value] * n
            for i, ms in enumerate(per_out):
                if ms is None:
                    continue
                for m in (ms if isinstance(ms, (list, tuple)) else [ms]):
                    metric = metrics_lib.resolve(m, loss=loss_list[i], y_pred_shape=output_shapes[i])
                    entries.append(MetricEntry(_entry_name(entries, metric.name, self.output_names, i, weighted),
                                               "metric", i, metric, weighted))
        self.entries = entries
        self.resolved = True
        return self

    @property
    def has_loss(self):
        return [l is not None for l in self.losses]

    @property
    def metrics_names(self):
        return [e.name for e in self.entries]

    def get_config(self):
        from fncompiler.saving import serialization
        config = {
            "optimizer": optimizers_lib.serialize(self.optimizer),
            "loss": serialization.serialize_compile_arg(self.loss, losses_lib.serialize),
            "loss_weights": self.loss_weights,
            "metrics": serialization.serialize_compile_arg(self.metrics, metrics_lib.serialize),
            "weighted_metrics": serialization.serialize_compile_arg(self.weighted_metrics, metrics_lib.serialize),
            "run_eagerly": self.run_eagerly,
            "steps_per_execution": self.steps_per_execution,
            "jit_compile": self.jit_compile,
        }
        if not self.auto_scale_loss:       # Keras's layout has no such key; written only when it is not the default
            config["auto_scale_loss"] = False
        if self._accumulation_arg is not None:    # (nor this one; the optimizer's own argument is in its config)
            config["gradient_accumulation_steps"] = self._accumulation_arg
        return config

    @staticmethod
    def kwargs_from_config(config, custom_objects=None):
        """model.compile(...) arguments from get_config()'s output (names resolve in closed registries only)."""
        from fncompiler.saving.saving_api import compile_kwargs_from_config
        return compile_kwargs_from_config(config, custom_objects)


def _entry_name(entries, base, output_names, i, weighted):
    """Keras's log key: `output_` prefix with several outputs; a weighted metric whose name is taken gets a
    `weighted_` prefix; a name still taken gets `_1`, `_2`, ..."""
    prefix = "" if len(output_names) == 1 else f"{output_names[i]}_"
    taken = {e.name for e in entries}
    name = prefix + base
    if name in taken and weighted:
        name = f"{prefix}weighted_{base}"
    k, candidate = 1, name
    while candidate in taken:
        candidate, k = f"{name}_{k}", k + 1
    return candidate


def _check_auto_scale_loss(model, auto_scale_loss):
    """Keras scales the loss of a mixed_float16 model (a LossScaleOptimizer); fncompiler has no loss scaling,
    so such a model must say auto_scale_loss=False (float16 gradients may underflow) instead of silently
    training unscaled."""
    if not isinstance(auto_scale_loss, bool):
        raise TypeError(f"compile(): auto_scale_loss must be True or False; received {auto_scale_loss!r}.")
    policy = getattr(model, "dtype_policy", None)
    policy = policy if isinstance(policy, str) else getattr(policy, "name", policy)
    if auto_scale_loss and policy == "mixed_float16":
        raise ValueError(f"compile(): model {getattr(model, 'name', '')!r} has dtype policy 'mixed_float16', for which "
                         "Keras scales the loss (auto_scale_loss=True, a LossScaleOptimizer); fncompiler does not "
                         "implement loss scaling. Pass auto_scale_loss=False to train in float16 without it, or use "
                         "the 'mixed_bfloat16' policy, which needs none.")


def _flat_metric_ids(metrics):
    if metrics is None:
        return []
    if isinstance(metrics, dict):
        out = []
        for v in metrics.values():
            out.extend(v if isinstance(v, (list, tuple)) else [v])
        return out
    return list(metrics) if isinstance(metrics, (list, tuple)) else [metrics]
