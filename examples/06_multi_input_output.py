"""Section "Models with multiple inputs and outputs": the issue-ticket model.

Tickets are ranked by priority and routed to a department. The model has three inputs (the title and the
body as sequences of word ids, and binary tags) and two outputs (a priority score and department logits).
Each output gets its own loss and loss weight. The data are random, as in the guide.

Run: python examples/06_multi_input_output.py [OUT_DIR]   (writes multi_input_and_output_model.png into
OUT_DIR, by default a new temporary folder; the path is printed)
"""
import os
import sys
import tempfile

import numpy as np

import fncompiler as keras
from fncompiler import layers

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)

num_tags = 12          # number of unique issue tags
num_words = 10000      # vocabulary size
num_departments = 4    # number of departments

title_input = keras.Input(shape=(None,), name="title")    # variable-length sequence of ints
body_input = keras.Input(shape=(None,), name="body")      # variable-length sequence of ints
tags_input = keras.Input(shape=(num_tags,), name="tags")  # binary vectors of size num_tags

# Embed each word of the title and of the body into a 64-dimensional vector.
title_features = layers.Embedding(num_words, 64)(title_input)
body_features = layers.Embedding(num_words, 64)(body_input)
# Reduce the sequences of embedded words to one 128-dim (title) and one 32-dim (body) vector.
title_features = layers.LSTM(128)(title_features)
body_features = layers.LSTM(32)(body_features)
# Merge all available features into one large vector.
x = layers.concatenate([title_features, body_features, tags_input])
print("merged features:", x.shape)
assert tuple(x.shape) == (None, 128 + 32 + num_tags)

priority_pred = layers.Dense(1, name="priority")(x)
department_pred = layers.Dense(num_departments, name="department")(x)

model = keras.Model(
    inputs=[title_input, body_input, tags_input],
    outputs={"priority": priority_pred, "department": department_pred},
    name="ticket_model",
)
model.summary()
out_dir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="fncompiler-example-")
os.makedirs(out_dir, exist_ok=True)
plot_path = os.path.join(out_dir, "multi_input_and_output_model.png")
keras.utils.plot_model(model, plot_path, show_shapes=True)
print("wrote", plot_path)

# With dict outputs the model's flat output order is the sorted keys, as in Keras 3 (`model.output_names`).
print("output_names:", model.output_names)
assert model.output_names == ["department", "priority"]

# Dummy input data
n = 1280
title_data = rng.integers(num_words, size=(n, 12))
body_data = rng.integers(num_words, size=(n, 100))
tags_data = rng.integers(2, size=(n, num_tags)).astype("float32")
# Dummy target data
priority_targets = rng.random(size=(n, 1))
dept_targets = rng.integers(2, size=(n, num_departments))
inputs = {"title": title_data, "body": body_data, "tags": tags_data}
targets = {"priority": priority_targets, "department": dept_targets}

# One loss per output. As a list, losses and weights follow `model.output_names`: department, then priority
# (the guide's list puts priority first; a dict of outputs is flattened by sorted key, as in Keras 3) ...
model.compile(
    optimizer=keras.optimizers.RMSprop(1e-3),
    loss=[
        keras.losses.CategoricalCrossentropy(from_logits=True),
        keras.losses.BinaryCrossentropy(from_logits=True),
    ],
    loss_weights=[0.2, 1.0],
)
as_list = model.evaluate(inputs, targets, verbose=0, return_dict=True)

# ... or, since the output layers have names, as dicts keyed by those names: no order to get wrong.
model.compile(
    optimizer=keras.optimizers.RMSprop(1e-3),
    loss={
        "priority": keras.losses.BinaryCrossentropy(from_logits=True),
        "department": keras.losses.CategoricalCrossentropy(from_logits=True),
    },
    loss_weights={"priority": 1.0, "department": 0.2},
)
as_dict = model.evaluate(inputs, targets, verbose=0, return_dict=True)
assert as_list.keys() == as_dict.keys() and all(abs(as_list[k] - as_dict[k]) < 1e-6 for k in as_dict)
print("list and dict compile() agree:", {k: round(float(v), 4) for k, v in as_dict.items()})

history = model.fit(
    inputs,     # {"title": title_data, "body": body_data, "tags": tags_data}
    targets,    # {"priority": priority_targets, "department": dept_targets}
    epochs=2,
    batch_size=32,
    verbose=2,
)
losses = history.history["loss"]
assert len(losses) == 2 and np.all(np.isfinite(losses)), losses

# Lists work too: inputs in the order given to Model(), targets in `model.output_names` order.
scores = model.evaluate([title_data, body_data, tags_data], [dept_targets, priority_targets], verbose=0,
                        return_dict=True)
print("evaluate:", {k: round(float(v), 4) for k, v in scores.items()})

# The total loss is the weighted sum of the per-output losses: recompute it from the predictions.
preds = model.predict(inputs, verbose=0)
assert set(preds) == {"priority", "department"}
assert preds["priority"].shape == (n, 1) and preds["department"].shape == (n, num_departments)
bce = keras.losses.BinaryCrossentropy(from_logits=True)
cce = keras.losses.CategoricalCrossentropy(from_logits=True)
total = 1.0 * float(bce(priority_targets, preds["priority"])) + 0.2 * float(cce(dept_targets, preds["department"]))
print(f"1.0 * priority loss + 0.2 * department loss = {total:.4f}")
assert abs(total - scores["loss"]) < 1e-3 * max(1.0, abs(total)), (total, scores["loss"])

print("OK 06_multi_input_output")
