"""Section "Mix-and-match API styles": functional models inside subclassed layers and models, and
subclassed layers inside functional models.

Choosing the functional API or subclassing is not a binary decision: a functional model can be used inside a
subclassed layer or model, and any subclassed layer or model can be called in a functional graph, as long as
its `call` follows one of the Keras signatures: `call(self, inputs, **kwargs)`, plus `training=None`
and/or `mask=None` where it needs them.

Run: python examples/12_mixing_styles.py
"""
import numpy as np

import fncompiler as keras
from fncompiler import layers
from fncompiler import ops

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)

units = 32
timesteps = 10
input_dim = 5

# 1. A functional model used inside a subclassed layer.
inputs = keras.Input((None, units))
x = layers.GlobalAveragePooling1D()(inputs)
outputs = layers.Dense(1)(x)
classifier = keras.Model(inputs, outputs, name="classifier")


class CustomRNN(layers.Layer):
    def __init__(self):
        super().__init__()
        self.units = units
        self.projection_1 = layers.Dense(units=units, activation="tanh")
        self.projection_2 = layers.Dense(units=units, activation="tanh")
        # Our previously-defined functional model
        self.classifier = classifier

    def call(self, inputs):
        outputs = []
        state = ops.zeros(shape=(inputs.shape[0], self.units))
        for t in range(inputs.shape[1]):
            x = inputs[:, t, :]
            h = self.projection_1(x)
            y = h + self.projection_2(state)
            state = y
            outputs.append(y)
        features = ops.stack(outputs, axis=1)
        print("features:", features.shape)
        return self.classifier(features)


rnn_model = CustomRNN()
out = rnn_model(ops.zeros((1, timesteps, input_dim)))
assert tuple(out.shape) == (1, 1)
# The layer's weights include the functional model's.
assert len(rnn_model.weights) == 2 + 2 + len(classifier.weights)


# 2. A subclassed layer used inside a functional model. Its call uses the batch size
# (`inputs.shape[0]`), so, as in the guide, the input gets a static batch size with `batch_shape`.
batch_size = 16


class CustomRNN2(layers.Layer):
    def __init__(self):
        super().__init__()
        self.units = units
        self.projection_1 = layers.Dense(units=units, activation="tanh")
        self.projection_2 = layers.Dense(units=units, activation="tanh")
        self.classifier = layers.Dense(1)

    def call(self, inputs):
        outputs = []
        state = ops.zeros(shape=(inputs.shape[0], self.units))
        for t in range(inputs.shape[1]):
            x = inputs[:, t, :]
            h = self.projection_1(x)
            y = h + self.projection_2(state)
            state = y
            outputs.append(y)
        features = ops.stack(outputs, axis=1)
        return self.classifier(features)


inputs = keras.Input(batch_shape=(batch_size, timesteps, input_dim))
x = layers.Conv1D(32, 3)(inputs)
outputs = CustomRNN2()(x)
model = keras.Model(inputs, outputs)
model.summary()
assert tuple(model.output.shape) == (batch_size, timesteps - 2, 1)

# It trains like any functional model (the whole step, Python loop included, is one jitted function).
xs = rng.random((4 * batch_size, timesteps, input_dim), dtype=np.float32)
ys = xs[:, 2:, :1] - xs[:, :-2, 1:2]
model.compile(optimizer="adam", loss="mse")
history = model.fit(xs, ys, batch_size=batch_size, epochs=5, verbose=0)
print("custom RNN in a functional model, loss per epoch:", np.round(history.history["loss"], 4))
assert history.history["loss"][-1] < history.history["loss"][0]
assert model.predict(xs[:batch_size], verbose=0).shape == (batch_size, timesteps - 2, 1)


# 3. A custom layer that takes the Keras mask: averages the non-padded steps of a sequence.
class MaskedMean(layers.Layer):
    def call(self, inputs, mask=None):
        if mask is None:
            return ops.mean(inputs, axis=1)
        weights = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        return ops.sum(inputs * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)


tokens = keras.Input(shape=(None,), dtype="int32")
embedded = layers.Embedding(20, 4, mask_zero=True)(tokens)   # emits the mask `tokens != 0`
pooled = MaskedMean()(embedded)                                # receives it as `mask`
pooling_model = keras.Model(tokens, pooled)
ids = np.array([[3, 5, 0, 0], [7, 1, 2, 9]], dtype="int32")
table = pooling_model.layers[1].get_weights()[0]
expected = np.stack([table[[3, 5]].mean(axis=0), table[[7, 1, 2, 9]].mean(axis=0)])
np.testing.assert_allclose(pooling_model.predict(ids, verbose=0), expected, rtol=1e-5, atol=1e-6)
print("MaskedMean ignored the padding")


# 4. A subclassed model built around functional parts, trained with fit().
class Classifier(keras.Model):
    def __init__(self, encoder, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.dropout = layers.Dropout(0.2)
        self.head = layers.Dense(num_classes)

    def call(self, inputs, training=None):
        features = self.encoder(inputs)
        return self.head(self.dropout(features, training=training))


enc_in = keras.Input(shape=(8,))
encoder = keras.Model(enc_in, layers.Dense(16, activation="relu")(enc_in), name="encoder")
clf = Classifier(encoder, 3)
xc = rng.random((256, 8), dtype=np.float32)
yc = np.argmax(xc[:, :3], axis=1)
clf.compile(optimizer=keras.optimizers.Adam(1e-2),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
history = clf.fit(xc, yc, batch_size=32, epochs=10, verbose=0)
print(f"subclassed Classifier around a functional encoder: accuracy {history.history['accuracy'][-1]:.3f}")
assert history.history["accuracy"][-1] > 0.6
assert clf.count_params() == encoder.count_params() + 16 * 3 + 3

# ... and that subclassed model is itself callable in a new functional graph.
new_in = keras.Input(shape=(8,))
probs = layers.Softmax()(clf(new_in))
wrapped = keras.Model(new_in, probs)
np.testing.assert_allclose(wrapped.predict(xc[:4], verbose=0).sum(axis=1), 1.0, rtol=1e-5)
print("subclassed model called in a functional graph:", tuple(probs.shape))

print("OK 12_mixing_styles")
