"""Section "Extract and reuse nodes in the graph of layers": feature extraction.

A functional model's graph is a data structure: every layer's output is a symbolic tensor you can reach
(`layer.output`) and reuse as the output of a new model. Here (1) all the intermediate activations of VGG19
become the outputs of a feature-extraction model, as in the guide, and (2) the hidden layer of a small model
trained on the digits is reused under a new head.

VGG19 is built with `weights=None` (random weights): the ImageNet weights would have to be downloaded, which
fncompiler never does (weights="imagenet" raises an error that says so).

Run: python examples/09_feature_extraction.py
"""
import numpy as np

import fncompiler as keras
from fncompiler import layers
from fncompiler.datasets import digits

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)

vgg19 = keras.applications.VGG19(weights=None)
print(f"VGG19: {len(vgg19.layers)} layers, {vgg19.count_params():,} parameters")
assert vgg19.count_params() == 143_667_240

# The intermediate activations, obtained by querying the graph.
features_list = [layer.output for layer in vgg19.layers]
feat_extraction_model = keras.Model(inputs=vgg19.input, outputs=features_list)

img = rng.random((1, 224, 224, 3), dtype=np.float32)
extracted_features = feat_extraction_model(img)
assert len(extracted_features) == len(vgg19.layers)
for layer, feature in list(zip(vgg19.layers, extracted_features))[::5]:
    print(f"  {layer.name:14s} {tuple(np.shape(feature))}")
# The extractor shares VGG19's layers and weights: its last output is VGG19's prediction.
np.testing.assert_allclose(np.asarray(extracted_features[-1]), vgg19.predict(img, verbose=0), rtol=1e-4, atol=1e-6)
assert np.shape(extracted_features[vgg19.layers.index(vgg19.get_layer("block3_pool"))]) == (1, 28, 28, 256)

# The same idea on a model we train: learn features on digits 0-4, then reuse the hidden layer for 5-9.
(x_train, y_train), (x_test, y_test) = digits.load_data()
x_train = x_train.reshape(-1, 64).astype("float32") / 16
x_test = x_test.reshape(-1, 64).astype("float32") / 16

inputs = keras.Input(shape=(64,), name="pixels")
hidden = layers.Dense(32, activation="relu", name="hidden")(inputs)
outputs = layers.Dense(5, name="low_digits")(hidden)
base = keras.Model(inputs, outputs, name="base")
base.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
low = y_train < 5
base.fit(x_train[low], y_train[low], batch_size=32, epochs=10, verbose=0)

# A new model from the base's input to its hidden layer's output computes relu(x @ W + b) with the base's weights.
extractor = keras.Model(base.input, base.get_layer("hidden").output, name="extractor")
w, b = base.get_layer("hidden").get_weights()
np.testing.assert_allclose(extractor.predict(x_test, verbose=0), np.maximum(x_test @ w + b, 0), rtol=1e-4, atol=1e-5)

# Reuse it, frozen, under a new head trained on digits 5-9 only.
extractor.trainable = False
features = extractor(inputs)
new_head = layers.Dense(5, name="high_digits")(features)
transfer = keras.Model(inputs, new_head, name="transfer")
transfer.summary()
assert len(transfer.trainable_weights) == 2      # only the new head trains
transfer.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                 metrics=["accuracy"])
high, high_test = y_train >= 5, y_test >= 5
transfer.fit(x_train[high], y_train[high] - 5, batch_size=32, epochs=15, verbose=0)
np.testing.assert_array_equal(base.get_layer("hidden").get_weights()[0], w)   # the frozen layer did not move
_, acc = transfer.evaluate(x_test[high_test], y_test[high_test] - 5, verbose=0)
print(f"digits 5-9 classified from features learned on digits 0-4: accuracy {acc:.3f} (chance: 0.2)")
assert acc > 0.6, acc

print("OK 09_feature_extraction")
