"""Section "Extend the API using custom layers": subclass Layer, then serialize it.

A custom layer subclasses `layers.Layer` and implements `call` (the computation) and usually `build` (creates
the weights once the input shape is known). To serialize it, `get_config` returns its constructor
arguments; `from_config` (default: `cls(**config)`) rebuilds it. A model file only names the class, so
loading needs the class: pass it in `custom_objects`, or register it once with
`@keras.saving.register_serializable()`.

Run: python examples/10_custom_layers.py   (writes into a temporary folder)
"""
import os
import tempfile

import numpy as np

import fncompiler as keras
from fncompiler import layers
from fncompiler import ops

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)


class CustomDense(layers.Layer):
    def __init__(self, units=32):
        super().__init__()
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(
            shape=(input_shape[-1], self.units),
            initializer="random_normal",
            trainable=True,
        )
        self.b = self.add_weight(shape=(self.units,), initializer="random_normal", trainable=True)

    def call(self, inputs):
        return ops.matmul(inputs, self.w) + self.b

    def get_config(self):
        return {"units": self.units}


inputs = keras.Input((4,))
outputs = CustomDense(10)(inputs)
model = keras.Model(inputs, outputs)
model.summary()
assert model.count_params() == 4 * 10 + 10

x = rng.random((3, 4), dtype=np.float32)
layer = model.layers[1]
np.testing.assert_allclose(model.predict(x, verbose=0), x @ np.asarray(layer.w) + np.asarray(layer.b),
                           rtol=1e-5, atol=1e-6)

# Round trip of the architecture through its config; the class comes from custom_objects.
config = model.get_config()
new_model = keras.Model.from_config(config, custom_objects={"CustomDense": CustomDense})
assert type(new_model.layers[1]) is CustomDense and new_model.layers[1].units == 10
print("from_config rebuilt:", [type(layer).__name__ for layer in new_model.layers])

# Custom layers train like built-in ones.
model.compile(optimizer="adam", loss="mse")
history = model.fit(x, np.zeros((3, 10), "float32"), epochs=20, verbose=0)
assert history.history["loss"][-1] < history.history["loss"][0]


# A registered layer, with weights named, a training-only behaviour and a from_config that converts a value
# stored in a JSON-friendly form. `get_config` extends the base config (name, trainable, dtype).
@keras.saving.register_serializable(package="examples")
class NoisyScale(layers.Layer):
    """Multiplies by a learned per-feature scale; adds Gaussian noise in training only."""

    def __init__(self, stddev=0.1, scale_init=(1.0,), **kwargs):
        super().__init__(**kwargs)
        self.stddev = stddev
        self.scale_init = tuple(scale_init)
        # A built-in layer used inside a custom one: its randomness comes from the training step's key.
        self.noise = layers.GaussianNoise(stddev)

    def build(self, input_shape):
        init = np.resize(np.asarray(self.scale_init, "float32"), (input_shape[-1],))
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer=keras.initializers.Constant(init),
                                     name="scale")

    def call(self, inputs, training=None):
        return self.noise(inputs, training=training) * self.scale

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "scale_init": list(self.scale_init)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["scale_init"] = tuple(config["scale_init"])   # JSON gave back a list
        return cls(**config)


print("registered as:", keras.saving.get_registered_name(NoisyScale))
inputs = keras.Input((4,), name="features")
x1 = NoisyScale(stddev=0.5, scale_init=(2.0,), name="noisy_scale")(inputs)
out = layers.Dense(1, name="out")(x1)
noisy = keras.Model(inputs, out, name="noisy_model")
data = rng.random((64, 4), dtype=np.float32)
noisy.compile(optimizer="adam", loss="mse")
noisy.fit(data, data.sum(axis=1, keepdims=True), epochs=2, verbose=0)

# Called on its own: noise in training mode only.
scale_layer = noisy.get_layer("noisy_scale")
scale = scale_layer.get_weights()[0]
np.testing.assert_allclose(np.asarray(scale_layer(data, training=False)), data * scale, rtol=1e-6)
assert not np.allclose(np.asarray(scale_layer(data, training=True)), data * scale)

# Inference is deterministic (no noise outside training) ...
p1 = noisy.predict(data, verbose=0)
np.testing.assert_array_equal(p1, noisy.predict(data, verbose=0))
# ... and a registered class loads from a file without custom_objects.
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "noisy.keras")
    noisy.save(path)
    restored = keras.models.load_model(path)
assert type(restored.get_layer("noisy_scale")) is NoisyScale
assert restored.get_layer("noisy_scale").scale_init == (2.0,)
np.testing.assert_allclose(restored.predict(data, verbose=0), p1, rtol=1e-6, atol=1e-6)
print("registered NoisyScale saved and loaded without custom_objects")

# The unregistered CustomDense cannot be loaded without being named: the file holds no code to import.
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "custom_dense.keras")
    model.save(path)
    try:
        keras.models.load_model(path)
    except ValueError as err:
        print("without custom_objects:", type(err).__name__, "-", str(err).splitlines()[0][:150])
    else:
        raise AssertionError("loading an unregistered custom layer should fail")
    again = keras.models.load_model(path, custom_objects={"CustomDense": CustomDense})
np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
print("with custom_objects={'CustomDense': CustomDense}: loaded")

print("OK 10_custom_layers")
