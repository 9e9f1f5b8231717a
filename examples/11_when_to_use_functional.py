"""Section "When to use the functional API": the same MLP written both ways, and what each gives you.

A functional model is a data structure (a graph of layers); a subclassed model is Python code (its `call`).
The functional model is checked while it is defined, can be inspected, plotted, serialized and cloned
without its code. Subclassing is more flexible (any Python in `call`, e.g. a Tree-RNN whose structure
depends on each input), at the price of those properties.

Run: python examples/11_when_to_use_functional.py
"""
import numpy as np

import fncompiler as keras
from fncompiler import layers
from fncompiler import ops

keras.utils.set_random_seed(0)

# Functional: less verbose, no __init__ / call to write.
inputs = keras.Input(shape=(32,))
x = layers.Dense(64, activation="relu")(inputs)
outputs = layers.Dense(10)(x)
mlp = keras.Model(inputs, outputs)


# Subclassed: the same computation, as code.
class MLP(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense_1 = layers.Dense(64, activation="relu")
        self.dense_2 = layers.Dense(10)

    def call(self, inputs):
        x = self.dense_1(inputs)
        return self.dense_2(x)


sub_mlp = MLP()
_ = sub_mlp(ops.zeros((1, 32)))   # the model has no state until it is called once
assert sub_mlp.count_params() == mlp.count_params() == 32 * 64 + 64 + 64 * 10 + 10

# Same weights -> same outputs.
sub_mlp.set_weights(mlp.get_weights())
data = np.random.default_rng(0).random((4, 32), dtype=np.float32)
np.testing.assert_allclose(sub_mlp.predict(data, verbose=0), mlp.predict(data, verbose=0), rtol=1e-5, atol=1e-6)
print("functional and subclassed MLP agree")

# 1. Validated while the graph is defined: a mistake fails at the line that wrote it, with the shapes.
try:
    layers.add([layers.Dense(16)(inputs), layers.Dense(8)(inputs)])
except ValueError as err:
    print("checked at definition:", err)
else:
    raise AssertionError("adding a 16-wide and an 8-wide tensor should fail")

# 2. Inspectable: every layer, its output shape, and the graph's intermediate tensors.
print("layers:", [(layer.name, tuple(layer.output.shape)) for layer in mlp.layers])
hidden = keras.Model(mlp.input, mlp.layers[1].output)   # reuse an intermediate node
assert hidden.predict(data, verbose=0).shape == (4, 64)

# 3. Serializable and clonable without the code: the config describes the whole graph.
clone = keras.Model.from_config(mlp.get_config())
assert [type(layer).__name__ for layer in clone.layers] == ["InputLayer", "Dense", "Dense"]
clone.set_weights(mlp.get_weights())
np.testing.assert_allclose(clone.predict(data, verbose=0), mlp.predict(data, verbose=0), rtol=1e-6, atol=1e-6)
print("rebuilt from its config alone:", clone.name, [layer.name for layer in clone.layers])

# The subclassed model's config says nothing about its layers: its code is needed to rebuild it
# (a subclass that should be serializable implements get_config/from_config itself).
print("subclassed model config:", sub_mlp.get_config())
assert "layers" not in sub_mlp.get_config()

print("OK 11_when_to_use_functional")
