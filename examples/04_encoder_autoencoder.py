"""Section "Use the same graph of layers to define multiple models": an encoder and an autoencoder.

A model is defined by its inputs and outputs in a graph of layers, so one graph can back several models.
Here the same stack of layers is used by (1) an `encoder` that maps a 28x28 image to a 16-dim vector and
(2) an end-to-end `autoencoder` trained to reconstruct its input. Both models hold the *same* layer objects:
training the autoencoder trains the encoder.

The images are the shipped 8x8 digits, enlarged 3x (24x24) and zero-padded to the guide's 28x28.

Run: python examples/04_encoder_autoencoder.py
"""
import numpy as np

import fncompiler as keras
from fncompiler import layers
from fncompiler.datasets import digits

keras.utils.set_random_seed(0)

encoder_input = keras.Input(shape=(28, 28, 1), name="img")
x = layers.Conv2D(16, 3, activation="relu")(encoder_input)
x = layers.Conv2D(32, 3, activation="relu")(x)
x = layers.MaxPooling2D(3)(x)
x = layers.Conv2D(32, 3, activation="relu")(x)
x = layers.Conv2D(16, 3, activation="relu")(x)
encoder_output = layers.GlobalMaxPooling2D()(x)

encoder = keras.Model(encoder_input, encoder_output, name="encoder")
encoder.summary()

# The decoder mirrors the encoder: Conv2DTranspose undoes Conv2D, UpSampling2D undoes MaxPooling2D.
x = layers.Reshape((4, 4, 1))(encoder_output)
x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
x = layers.Conv2DTranspose(32, 3, activation="relu")(x)
x = layers.UpSampling2D(3)(x)
x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
decoder_output = layers.Conv2DTranspose(1, 3, activation="relu")(x)

autoencoder = keras.Model(encoder_input, decoder_output, name="autoencoder")
autoencoder.summary()

assert encoder.count_params() == 18_672, encoder.count_params()
assert autoencoder.count_params() == 28_241, autoencoder.count_params()
assert tuple(autoencoder.output.shape) == (None, 28, 28, 1)   # the output has the input's shape
# The encoder's layers are the first layers of the autoencoder: the very same objects.
assert all(a is b for a, b in zip(encoder.layers, autoencoder.layers[: len(encoder.layers)]))

# Data: 8x8 digits in 0..16 -> 24x24 (each pixel becomes a 3x3 block) -> 28x28 in [0, 1].
(x_train, _), (x_test, _) = digits.load_data()


def to_28x28(images):
    big = np.kron(images.astype("float32") / 16, np.ones((3, 3), "float32"))
    return np.pad(big, ((0, 0), (2, 2), (2, 2)))[..., None]


x_train, x_test = to_28x28(x_train), to_28x28(x_test)
print("images:", x_train.shape, x_train.dtype)

codes_before = encoder.predict(x_test, verbose=0)
autoencoder.compile(optimizer=keras.optimizers.Adam(2e-3), loss="mse")
# A short run on the first 640 images keeps the example fast; train longer for better reconstructions.
history = autoencoder.fit(x_train[:640], x_train[:640], batch_size=64, epochs=2, verbose=2)
losses = history.history["loss"]
assert losses[-1] < losses[0], losses
test_mse = autoencoder.evaluate(x_test, x_test, verbose=0)
print(f"reconstruction MSE on the test images: {test_mse:.4f} (predicting zeros: {np.mean(x_test ** 2):.4f})")
assert test_mse < np.mean(x_test ** 2)

# The encoder was trained along with the autoencoder: its codes changed, though it was never fit itself.
codes_after = encoder.predict(x_test, verbose=0)
assert codes_after.shape == (360, 16)
print("mean change of the encoder's 16-dim codes:", float(np.mean(np.abs(codes_after - codes_before))))
assert not np.allclose(codes_after, codes_before)

print("OK 04_encoder_autoencoder")
