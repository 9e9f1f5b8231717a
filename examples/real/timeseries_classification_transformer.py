"""Timeseries classification with a Transformer encoder, in the style of keras.io's
"timeseries_classification_transformer" example.

keras.io classifies the FordA engine-noise recordings (500 steps, 1 channel, 2 classes). Here the series are
made up locally with the same layout: class 1 hides a short sine burst at a random position in noise, class 0
is noise with a burst of another frequency. The model is the keras.io one, smaller: transformer encoder blocks
(MultiHeadAttention + Dropout + LayerNormalization with a residual, then a Conv1D feed-forward part), a
GlobalAveragePooling1D over the channels-first axis exactly as keras.io writes it, and an MLP head, trained with
EarlyStopping(restore_best_weights=True).

Run: python examples/real/timeseries_classification_transformer.py
"""
import numpy as np

import fncompiler as keras
from fncompiler import layers

keras.utils.set_random_seed(0)

# ---------------------------------------------------------------------- data (stands in for FordA)
rng = np.random.default_rng(0)
length = 64


def make_series(n):
    y = rng.integers(0, 2, n)
    x = rng.normal(scale=0.6, size=(n, length)).astype("float32")
    t = np.arange(16)
    for i in range(n):
        start = rng.integers(0, length - 16)
        freq = 0.25 if y[i] else 0.06
        x[i, start:start + 16] += np.sin(2 * np.pi * freq * t)
    return x.reshape((n, length, 1)), y


x_train, y_train = make_series(800)
x_test, y_test = make_series(200)
n_classes = len(np.unique(y_train))

idx = np.random.permutation(len(x_train))   # shuffled as in keras.io
x_train = x_train[idx]
y_train = y_train[idx]


# ---------------------------------------------------------------------- the model
def transformer_encoder(inputs, head_size, num_heads, ff_dim, dropout=0):
    # Attention and normalization
    x = layers.MultiHeadAttention(key_dim=head_size, num_heads=num_heads, dropout=dropout)(inputs, inputs)
    x = layers.Dropout(dropout)(x)
    x = layers.LayerNormalization(epsilon=1e-6)(x)
    res = x + inputs

    # Feed forward part
    x = layers.Conv1D(filters=ff_dim, kernel_size=1, activation="relu")(res)
    x = layers.Dropout(dropout)(x)
    x = layers.Conv1D(filters=inputs.shape[-1], kernel_size=1)(x)
    x = layers.LayerNormalization(epsilon=1e-6)(x)
    return x + res


def build_model(input_shape, head_size, num_heads, ff_dim, num_transformer_blocks, mlp_units, dropout=0,
                mlp_dropout=0):
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for _ in range(num_transformer_blocks):
        x = transformer_encoder(x, head_size, num_heads, ff_dim, dropout)

    x = layers.GlobalAveragePooling1D(data_format="channels_first")(x)
    for dim in mlp_units:
        x = layers.Dense(dim, activation="relu")(x)
        x = layers.Dropout(mlp_dropout)(x)
    outputs = layers.Dense(n_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


input_shape = x_train.shape[1:]
model = build_model(input_shape, head_size=32, num_heads=2, ff_dim=4, num_transformer_blocks=2, mlp_units=[64],
                    mlp_dropout=0.2, dropout=0.1)
model.compile(loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.Adam(learning_rate=3e-3),
              metrics=["sparse_categorical_accuracy"])
model.summary()

callbacks = [keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)]
history = model.fit(x_train, y_train, validation_split=0.2, epochs=15, batch_size=64, callbacks=callbacks,
                    verbose=2)
loss, accuracy = model.evaluate(x_test, y_test, verbose=1)
print(f"test accuracy: {accuracy:.3f}")

# channels_first on this (batch, steps, 1) input averages over the last axis (the single channel), as in Keras:
# the head sees one value per time step.
pooling = [layer for layer in model.layers if isinstance(layer, layers.GlobalAveragePooling1D)][0]
assert pooling.output.shape == (None, length), pooling.output.shape
assert accuracy > 0.7, accuracy   # chance is 0.5
print("OK timeseries_classification_transformer")
