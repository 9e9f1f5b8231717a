"""Section "Save and serialize": the whole model in one file, rebuilt without the code that made it.

`model.save(path)` writes one zip file holding the architecture (JSON), the weights and the optimizer state
(msgpack) and the compile() configuration. `keras.models.load_model(path)` rebuilds the model from it. The
file cannot carry code: nothing in it is executed when it is loaded (see docs/file-format.md).

Run: python examples/03_save_and_serialize.py   (writes into a temporary folder)
"""
import json
import os
import tempfile
import zipfile

import numpy as np

import fncompiler as keras
from fncompiler import layers
from fncompiler.datasets import digits

keras.utils.set_random_seed(0)
(x_train, y_train), (x_test, y_test) = digits.load_data()
x_train = x_train.reshape(-1, 64).astype("float32") / 16
x_test = x_test.reshape(-1, 64).astype("float32") / 16


def build_model():
    inputs = keras.Input(shape=(64,), name="pixels")
    x = layers.Dense(64, activation="relu")(inputs)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(10, name="logits")(x)
    return keras.Model(inputs=inputs, outputs=outputs, name="digits_mlp")


model = build_model()
model.compile(
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    optimizer=keras.optimizers.RMSprop(),
    metrics=["accuracy"],
)
model.fit(x_train, y_train, batch_size=64, epochs=3, verbose=0)
before = model.predict(x_test, verbose=0)
scores_before = model.evaluate(x_test, y_test, verbose=0, return_dict=True)

with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "my_model.keras")
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        print(f"{os.path.basename(path)} ({os.path.getsize(path):,} bytes):", sorted(zf.namelist()))
        config = json.loads(zf.read("config.json"))
    print("config.json describes a", config["class_name"], "with layers",
          [layer["config"]["name"] for layer in config["config"]["layers"]])

    # Recreate exactly the same model from the file alone.
    restored = keras.models.load_model(path)

# Same architecture, same weights, same compile() configuration.
assert [layer.name for layer in restored.layers] == [layer.name for layer in model.layers]
after = restored.predict(x_test, verbose=0)
np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-6)
scores_after = restored.evaluate(x_test, y_test, verbose=0, return_dict=True)
print("before saving:", {k: round(float(v), 4) for k, v in scores_before.items()})
print("after loading:", {k: round(float(v), 4) for k, v in scores_after.items()})
assert np.allclose(list(scores_before.values()), list(scores_after.values()), atol=1e-6)

# The optimizer state came back too: one more epoch (no shuffling) on the original and on the restored model
# lands on the same weights, which it would not if RMSprop's moving averages had restarted from zero.
model.fit(x_train, y_train, batch_size=64, epochs=1, shuffle=False, verbose=0)
restored.fit(x_train, y_train, batch_size=64, epochs=1, shuffle=False, verbose=0)
for w_a, w_b in zip(model.get_weights(), restored.get_weights()):
    np.testing.assert_allclose(w_a, w_b, rtol=1e-5, atol=1e-6)
print("training resumed where it stopped: both models hold the same weights after one more epoch")

# The architecture alone round-trips through get_config()/from_config() (fresh weights) ...
clone = keras.Model.from_config(model.get_config())
assert clone.count_params() == model.count_params()
# ... and the weights alone through save_weights()/load_weights().
with tempfile.TemporaryDirectory() as tmp:
    # The same zip format as a model file, without config.json (not HDF5, whatever the name says).
    weights_path = os.path.join(tmp, "digits.weights")
    model.save_weights(weights_path)
    clone.load_weights(weights_path)
np.testing.assert_allclose(clone.predict(x_test, verbose=0), model.predict(x_test, verbose=0), rtol=1e-6, atol=1e-6)
print("from_config + load_weights reproduces the model's predictions")

print("OK 03_save_and_serialize")
