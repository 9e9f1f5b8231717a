"""Section "A toy ResNet model": a non-linear topology with residual connections.

Besides multiple inputs and outputs, the functional API handles graphs that are not a chain: here two
residual blocks add their input back to their output (`layers.add`), which a Sequential model cannot express.

The guide trains on CIFAR-10. `keras.datasets.cifar10.load_data()` only reads a local copy and never
downloads, so this example uses the shipped 8x8 digits, enlarged to 32x32 and repeated over 3 channels.

Run: python examples/07_toy_resnet.py [OUT_DIR]   (writes mini_resnet.png into OUT_DIR, by default a new
temporary folder; the path is printed)
"""
import os
import sys
import tempfile

import numpy as np

import fncompiler as keras
from fncompiler import layers
from fncompiler.datasets import digits

keras.utils.set_random_seed(0)

inputs = keras.Input(shape=(32, 32, 3), name="img")
x = layers.Conv2D(32, 3, activation="relu")(inputs)
x = layers.Conv2D(64, 3, activation="relu")(x)
block_1_output = layers.MaxPooling2D(3)(x)

x = layers.Conv2D(64, 3, activation="relu", padding="same")(block_1_output)
x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
block_2_output = layers.add([x, block_1_output])

x = layers.Conv2D(64, 3, activation="relu", padding="same")(block_2_output)
x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
block_3_output = layers.add([x, block_2_output])

x = layers.Conv2D(64, 3, activation="relu")(block_3_output)
x = layers.GlobalAveragePooling2D()(x)
x = layers.Dense(256, activation="relu")(x)
x = layers.Dropout(0.5)(x)
outputs = layers.Dense(10)(x)

model = keras.Model(inputs, outputs, name="toy_resnet")
model.summary()   # with branches, the summary has a "Connected to" column
assert model.count_params() == 223_242, model.count_params()
assert tuple(block_2_output.shape) == tuple(block_1_output.shape) == (None, 9, 9, 64)

out_dir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="fncompiler-example-")
os.makedirs(out_dir, exist_ok=True)
plot_path = os.path.join(out_dir, "mini_resnet.png")
keras.utils.plot_model(model, plot_path, show_shapes=True)
print("wrote", plot_path)

# Data: 8x8 digits (0..16) -> 32x32 (each pixel a 4x4 block) -> 3 identical channels in [0, 1].
(x_train, y_train), (x_test, y_test) = digits.load_data()


def to_rgb32(images):
    big = np.kron(images.astype("float32") / 16, np.ones((4, 4), "float32"))
    return np.repeat(big[..., None], 3, axis=-1)


x_train, x_test = to_rgb32(x_train), to_rgb32(x_test)
y_train = keras.utils.to_categorical(y_train, 10)
y_test = keras.utils.to_categorical(y_test, 10)
print("x_train:", x_train.shape, " y_train:", y_train.shape)

model.compile(
    optimizer=keras.optimizers.RMSprop(1e-3),
    loss=keras.losses.CategoricalCrossentropy(from_logits=True),
    metrics=["acc"],
)
# As in the guide, a short run on the first 1000 samples (train to convergence for a real model).
history = model.fit(x_train[:1000], y_train[:1000], batch_size=64, epochs=2, validation_split=0.2, verbose=2)
assert set(history.history) == {"acc", "loss", "val_acc", "val_loss"}, history.history.keys()
loss, acc = model.evaluate(x_test, y_test, verbose=0)
print(f"test loss {loss:.4f}, test accuracy {acc:.4f} (chance: 0.1)")
assert np.isfinite(loss)
assert history.history["loss"][-1] < history.history["loss"][0], history.history["loss"]

print("OK 07_toy_resnet")
