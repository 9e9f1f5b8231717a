"""Section "Training, evaluation and inference": compile, fit, evaluate and predict a functional model.

The guide trains on MNIST. `keras.datasets.mnist.load_data()` only reads a local copy of mnist.npz and never
downloads, so this example uses the data set fncompiler ships instead: the UCI handwritten digits (8x8
images, 1,437 for training and 360 for testing), flattened to 64-dimensional vectors.

Run: python examples/02_training_evaluation_inference.py
"""
import numpy as np

import fncompiler as keras
from fncompiler import layers
from fncompiler.datasets import digits

keras.utils.set_random_seed(0)

(x_train, y_train), (x_test, y_test) = digits.load_data()
print("train:", x_train.shape, x_train.dtype, " test:", x_test.shape)
# uint8 pixels in 0..16 -> float32 vectors in [0, 1]
x_train = x_train.reshape(-1, 64).astype("float32") / 16
x_test = x_test.reshape(-1, 64).astype("float32") / 16

inputs = keras.Input(shape=(64,))
x = layers.Dense(64, activation="relu")(inputs)
x = layers.Dense(64, activation="relu")(x)
outputs = layers.Dense(10)(x)
model = keras.Model(inputs=inputs, outputs=outputs, name="digits_mlp")

model.compile(
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    optimizer=keras.optimizers.RMSprop(),
    metrics=["accuracy"],
)

# fit() holds out the last 20% of the training arrays for validation, as Keras does.
history = model.fit(x_train, y_train, batch_size=32, epochs=10, validation_split=0.2, verbose=2)
print("history keys:", sorted(history.history))
assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
assert len(history.history["loss"]) == 10
assert history.history["loss"][-1] < history.history["loss"][0]

test_scores = model.evaluate(x_test, y_test, verbose=2)
print("Test loss:", test_scores[0])
print("Test accuracy:", test_scores[1])
assert test_scores[1] >= 0.9, test_scores

# evaluate(return_dict=True) names the values.
scores = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
print("as a dict:", {k: round(float(v), 4) for k, v in scores.items()})

# Inference: predict() returns NumPy logits; the argmax is the predicted class.
logits = model.predict(x_test, verbose=0)
assert logits.shape == (360, 10)
accuracy = float(np.mean(np.argmax(logits, axis=-1) == y_test))
print(f"accuracy recomputed from predict(): {accuracy:.4f}")
assert abs(accuracy - scores["accuracy"]) < 1e-6

# A model can also be called directly on an array (eager, one batch).
direct = np.asarray(model(x_test[:5]))
np.testing.assert_allclose(direct, logits[:5], rtol=1e-5, atol=1e-5)
print("first five predictions:", np.argmax(direct, axis=-1), "labels:", y_test[:5])

print("OK 02_training_evaluation_inference")
