"""Section "Shared layers": one layer instance called on several inputs.

A shared layer is one layer object called more than once in the same model. It has one set of weights, used
(and trained) by every call. Here an Embedding is shared by two text inputs, as in the guide, and then a
whole encoder (Embedding + LSTM) is shared by the two branches of a small siamese model.

Run: python examples/08_shared_layers.py
"""
import numpy as np

import fncompiler as keras
from fncompiler import ir, layers, ops

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)

# Embedding for 1000 unique words mapped to 128-dimensional vectors
shared_embedding = layers.Embedding(1000, 128, name="shared_embedding")

# Variable-length sequences of integers
text_input_a = keras.Input(shape=(None,), dtype="int32", name="text_a")
text_input_b = keras.Input(shape=(None,), dtype="int32", name="text_b")

# Reuse the same layer to encode both inputs
encoded_input_a = shared_embedding(text_input_a)
encoded_input_b = shared_embedding(text_input_b)

both = keras.Model([text_input_a, text_input_b], [encoded_input_a, encoded_input_b], name="shared_embedding_model")
both.summary()
# One layer, one (1000, 128) table, two calls: two nodes in the compiler's graph.
assert both.count_params() == 1000 * 128
assert [layer.name for layer in both.layers] == ["text_a", "text_b", "shared_embedding"]
print(ir.dump(both.graph))
assert sorted(both.graph.nodes) == ["shared_embedding:0", "shared_embedding:1", "text_a", "text_b"]

ids = np.array([[1, 2, 3, 4]], dtype="int32")
ea, eb = both.predict([ids, ids], verbose=0)
np.testing.assert_array_equal(ea, eb)   # same words, same vectors, whichever input they came through

# A siamese model: the same encoder (shared Embedding + shared LSTM) reads both texts, and the model
# predicts from the element-wise distance of the two encodings whether the texts are near-copies.
embed = layers.Embedding(50, 16, name="embed")
encode = layers.LSTM(16, name="encode")
a = keras.Input(shape=(None,), dtype="int32", name="a")
b = keras.Input(shape=(None,), dtype="int32", name="b")
distance = ops.abs(encode(embed(a)) - encode(embed(b)))   # ops on symbolic tensors add nodes too
same = layers.Dense(1, activation="sigmoid", name="same")(distance)
siamese = keras.Model([a, b], same, name="siamese")
siamese.summary()
# 50*16 embedding + LSTM kernel (16, 64), recurrent kernel (16, 64), bias (64) + Dense (16 -> 1)
assert siamese.count_params() == 50 * 16 + (16 * 64 + 16 * 64 + 64) + 17

# Data: pairs of length-10 sequences; half the pairs are copies with two tokens changed (label 1).
n, length = 1024, 10
xa = rng.integers(1, 50, size=(n, length)).astype("int32")
xb = rng.integers(1, 50, size=(n, length)).astype("int32")
labels = (rng.random(n) < 0.5).astype("float32")
copies = xa.copy()
for row in copies:
    row[rng.choice(length, 2, replace=False)] = rng.integers(1, 50, 2)
xb[labels == 1] = copies[labels == 1]

siamese.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", metrics=["accuracy"])
history = siamese.fit([xa, xb], labels, batch_size=64, epochs=8, verbose=2)
assert history.history["loss"][-1] < history.history["loss"][0]
print(f"siamese training accuracy after 8 epochs: {history.history['accuracy'][-1]:.3f} (chance: 0.5)")
assert history.history["accuracy"][-1] > 0.7

# Because both branches share every weight, the model is symmetric: swapping the two texts changes nothing.
p_ab = siamese.predict([xa[:16], xb[:16]], verbose=0)
p_ba = siamese.predict([xb[:16], xa[:16]], verbose=0)
np.testing.assert_allclose(p_ab, p_ba, rtol=1e-5, atol=1e-6)
print("siamese([a, b]) == siamese([b, a])")

print("OK 08_shared_layers")
