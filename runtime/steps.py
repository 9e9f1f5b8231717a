"""The three pure step functions built from a lowered forward function.

    train_step(state, x, y, sample_weight) -> state      state = (trainable, non_trainable, opt_state,
                                                                 metric_states, rng)
    eval_step(trainable, non_trainable, metric_states, x, y, sample_weight) -> metric_states
    predict_step(trainable, non_trainable, x) -> outputs

Metric accumulators are part of the state, so nothing is read back to the host inside an epoch.
"""
import weakref

import jax
import jax.numpy as jnp


def _mean_state():
    return (jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32))


def initial_metric_states(cfg):
    return [_mean_state() if e.kind != "metric" else e.metric.initial_state() for e in cfg.entries]


def initial_train_state(trainable, non_trainable, cfg, seed):
    return (list(trainable), list(non_trainable), cfg.optimizer.init(list(trainable)), initial_metric_states(cfg),
            jax.random.key_data(jax.random.key(seed)))


def metric_results(cfg, states):
    """{log name: value} from metric states (jax scalars; convert on the host when needed)."""
    out = {}
    for e, st in zip(cfg.entries, states):
        if e.kind == "metric":
            out[e.name] = e.metric.compute(st)
        else:
            total, count = st
            out[e.name] = total / jnp.maximum(count, 1.0)
    return out


def _batch_size(x):
    return jnp.asarray(x[0].shape[0], jnp.float32)


def _losses(cfg, y, outputs, sample_weight):
    total = jnp.zeros((), jnp.float32)
    per_output = []
    for i, (loss_fn, w) in enumerate(zip(cfg.losses, cfg.weights)):
        if loss_fn is None or y[i] is None:
            per_output.append(None)
            continue
        try:
            value = loss_fn(y[i], outputs[i], sample_weight=sample_weight)
        except (TypeError, ValueError) as err:
            raise type(err)(f"The loss {getattr(loss_fn, 'name', loss_fn)!r} of output {cfg.output_names[i]!r} "
                            f"failed on targets of shape {tuple(jnp.shape(y[i]))} and predictions of shape "
                            f"{tuple(jnp.shape(outputs[i]))}: {err}") from err
        value = jnp.asarray(value, jnp.float32)
        per_output.append(value)
        total = total + w * value
    return total, per_output


def _update_metrics(cfg, states, total_loss, per_output, y, outputs, batch, sample_weight=None):
    new = []
    for e, st in zip(cfg.entries, states):
        if e.kind == "loss":
            new.append((st[0] + total_loss * batch, st[1] + batch))
        elif e.kind == "output_loss":
            v = per_output[e.output]
            new.append(st if v is None else (st[0] + v * batch, st[1] + batch))
        else:
            if y[e.output] is None:
                new.append(st)
            else:
                # Keras: only weighted_metrics see the sample weights
                extra = {"sample_weight": sample_weight} if e.weighted else {}
                new.append(e.metric.update(st, y[e.output], outputs[e.output], **extra))
    return new


def make_train_step(lowered, cfg, counter):
    optimizer = cfg.optimizer

    def train_step(state, x, y, sample_weight):
        counter["train"] += 1          # runs at trace time only: counts compilations
        trainable, non_trainable, opt_state, metric_states, rng_data = state
        rng = jax.random.wrap_key_data(rng_data)
        rng, step_rng = jax.random.split(rng)

        def loss_fn(tv):
            outputs, new_nt, extra = lowered.forward(tv, non_trainable, x, step_rng, True)
            total, per_output = _losses(cfg, y, outputs, sample_weight)
            for e in extra:
                total = total + e
            total = total + lowered.regularization(tv)
            return total, (outputs, new_nt, per_output)

        (loss, (outputs, new_nt, per_output)), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
        new_trainable, new_opt_state = optimizer.apply(opt_state, grads, trainable)
        new_trainable = lowered.apply_constraints(new_trainable)
        metric_states = _update_metrics(cfg, metric_states, loss, per_output, y, outputs, _batch_size(x), sample_weight)
        return (new_trainable, new_nt, new_opt_state, metric_states, jax.random.key_data(rng))

    return train_step


def make_eval_step(lowered, cfg, counter):
    def eval_step(trainable, non_trainable, metric_states, x, y, sample_weight):
        counter["eval"] += 1
        outputs, _, extra = lowered.forward(trainable, non_trainable, x, None, False)
        total, per_output = _losses(cfg, y, outputs, sample_weight)
        for e in extra:
            total = total + e
        total = total + lowered.regularization(trainable)
        return _update_metrics(cfg, metric_states, total, per_output, y, outputs, _batch_size(x), sample_weight)

    return eval_step


def make_predict_step(lowered, counter):
    def predict_step(trainable, non_trainable, x):
        counter["predict"] += 1
        outputs, _, _ = lowered.forward(trainable, non_trainable, x, None, False)
        return outputs

    return predict_step


def example_targets(lowered, cfg, batch_size, output_specs=None):
    """Abstract targets per output for a step at `batch_size`; `output_specs`: the outputs' shapes for concrete
    inputs (where the graph's declared ones have unknown dimensions, e.g. a sequence's length), else the
    graph's."""
    graph = lowered.graph
    specs = output_specs or [graph.nodes[n]["output_specs"][i] for n, i in graph.graph["outputs"]]
    out = []
    for spec, loss in zip(specs, cfg.losses):
        if loss is None:
            out.append(None)
        elif "Sparse" in type(loss).__name__ or "sparse" in getattr(loss, "name", ""):
            # sparse labels: one integer per position, no class axis
            out.append(jax.ShapeDtypeStruct((batch_size,) + tuple(spec.shape[1:-1]), "int32"))
        else:
            out.append(jax.ShapeDtypeStruct((batch_size,) + tuple(spec.shape[1:]), spec.dtype))
    return out


def make_multi_train_step(lowered, cfg, counter):
    """N train steps as one `lax.scan` over N stacked, device-resident batches (steps_per_execution=N)."""
    single = make_train_step(lowered, cfg, counter)

    def multi_train_step(state, xs, ys, sample_weights):
        counter["train_multi"] += 1

        def body(carry, batch):
            x, y, sw = batch
            return single(carry, x, y, sw), None
        state, _ = jax.lax.scan(body, state, (xs, ys, sample_weights))
        return state

    return multi_train_step


# -- predict with constant-folded weight expressions ----------------------------------------------------
def make_residuals_fn(lowered, counter):
    """residuals(trainable, non_trainable) -> {node id: values}: the weight-only parts constant_folding split off."""
    def residuals(trainable, non_trainable):
        counter["predict_residuals"] += 1
        return lowered.residuals(trainable, non_trainable)

    return residuals


def make_folded_predict_step(lowered, counter):
    """predict_step(trainable, non_trainable, residuals, x) -> outputs, reading the precomputed residuals."""
    def predict_step(trainable, non_trainable, residuals, x):
        counter["predict"] += 1
        outputs, _, _ = lowered.forward(trainable, non_trainable, x, None, False, residuals=residuals)
        return outputs

    return predict_step


def _concrete_arrays(leaves):
    tracer = jax.core.Tracer
    return all(isinstance(a, jax.Array) and not isinstance(a, tracer) for a in leaves)


class FoldedPredictStep:
    """The predict step `(trainable, non_trainable, x) -> outputs` when constant folding split weight-only
    expressions off: the residuals are computed by their own jitted function once per weight version and the
    jitted per-batch step reads them. The cache holds the last weight version, recognized by the identity of
    its arrays (jax arrays are immutable; weak references, so the cache keeps no old weights alive: equal ids of
    live referents mean the same objects). NumPy weights (mutable) and tracers are never cached: their residuals
    are computed on every call."""

    def __init__(self, residuals_fn, step_fn, wrap):
        self._residuals_raw = residuals_fn
        self._residuals = wrap(residuals_fn)
        self._step = wrap(step_fn)
        self._cached = None      # (ids of the weight arrays, weak references to them, residuals)
        self.residual_computations = 0

    def residuals(self, trainable, non_trainable):
        leaves = jax.tree_util.tree_leaves((trainable, non_trainable))
        cached = self._cached
        if cached is not None and cached[0] == list(map(id, leaves)) and all(r() is not None for r in cached[1]):
            return cached[2]
        value = self._residuals(trainable, non_trainable)
        self.residual_computations += 1
        self._cached = None
        if _concrete_arrays(leaves):
            try:
                self._cached = (list(map(id, leaves)), [weakref.ref(a) for a in leaves], value)
            except TypeError:
                pass
        return value

    def __call__(self, trainable, non_trainable, x):
        return self._step(trainable, non_trainable, self.residuals(trainable, non_trainable), x)

    def lower(self, trainable, non_trainable, x):
        """The per-batch step lowered for these argument specs (its StableHLO is what `as_text` shows);
        `.compile()` gives a callable taking (trainable, non_trainable, x) like the step."""
        res = jax.eval_shape(self._residuals_raw, trainable, non_trainable)
        return _FoldedLowered(self, self._step.lower(trainable, non_trainable, res, x))

    def eval_shape(self, trainable, non_trainable, x):
        res = jax.eval_shape(self._residuals_raw, trainable, non_trainable)
        return jax.eval_shape(self._step, trainable, non_trainable, res, x)


class _FoldedLowered:
    def __init__(self, step, lowered):
        self._step_obj, self._lowered = step, lowered

    def compile(self, *args, **kwargs):
        return _FoldedCompiled(self._step_obj, self._lowered.compile(*args, **kwargs))

    def __getattr__(self, name):
        return getattr(self._lowered, name)


class _FoldedCompiled:
    def __init__(self, step, compiled):
        self._step_obj, self._compiled = step, compiled

    def __call__(self, trainable, non_trainable, x):
        return self._compiled(trainable, non_trainable, self._step_obj.residuals(trainable, non_trainable), x)

    def __getattr__(self, name):
        return getattr(self._compiled, name)
