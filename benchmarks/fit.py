"""Training-loop benchmark: the guide's four training setups, fncompiler's fit against hand-written JAX.

    python benchmarks/fit.py [--quick] [--json out.json] [--md out.md] [--models mlp,resnet,ticket,autoencoder]
                             [--configs fncompiler,jax_jit,...] [--samples N] [--epochs E]

Every (model, configuration) pair runs in its own fresh Python process, one after another, so compile caches,
device buffers and memory do not leak between them; the parent only orchestrates and compares.

Models (synthetic data of the guide's shapes; `--samples` / $FNCOMPILER_BENCH_SAMPLES overrides the count):
  mlp          784-64-64-10 relu, batch 64, validation_split 0.2, SparseCategoricalCrossentropy(from_logits),
               RMSprop, metrics ["accuracy"]; 60000 samples (quick 6000)
  resnet       the guide's toy ResNet on 32x32x3, batch 64, validation_split 0.2 (as in the guide),
               CategoricalCrossentropy(from_logits), RMSprop(1e-3), metrics ["acc"]; 1000 samples (quick 256)
  ticket       the guide's ticket model (title len 12, body len 100, 12 tags; two outputs, dict losses with
               loss_weights 1.0 / 0.2), batch 32; 1280 samples
  autoencoder  the guide's conv autoencoder on 28x28x1, mse, batch 64; 1000 samples (quick 256)

Configurations:
  fncompiler        model.fit with the default compile arguments (steps_per_execution="auto": the online tuner)
  fncompiler_spe1   compile(steps_per_execution=1)   (per-step jit)
  fncompiler_spe16  compile(steps_per_execution=16)  (scan over 16 stacked batches)
  fncompiler_auto   compile(steps_per_execution="auto"), the same as the default (not run unless named)
  fncompiler_eager  compile(run_eagerly=True): a few steps, extrapolated to one epoch (labelled so)
  jax_jit           hand-written jax.jit + optax train step, same layers in jax.lax/jnp, same initial weights
  jax_scan          hand-written whole-epoch lax.scan over device-resident batches
  keras             Keras 3 fit (JAX backend), only when `import keras` works

All runs use shuffle=False so every configuration sees the same batches in the same order; the loss of each
epoch is compared with the jax_jit baseline's (same initial weights) and a configuration that does not match
is marked FAIL and gets no ratios. See docs/benchmarks.md for what each number means.
"""
import argparse
import collections
import json
import math
import os
import sys
import tempfile
import time
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import hand_written as hw_lib  # noqa: E402
import zoo  # noqa: E402

MODELS = ("mlp", "resnet", "ticket", "autoencoder", "transformer", "resnet20", "seq2seq")
CONV_MODELS = ("resnet", "autoencoder", "resnet20")
CONFIGS = ("jax_jit", "jax_best", "fncompiler", "fncompiler_spe1", "fncompiler_spe16", "fncompiler_auto", "fncompiler_eager",
           "jax_scan", "keras")
LABELS = {
    "fncompiler": 'fncompiler fit (default: steps_per_execution="auto")',
    "fncompiler_spe1": "fncompiler steps_per_execution=1",
    "fncompiler_spe16": "fncompiler steps_per_execution=16",
    "fncompiler_auto": 'fncompiler steps_per_execution="auto" (= the default)',
    "fncompiler_eager": "fncompiler run_eagerly=True (extrapolated)",
    "jax_jit": "hand-written jax.jit + optax",
    "jax_scan": "hand-written lax.scan epoch",
    "jax_best": "hand-written, best of the tuner's XLA options x scan",
    "keras": "Keras 3 fit",
}
FNC_COMPILE_EXTRA = {
    "fncompiler": {},
    "fncompiler_spe1": {"steps_per_execution": 1},
    "fncompiler_spe16": {"steps_per_execution": 16},
    "fncompiler_auto": {"steps_per_execution": "auto"},
    "fncompiler_eager": {"run_eagerly": True},
}

SETUPS = {
    #               samples, quick samples, batch, validation_split, learning rate
    "mlp": dict(samples=60000, quick=6000, batch_size=64, validation_split=0.2, lr=1e-3),
    "resnet": dict(samples=1000, quick=256, batch_size=64, validation_split=0.2, lr=1e-3),
    "ticket": dict(samples=1280, quick=1280, batch_size=32, validation_split=0.0, lr=1e-3),
    "autoencoder": dict(samples=1000, quick=256, batch_size=64, validation_split=0.0, lr=1e-3),
    "transformer": dict(samples=4096, quick=1024, batch_size=32, validation_split=0.0, lr=1e-3),
    "resnet20": dict(samples=1024, quick=512, batch_size=64, validation_split=0.0, lr=1e-3),
    "seq2seq": dict(samples=4096, quick=2048, batch_size=64, validation_split=0.0, lr=1e-3),
}
# Loss-trend tolerance (relative, per epoch) against the hand-written baseline. The ResNet has Dropout(0.5),
# whose random masks differ between implementations, so only its trend can agree, not its values.
LOSS_RTOL = {"mlp": 0.02, "resnet": 0.10, "ticket": 0.02, "autoencoder": 0.02, "transformer": 0.02,
             "resnet20": 0.05, "seq2seq": 0.02}
INIT_LOSS_RTOL = 1e-4          # forward pass at the initial weights (inference mode: no dropout)
EAGER_STEPS = {"mlp": 8, "resnet": 4, "ticket": 3, "autoencoder": 4, "transformer": 3, "resnet20": 2, "seq2seq": 3}
RUNNING_STEPS = 10             # the baseline records its running-mean loss over the first steps (for eager)
PREDICT_CALLS = 200
PREDICT_BIG = 1024
PREDICT_BIG_CALLS = 10
SEED = 1234


# =========================================================================================================
# Models, written once against a Keras-like module (fncompiler, or keras when installed)
# =========================================================================================================
def build_model(name, K):
    if name == "transformer":
        return zoo.build_transformer(K, depth=4)
    if name in zoo.BUILDERS:
        return zoo.BUILDERS[name](K)
    L = K.layers
    if name == "mlp":
        inputs = K.Input(shape=(784,), name="digits")
        x = L.Dense(64, activation="relu", name="dense_1")(inputs)
        x = L.Dense(64, activation="relu", name="dense_2")(x)
        outputs = L.Dense(10, name="predictions")(x)
        return K.Model(inputs=inputs, outputs=outputs, name="mnist_model")
    if name == "resnet":
        inputs = K.Input(shape=(32, 32, 3), name="img")
        x = L.Conv2D(32, 3, activation="relu", name="conv_1")(inputs)
        x = L.Conv2D(64, 3, activation="relu", name="conv_2")(x)
        block_1_output = L.MaxPooling2D(3, name="pool")(x)
        x = L.Conv2D(64, 3, activation="relu", padding="same", name="conv_3")(block_1_output)
        x = L.Conv2D(64, 3, activation="relu", padding="same", name="conv_4")(x)
        block_2_output = L.add([x, block_1_output], name="add_1")
        x = L.Conv2D(64, 3, activation="relu", padding="same", name="conv_5")(block_2_output)
        x = L.Conv2D(64, 3, activation="relu", padding="same", name="conv_6")(x)
        block_3_output = L.add([x, block_2_output], name="add_2")
        x = L.Conv2D(64, 3, activation="relu", name="conv_7")(block_3_output)
        x = L.GlobalAveragePooling2D(name="gap")(x)
        x = L.Dense(256, activation="relu", name="dense")(x)
        x = L.Dropout(0.5, name="dropout")(x)
        outputs = L.Dense(10, name="logits")(x)
        return K.Model(inputs, outputs, name="toy_resnet")
    if name == "ticket":
        title_input = K.Input(shape=(None,), name="title")
        body_input = K.Input(shape=(None,), name="body")
        tags_input = K.Input(shape=(12,), name="tags")
        title_features = L.Embedding(10000, 64, name="title_embedding")(title_input)
        body_features = L.Embedding(10000, 64, name="body_embedding")(body_input)
        title_features = L.LSTM(128, name="title_lstm")(title_features)
        body_features = L.LSTM(32, name="body_lstm")(body_features)
        x = L.concatenate([title_features, body_features, tags_input], name="concat")
        priority_pred = L.Dense(1, name="priority")(x)
        department_pred = L.Dense(4, name="department")(x)
        return K.Model(inputs=[title_input, body_input, tags_input],
                       outputs={"priority": priority_pred, "department": department_pred}, name="ticket_model")
    if name == "autoencoder":
        encoder_input = K.Input(shape=(28, 28, 1), name="img")
        x = L.Conv2D(16, 3, activation="relu", name="enc_conv_1")(encoder_input)
        x = L.Conv2D(32, 3, activation="relu", name="enc_conv_2")(x)
        x = L.MaxPooling2D(3, name="enc_pool")(x)
        x = L.Conv2D(32, 3, activation="relu", name="enc_conv_3")(x)
        x = L.Conv2D(16, 3, activation="relu", name="enc_conv_4")(x)
        encoder_output = L.GlobalMaxPooling2D(name="enc_gmp")(x)
        x = L.Reshape((4, 4, 1), name="reshape")(encoder_output)
        x = L.Conv2DTranspose(16, 3, activation="relu", name="dec_convt_1")(x)
        x = L.Conv2DTranspose(32, 3, activation="relu", name="dec_convt_2")(x)
        x = L.UpSampling2D(3, name="dec_up")(x)
        x = L.Conv2DTranspose(16, 3, activation="relu", name="dec_convt_3")(x)
        decoder_output = L.Conv2DTranspose(1, 3, activation="relu", name="dec_convt_4")(x)
        return K.Model(encoder_input, decoder_output, name="autoencoder")
    raise ValueError(f"unknown model {name!r}")


def compile_kwargs(name, K):
    lr = SETUPS[name]["lr"]
    if name in zoo.COMPILE_KWARGS:
        return zoo.COMPILE_KWARGS[name](K, lr)
    if name == "mlp":
        return dict(loss=K.losses.SparseCategoricalCrossentropy(from_logits=True),
                    optimizer=K.optimizers.RMSprop(lr), metrics=["accuracy"])
    if name == "resnet":
        return dict(optimizer=K.optimizers.RMSprop(lr),
                    loss=K.losses.CategoricalCrossentropy(from_logits=True), metrics=["acc"])
    if name == "ticket":
        return dict(optimizer=K.optimizers.RMSprop(lr),
                    loss={"priority": K.losses.BinaryCrossentropy(from_logits=True),
                          "department": K.losses.CategoricalCrossentropy(from_logits=True)},
                    loss_weights={"priority": 1.0, "department": 0.2})
    if name == "autoencoder":
        return dict(optimizer=K.optimizers.RMSprop(lr), loss="mse")
    raise ValueError(name)


def make_data(name, n, seed=0):
    """(x, y) in the structure model.fit takes, and the flat lists (xs, ys) the hand-written code takes."""
    if name in zoo.MAKE_DATA:
        return zoo.MAKE_DATA[name](n, seed)
    rng = np.random.default_rng(seed)
    if name == "mlp":
        x = rng.random((n, 784), dtype=np.float32)
        y = rng.integers(0, 10, size=(n,)).astype(np.int32)
        return x, y, [x], [y]
    if name == "resnet":
        x = rng.random((n, 32, 32, 3), dtype=np.float32)
        y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, size=(n,))]
        return x, y, [x], [y]
    if name == "ticket":
        title = rng.integers(0, 10000, size=(n, 12)).astype(np.int32)
        body = rng.integers(0, 10000, size=(n, 100)).astype(np.int32)
        tags = rng.integers(0, 2, size=(n, 12)).astype(np.float32)
        priority = rng.random((n, 1), dtype=np.float32)
        department = rng.integers(0, 2, size=(n, 4)).astype(np.float32)
        x = {"title": title, "body": body, "tags": tags}
        y = {"priority": priority, "department": department}
        return x, y, [title, body, tags], [priority, department]
    if name == "autoencoder":
        x = rng.random((n, 28, 28, 1), dtype=np.float32)
        return x, x, [x], [x]
    raise ValueError(name)


def slice_structure(x, sl):
    if isinstance(x, dict):
        return {k: v[sl] for k, v in x.items()}
    if isinstance(x, list):
        return [v[sl] for v in x]
    return x[sl]


def tile_structure(x, n):
    """The first n samples, repeating the data when it has fewer."""
    def tile(a):
        reps = -(-n // a.shape[0])
        return np.concatenate([a] * reps, axis=0)[:n] if reps > 1 else a[:n]
    if isinstance(x, dict):
        return {k: tile(v) for k, v in x.items()}
    if isinstance(x, list):
        return [tile(v) for v in x]
    return tile(x)


def split_index(name, n):
    vs = SETUPS[name]["validation_split"]
    return int(n * (1.0 - vs)) if vs else n


def _logs(metrics, with_accuracy):
    total, correct, count = (float(v) for v in metrics)
    out = {"loss": total / max(count, 1.0)}
    if with_accuracy:
        out["accuracy"] = correct / max(count, 1.0)
    return out


# =========================================================================================================
# Workers (one per model and configuration, each in a fresh process)
# =========================================================================================================
def load_init(path):
    """{layer name: [arrays]} saved by the init worker."""
    with np.load(path) as data:
        per_layer = collections.defaultdict(dict)
        for key in data.files:
            layer, index = key.rsplit("/", 1)
            per_layer[layer][int(index)] = data[key]
    return {layer: [ws[i] for i in sorted(ws)] for layer, ws in per_layer.items()}


def set_init(model, init):
    for layer in model.layers:
        if layer.name in init:
            layer.set_weights(init[layer.name])


def worker_init(args):
    import fncompiler as keras
    keras.utils.set_random_seed(SEED)
    model = build_model(args.model, keras)
    arrays = {}
    for layer in model.layers:
        for i, w in enumerate(layer.get_weights()):
            arrays[f"{layer.name}/{i}"] = np.asarray(w)
    np.savez(args.init, **arrays)
    return {"params": int(sum(a.size for a in arrays.values())), "layers": len(model.layers)}


def _warm_backend():
    import jax
    import jax.numpy as jnp
    jax.block_until_ready(jnp.zeros(()) + 1)


def _fit_kwargs(args):
    setup = SETUPS[args.model]
    kw = dict(batch_size=setup["batch_size"], shuffle=False, verbose=0)
    if setup["validation_split"]:
        kw["validation_split"] = setup["validation_split"]
    return kw


def worker_fncompiler(args, result):
    import jax
    import jax.numpy as jnp
    import fncompiler as keras
    from fncompiler.runtime import data as data_lib
    _warm_backend()
    name, config = args.model, args.config
    setup = SETUPS[name]
    init = load_init(args.init)
    x, y, _, _ = make_data(name, args.samples)
    extra = FNC_COMPILE_EXTRA[config]
    eager = config == "fncompiler_eager"

    def fresh_model():
        keras.utils.set_random_seed(SEED)
        model = build_model(name, keras)
        set_init(model, init)
        model.compile(**compile_kwargs(name, keras), **extra)
        return model

    class FirstStep(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.t = None
            self.batch = None

        def on_train_batch_end(self, batch, logs=None):
            if self.t is None:
                self.t = time.perf_counter()
                self.batch = batch
                self.model.stop_training = True

    class EpochTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.t = [time.perf_counter()]

        def on_epoch_end(self, epoch, logs=None):
            self.t.append(time.perf_counter())

    class BatchTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.train, self.test = [], []

        def on_train_batch_begin(self, batch, logs=None):
            self._t = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.train.append(time.perf_counter() - self._t)

        def on_test_batch_begin(self, batch, logs=None):
            self._t = time.perf_counter()

        def on_test_batch_end(self, batch, logs=None):
            self.test.append(time.perf_counter() - self._t)

    # 1. time to first step: a separate run on a fresh model (the batch hook forces a sync every batch).
    with section(result, "time_to_first_step"):
        model = fresh_model()
        cb = FirstStep()
        t0 = time.perf_counter()
        model.fit(x, y, epochs=1, callbacks=[cb], **_fit_kwargs(args))
        result["time_to_first_step_s"] = None if cb.t is None else cb.t - t0
        result["first_step_batch_index"] = cb.batch
        del model

    # 2. epoch timing (jit) or a few timed steps (eager), on another fresh model.
    model = fresh_model()
    n_train = split_index(name, args.samples)
    steps_per_epoch = math.ceil(n_train / setup["batch_size"])
    val_steps = math.ceil((args.samples - n_train) / setup["batch_size"]) if n_train < args.samples else 0
    if eager:
        k = min(EAGER_STEPS[name], steps_per_epoch)
        timer = BatchTimer()
        t0 = time.perf_counter()
        hist = model.fit(slice_structure(x, slice(0, n_train)), slice_structure(y, slice(0, n_train)), epochs=1,
                         steps_per_epoch=k, batch_size=setup["batch_size"], shuffle=False, verbose=0,
                         callbacks=[timer])
        result["fit_wall_s"] = time.perf_counter() - t0
        train_step_s = common.median(timer.train[1:] or timer.train)
        eval_step_s = None
        if val_steps:
            nv = min(k, val_steps) * setup["batch_size"]
            sl = slice(n_train, n_train + nv)
            model.evaluate(slice_structure(x, sl), slice_structure(y, sl), batch_size=setup["batch_size"],
                           verbose=0, callbacks=[timer])
            eval_step_s = common.median(timer.test[1:] or timer.test)
        result["eager_steps_timed"] = len(timer.train)
        result["eager_train_step_s"] = train_step_s
        result["eager_eval_step_s"] = eval_step_s
        result["epoch_median_s"] = train_step_s * steps_per_epoch + (eval_step_s or 0.0) * val_steps
        result["epoch_seconds"] = None
        result["extrapolated"] = True
        result["running_loss"] = {"steps": k, "loss": hist.history["loss"][-1]}
        result["notes"].append(f"eager: {len(timer.train)} train steps (median of steps 2..) x {steps_per_epoch} "
                               f"steps + {len(timer.test)} eval steps x {val_steps}; extrapolated, not measured")
    else:
        timer = EpochTimer()
        t0 = time.perf_counter()
        hist = model.fit(x, y, epochs=args.epochs, callbacks=[timer], **_fit_kwargs(args))
        result["fit_wall_s"] = time.perf_counter() - t0
        epochs = [b - a for a, b in zip(timer.t, timer.t[1:])]
        result["epoch_seconds"] = epochs
        result["first_epoch_s"] = epochs[0] if epochs else None
        result["epoch_median_s"] = common.median(epochs[1:])
        result["losses"] = [float(v) for v in hist.history["loss"]]
        if "val_loss" in hist.history:
            result["val_losses"] = [float(v) for v in hist.history["val_loss"]]
    result["steps_per_epoch"] = steps_per_epoch
    result["val_steps_per_epoch"] = val_steps
    tuner_internals(model, result)
    decision = result.get("autotune_decision")
    spe = extra.get("steps_per_execution")
    if decision is not None:
        spe = decision.get("steps_per_execution")
    if isinstance(spe, int) and spe > 1:
        full = n_train // setup["batch_size"]
        result["scan_groups_per_epoch"] = full // spe
        result["notes"].append(f"steps_per_execution={spe}: {full // spe} scan group(s) of {spe} full batches per "
                               f"epoch, {steps_per_epoch - (full // spe) * spe} step(s) one by one; the 'train' "
                               "trace count includes the scan body's trace of the step")
    if extra.get("steps_per_execution") not in (None, 1):
        result["notes"].append("time to first step: a per-batch callback makes fit run one step per execution, "
                               "so it is the per-step path's first step (after autotuning for 'auto'); "
                               "first_epoch_s is the strategy's own")

    # 3. predict: model.predict against the raw jitted predict step, batch 1 and batch 1024.
    with section(result, "predict"):
        n1 = 20 if eager else args.predict_calls
        nbig = 2 if eager else args.predict_big_calls
        x1 = slice_structure(x, slice(0, 1))
        xbig = tile_structure(x, PREDICT_BIG)
        model.predict(x1, verbose=0)
        compiled = model._trainer.compiled
        step = compiled.step("predict")
        tv, ntv = compiled.weights("predict")
        xs1 = [jnp.asarray(a) for a in data_lib.flatten_x(model, x1)]
        xsbig = [jnp.asarray(a) for a in data_lib.flatten_x(model, xbig)]
        # raw1np: what a user's own jitted call costs when it, like predict, takes NumPy and returns NumPy.
        # The three are timed in alternating blocks (common.timed_alternating), so each samples the same moments.
        np1 = data_lib.flatten_x(model, x1)
        b1, raw1, raw1np = common.timed_alternating(
            [lambda: model.predict(x1, verbose=0), lambda: jax.block_until_ready(step(tv, ntv, xs1)),
             lambda: [np.asarray(o) for o in step(tv, ntv, np1)]], n1)
        # Throughput is steady-state: predict's XLA-option tuner (runtime/tuned_steps.py) first times a hot batch
        # shape and its candidates on the caller's calls; those warm-up calls are reported apart, not timed.
        warm = predict_warmup(model, lambda: model.predict(xbig, batch_size=PREDICT_BIG, verbose=0), xsbig)
        big, rawbig = common.timed_alternating(
            [lambda: model.predict(xbig, batch_size=PREDICT_BIG, verbose=0),
             lambda: jax.block_until_ready(step(tv, ntv, xsbig))], nbig, block=2)
        result["predict"] = predict_summary(b1, raw1, big, rawbig, n1, nbig)
        result["predict"].update(warm)
        m1np = common.median(raw1np)
        result["predict"]["batch1_raw_numpy_ms"] = None if m1np is None else m1np * 1e3
        result["predict"]["batch1_predict_over_raw_numpy"] = common.ratio(common.median(b1), m1np)
        result["compile_counts_after_predict"] = dict(compiled.trace_counts)

    # 4. the forward pass at the initial weights (inference mode), for the exact equivalence check.
    if config == "fncompiler":
        with section(result, "init_loss"):
            m = fresh_model()
            bs = setup["batch_size"]
            sl = slice(0, bs)
            logs = m.evaluate(slice_structure(x, sl), slice_structure(y, sl), batch_size=bs, verbose=0,
                              return_dict=True)
            result["init_loss"] = float(logs["loss"])


def tuner_internals(model, result):
    """The trace counts and the tuner's decision, read from fncompiler's runtime internals (`model._trainer`:
    its `compiled.trace_counts`, the option variants' and `autotune_decision`). They move between versions:
    what is not there is noted, never a crash."""
    trainer = getattr(model, "_trainer", None)
    compiled = getattr(trainer, "compiled", None)
    counts = getattr(compiled, "trace_counts", None)
    if counts is None:
        result["notes"].append("fncompiler internals moved: model._trainer.compiled.trace_counts not found "
                               "(compile counts not reported)")
    else:
        result["compile_counts"] = dict(counts)
    from fncompiler.runtime import platform_options
    quick_options = platform_options.QUICK_CPU_OPTIONS
    base_options = getattr(compiled, "compiler_options", None) or {}
    for variant in (getattr(compiled, "_variants", None) or {}).values():
        try:
            extra_options = {k: v for k, v in variant.compiler_options.items() if base_options.get(k) != v}
            quick = bool(quick_options) and all(extra_options.get(k) == v for k, v in quick_options.items())
            label = "quick compile" if quick else "tuned XLA options"
            result.setdefault("compile_counts_by_options", {})[label] = dict(variant.trace_counts)
        except AttributeError:
            result["notes"].append("fncompiler internals moved: an option variant without compiler_options / "
                                   "trace_counts")
    decision = getattr(trainer, "autotune_decision", None)
    if decision is not None:
        result["autotune_decision"] = decision


def predict_warmup(model, call, batch, max_calls=40):
    """Call `call` (one predict of `batch`) until predict's tuner has decided the batch's shape (at most
    `max_calls`); returns the warm-up calls, their seconds and the decision's name (None: nothing to tune)."""
    trainer = model._trainer or getattr(model, "_predict_trainer", None)
    tuner = trainer.inference_tuner("predict") if trainer is not None else None
    sig = tuple((tuple(a.shape), str(a.dtype)) for a in batch)
    calls, t0 = 0, time.perf_counter()
    while tuner is not None and calls < max_calls and sig not in tuner.decisions():
        call()
        calls += 1
    decision = tuner.decisions().get(sig) if tuner is not None else None
    return {"big_warmup_calls": calls, "big_warmup_s": time.perf_counter() - t0,
            "big_predict_options": None if decision is None else decision["name"],
            "big_predict_tuning": None if decision is None else decision["report"]}


def predict_summary(b1, raw1, big, rawbig, n1, nbig):
    m1, r1 = common.median(b1), common.median(raw1)
    mb, rb = common.median(big), common.median(rawbig)
    return {
        "batch1_calls": n1,
        "batch1_predict_ms": None if m1 is None else m1 * 1e3,
        "batch1_raw_ms": None if r1 is None else r1 * 1e3,
        "batch1_predict_over_raw": common.ratio(m1, r1),
        "big_batch": PREDICT_BIG,
        "big_calls": nbig,
        "big_predict_samples_per_s": None if not mb else PREDICT_BIG / mb,
        "big_raw_samples_per_s": None if not rb else PREDICT_BIG / rb,
        "big_predict_over_raw": common.ratio(mb, rb),
    }


SCAN_GROUP = 16     # fncompiler's steps_per_execution for the scan strategy (runtime/strategies.py SCAN_STEPS)


def tuner_option_sets(model_name, platform):
    """[(label, XLA options)] fncompiler's train-step tuner may compile with on `platform`, XLA's own default
    first, read from fncompiler's runtime/platform_options.py in this one place (and notes)."""
    from fncompiler.runtime import platform_options
    notes, sets = [], [("XLA default", {})]
    base = dict(platform_options.default_compiler_options(platform))
    quick = platform_options.QUICK_CPU_OPTIONS if platform == "cpu" else None
    conv = platform_options.CPU_CONV_OPTIONS if platform == "cpu" else None
    b = base or {}
    if base is not None:
        sets.append(("fncompiler default", b))
    if quick:
        sets.append(("quick compile", {**b, **quick}))
    if conv and model_name in CONV_MODELS:
        sets.append(("conv option", {**b, **conv}))
        if quick:
            sets.append(("quick compile + conv option", {**b, **quick, **conv}))
    out, seen = [], set()
    for label, opts in sets:
        key = tuple(sorted(opts.items()))
        if key not in seen:
            seen.add(key)
            out.append((label, dict(opts)))
    return out, notes


def best_candidates(model_name, platform, full_batches):
    """[(label, options, strategy)] the jax_best configuration times: every tuner option set x per-step jit,
    and x scan over SCAN_GROUP stacked batches where fncompiler's tuner may scan (not conv models on CPU)."""
    sets, notes = tuner_option_sets(model_name, platform)
    strategies = ["jit"]
    if full_batches >= SCAN_GROUP and not (platform == "cpu" and model_name in CONV_MODELS):
        strategies.append(f"scan{SCAN_GROUP}")
    elif model_name in CONV_MODELS and platform == "cpu":
        notes.append("scan not tried: fncompiler's tuner does not scan conv models on CPU (measured 7-23x slower)")
    return [(label, opts, s) for label, opts in sets for s in strategies], notes


def train_epoch(fns, state, strategy, xs, ys, n, bs, running=None):
    """One training epoch of the baseline: "jit" (one jitted step per batch), "scanN" (groups of N full
    batches stacked on the host, one jitted lax.scan per group, the remaining batches one by one) or "epoch"
    (one jitted lax.scan over device-resident batches; xs/ys are then (main, rest) pairs)."""
    if strategy == "epoch":
        (mx, rx), (my, ry) = xs, ys
        if mx is not None:
            state = fns["epoch"](state, mx, my)
        if rx is not None:
            state = fns["step"](state, rx, ry)
        return state
    start = 0
    if strategy.startswith("scan"):
        group = int(strategy[4:]) * bs
        while start + group <= (n // bs) * bs:
            sl = slice(start, start + group)
            state = fns["group"](state, [a[sl].reshape((group // bs, bs) + a.shape[1:]) for a in xs],
                                 [a[sl].reshape((group // bs, bs) + a.shape[1:]) for a in ys])
            start += group
    i = 0
    while start < n:
        # NumPy slices go straight into the jitted step (jit's own transfer is cheaper than jnp.asarray).
        state = fns["step"](state, [a[start:start + bs] for a in xs], [a[start:start + bs] for a in ys])
        if running is not None and i < RUNNING_STEPS:
            running.append(_logs(state[3], False)["loss"])
        start += bs
        i += 1
    return state


def _step_fns(hw, strategy):
    fns = {"step": hw.make_train_step()}
    if strategy.startswith("scan") or strategy == "epoch":
        fns["group" if strategy.startswith("scan") else "epoch"] = hw.make_scan_epoch()
    return fns


def _warm(hw, fns, strategy, xs, ys, n, bs):
    """Compile everything an epoch of `strategy` calls (a group, a full batch, the last partial batch), on a
    throwaway state: the timed epoch then runs compiled code only."""
    import jax
    state = hw.initial_state()
    if strategy.startswith("scan"):
        group = int(strategy[4:]) * bs
        state = fns["group"](state, [a[:group].reshape((group // bs, bs) + a.shape[1:]) for a in xs],
                             [a[:group].reshape((group // bs, bs) + a.shape[1:]) for a in ys])
    state = fns["step"](state, [a[:bs] for a in xs], [a[:bs] for a in ys])
    if n % bs:
        state = fns["step"](state, [a[n - n % bs:n] for a in xs], [a[n - n % bs:n] for a in ys])
    jax.block_until_ready(state)


def select_best(args, result, init, train_xs, train_ys, n_train, bs):
    """jax_best: time one epoch of every candidate (compiled first, from the same initial state), keep the
    fastest; returns (HandWritten, its step functions, strategy)."""
    import jax
    platform = jax.devices()[0].platform
    cands, notes = best_candidates(args.model, platform, n_train // bs)
    result["notes"].extend(notes)
    timed = []
    t_all = time.perf_counter()
    for label, opts, strategy in cands:
        entry = {"options_label": label, "compiler_options": opts, "strategy": strategy}
        try:
            hw = hw_lib.HandWritten(args.model, init, SETUPS[args.model]["lr"], SEED, compiler_options=opts)
            fns = _step_fns(hw, strategy)
            t0 = time.perf_counter()
            _warm(hw, fns, strategy, train_xs, train_ys, n_train, bs)
            entry["compile_and_warm_s"] = time.perf_counter() - t0
            state = hw.initial_state()
            t0 = time.perf_counter()
            state = train_epoch(fns, state, strategy, train_xs, train_ys, n_train, bs)
            jax.block_until_ready(state)
            entry["epoch_s"] = time.perf_counter() - t0
            entry["loss"] = _logs(state[3], False)["loss"]
            timed.append((entry["epoch_s"], len(timed), hw, fns, strategy))
        except Exception as exc:     # noqa: BLE001 - an option XLA rejects is reported, the others still run
            entry["error"] = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:300]
        result.setdefault("best_candidates", []).append(entry)
    result["best_selection_s"] = time.perf_counter() - t_all
    if not timed:
        raise RuntimeError("jax_best: no candidate ran: " + "; ".join(e.get("error", "") for e in
                                                                       result["best_candidates"]))
    _, index, hw, fns, strategy = min(timed, key=lambda t: t[:2])
    winner = [e for e in result["best_candidates"] if "epoch_s" in e][index]
    result["best_config"] = {k: winner[k] for k in ("options_label", "compiler_options", "strategy")}
    result["notes"].append(f"jax_best: {len(cands)} candidates, one timed epoch each (after compiling); kept "
                           f"{winner['options_label']} + {strategy}; the epochs below reuse its compiled steps, "
                           "so its time to first step is not measured")
    return hw, fns, strategy


def worker_jax(args, result):
    import jax
    import jax.numpy as jnp
    _warm_backend()
    name, config = args.model, args.config
    setup = SETUPS[name]
    bs = setup["batch_size"]
    init = load_init(args.init)
    _, _, xs, ys = make_data(name, args.samples)
    n_train = split_index(name, args.samples)
    train_xs, train_ys = [a[:n_train] for a in xs], [a[:n_train] for a in ys]
    nv = args.samples - n_train
    val = ([a[n_train:] for a in xs], [a[n_train:] for a in ys]) if n_train < args.samples else None

    def stacked(arrays, n):
        """(device arrays (steps, batch, ...) of the full batches, device arrays of the remainder or None)."""
        full = (n // bs) * bs
        main = [jnp.asarray(a[:full].reshape((full // bs, bs) + a.shape[1:])) for a in arrays] if full else None
        rest = [jnp.asarray(a[full:n]) for a in arrays] if full < n else None
        return main, rest

    # 1. the strategy (jax_best: chosen by timing), and the time to first step with fresh jitted functions.
    if config == "jax_best":
        with section(result, "select"):
            hw, fns, strategy = select_best(args, result, init, train_xs, train_ys, n_train, bs)
        if "select" in result.get("errors", {}):
            raise RuntimeError(result["errors"]["select"])
        result["time_to_first_step_s"] = None
    else:
        strategy = "epoch" if config == "jax_scan" else "jit"
        hw = hw_lib.HandWritten(name, init, setup["lr"], SEED)
        with section(result, "time_to_first_step"):
            t0 = time.perf_counter()
            state = hw.initial_state()
            if strategy == "epoch":
                epoch_fn = hw.make_scan_epoch()
                mx, my = stacked(train_xs, n_train)[0], stacked(train_ys, n_train)[0]
                if mx is not None:
                    state = epoch_fn(state, mx, my)
                result["notes"].append("jax_scan: time to first step = data upload + compile + the first "
                                       "whole-epoch scan (its first step is not observable on its own)")
            else:
                step = hw.make_train_step()
                state = step(state, [jnp.asarray(a[:bs]) for a in train_xs], [jnp.asarray(a[:bs]) for a in train_ys])
            jax.block_until_ready(state)
            result["time_to_first_step_s"] = time.perf_counter() - t0
            result["first_step_batch_index"] = 0
            del state
        hw.traces.clear()
        fns = _step_fns(hw, strategy)
    with_acc = hw.accuracy is not None

    # 2. epochs.
    eval_step = hw.make_eval_step()
    state = hw.initial_state()
    epochs, losses, val_losses, running = [], [], [], []
    t_start = time.perf_counter()
    data_x, data_y = train_xs, train_ys
    if strategy == "epoch":
        data_x, data_y = stacked(train_xs, n_train), stacked(train_ys, n_train)
        eval_fn = hw.make_scan_eval()
        if val is not None:
            (vmx, vrx), (vmy, vry) = stacked(val[0], nv), stacked(val[1], nv)
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        state = state[:3] + (hw.zero_metrics(),)
        # the first epoch is not timed: the per-step baseline syncs on its first steps to record their loss
        rec = running if (epoch == 0 and config == "jax_jit") else None
        state = train_epoch(fns, state, strategy, data_x, data_y, n_train, bs, rec)
        logs = _logs(state[3], with_acc)
        if val is not None:
            metrics = hw.zero_metrics()
            if strategy == "epoch":
                if vmx is not None:
                    metrics = eval_fn(state[0], metrics, vmx, vmy)
                if vrx is not None:
                    metrics = eval_step(state[0], metrics, vrx, vry)
            else:
                for start in range(0, nv, bs):
                    metrics = eval_step(state[0], metrics, [a[start:start + bs] for a in val[0]],
                                        [a[start:start + bs] for a in val[1]])
            val_losses.append(_logs(metrics, False)["loss"])
        losses.append(logs["loss"])
        epochs.append(time.perf_counter() - t0)
    result["fit_wall_s"] = time.perf_counter() - t_start
    result["epoch_seconds"] = epochs
    result["first_epoch_s"] = epochs[0] if epochs else None
    result["epoch_median_s"] = common.median(epochs[1:])
    result["losses"] = losses
    if val_losses:
        result["val_losses"] = val_losses
    if running:
        result["running_losses"] = running
    result["steps_per_epoch"] = math.ceil(n_train / bs)
    result["val_steps_per_epoch"] = 0 if val is None else math.ceil(nv / bs)
    result["compile_counts"] = dict(hw.traces)
    if strategy == "epoch":
        result["notes"].append("jax_scan: the data is uploaded to the device once, before the first epoch")

    # 3. predict with the baseline's own jitted forward pass.
    with section(result, "predict"):
        params = state[0]
        predict = hw.make_predict()
        x1 = [jnp.asarray(a[:1]) for a in xs]
        xbig = [jnp.asarray(a) for a in (tile_structure(a, PREDICT_BIG) for a in xs)]
        host1_x = [a[:1] for a in xs]
        raw1, host1 = common.timed_alternating([lambda: jax.block_until_ready(predict(params, x1)),
                                                lambda: [np.asarray(o) for o in predict(params, host1_x)]],
                                               args.predict_calls)
        xbig_host = [tile_structure(a, PREDICT_BIG) for a in xs]
        rawbig, hostbig = common.timed_alternating([lambda: jax.block_until_ready(predict(params, xbig)),
                                                    lambda: [np.asarray(o) for o in predict(params, xbig_host)]],
                                                   args.predict_big_calls, block=2)
        result["predict"] = predict_summary(host1, raw1, hostbig, rawbig, args.predict_calls, args.predict_big_calls)
        result["predict"]["note"] = ("hand-written: 'predict' = NumPy in -> jitted forward -> NumPy out; "
                                     "'raw' = device arrays in, block_until_ready")
        result["compile_counts_after_predict"] = dict(hw.traces)

    if config == "jax_jit":
        with section(result, "init_loss"):
            result["init_loss"] = hw.init_loss([a[:bs] for a in xs], [a[:bs] for a in ys])


def worker_keras(args, result):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
    except ImportError as exc:
        result["status"] = "skipped"
        result["error"] = f"keras is not installed ({exc}); Keras 3 fit was not measured"
        return
    name = args.model
    init = load_init(args.init)
    x, y, _, _ = make_data(name, args.samples)
    result["keras_backend"] = keras.backend.backend()

    def fresh_model():
        keras.utils.set_random_seed(SEED)
        model = build_model(name, keras)
        set_init(model, init)
        model.compile(**compile_kwargs(name, keras))
        return model

    class FirstStep(keras.callbacks.Callback):
        t = None

        def on_train_batch_end(self, batch, logs=None):
            if self.t is None:
                self.t = time.perf_counter()
                self.model.stop_training = True

    class EpochTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.t = [time.perf_counter()]

        def on_epoch_end(self, epoch, logs=None):
            self.t.append(time.perf_counter())

    with section(result, "time_to_first_step"):
        model = fresh_model()
        cb = FirstStep()
        t0 = time.perf_counter()
        model.fit(x, y, epochs=1, callbacks=[cb], **_fit_kwargs(args))
        result["time_to_first_step_s"] = None if cb.t is None else cb.t - t0
        result["first_step_batch_index"] = 0
    model = fresh_model()
    timer = EpochTimer()
    t0 = time.perf_counter()
    hist = model.fit(x, y, epochs=args.epochs, callbacks=[timer], **_fit_kwargs(args))
    result["fit_wall_s"] = time.perf_counter() - t0
    epochs = [b - a for a, b in zip(timer.t, timer.t[1:])]
    result["epoch_seconds"] = epochs
    result["first_epoch_s"] = epochs[0] if epochs else None
    result["epoch_median_s"] = common.median(epochs[1:])
    result["losses"] = [float(v) for v in hist.history["loss"]]
    if "val_loss" in hist.history:
        result["val_losses"] = [float(v) for v in hist.history["val_loss"]]
    result["compile_counts"] = None
    with section(result, "predict"):
        x1 = slice_structure(x, slice(0, 1))
        xbig = tile_structure(x, PREDICT_BIG)
        b1 = common.timed_calls(lambda: model.predict(x1, verbose=0), args.predict_calls)
        big = common.timed_calls(lambda: model.predict(xbig, batch_size=PREDICT_BIG, verbose=0), args.predict_big_calls)
        result["predict"] = predict_summary(b1, [], big, [], args.predict_calls, args.predict_big_calls)


class section:
    """Run a part of a worker; an exception is recorded under result["errors"][part] instead of ending it."""

    def __init__(self, result, part):
        self.result, self.part = result, part

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None:
            return False
        self.result.setdefault("errors", {})[self.part] = "".join(traceback.format_exception_only(kind, exc)).strip()
        self.result.setdefault("tracebacks", {})[self.part] = "".join(traceback.format_exception(kind, exc, tb))[-4000:]
        return True


def run_worker_main(args):
    result = {"model": args.model, "config": args.config, "label": LABELS.get(args.config, args.config),
              "status": "ok", "error": None, "notes": []}
    t0 = time.perf_counter()
    try:
        if args.config == "init":
            result.update(worker_init(args))
        elif args.config.startswith("fncompiler"):
            worker_fncompiler(args, result)
        elif args.config in ("jax_jit", "jax_scan", "jax_best"):
            worker_jax(args, result)
        elif args.config == "keras":
            worker_keras(args, result)
        else:
            raise ValueError(f"unknown configuration {args.config!r}")
    except Exception as exc:     # noqa: BLE001 - reported, never fatal for the whole benchmark
        result["status"] = "error"
        result["error"] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        result["traceback"] = traceback.format_exc()[-4000:]
    result["worker_wall_s"] = time.perf_counter() - t0
    result["peak_rss_mb"] = common.peak_rss_mb()
    common.write_json(args.out, result)


# =========================================================================================================
# Parent: run the workers, check losses, compute ratios, write JSON and markdown
# =========================================================================================================
def loss_check(model_name, cfg, ref):
    """Compare a configuration's losses with the jax_jit baseline's (same initial weights, same batches)."""
    rtol = LOSS_RTOL[model_name]
    if cfg.get("status") != "ok":
        return {"ok": False, "reason": "did not run", "rtol": rtol}
    if ref is None or ref.get("status") != "ok" or not ref.get("losses"):
        return {"ok": None, "reason": "no jax_jit baseline to compare with", "rtol": rtol}
    out = {"rtol": rtol, "against": "jax_jit"}
    if cfg.get("extrapolated"):       # eager: running mean over its first k steps
        k = cfg["running_loss"]["steps"]
        running = ref.get("running_losses") or []
        if len(running) < k:
            return {"ok": None, "reason": f"baseline recorded {len(running)} running losses, eager ran {k}",
                    "rtol": rtol}
        a, b = cfg["running_loss"]["loss"], running[k - 1]
        out.update(compared=f"running mean loss after {k} steps", values=[a], reference=[b],
                   max_rel_diff=abs(a - b) / max(abs(b), 1e-12))
    else:
        a, b = cfg.get("losses") or [], ref["losses"]
        n = min(len(a), len(b))
        if n == 0:
            return {"ok": False, "reason": "no losses recorded", "rtol": rtol}
        out.update(compared=f"epoch mean training loss, epochs 1..{n}", values=a[:n], reference=b[:n],
                   max_rel_diff=max(abs(p - q) / max(abs(q), 1e-12) for p, q in zip(a[:n], b[:n])))
    finite = all(math.isfinite(v) for v in out["values"])
    out["ok"] = bool(finite and out["max_rel_diff"] <= rtol)
    if "init_loss" in cfg and "init_loss" in ref:
        d = abs(cfg["init_loss"] - ref["init_loss"]) / max(abs(ref["init_loss"]), 1e-12)
        out["init_loss"] = cfg["init_loss"]
        out["init_loss_reference"] = ref["init_loss"]
        out["init_loss_rel_diff"] = d
        out["init_loss_rtol"] = INIT_LOSS_RTOL
        out["ok"] = bool(out["ok"] and d <= INIT_LOSS_RTOL)
    return out


ROUND_FIELDS = ("epoch_median_s", "first_epoch_s", "fit_wall_s", "time_to_first_step_s", "peak_rss_mb")
ROUND_PREDICT_FIELDS = ("batch1_predict_ms", "batch1_raw_ms", "big_predict_samples_per_s", "big_raw_samples_per_s")


def merge_rounds(runs):
    """One result from the same configuration's runs in several rounds: the first run's details, and the
    median over the rounds of each timing (the per-round values are kept under "rounds")."""
    if len(runs) == 1:
        return runs[0]
    ok = [r for r in runs if r.get("status") == "ok"]
    merged = dict(ok[0] if ok else runs[0])
    merged["rounds"] = [{"status": r.get("status"), "error": r.get("error"),
                         **{k: r.get(k) for k in ROUND_FIELDS},
                         "predict": {k: (r.get("predict") or {}).get(k) for k in ROUND_PREDICT_FIELDS}}
                        for r in runs]
    if not ok:
        return merged
    for k in ROUND_FIELDS:
        merged[k] = common.median([r.get(k) for r in ok])
    if merged.get("predict"):
        p = dict(merged["predict"])
        for k in ROUND_PREDICT_FIELDS:
            p[k] = common.median([(r.get("predict") or {}).get(k) for r in ok])
        p["batch1_predict_over_raw"] = common.ratio(p.get("batch1_predict_ms"), p.get("batch1_raw_ms"))
        big, raw = p.get("big_predict_samples_per_s"), p.get("big_raw_samples_per_s")
        p["big_predict_over_raw"] = common.ratio(raw, big)
        merged["predict"] = p
    return merged


def _paired_ratio(configs, c, ref, key):
    """Median over rounds of the per-round ratio c/ref (runs of one round ran close together in time); the
    plain ratio when there is a single round."""
    a, b = configs[c].get("rounds"), configs[ref].get("rounds")
    if a and b and len(a) == len(b):
        return common.median([common.ratio(x.get(key), y.get(key)) for x, y in zip(a, b)])
    return common.ratio(configs[c].get(key), configs[ref].get(key))


def model_ratios(configs):
    def get(c, *keys):
        v = configs.get(c)
        for k in keys:
            if not isinstance(v, dict):
                return None
            v = v.get(k)
        return v

    def counted(c):
        return configs.get(c, {}).get("status") == "ok" and get(c, "loss_check", "ok") is not False

    out = {}
    for c in configs:
        if c in ("jax_jit",) or not counted(c):
            continue
        for ref in ("jax_jit", "jax_best", "jax_scan", "keras"):
            if ref == c or not counted(ref):
                continue
            out[f"{c}/{ref}"] = {
                "epoch": _paired_ratio(configs, c, ref, "epoch_median_s"),
                "time_to_first_step": _paired_ratio(configs, c, ref, "time_to_first_step_s"),
                "predict_batch1": common.ratio(get(c, "predict", "batch1_predict_ms"),
                                               get(ref, "predict", "batch1_predict_ms")),
                # time per large batch (the inverse of the throughput ratio), so > 1 means slower everywhere
                "predict_big": common.ratio(get(ref, "predict", "big_predict_samples_per_s"),
                                            get(c, "predict", "big_predict_samples_per_s")),
                "peak_rss": common.ratio(get(c, "peak_rss_mb"), get(ref, "peak_rss_mb")),
            }
    return out


def _check_text(chk):
    if chk is None:
        return "-"
    if chk.get("ok") is None:
        return "n/a"
    if not chk.get("ok"):
        return "**FAIL**" + (f" (max rel {chk['max_rel_diff']:.1e})" if "max_rel_diff" in chk else
                             f" ({chk.get('reason', '')})")
    text = f"ok ({chk['max_rel_diff']:.1e})"
    return text


def chosen_text(c):
    """What the configuration chose: jax_best's winning candidate, or the tuner's decision ("-" if neither)."""
    best = c.get("best_config")
    if best:
        return f"{best['options_label']} + {best['strategy']}"
    decision = c.get("autotune_decision")
    if isinstance(decision, dict) and decision.get("name"):
        return str(decision["name"])
    return "-"


def goals(report, config="fncompiler"):
    """Issue 7's goals for the default configuration, from this run's ratios: lines of markdown."""
    epoch_jit, epoch_best, epoch_keras, ttfs_keras, pred1, big = {}, {}, {}, {}, {}, {}
    for mname, m in report["models"].items():
        r = m.get("ratios", {})
        epoch_jit[mname] = (r.get(f"{config}/jax_jit") or {}).get("epoch")
        if "jax_best" in m["configs"]:
            epoch_best[mname] = (r.get(f"{config}/jax_best") or {}).get("epoch")
        big[mname] = (r.get(f"{config}/jax_jit") or {}).get("predict_big")
        epoch_keras[mname] = (r.get(f"{config}/keras") or {}).get("epoch")
        ttfs_keras[mname] = (r.get(f"{config}/keras") or {}).get("time_to_first_step")
        pred1[mname] = ((m["configs"].get(config) or {}).get("predict") or {}).get("batch1_predict_over_raw_numpy")

    def cells(d):
        return ", ".join(f"{k} {common.fmt_ratio(v)}" for k, v in d.items())

    def verdict(ok):
        return "met" if ok else "**not met**"
    out = [f"Goals for `{LABELS[config]}` (ratios from this run; > 1 means slower):", ""]
    vals = [v for v in epoch_jit.values() if v is not None]
    if vals:
        out.append(f"- s/epoch vs hand-written jit <= 1.05x on every model: {cells(epoch_jit)} -> "
                   f"{verdict(len(vals) == len(epoch_jit) and max(vals) <= 1.05)}")
    vals = [v for v in epoch_best.values() if v is not None]
    if vals:
        out.append(f"- s/epoch vs the best hand-written configuration (the tuner's XLA options x scan) <= 1.05x on "
                   f"every model: {cells(epoch_best)} -> "
                   f"{verdict(len(vals) == len(epoch_best) and max(vals) <= 1.05)}")
    vals = [v for v in epoch_keras.values() if v is not None]
    if vals:
        out.append(f"- >= 1.4x faster than Keras 3 fit on every model (s/epoch ratio <= 0.714x): "
                   f"{cells(epoch_keras)} -> {verdict(len(vals) == len(epoch_keras) and max(vals) <= 1 / 1.4)}")
    if vals and len(vals) == len(epoch_keras):
        gm = math.exp(sum(math.log(v) for v in vals) / len(vals))
        out.append(f"- vs Keras 3 fit: {cells(epoch_keras)}; geometric mean {gm:.2f}x, i.e. {1 / gm:.2f}x faster "
                   f"(goal >= 1.4x faster, never slower) -> {verdict(1 / gm >= 1.4 and max(vals) <= 1.0)}")
    else:
        out.append("- vs Keras 3 fit: not measured for every model (Keras not installed or a run failed)")
    vals = [v for v in ttfs_keras.values() if v is not None]
    if vals:
        out.append(f"- time to first step vs Keras <= 0.7x: {cells(ttfs_keras)} -> "
                   f"{verdict(len(vals) == len(ttfs_keras) and max(vals) <= 0.7)}")
    vals = [v for v in pred1.values() if v is not None]
    if vals:
        out.append(f"- predict batch 1 vs a raw jitted call of the same step (NumPy in, NumPy out) <= 1.5x: "
                   f"{cells(pred1)} -> "
                   f"{verdict(len(vals) == len(pred1) and max(vals) <= 1.5)}")
    vals = [v for v in big.values() if v is not None]
    if vals:
        out.append(f"- predict batch {PREDICT_BIG} time vs the hand-written jitted forward (both NumPy in and out) "
                   f"<= 1x: {cells(big)} -> {verdict(len(vals) == len(big) and max(vals) <= 1.0)}")
    out.append("")
    return out


def markdown(report):
    lines = [f"# fncompiler fit benchmark ({'quick' if report['quick'] else 'full'})", "",
             f"- date: {report['date']}",
             f"- machine: {report['machine'].get('cpu_count')} CPUs ({report['machine'].get('cpu_model', '?')}), "
             f"{report['machine']['platform']}, Python {report['machine']['python']}",
             f"- JAX backend: {report.get('backend', {}).get('backend')} "
             f"{report.get('backend', {}).get('devices')}"
             + (f"; persistent compilation cache {report['backend']['compilation_cache_dir']} (times to first step "
                "may skip compiling)" if report.get("backend", {}).get("compilation_cache_dir") else ""),
             "- versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items() if v is not None)
             + ("" if report["versions"].get("keras") else "; keras not installed (Keras 3 fit not measured)"),
             f"- command: `{report['command']}`",
             f"- rounds: {report.get('rounds', 1)}" + (" (each number is the median over the rounds; each ratio the "
                                                        "median of the per-round ratios)"
                                                        if report.get("rounds", 1) > 1 else ""), ""]
    header = ["model", "configuration", "loss check (max rel diff)", "chosen (tuner / best)", "s / epoch (median)",
              "vs jit", "vs best", "vs scan", "vs Keras", "time to first step s", "first epoch s", "whole fit s", "compiles", "predict b=1 ms: predict / raw",
              "predict/raw", f"predict b={PREDICT_BIG} samples/s: predict / raw", "peak RSS MiB"]
    rows = []
    for mname, m in report["models"].items():
        for cname, c in m["configs"].items():
            label = LABELS.get(cname, cname)
            if c.get("status") == "skipped":
                rows.append([mname, label, "skipped", "-", c.get("error", "")] + ["-"] * (len(header) - 5))
                continue
            if c.get("status") != "ok":
                rows.append([mname, label, "**ERROR**", "-", (c.get("error") or "")[:120]] + ["-"] * (len(header) - 5))
                continue
            r = m["ratios"]
            epoch = common.fmt(c.get("epoch_median_s"), ".3g")
            if c.get("extrapolated"):
                epoch += " (extrapolated)"
            p = c.get("predict") or {}
            cc = c.get("compile_counts")
            compiles = "-" if cc is None else ", ".join(f"{k} {v}" for k, v in sorted(cc.items()))
            rows.append([
                mname, label, _check_text(c.get("loss_check")), chosen_text(c), epoch,
                common.fmt_ratio((r.get(f"{cname}/jax_jit") or {}).get("epoch")),
                common.fmt_ratio((r.get(f"{cname}/jax_best") or {}).get("epoch")),
                common.fmt_ratio((r.get(f"{cname}/jax_scan") or {}).get("epoch")),
                common.fmt_ratio((r.get(f"{cname}/keras") or {}).get("epoch")),
                common.fmt(c.get("time_to_first_step_s"), ".3g"),
                common.fmt(c.get("first_epoch_s"), ".3g"),
                # jax_best's steps were compiled while it chose them, before its timed fit
                "-" if cname == "jax_best" else common.fmt(c.get("fit_wall_s"), ".3g"),
                compiles,
                f"{common.fmt(p.get('batch1_predict_ms'), '.3g')} / {common.fmt(p.get('batch1_raw_ms'), '.3g')}",
                common.fmt_ratio(p.get("batch1_predict_over_raw")),
                f"{common.fmt(p.get('big_predict_samples_per_s'), '.3g')} / "
                f"{common.fmt(p.get('big_raw_samples_per_s'), '.3g')}",
                common.fmt(c.get("peak_rss_mb"), ".0f"),
            ])
    lines.append(common.markdown_table(header, rows))
    lines.append("")
    lines.extend(goals(report))
    lines.append("Setups: " + "; ".join(
        f"{k}: {v['samples']} samples, batch {v['batch_size']}, {v['steps_per_epoch']} train steps/epoch"
        + (f" + {v['val_steps_per_epoch']} validation steps" if v.get("val_steps_per_epoch") else "")
        + f", {v['epochs']} epochs ({v['params']} params)"
        for k, v in ((mn, m["setup"]) for mn, m in report["models"].items())) + ".")
    errors = [(mn, cn, c) for mn, m in report["models"].items() for cn, c in m["configs"].items()
              if c.get("errors")]
    if errors:
        lines.append("")
        lines.append("Partial errors: " + "; ".join(f"{mn}/{cn} {part}: {msg[:160]}" for mn, cn, c in errors
                                                    for part, msg in c["errors"].items()))
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer samples (see the module docstring)")
    p.add_argument("--json", default=None, help="write the full results here")
    p.add_argument("--md", default=None, help="write the markdown table here")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--configs", default=",".join(c for c in CONFIGS if c != "fncompiler_auto"),
                   help="comma-separated; jax_jit is always run first")
    p.add_argument("--samples", type=int, default=None,
                   help="override every model's sample count (also $FNCOMPILER_BENCH_SAMPLES)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per timed fit (default 4, quick 3; >= 3)")
    p.add_argument("--predict-calls", type=int, default=PREDICT_CALLS, help="batch-1 predict calls per median")
    p.add_argument("--predict-big-calls", type=int, default=PREDICT_BIG_CALLS,
                   help=f"batch-{PREDICT_BIG} predict calls per median")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per worker process")
    p.add_argument("--rounds", type=int, default=1,
                   help="run every configuration this many times (alternating the order); report medians")
    p.add_argument("--keep-autotune-cache", action="store_true",
                   help='use the normal autotuner cache instead of a fresh one (steps_per_execution="auto")')
    # worker mode (internal)
    p.add_argument("--worker", dest="config", default=None, help=argparse.SUPPRESS)
    p.add_argument("--model", default=None, help=argparse.SUPPRESS)
    p.add_argument("--init", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.config is not None:
        run_worker_main(args)
        return 0
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    for m in models:
        if m not in SETUPS:
            raise SystemExit(f"unknown model {m!r}; choose from {', '.join(MODELS)}")
    for c in configs:
        if c not in CONFIGS:
            raise SystemExit(f"unknown configuration {c!r}; choose from {', '.join(CONFIGS)}")
    configs = ["jax_jit"] + [c for c in configs if c != "jax_jit"]     # the reference first
    epochs = args.epochs or (3 if args.quick else 4)
    if epochs < 3:
        raise SystemExit("--epochs must be >= 3 (the first epoch is dropped from the median)")
    env_samples = os.environ.get("FNCOMPILER_BENCH_SAMPLES")
    samples_override = args.samples or (int(env_samples) if env_samples else None)

    report = {
        "benchmark": "fit",
        "date": common.now_iso(),
        "quick": bool(args.quick),
        "command": " ".join(["python", "benchmarks/fit.py"] + (sys.argv[1:] if argv is None else list(argv))),
        "rounds": args.rounds,
        "machine": common.machine_info(),
        "versions": common.versions(),
        "models": {},
    }
    if report["versions"].get("keras") is None:
        print("note: `import keras` failed here; the Keras 3 fit configuration is reported as skipped")
    with tempfile.TemporaryDirectory(prefix="fncompiler_fit_bench_") as tmp:
        report["autotune_cache"] = ("the normal one ($FNCOMPILER_CACHE_DIR or ~/.cache/fncompiler)"
                                    if args.keep_autotune_cache else "a fresh empty one per worker process")
        probe = os.path.join(tmp, "backend.json")
        rc, out, err, _ = common.run_worker(["-c", "import json,sys; sys.path.insert(0, 'benchmarks'); import common; "
                                                  f"json.dump(common.jax_backend(), open({probe!r}, 'w'))"], 300)
        report["backend"] = json.load(open(probe)) if rc == 0 and os.path.exists(probe) else {"error": err[-500:]}
        for mname in models:
            setup = dict(SETUPS[mname])
            n = samples_override or (setup["quick"] if args.quick else setup["samples"])
            n_train = split_index(mname, n)
            setup.update(samples=n, epochs=epochs, train_samples=n_train,
                         steps_per_epoch=math.ceil(n_train / setup["batch_size"]),
                         val_steps_per_epoch=math.ceil((n - n_train) / setup["batch_size"]) if n_train < n else 0)
            setup.pop("quick")
            entry = {"setup": setup, "configs": {}}
            report["models"][mname] = entry
            init_path = os.path.join(tmp, f"{mname}_init.npz")
            base = [os.path.abspath(__file__), "--model", mname, "--samples", str(n), "--epochs", str(epochs),
                    "--init", init_path, "--predict-calls", str(args.predict_calls),
                    "--predict-big-calls", str(args.predict_big_calls)]
            print(f"== {mname}: {n} samples, batch {setup['batch_size']}, {epochs} epochs", flush=True)
            init_res = _run_one(base, mname, "init", tmp, args.timeout, args.keep_autotune_cache)
            if init_res.get("status") != "ok":
                entry["error"] = init_res.get("error")
                print(f"   init FAILED: {init_res.get('error')}")
                continue
            setup["params"] = init_res.get("params")
            runs = {c: [] for c in configs}
            for rnd in range(args.rounds):
                # Odd rounds run the configurations in reverse order, so a drift in the machine's load
                # does not always favour the same ones.
                order = configs if rnd % 2 == 0 else configs[::-1]
                if args.rounds > 1:
                    print(f"   -- round {rnd + 1}/{args.rounds}", flush=True)
                for cname in order:
                    res = _run_one(base, mname, cname, tmp, args.timeout, args.keep_autotune_cache)
                    runs[cname].append(res)
                    print(f"   {LABELS[cname]:45s} {_one_line(res)}", flush=True)
            for cname in configs:
                entry["configs"][cname] = merge_rounds(runs[cname])
            ref = entry["configs"].get("jax_jit")
            for cname, res in entry["configs"].items():
                if cname != "jax_jit" and res.get("status") == "ok":
                    res["loss_check"] = loss_check(mname, res, ref)
            if ref is not None and ref.get("status") == "ok":
                ref["loss_check"] = {"ok": True, "reference": True, "max_rel_diff": 0.0}
            entry["ratios"] = model_ratios(entry["configs"])
            for cname, res in entry["configs"].items():
                chk = res.get("loss_check")
                if chk is not None and chk.get("ok") is False:
                    print(f"   FAIL {mname}/{cname}: losses {chk.get('values')} vs baseline {chk.get('reference')} "
                          f"(rtol {chk.get('rtol')})" + (f"; init loss rel diff {chk['init_loss_rel_diff']:.2e}"
                                                         if "init_loss_rel_diff" in chk else ""), flush=True)
    md = markdown(report)
    print()
    print(md)
    if args.json:
        common.write_json(args.json, report)
    if args.md:
        with open(args.md, "w") as f:
            f.write(md)
    return 0


def _run_one(base, mname, cname, tmp, timeout, keep_autotune_cache=False):
    out = os.path.join(tmp, f"{mname}_{cname}.json")
    env = None
    if not keep_autotune_cache:
        # steps_per_execution="auto" keeps its decisions on disk: every worker starts from an empty cache, so
        # its first fit pays for the tuning, as a user's first fit of a model does (the timed run after it
        # reuses the decision).
        cache = tempfile.mkdtemp(prefix=f"cache_{mname}_{cname}_", dir=tmp)
        env = {"FNCOMPILER_CACHE_DIR": cache}
    rc, stdout, stderr, wall = common.run_worker(base + ["--worker", cname, "--out", out], timeout, env=env)
    if os.path.exists(out):
        with open(out) as f:
            res = json.load(f)
        os.remove(out)
    else:
        res = {"config": cname, "label": LABELS.get(cname, cname), "status": "error",
               "error": ("timed out" if rc is None else f"worker exited with {rc} and no result") + ": "
               + (stderr or "")[-800:]}
    res["process_wall_s"] = wall
    return res


def _one_line(res):
    if res.get("status") != "ok":
        return f"{res.get('status', 'error').upper()}: {(res.get('error') or '')[:150]}"
    parts = []
    if res.get("epoch_median_s") is not None:
        parts.append(f"{res['epoch_median_s']:.3f} s/epoch" + (" (extrapolated)" if res.get("extrapolated") else ""))
    if res.get("time_to_first_step_s") is not None:
        parts.append(f"first step {res['time_to_first_step_s']:.2f} s")
    if res.get("losses"):
        parts.append("losses " + " ".join(f"{v:.4f}" for v in res["losses"]))
    if res.get("errors"):
        parts.append("partial errors: " + ", ".join(res["errors"]))
    return "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
