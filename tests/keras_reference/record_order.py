"""Record Keras 3's layer order, weight order and default names for tests/guide_topologies.py's models.

Run with Keras 3 installed (never imported by the tests):
    KERAS_BACKEND=jax python tests/keras_reference/record_order.py > /tmp/keras_order.json
The printed JSON is what tests/test_keras_order.py holds as literals (recorded with Keras 3.15.1).
"""
import json
import os
import sys

import keras

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import guide_topologies  # noqa: E402


def record(model):
    return {"layers": [layer.name for layer in model.layers],
            "operations": [op.name for op in model._operations],
            "weights": [[w.path, list(w.shape)] for w in model.weights],
            "output_names": list(model.output_names)}


models = guide_topologies.all_models(keras, keras.backend.clear_session)
print(json.dumps({key: record(m) for key, m in models.items()}))
