"""What fncompiler adds: `keras.compile_model(model)`, the compiler's own view of a functional model.

`model.fit/evaluate/predict` already run through it. Calling it directly shows its stages: the IR built from
the layer graph (a networkx graph, one node per layer call), the pass pipeline run for each mode (what each
pass checked or changed, and its time), the lowering to one pure function per step and its StableHLO text,
and how many times each step was traced.

Run: python examples/13_compile_model.py
"""
import time

import numpy as np

import fncompiler as keras
from fncompiler import ir, layers
from fncompiler.datasets import digits

keras.utils.set_random_seed(0)
(x_train, y_train), (x_test, y_test) = digits.load_data()
x_train = x_train.reshape(-1, 64).astype("float32") / 16
x_test = x_test.reshape(-1, 64).astype("float32") / 16

inputs = keras.Input(shape=(64,), name="pixels")
x = layers.Dense(64, activation="relu")(inputs)
x = layers.Dropout(0.2)(x)
outputs = layers.Dense(10, name="logits")(x)
model = keras.Model(inputs, outputs, name="digits_mlp")
model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=64, epochs=5, verbose=0)

# The IR of the model: one node per layer call, edges for the tensors.
print(ir.dump(model.graph))

compiled = keras.compile_model(model)

# The passes that ran for "predict" and for "train", with what each found or changed.
compiled.report("predict")
compiled.report("train")

# Each mode has its own graph: in predict mode the Dropout node is gone (it is the identity outside training).
train_nodes = list(compiled.graph("train").nodes)
predict_nodes = list(compiled.graph("predict").nodes)
print("train graph:  ", train_nodes)
print("predict graph:", predict_nodes)
assert "dropout" in train_nodes and "dropout" not in predict_nodes

# The whole train step (forward, loss, gradients, Adam update, metrics) is one jitted function.
text = compiled.as_text("train")
print(f"train step: {len(text.splitlines())} lines of StableHLO; first line:")
print("  " + text.splitlines()[0][:100])
assert "stablehlo" in text

# The compiled predict step gives what model.predict gives.
logits = np.asarray(compiled.predict(x_test))
np.testing.assert_allclose(logits, model.predict(x_test, verbose=0), rtol=1e-5, atol=1e-5)
print(f"test accuracy: {np.mean(logits.argmax(axis=1) == y_test):.4f}")

# One trace per input signature: a second call with the same shapes reuses the compiled function.
compiled.predict(x_test)
compiled.predict(x_test[:7])
print("trace counts:", dict(compiled.trace_counts))
assert compiled.trace_counts["predict"] == 2   # batch 360 once, batch 7 once

# The same lowered functions run op by op with mode="eager", for comparison.
eager = keras.compile_model(model, mode="eager")
np.testing.assert_allclose(np.asarray(eager.predict(x_test)), logits, rtol=1e-5, atol=1e-5)
timings = {}
for name, cm in (("jit", compiled), ("eager", eager)):
    cm.predict(x_test)            # warm up
    start = time.perf_counter()
    for _ in range(5):
        np.asarray(cm.predict(x_test))
    timings[name] = (time.perf_counter() - start) / 5
print(f"predict on 360 images: jit {timings['jit'] * 1e3:.2f} ms, eager {timings['eager'] * 1e3:.2f} ms")

# Nested models are one node each in the model's IR; the "inline" pass splices their layers into the
# compiled graph, so XLA sees one flat computation.
def small_model():
    i = keras.Input(shape=(64,))
    return keras.Model(i, layers.Dense(10)(i))


member_a, member_b = small_model(), small_model()
ens_in = keras.Input(shape=(64,), name="pixels")
ensemble = keras.Model(ens_in, layers.average([member_a(ens_in), member_b(ens_in)]), name="ensemble")
print(ir.dump(ensemble.graph))
compiled_ensemble = keras.compile_model(ensemble)
print(ir.dump(compiled_ensemble.graph("predict")))
inline_record = [r for r in compiled_ensemble.records("predict") if r.name == "inline"][0]
print("inline pass:", inline_record.report)
assert inline_record.changed
assert all(compiled_ensemble.graph("predict").nodes[n]["op"] != "Functional"
           for n in compiled_ensemble.graph("predict").nodes)
np.testing.assert_allclose(np.asarray(compiled_ensemble.predict(x_test)),
                           (member_a.predict(x_test, verbose=0) + member_b.predict(x_test, verbose=0)) / 2,
                           rtol=1e-5, atol=1e-5)

print("OK 13_compile_model")
