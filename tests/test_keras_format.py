"""Keras 3 files made by Keras (tests/data/keras_fixtures, made by make_fixtures.py there) load and predict what
Keras predicted; their .weights.h5 load into the same architecture built in fncompiler. No Keras import."""
import os

import numpy as np
import pytest

import fncompiler as keras
from fncompiler import layers
from fncompiler.models import load_model
from fncompiler.saving import ModelFileError

HERE = os.path.join(os.path.dirname(__file__), "data", "keras_fixtures")
KINDS = ["mlp", "cnn", "ticket", "autoencoder", "attention", "sequential"]


def _batch(kind):
    d = np.load(os.path.join(HERE, f"{kind}.npz"))
    x = {n[2:]: d[n] for n in d.files if n.startswith("x:")}
    y = {n[2:]: d[n] for n in d.files if n.startswith("y:")}
    return (x if len(x) > 1 else next(iter(x.values()))), y


def _max_err(pred, y):
    if isinstance(pred, dict):
        assert sorted(pred) == sorted(y)
        return max(float(np.abs(np.asarray(pred[k]) - y[k]).max()) for k in y)
    return float(np.abs(np.asarray(pred) - y["0"]).max())


@pytest.mark.parametrize("kind", KINDS)
def test_keras_archive_predicts_what_keras_predicted(kind):
    model = load_model(os.path.join(HERE, f"{kind}.keras"))
    x, y = _batch(kind)
    assert _max_err(model.predict(x, verbose=0), y) < 1e-4


def _mlp():
    inputs = keras.Input(shape=(6,), name="features")
    x = layers.Dense(8, activation="relu")(inputs)
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(8, activation="relu")(x)
    return keras.Model(inputs, layers.Dense(3, activation="softmax", name="probs")(x))


def _ticket():
    title = keras.Input(shape=(None,), name="title")
    body = keras.Input(shape=(None,), name="body")
    tags = keras.Input(shape=(5,), name="tags")
    t = layers.LSTM(6)(layers.Embedding(50, 8)(title))
    b = layers.GRU(4)(layers.Embedding(50, 8)(body))
    x = layers.concatenate([t, b, tags])
    return keras.Model({"title": title, "body": body, "tags": tags},
                       {"priority": layers.Dense(1, name="priority")(x),
                        "department": layers.Dense(3, name="department")(x)})


def _attention():
    inputs = keras.Input(shape=(5, 8), name="seq")
    x = layers.Add()([inputs, layers.MultiHeadAttention(num_heads=2, key_dim=4)(inputs, inputs)])
    x = layers.GlobalAveragePooling1D()(layers.LayerNormalization()(x))
    return keras.Model(inputs, layers.Dense(2)(x))


def _cnn():
    inputs = keras.Input(shape=(8, 8, 3), name="image")
    x = layers.BatchNormalization()(layers.Conv2D(4, 3, padding="same")(inputs))
    x = layers.SeparableConv2D(6, 3, activation="relu")(layers.Activation("relu")(x))
    x = layers.GlobalAveragePooling2D()(layers.MaxPooling2D(2)(x))
    return keras.Model(inputs, layers.Dense(2)(x))


@pytest.mark.parametrize("kind,build", [("mlp", _mlp), ("ticket", _ticket), ("attention", _attention),
                                        ("cnn", _cnn)])
def test_keras_weights_h5_into_fncompiler_architecture(kind, build):
    # Layer names here are fncompiler's own auto names (not the file's): weights go by Keras's group paths.
    model = build()
    model.load_weights(os.path.join(HERE, f"{kind}.weights.h5"))
    x, y = _batch(kind)
    assert _max_err(model.predict(x, verbose=0), y) < 1e-4


def test_weights_h5_into_wrong_architecture_names_the_layer():
    inputs = keras.Input(shape=(6,))
    model = keras.Model(inputs, layers.Dense(3)(layers.Dense(8)(inputs)))
    with pytest.raises(ModelFileError, match="shape|no weights|does not have"):
        model.load_weights(os.path.join(HERE, "mlp.weights.h5"))


def test_keras_archive_compile_config_is_restored():
    model = load_model(os.path.join(HERE, "cnn.keras"))
    assert type(model.optimizer).__name__ == "SGD"
    x, _ = _batch("cnn")
    model.fit(x, np.zeros((8, 2), "float32"), batch_size=4, epochs=1, verbose=0)
