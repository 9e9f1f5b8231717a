"""Train-step memory and time of LSTM lowerings (issue 17): benchmarks/hand_written.py's step of the seq2seq and
ticket models with each formulation of hand_written.LSTM_FORMULATION, in one process, alternating.

    python benchmarks/lstm_formulations.py [--models seq2seq,ticket] [--forms up_front,in_loop,...]
                                           [--rounds 15] [--steps 10]

With --fncompiler: fncompiler's own train step (compile_model(model).step("train"), run on zeros of its
arguments' shapes as benchmarks/memory.py does), rows "fncompiler_up_front" (training forced to project up front,
the lowering before issue 17) and "fncompiler_auto" (fncompiler/layers/recurrent.py's rule), besides --forms.

With --keras (run with Keras 3's Python, KERAS_BACKEND=jax, PYTHONPATH=. for this worktree's fncompiler): one
more row, Keras's own jitted train step (as benchmarks/memory.py's keras configuration builds it).

With --layers GRU,SimpleRNN,LSTM: instead of the models, the gradient of one fncompiler layer alone (batch 64,
length 24, 64 features, 128 units, return_sequences, training=True; loss sum(outputs * fixed weights)), up front
vs the rule.

Per (model, formulation): XLA's temp bytes of the compiled train step (memory_analysis) and the median
per-step time over rounds (each round runs every formulation for --steps steps, in turn).
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fit  # noqa: E402
import hand_written as hw_lib  # noqa: E402

FORMS = ("up_front", "in_loop", "in_loop_concat", "up_front_remat", "in_loop_remat", "up_front_dots", "in_loop_dots")


def init_weights(name):
    import fncompiler as keras
    keras.utils.set_random_seed(fit.SEED)
    model = fit.build_model(name, keras)
    return {layer.name: [w for w in layer.get_weights()] for layer in model.layers if layer.weights}


def fncompiler_steps(name, bs, forms):
    """{form: (compiled train step, a function giving fresh arguments, temp MiB)}."""
    import jax
    import jax.numpy as jnp
    import fncompiler as keras
    from fncompiler.layers import recurrent
    rule = recurrent._project_up_front
    out = {}
    for form in forms:
        if form == "up_front":
            recurrent._project_up_front = lambda cell, seq, training: True if training else rule(cell, seq, training)
        try:
            keras.utils.set_random_seed(fit.SEED)
            model = fit.build_model(name, keras)
            model.compile(**fit.compile_kwargs(name, keras))
            cm = keras.compile_model(model)
            _, _, xs, ys = fit.make_data(name, bs)
            state, specs, ys_spec, sw = cm.example_args("train", bs, [tuple(a.shape[1:]) for a in xs])
            if any(None in tuple(s.shape) for s in ys_spec):    # seq2seq's decoder time axis (as memory.py)
                ys_spec = type(ys_spec)(jax.ShapeDtypeStruct(a.shape, s.dtype) if None in tuple(s.shape) else s
                                        for a, s in zip(ys, ys_spec))
            example = (state, specs, ys_spec, sw)
            compiled = cm.step("train").lower(*example).compile()
        finally:
            recurrent._project_up_front = rule
        zeros = lambda example=example: jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), example)
        out[form] = (compiled, zeros, compiled.memory_analysis().temp_size_in_bytes / 2 ** 20)
    return out


def keras_step(name, bs, init):
    """(compiled Keras train step, a function giving fresh arguments, temp MiB)."""
    import jax
    import jax.numpy as jnp
    import keras
    keras.utils.set_random_seed(fit.SEED)
    model = fit.build_model(name, keras)
    fit.set_init(model, init)
    model.compile(**fit.compile_kwargs(name, keras))
    x, y, _, _ = fit.make_data(name, bs)
    model.fit(x, y, batch_size=bs, epochs=1, steps_per_epoch=1, shuffle=False, verbose=0)
    state = model._get_jax_state(trainable_variables=True, non_trainable_variables=True,
                                 optimizer_variables=True, metrics_variables=True)
    step = jax.jit(model.train_step, donate_argnums=0)
    compiled = step.lower(state, (x, y)).compile()
    fresh = lambda: (jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype), state), (x, y))
    return compiled, fresh, compiled.memory_analysis().temp_size_in_bytes / 2 ** 20


def layer_gradients(kinds, rounds, steps):
    import jax
    import jax.numpy as jnp
    import numpy as np
    import fncompiler as keras
    from fncompiler.layers import recurrent
    batch, length, features, units = 64, 24, 64, 128
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(batch, length, features)).astype(np.float32))
    w_out = jnp.asarray(rng.normal(size=(batch, length, units)).astype(np.float32))
    rule = recurrent._project_up_front
    runs = {}
    for kind in kinds:
        layer = getattr(keras.layers, kind)(units, return_sequences=True)
        layer(keras.Input(shape=(length, features)))
        tv = [jnp.asarray(w.value) for w in layer.trainable_weights]

        def loss(tv, x, layer=layer):
            return jnp.sum(layer.stateless_call(tv, [], x, training=True)[0] * w_out)
        for form in ("up_front", "auto"):
            if form == "up_front":
                recurrent._project_up_front = lambda cell, seq, training: True
            try:
                compiled = jax.jit(jax.grad(loss)).lower(tv, x).compile()
            finally:
                recurrent._project_up_front = rule
            runs[(kind, form)] = (compiled, (tv, x), compiled.memory_analysis().temp_size_in_bytes / 2 ** 20, [])
    for _ in range(rounds):
        for compiled, call_args, _, times in runs.values():
            for _ in range(steps):
                t0 = time.perf_counter()
                jax.block_until_ready(compiled(*call_args))
                times.append(time.perf_counter() - t0)
    for (kind, form), (_, _, temp, times) in runs.items():
        med = statistics.median(times)
        base = statistics.median(runs[(kind, "up_front")][3])
        print(f"{kind:10s} {form:10s} temp {temp:7.2f} MiB  gradient {med * 1e3:7.2f} ms  ({med / base:.2f}x)",
              flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="seq2seq,ticket")
    ap.add_argument("--forms", default=",".join(FORMS))
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=None, help="batch size (default: benchmarks/fit.py's)")
    ap.add_argument("--seq2seq-sizes", default="", help="e.g. units=32,source_vocab=512 (benchmarks/zoo.SEQ2SEQ)")
    ap.add_argument("--keras", action="store_true", help="add Keras 3's train step (needs keras installed)")
    ap.add_argument("--fncompiler", action="store_true", help="add fncompiler's train step (up front, and the rule)")
    ap.add_argument("--layers", default="", help="e.g. GRU,SimpleRNN: one layer's gradient instead of the models")
    args = ap.parse_args(argv)
    if args.layers:
        return layer_gradients(args.layers.split(","), args.rounds, args.steps)
    import zoo
    for item in filter(None, args.seq2seq_sizes.split(",")):
        key, value = item.split("=")
        zoo.SEQ2SEQ[key] = int(value)
    import jax
    forms = [f for f in args.forms.split(",") if f]
    for name in args.models.split(","):
        init = init_weights(name)
        bs = args.batch or fit.SETUPS[name]["batch_size"]
        _, _, xs, ys = fit.make_data(name, bs)
        runs = {}
        if args.fncompiler:
            for form, (compiled, zeros, temp) in fncompiler_steps(name, bs, ["up_front", "auto"]).items():
                runs["fncompiler_" + form] = [compiled, zeros, temp, []]
        for form in forms:
            hw_lib.LSTM_FORMULATION = form
            hw = hw_lib.HandWritten(name, init, fit.SETUPS[name]["lr"], fit.SEED)
            step = hw.make_train_step()
            state = hw.initial_state()
            compiled = step.lower(state, xs, ys).compile()
            temp = compiled.memory_analysis().temp_size_in_bytes / 2 ** 20
            state = compiled(state, xs, ys)
            jax.block_until_ready(state)
            runs[form] = [compiled, state, temp, []]
        if args.keras:
            compiled, fresh, temp = keras_step(name, bs, init)
            runs["keras"] = [compiled, fresh, temp, []]
        order = list(runs)
        for _ in range(args.rounds):
            for form in order:
                r = runs[form]
                for _ in range(args.steps):
                    if form not in forms:       # fncompiler's and Keras's: fresh arguments each step
                        fresh = r[1]()
                        jax.block_until_ready(fresh)
                        t0 = time.perf_counter()
                        jax.block_until_ready(r[0](*fresh))
                    else:
                        t0 = time.perf_counter()
                        r[1] = r[0](r[1], xs, ys)
                        jax.block_until_ready(r[1])
                    r[3].append(time.perf_counter() - t0)
        base = statistics.median(runs[order[0]][3])
        for form in order:
            med = statistics.median(runs[form][3])
            print(f"{name:8s} b{bs:<4d} {form:20s} temp {runs[form][2]:7.2f} MiB  step {med * 1e3:7.2f} ms  "
                  f"({med / base:.2f}x of {order[0]})", flush=True)


if __name__ == "__main__":
    main()
