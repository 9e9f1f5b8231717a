"""The training loop: fit / evaluate / predict over the compiled steps, with Keras's callbacks and logs.

Weights live in the model's Variables between calls. `fit` copies them into a device-resident state, runs
the donated, jitted train step batch after batch (metrics accumulate on device), and writes the weights
back at the end of each epoch, so callbacks and the user always see current values.
"""
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from fncompiler import callbacks as callbacks_lib
from fncompiler.utils import random as random_utils
from . import accumulation
from . import buckets
from . import executions as executions_lib
from . import executor as executor_lib
from . import host_eval
from . import data as data_lib
from . import data_sources
from . import lowering
from . import placement
from . import steps as steps_lib
from .compile_config import CompileConfig
from .compiled import compile_model
from .progbar import Progbar
from .tuned_steps import TunedInferenceStep

__all__ = ["Trainer", "CompileConfig"]


def _resolve_verbose(verbose):
    return 1 if verbose == "auto" else int(verbose)


def _ordered(logs):
    return sorted(logs.items(), key=lambda kv: (kv[0].startswith("val_"), kv[0]))


class Trainer:
    def __init__(self, model, cfg):
        self.model = model
        self.cfg = cfg
        mode = "eager" if cfg is not None and cfg.run_eagerly else "jit"
        self.compiled = compile_model(model, mode=mode, compile_config=cfg)
        # The train strategy fit's tuner chose last (train_on_batch runs its program one batch at a time; eval
        # keeps `compiled`; predict and evaluate choose per batch shape, `inference_tuners`).
        self.train_strategy = executor_lib.fixed(self.compiled, 1).strategy
        self.autotune_decision = None      # the last tuned fit's decision record (runtime/tuner.py)
        self.tuning_memory = {}            # kept across fits: the first tuned fit's first step (executor.py)
        self.inference_tuners = {}         # "predict" / "eval" -> tuned_steps.TunedInferenceStep
        self.opt_state = model.__dict__.pop("_restored_opt_state", None)
        self.rng_state = model.__dict__.pop("_restored_rng_state", None)   # the dropout key carries across fits
        self.rng_seed = None
        # The bookkeeping programs around the train step, evaluated on the host where possible (host_eval.py).
        self._init_fn = host_eval.HostOrJit(self._init_state_fn)
        self._metric_init_fn = host_eval.HostOrJit(lambda: steps_lib.initial_metric_states(self.cfg))
        self._results_fn = host_eval.HostOrJit(lambda states: steps_lib.metric_results(self.cfg, states),
                                               on_device=False)

    # -- helpers -----------------------------------------------------------------------------------
    def _ensure_resolved(self):
        cfg = self.cfg
        if cfg is not None and not cfg.resolved:
            cfg.resolve(self.model.output_names, [t.shape for t in self.model.outputs])

    def _device(self, arrays):
        return placement.place_batch(arrays)

    @property
    def opt_state(self):
        """The optimizer's state (what is saved): without the gradient accumulator (runtime/accumulation.py)."""
        return accumulation.optimizer_state(self.__dict__.get("_opt_state"))

    @opt_state.setter
    def opt_state(self, value):
        self._opt_state = value

    @property
    def train_config(self):
        """The compile config the train step applies (with gradient accumulation: an accumulating optimizer)."""
        return accumulation.train_config(self.cfg)

    def _variables(self):
        low = self.compiled.lowered("train")
        return low.trainable, low.non_trainable

    def _eval_variables(self):      # the eval step's variables (a train program may stack some: lowering.py)
        low = self.compiled.lowered("eval")
        return low.trainable, low.non_trainable

    def _eval_weights(self, state):      # the train state's weights in the eval step's layout (lowering.py)
        return lowering.convert_weights(self.compiled.lowered("train"), self.compiled.lowered("eval"), state[0], state[1])

    def _logs(self, metric_states):
        """{log name: float} of metric states, computed on the host from one transfer of the accumulators
        (runtime/host_eval.py; a jitted program where that cannot reproduce the metric exactly)."""
        return {k: float(v) for k, v in jax.device_get(self._results_fn(jax.device_get(metric_states))).items()}

    def _fresh_metric_states(self):
        return self._metric_init_fn()

    def _initial_state(self, tvars, ntvars):
        """Copies of the weights, the optimizer state, the metric accumulators and the RNG key: computed on the
        host without an XLA compilation where possible (runtime/host_eval.py), else by one jitted program
        (compiled once per weight signature) rather than a compiled primitive per array."""
        return self._init_fn([v.value for v in tvars], [v.value for v in ntvars],
                             np.int32(self.rng_seed % (2 ** 31)))

    def _init_state_fn(self, trainable, non_trainable, seed):
        copy = lambda xs: [jnp.array(x, copy=True) for x in xs]      # fresh buffers: the state is donated
        return steps_lib.initial_train_state(copy(trainable), copy(non_trainable), self.train_config, seed)

    def _start_state(self):
        tvars, ntvars = self._variables()
        if self.rng_seed is None:
            self.rng_seed = random_utils.next_seed()
        if placement.current() is None:
            state = self._initial_state(tvars, ntvars)
        else:
            trainable = placement.place_weights([jnp.array(v.value, copy=True) for v in tvars], tvars)
            non_trainable = placement.place_weights([jnp.array(v.value, copy=True) for v in ntvars], ntvars)
            state = steps_lib.initial_train_state(trainable, non_trainable, self.train_config, self.rng_seed)
        if self._opt_state is not None:      # (kept in the model's layout, with its accumulator: lowering.py)
            saved = self.compiled.lowered("train").opt_state_to_program(self._opt_state)
            state = (state[0], state[1], accumulation.resume(saved, state[2]), state[3], state[4])
        if self.rng_state is not None:
            state = (state[0], state[1], state[2], state[3], self.rng_state)
        state = (state[0], state[1], placement.place_tree(state[2]), placement.place_tree(state[3]),
                 placement.place_tree(state[4]))
        self._lr_synced = None
        self._written = {id(v): v._value for v in list(tvars) + list(ntvars)}   # what the state was copied from
        return state

    def _sync_lr(self, state):
        lr = self.cfg.optimizer.learning_rate
        if getattr(self.cfg.optimizer, "has_schedule", False) or not isinstance(lr, (int, float)):
            return state
        if self._lr_synced != lr:
            state = (state[0], state[1], self.train_config.optimizer.set_learning_rate(state[2], float(lr)), state[3],
                     state[4])
            self._lr_synced = lr
        return state

    def _write_back(self, state, copy_state=False):
        """Give the variables copies of the state's weights (the state's own buffers get donated next step).
        `copy_state`: also keep copies (not the buffers themselves) of the optimizer and RNG state, for a write
        back in the middle of an epoch, after which training goes on with (and donates) the state."""
        tvars, ntvars = self._variables()
        self._written = {}
        variables = list(tvars) + list(ntvars)
        for v, x in zip(variables, host_eval.copies(list(state[0]) + list(state[1]))):
            v._value = x
            self._written[id(v)] = v._value
        copy = host_eval.copy_tree if copy_state else (lambda t: t)
        # (in the model's layout, with the accumulator; `opt_state` gives the optimizer's own)
        self._opt_state = copy(self.compiled.lowered("train").opt_state_to_model(state[2]))
        self.rng_state = copy(state[4])

    def sync_live(self):
        """Inside a per-batch callback of `fit`: write the current weights (and optimizer / RNG state) back to the
        model, so the callback can save or read them (Keras's ModelCheckpoint(save_freq=N batches)). Outside
        one, the model's variables are already current and this does nothing."""
        live = self.__dict__.get("_live_state")
        if live is not None:
            executor, state = live
            self._write_back(executor.in_base(state), copy_state=True)

    def _prepare(self, x, y, sample_weight):
        xs = data_lib.flatten_x(self.model, x)
        ys = data_lib.flatten_y(self.cfg.output_names, self.cfg.has_loss, y)
        if all(t is None for t in ys) and any(self.cfg.has_loss):
            raise ValueError(f"Model {self.model.name!r} was compiled with a loss, but no targets `y` were given.")
        if isinstance(sample_weight, (dict, list, tuple)):
            if len(sample_weight) == 1 and len(self.cfg.output_names) == 1:
                sample_weight = next(iter(sample_weight.values())) if isinstance(sample_weight, dict) \
                    else sample_weight[0]
            else:
                raise ValueError(
                    f"sample_weight: a {type(sample_weight).__name__} of per-output weights was given to model "
                    f"{self.model.name!r} (outputs {list(self.cfg.output_names)}); fncompiler applies one array of "
                    "shape (n,) (or (n, ...) matching the targets) to every output and does not support per-output "
                    "sample weights yet. Pass one array, or weigh the outputs with compile(loss_weights=...).")
        sw = None if sample_weight is None else data_lib.to_host(sample_weight, "sample_weight").astype(np.float32)
        n = data_lib.check_lengths(xs, ys, sw)
        return xs, ys, sw, n

    @staticmethod
    def _batches(n, batch_size, order):
        for start in range(0, n, batch_size):
            yield start // batch_size, (order[start:start + batch_size] if order is not None
                                        else slice(start, start + batch_size))

    # -- fit ---------------------------------------------------------------------------------------
    def fit(self, x, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1):
        self._ensure_resolved()
        for cb in callbacks or []:          # BackupAndRestore: restore the backup, start where it left off
            resume = getattr(cb, "resume_epoch", None)
            epoch_found = resume(self.model) if callable(resume) else None
            if epoch_found is not None:
                initial_epoch = max(initial_epoch, epoch_found)
                if self.model._trainer is not self:      # the restore changed layer seeds: a new trainer
                    return self.model._get_trainer().fit(
                        x, y, batch_size, epochs, verbose, callbacks,
                        validation_split, validation_data, shuffle, class_weight, sample_weight, initial_epoch,
                        steps_per_epoch, validation_steps, validation_batch_size, validation_freq)
        if class_weight is not None:
            class_weight = data_sources.check_class_weight(class_weight)
        if not isinstance(validation_freq, (int, list)) or isinstance(validation_freq, bool):
            raise ValueError(f"fit: validation_freq must be an int or a list of (1-based) epochs; received "
                             f"{validation_freq!r}.")
        verbose = _resolve_verbose(verbose)
        generator = data_sources.is_batched_source(x)
        if generator:
            data_sources.check_no_arrays_with_source(x, y, sample_weight, "fit")
            if validation_split:
                raise ValueError("validation_split is only supported for array inputs, not generators; pass "
                                 "validation_data=... instead.")
            source = x
            n = None
            validation = None
        else:
            xs, ys, sw, n = self._prepare(x, y, sample_weight)
            if class_weight is not None:
                sw = data_sources.apply_class_weight(ys, sw, class_weight, self.cfg.output_names)
            if not 0.0 <= validation_split < 1.0:
                raise ValueError(f"validation_split must be in [0, 1); received {validation_split}.")
            if validation_split and validation_data is None:
                at = int(n * (1.0 - validation_split))
                if at == 0 or at == n:
                    raise ValueError(f"validation_split={validation_split} leaves no training or no validation "
                                     f"samples out of {n}.")
                (xs, val_xs), (ys, val_ys) = data_lib.split(xs, at), data_lib.split(ys, at)
                if sw is not None:
                    sw, val_sw = sw[:at], sw[at:]
                else:
                    val_sw = None
                validation = (val_xs, val_ys, val_sw)
                n = at
            else:
                validation = None
        if validation_data is not None and data_sources.is_batched_source(validation_data):
            validation = validation_data
        elif validation_data is not None:
            if isinstance(validation_data, (tuple, list)):
                vx, vy, vsw = data_lib.unpack_batch(tuple(validation_data))
            else:
                vx, vy, vsw = validation_data, None, None
            vxs, vys, vsw_arr, _ = self._prepare(vx, vy, vsw)
            validation = (vxs, vys, vsw_arr)
        batch_size = batch_size or 32
        if n is not None:
            steps = math.ceil(n / batch_size) if steps_per_epoch is None else int(steps_per_epoch)
        else:
            steps = data_sources.num_batches(source) if steps_per_epoch is None else int(steps_per_epoch)
        history = callbacks_lib.History()
        cbs = callbacks_lib.CallbackList(list(callbacks or []) + [history], model=self.model, epochs=epochs,
                                         steps=steps, verbose=verbose)
        batch_hooks = cbs.batch_hooks_used
        if any(isinstance(cb, callbacks_lib.ProgbarLogger) for cb in cbs.callbacks):
            verbose = 0          # a ProgbarLogger passed to fit replaces fit's own bar, as in Keras
        self.model.stop_training = False
        state = self._start_state()
        spe = self.cfg.steps_per_execution
        if spe == "auto" and self.compiled.mode == "eager":
            spe = 1
        if spe == "auto":
            total = None if steps is None else steps * max(epochs - initial_epoch, 0)
            # every epoch of an array fit whose size is not a multiple of the batch ends with a smaller batch
            partial = n is not None and steps_per_epoch is None and n % batch_size != 0
            executor = executor_lib.TuningExecutor(self.compiled, steps, allow_scan=not batch_hooks,
                                                   total_batches=total, memory=self.tuning_memory,
                                                   partial_last_batch=partial)
        else:            # per-batch callbacks see the state after every batch
            executor = executor_lib.fixed(self.compiled, 1 if batch_hooks else spe)
        cbs.on_train_begin()
        epoch_logs = {}
        for epoch in range(initial_epoch, epochs):
            cbs.on_epoch_begin(epoch)
            # weights a callback set in on_train_begin / on_epoch_begin are the ones this epoch trains
            state = self._start_state_from_variables(state)[:2] + tuple(state[2:])
            state = self._sync_lr(state)
            state = (state[0], state[1], state[2], self._fresh_metric_states(), state[4])
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}")
            bar = Progbar(steps, verbose=verbose)
            done = 0
            if generator:
                data_sources.begin_epoch(source)
                batches = self._generator_batches(source, steps, shuffle=shuffle, class_weight=class_weight)
            else:
                order = np.random.permutation(n) if shuffle else None
                batches = ((i, data_lib.take(xs, idx), data_lib.take(ys, idx), None if sw is None else sw[idx])
                           for i, idx in self._batches(n, batch_size, order))
                if steps_per_epoch is not None:
                    batches = self._cycle(batches, steps, n, batch_size, xs, ys, sw, shuffle)
            for i, bx, by, bsw in executions_lib.executions(batches, executor.steps_per_execution, batch_size):
                cbs.on_train_batch_begin(i)
                state = executor.run(state, bx, by, bsw)
                self._note_strategy(executor)
                done = i + 1
                if batch_hooks or bar.wants_update(done):
                    logs = self._logs(state[3])
                    self._live_state = (executor, state)   # what sync_live() writes back if a callback asks
                    cbs.on_train_batch_end(i, logs)
                    self._live_state = None
                    bar.update(done, _ordered(logs))
                if self.model.stop_training:
                    break
            executor.epoch_end(state)
            state = executor.to_base(state)       # the trainer's layout, for validation and the write-back
            if generator:
                data_sources.end_epoch(source)
            epoch_logs = self._logs(state[3])
            due = (epoch + 1) in validation_freq if isinstance(validation_freq, list) \
                else (epoch + 1) % validation_freq == 0
            if validation is not None and due:
                # Keras: the validation pass calls the callbacks' test hooks (on_test_begin .. on_test_end)
                cbs.on_test_begin()
                if not isinstance(validation, tuple):
                    val_logs = self._evaluate_source(*self._eval_weights(state), validation, validation_steps,
                                                     tuned=False, callbacks=cbs)
                else:
                    val_logs = self._evaluate_arrays(*self._eval_weights(state), *validation,
                                                     validation_batch_size or batch_size, verbose=0,
                                                     callbacks=cbs, steps=validation_steps)
                cbs.on_test_end(val_logs)
                epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
            self._write_back(state)
            bar.update(done, _ordered(epoch_logs), finalize=True)
            cbs.on_epoch_end(epoch, epoch_logs)
            state = self._start_state_from_variables(state)
            if self.model.stop_training:
                break
        cbs.on_train_end(epoch_logs)
        self.model.history = history
        return history

    def _start_state_from_variables(self, state):
        # Callbacks may have changed the weights (e.g. restore_best_weights) or the learning rate.
        tvars, ntvars = self._variables()
        written = getattr(self, "_written", {})

        def current(v, x):
            return x if written.get(id(v)) is v._value else placement.place_weights([jnp.array(v.value, copy=True)],
                                                                                    [v])[0]
        return ([current(v, x) for v, x in zip(tvars, state[0])], [current(v, x) for v, x in zip(ntvars, state[1])],
                self.compiled.lowered("train").opt_state_to_program(self._opt_state), state[3], state[4])

    def _note_strategy(self, executor):
        """Once fit's tuner has decided: its strategy (for train_on_batch) and decision record."""
        if executor.decision is not None and executor.decision is not self.autotune_decision:
            self.autotune_decision = executor.decision
            self.train_strategy = executor.strategy

    def _cycle(self, batches, steps, n, batch_size, xs, ys, sw, shuffle):
        count = 0
        while count < steps:
            for i, bx, by, bsw in batches:
                yield count, bx, by, bsw
                count += 1
                if count >= steps:
                    return
            order = np.random.permutation(n) if shuffle else None
            batches = ((i, data_lib.take(xs, idx), data_lib.take(ys, idx), None if sw is None else sw[idx])
                       for i, idx in self._batches(n, batch_size, order))

    def _generator_batches(self, source, steps, shuffle=False, class_weight=None):
        for i, item in enumerate(data_sources.epoch_items(source, steps, shuffle)):
            bx, by, bsw = data_lib.unpack_batch(tuple(item) if isinstance(item, list) else item)
            xs, ys, sw, _ = self._prepare(bx, by, bsw)
            if class_weight is not None:
                sw = data_sources.apply_class_weight(ys, sw, class_weight, self.cfg.output_names)
            yield i, xs, ys, sw

    def _evaluate_source(self, tv, ntv, source, steps, tuned, callbacks=None):
        """Metric logs of one pass over a batch source (a PyDataset gets its epoch hooks)."""
        eval_step = self._eval_step(tuned)
        states = self._fresh_metric_states()
        batch_logs = callbacks is not None and callbacks.batch_hooks_used   # (once: it inspects every callback)
        data_sources.begin_epoch(source)
        for i, bx, by, bsw in self._generator_batches(source, steps):
            if callbacks is not None:
                callbacks.on_test_batch_begin(i)
            states = eval_step(tv, ntv, states, self._device(bx), self._device(by),
                               None if bsw is None else placement.place_batch([bsw])[0])
            if batch_logs:
                callbacks.on_test_batch_end(i, self._logs(states))
        data_sources.end_epoch(source)
        return self._logs(states)

    # -- evaluate ----------------------------------------------------------------------------------
    def _eval_step(self, tuned):
        """The eval step; `tuned`: through its XLA-option tuner (evaluate(), not fit's validation, so that tuning
        never lands inside fit's epochs)."""
        tuner = self.inference_tuner("eval") if tuned else None
        return tuner if tuner is not None else self.compiled.untuned_step("eval")

    def _evaluate_arrays(self, trainable, non_trainable, xs, ys, sw, batch_size, verbose=0, callbacks=None,
                         tuned=False, steps=None):
        eval_step = self._eval_step(tuned)
        states = self._fresh_metric_states()
        n = data_lib.num_samples(xs)
        if steps is not None:      # Keras's validation_steps / evaluate(steps=): the first `steps` batches
            n = min(n, int(steps) * batch_size)
            xs, ys = data_lib.take(xs, slice(0, n)), data_lib.take(ys, slice(0, n))
            sw = None if sw is None else sw[:n]
        steps = math.ceil(n / batch_size)
        bar = Progbar(steps, verbose=verbose)
        done = 0
        batch_logs = callbacks is not None and callbacks.batch_hooks_used   # (once: it inspects every callback)
        for i, idx in self._batches(n, batch_size, None):
            if callbacks is not None:
                callbacks.on_test_batch_begin(i)
            states = eval_step(trainable, non_trainable, states, self._device(data_lib.take(xs, idx)),
                               self._device(data_lib.take(ys, idx)), None if sw is None else placement.place_batch([sw[idx]])[0])
            done = i + 1
            if batch_logs:
                callbacks.on_test_batch_end(i, self._logs(states))
            elif bar.wants_update(done):
                bar.update(done, _ordered(self._logs(states)))
        logs = self._logs(states)
        bar.update(done, _ordered(logs), finalize=True)
        return logs

    def evaluate(self, x, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None, callbacks=None,
                 return_dict=False):
        self._ensure_resolved()
        verbose = _resolve_verbose(verbose)
        cbs = callbacks_lib.CallbackList(list(callbacks or []), model=self.model, verbose=verbose)
        cbs.on_test_begin()
        tvars, ntvars = self._eval_variables()
        tv = placement.place_weights([v.value for v in tvars], tvars)
        ntv = placement.place_weights([v.value for v in ntvars], ntvars)
        if data_sources.is_batched_source(x):
            data_sources.check_no_arrays_with_source(x, y, sample_weight, "evaluate")
            logs = self._evaluate_source(tv, ntv, x, steps, tuned=True, callbacks=cbs)
        else:
            xs, ys, sw, n = self._prepare(x, y, sample_weight)
            logs = self._evaluate_arrays(tv, ntv, xs, ys, sw, batch_size or 32, verbose=verbose, callbacks=cbs,
                                         tuned=True, steps=steps)
        cbs.on_test_end(logs)
        if return_dict:
            return logs
        values = [logs[name] for name in self.cfg.metrics_names]
        return values[0] if len(values) == 1 else values

    # -- predict -----------------------------------------------------------------------------------
    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        verbose = _resolve_verbose(verbose)
        step = self.compiled.untuned_step("predict")
        low = self.compiled.lowered("predict")
        tv = placement.place_weights([v.value for v in low.trainable], low.trainable)
        ntv = placement.place_weights([v.value for v in low.non_trainable], low.non_trainable)
        bucketed = self._bucketed(low)
        cap = batch_size or 32
        tuner = self.inference_tuner("predict")
        if tuner is not None:
            step = tuner

        def run(arrays):
            n = data_lib.num_samples(arrays)
            size = buckets.bucket_size(n, cap) if bucketed and n else n
            out = step(tv, ntv, self._device(buckets.pad_rows(arrays, size) if size != n else arrays))
            return out if size == n else (out, n)

        xs = None if data_sources.is_batched_source(x) else data_lib.flatten_x(self.model, x)
        if xs is not None and not callbacks and 0 < data_lib.num_samples(xs) <= cap:
            return low.pack_outputs(self._to_host([run(xs)])[0])      # one batch: no loop, no progress bar
        cbs = callbacks_lib.CallbackList(list(callbacks or []), model=self.model)
        cbs.on_predict_begin()
        outs = []
        if xs is None:
            data_sources.begin_epoch(x)
            for i, item in enumerate(data_sources.epoch_items(x, steps)):
                bx, _, _ = data_lib.unpack_batch(tuple(item) if isinstance(item, list) else item)
                outs.append(run(data_lib.flatten_x(self.model, bx)))
                cbs.on_predict_batch_end(i, {})
            data_sources.end_epoch(x)
        elif steps is not None:
            n = min(data_lib.num_samples(xs), int(steps) * cap)
            for i, idx in self._batches(n, cap, None):
                outs.append(run(data_lib.take(xs, idx)))
                cbs.on_predict_batch_end(i, {})
        else:
            n = data_lib.num_samples(xs)
            nsteps = math.ceil(n / cap)
            bar = Progbar(nsteps, verbose=verbose if n > cap else 0)
            for i, idx in self._batches(n, cap, None):
                outs.append(run(data_lib.take(xs, idx)))
                cbs.on_predict_batch_end(i, {})
                if bar.wants_update(i + 1):
                    bar.update(i + 1)
            bar.update(nsteps, finalize=True)
        cbs.on_predict_end()
        if not outs:
            raise ValueError("predict() received no data.")
        hosts = self._to_host(outs)
        if len(hosts) == 1:
            flat = hosts[0]
        else:
            flat = [np.concatenate([h[k] for h in hosts], axis=0) for k in range(len(hosts[0]))]
        return low.pack_outputs(flat)

    @staticmethod
    def _to_host(outs):
        """Each predict execution's outputs as NumPy arrays, without the rows padded up to a bucket."""
        return [[placement.to_host(a) for a in o] if not isinstance(o, tuple)
                else [placement.to_host(a)[:o[1]] for a in o[0]] for o in outs]

    def inference_tuner(self, endpoint):
        """The XLA-option tuner of the "predict" or "eval" step (runtime/tuned_steps.py), or None: not
        jitted, distributed, a fixed steps_per_execution (the autotuner is off), or nothing to choose from."""
        if (self.compiled.mode != "jit" or placement.current() is not None
                or (self.cfg is not None and self.cfg.steps_per_execution != "auto")):
            return None
        tuner = self.inference_tuners.get(endpoint)
        if tuner is None:
            tuner = self.inference_tuners[endpoint] = TunedInferenceStep(self.compiled, endpoint)
        return tuner if tuner.active else None

    def _bucketed(self, low):
        """Whether predict pads odd batch sizes to buckets (see runtime/buckets.py): compiled steps, no
        distribution, and a graph whose outputs are computed per sample."""
        if self.compiled.mode != "jit" or placement.current() is not None:
            return False
        flag = self.__dict__.get("_bucket_flag")
        if flag is None or flag[0] is not low:
            flag = self._bucket_flag = (low, buckets.per_sample(low.graph))
        return flag[1]

    # -- single batches ----------------------------------------------------------------------------
    def _batch_logs(self, logs, return_dict):
        if return_dict:
            return logs
        values = [logs[name] for name in self.cfg.metrics_names]
        return values[0] if len(values) == 1 else values

    def train_on_batch(self, x, y=None, sample_weight=None, return_dict=False, class_weight=None):
        self._ensure_resolved()
        xs, ys, sw, _ = self._prepare(x, y, sample_weight)
        if class_weight is not None:
            sw = data_sources.apply_class_weight(ys, sw, data_sources.check_class_weight(class_weight),
                                                 self.cfg.output_names)
        state = self._sync_lr(self._start_state())
        executor = executor_lib.Executor(self.compiled, self.train_strategy)
        state = executor.to_base(executor.run(state, xs, ys, sw))
        logs = self._logs(state[3])
        self._write_back(state)
        return self._batch_logs(logs, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        self._ensure_resolved()
        xs, ys, sw, n = self._prepare(x, y, sample_weight)
        tvars, ntvars = self._eval_variables()
        logs = self._evaluate_arrays([v.value for v in tvars], [v.value for v in ntvars], xs, ys, sw, max(n, 1),
                                     tuned=True)
        return self._batch_logs(logs, return_dict)
