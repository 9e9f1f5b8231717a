"""Text classification from scratch (keras.io example, on local synthetic reviews).

As the keras.io program: a `TextVectorization` layer is adapted on the raw training text, the model trains on
integer sequences, and an end-to-end model that takes raw strings (`keras.Input(shape=(1,), dtype="string")`)
is built for inference. The IMDB download is replaced by generated reviews whose sentiment depends on words.

Run: python examples/real/text_classification_from_scratch.py
"""
import numpy as np

import fncompiler as keras
from fncompiler import layers

keras.utils.set_random_seed(1337)
rng = np.random.default_rng(1337)

POSITIVE = ["great", "wonderful", "loved", "brilliant", "moving", "superb", "fun"]
NEGATIVE = ["awful", "boring", "hated", "terrible", "dull", "waste", "bad"]
NEUTRAL = ["the", "movie", "film", "plot", "actors", "a", "was", "and", "it", "story", "<br />", "scenes"]


def make_reviews(n):
    texts, labels = [], []
    for _ in range(n):
        label = int(rng.integers(0, 2))
        words = list(rng.choice(NEUTRAL, size=int(rng.integers(8, 20))))
        words += list(rng.choice(POSITIVE if label else NEGATIVE, size=3))
        words += list(rng.choice(NEGATIVE if label else POSITIVE, size=1))     # a little noise
        rng.shuffle(words)
        texts.append(" ".join(words).capitalize() + "!")
        labels.append(label)
    return np.array(texts), np.array(labels, "float32")


raw_train, y_train = make_reviews(800)
raw_test, y_test = make_reviews(200)
print("example review:", raw_train[0], "label:", y_train[0])

# Model constants.
max_features = 200
embedding_dim = 16
sequence_length = 24


def custom_standardization(input_data):
    """keras.io strips the HTML line breaks; the standardize callable runs on each string on the host."""
    return input_data.lower().replace("<br />", " ")


vectorize_layer = layers.TextVectorization(
    standardize=custom_standardization,
    max_tokens=max_features,
    output_mode="int",
    output_sequence_length=sequence_length,
)
vectorize_layer.adapt(raw_train)
print("vocabulary size:", vectorize_layer.vocabulary_size(), "first tokens:", vectorize_layer.get_vocabulary()[:6])

x_train = vectorize_layer(raw_train)
x_test = vectorize_layer(raw_test)

# A integer input for vocab indices.
inputs = keras.Input(shape=(None,), dtype="int64")
x = layers.Embedding(max_features, embedding_dim)(inputs)
x = layers.Dropout(0.5)(x)
x = layers.Conv1D(32, 5, padding="valid", activation="relu", strides=1)(x)
x = layers.GlobalMaxPooling1D()(x)
x = layers.Dense(32, activation="relu")(x)
x = layers.Dropout(0.5)(x)
predictions = layers.Dense(1, activation="sigmoid", name="predictions")(x)
model = keras.Model(inputs, predictions)
model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
model.fit(x_train, y_train, validation_split=0.1, epochs=8, batch_size=32, verbose=0)
loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"test accuracy on integer sequences: {accuracy:.3f}")

# An end-to-end model that takes raw strings: the vectorization runs on the host before the compiled step.
inputs = keras.Input(shape=(1,), dtype="string")
indices = vectorize_layer(inputs)
outputs = model(indices)
end_to_end_model = keras.Model(inputs, outputs)
end_to_end_model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
e2e_loss, e2e_accuracy = end_to_end_model.evaluate(raw_test[:, None], y_test, verbose=0)
print(f"end-to-end test accuracy on raw strings: {e2e_accuracy:.3f}")
assert abs(e2e_accuracy - accuracy) < 1e-6, (e2e_accuracy, accuracy)
assert accuracy > 0.8, accuracy
scores = end_to_end_model.predict(np.array([["A wonderful, brilliant film!"], ["Boring and awful."]]), verbose=0)
print("scores for a positive and a negative review:", scores.ravel().round(3))
assert scores[0, 0] > scores[1, 0]
print("OK text_classification_from_scratch")
