"""Image classification from scratch with data augmentation (keras.io example, on local synthetic images).

As the keras.io program: a `data_augmentation` Sequential of RandomFlip / RandomRotation (plus RandomZoom,
RandomTranslation, RandomContrast here) sits at the start of the model, active only in training and drawn
inside the compiled train step; Rescaling maps uint8 pixels to [0, 1]. The cats-vs-dogs download is replaced by
small images of two classes (horizontal vs vertical stripes) that stay recognizable after augmentation.

Run: python examples/real/image_classification_with_augmentation.py
"""
import numpy as np

import fncompiler as keras
from fncompiler import layers

keras.utils.set_random_seed(7)
rng = np.random.default_rng(7)
image_size = (24, 24)


def make_images(n):
    labels = rng.integers(0, 2, n)
    freq = rng.uniform(0.6, 1.2, size=(n, 1, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1, 1))
    grid = np.arange(image_size[0])[None, :, None] * np.ones((1, 1, image_size[1]))
    stripes = np.where(labels[:, None, None] == 1, grid, np.swapaxes(grid, 1, 2))
    base = 0.5 + 0.5 * np.sin(freq * stripes + phase)
    colour = rng.uniform(0.6, 1.0, size=(n, 1, 1, 3))
    images = base[..., None] * colour + rng.normal(0, 0.05, size=(n, *image_size, 3))
    return (np.clip(images, 0, 1) * 255).astype("uint8"), labels.astype("float32")


x_train, y_train = make_images(512)
x_test, y_test = make_images(128)
print("train images:", x_train.shape, x_train.dtype)

data_augmentation_layers = [
    layers.RandomFlip("horizontal"),
    layers.RandomRotation(0.03),
    layers.RandomZoom(0.1),
    layers.RandomTranslation(0.05, 0.05),
    layers.RandomContrast(0.1),
]


def data_augmentation(images):
    for layer in data_augmentation_layers:
        images = layer(images)
    return images


augmented = np.asarray(data_augmentation(x_train[:4].astype("float32")))
print("augmented batch (called directly, training=True by default):", augmented.shape,
      "changed:", not np.allclose(augmented, x_train[:4]))


def make_model(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    x = data_augmentation(inputs)
    x = layers.Rescaling(1.0 / 255)(x)
    x = layers.Conv2D(16, 3, strides=2, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    previous_block_activation = x
    for size in [32, 64]:
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(size, 1, strides=2, padding="same")(previous_block_activation)
        x = layers.add([x, residual])
        previous_block_activation = x
    x = layers.GlobalAveragePooling2D()(x)
    units = 1 if num_classes == 2 else num_classes
    x = layers.Dropout(0.25)(x)
    outputs = layers.Dense(units, activation=None)(x)
    return keras.Model(inputs, outputs)


model = make_model(input_shape=image_size + (3,), num_classes=2)
model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=keras.losses.BinaryCrossentropy(from_logits=True),
              metrics=[keras.metrics.BinaryAccuracy(name="acc")])
model.fit(x_train, y_train, epochs=6, batch_size=64, validation_data=(x_test, y_test), verbose=0)
loss, acc = model.evaluate(x_test, y_test, verbose=0)
print(f"test accuracy: {acc:.3f}")
assert acc > 0.7, acc          # chance is 0.5

# Inference: the augmentation layers are the identity, so predictions are deterministic.
first = model.predict(x_test[:8], verbose=0)
second = model.predict(x_test[:8], verbose=0)
assert np.array_equal(first, second)
score = float(keras.ops.sigmoid(first[0][0]))
print(f"This image is {100 * (1 - score):.2f}% horizontal stripes and {100 * score:.2f}% vertical stripes.")
print("OK image_classification_with_augmentation")
