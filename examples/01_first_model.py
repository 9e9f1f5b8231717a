"""Section "Introduction" and "Model summary and plot": build the first functional model.

A functional model is a directed acyclic graph of layers. `keras.Input` creates the entry node; calling a
layer on a symbolic tensor adds a node to the graph and returns the node's symbolic output, whose shape and
dtype are known at once. `keras.Model(inputs, outputs)` wraps the graph between them.

Run: python examples/01_first_model.py [OUT_DIR]   (writes two PNG files into OUT_DIR, by default a new
temporary folder; the path is printed)
"""
import os
import sys
import tempfile

import fncompiler as keras
from fncompiler import layers

# The input: 784-dimensional vectors. Only the shape of one sample is given; the batch size stays None.
inputs = keras.Input(shape=(784,))
print("inputs.shape:", inputs.shape)
print("inputs.dtype:", inputs.dtype)
assert tuple(inputs.shape) == (None, 784)
assert str(inputs.dtype) == "float32"

# An image input would look like this (not used further).
img_inputs = keras.Input(shape=(32, 32, 3))
assert tuple(img_inputs.shape) == (None, 32, 32, 3)

# Calling a layer on `inputs` draws an arrow from the input to the layer; `x` is the layer's output.
dense = layers.Dense(64, activation="relu")
x = dense(inputs)
print("after the first Dense:", x.shape)
assert tuple(x.shape) == (None, 64)

x = layers.Dense(64, activation="relu")(x)
outputs = layers.Dense(10)(x)

model = keras.Model(inputs=inputs, outputs=outputs, name="mnist_model")
model.summary()

# 784*64 + 64, 64*64 + 64 and 64*10 + 10 weights.
assert model.count_params() == 55_050, model.count_params()
assert [tuple(layer.output.shape) for layer in model.layers] == [(None, 784), (None, 64), (None, 64), (None, 10)]

# Shapes are checked while the graph is written: a layer called on an incompatible tensor raises right here,
# naming the layer and the shapes, long before any data flows.
try:
    layers.Dense(3)(keras.Input(shape=(5,)))          # fine: builds a (5, 3) kernel
    dense(keras.Input(shape=(100,)))                  # `dense` was built for 784 features
except ValueError as err:
    print("error at graph construction:", str(err).splitlines()[0])
else:
    raise AssertionError("calling a Dense(784 -> 64) layer on a 100-feature input should fail")

# Plot the graph (Graphviz comes with the pygraphviz wheel). The files go into OUT_DIR or a temporary folder.
out_dir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="fncompiler-example-")
os.makedirs(out_dir, exist_ok=True)
keras.utils.plot_model(model, os.path.join(out_dir, "my_first_model.png"))
keras.utils.plot_model(model, os.path.join(out_dir, "my_first_model_with_shape_info.png"), show_shapes=True)
for name in ("my_first_model.png", "my_first_model_with_shape_info.png"):
    path = os.path.join(out_dir, name)
    with open(path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n", path
    print(f"wrote {path} ({os.path.getsize(path):,} bytes)")

print("OK 01_first_model")
