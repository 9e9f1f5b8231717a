"""`python -m fncompiler demo`: the guide's MLP on the embedded digits data set, compiled.

Builds the model, prints its summary and the compiler's pass report, trains it, reports test accuracy,
and times one train step compiled (jit) against the same lowered function run eagerly.
"""
import time

import numpy as np


def _median_step_seconds(step, state, batch, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        state = step(state, *batch)
        import jax
        jax.block_until_ready(state)
        times.append(time.perf_counter() - start)
    return float(np.median(times)), state


def main(epochs=30, batch_size=32, seed=0, verbose=2):
    import jax
    import jax.numpy as jnp

    import fncompiler as keras
    from fncompiler import layers
    from fncompiler.datasets import digits
    from fncompiler.runtime import steps as steps_lib

    keras.utils.set_random_seed(seed)
    (x_train, y_train), (x_test, y_test) = digits.load_data()
    x_train = x_train.reshape(-1, 64).astype("float32") / 16.0
    x_test = x_test.reshape(-1, 64).astype("float32") / 16.0

    inputs = keras.Input(shape=(64,), name="digits")
    x = layers.Dense(64, activation="relu")(inputs)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(10)(x)
    model = keras.Model(inputs=inputs, outputs=outputs, name="digits_mlp")
    model.summary()
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  optimizer=keras.optimizers.RMSprop(), metrics=["accuracy"])

    compiled = keras.compile_model(model)
    compiled.report(pass_mode="train")

    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1, verbose=verbose)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"Test loss: {loss:.4f}  Test accuracy: {accuracy:.4f}")

    # Compiled vs eager: the same lowered train step, jitted once vs run op by op.
    batch = ([jnp.asarray(x_train[:batch_size])], [jnp.asarray(y_train[:batch_size].astype("int32"))], None)
    timings = {}
    for mode, repeats in (("jit", 200), ("eager", 5)):
        cm = keras.compile_model(model, mode=mode)
        step = cm.step("train")
        tv = [jnp.array(v.value) for v in cm.lowered("train").trainable]
        ntv = [jnp.array(v.value) for v in cm.lowered("train").non_trainable]
        state = steps_lib.initial_train_state(tv, ntv, model._compile_config, seed)
        state = step(state, *batch)          # compile (jit) / warm up (eager)
        jax.block_until_ready(state)
        timings[mode], _ = _median_step_seconds(step, state, batch, repeats)
    print(f"Train step, median: compiled {timings['jit'] * 1e6:.0f} us, eager {timings['eager'] * 1e6:.0f} us "
          f"-> compiled is {timings['eager'] / timings['jit']:.0f}x faster")
    return accuracy
