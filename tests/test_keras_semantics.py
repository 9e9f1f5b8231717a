"""Keras 3 behaviours found different in real programs (issue 21), each against a value recorded from Keras
3.15.1 (KERAS_BACKEND=jax) with the same weights and data; Keras is not imported here."""
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import layers


def _activity_data():
    x = np.sin(np.arange(40, dtype="float32")).reshape(8, 5)
    y = np.cos(np.arange(24, dtype="float32")).reshape(8, 3)
    k1 = (np.cos(np.arange(20, dtype="float32") * 0.7).reshape(5, 4)) * 0.5
    b1 = np.linspace(-0.1, 0.2, 4).astype("float32")
    k2 = (np.sin(np.arange(12, dtype="float32") * 1.3).reshape(4, 3)) * 0.5
    return x, y, [k1, b1, k2, np.zeros(3, "float32")]


def _activity_model():
    inp = keras.Input((5,))
    h = layers.Dense(4, activation="relu", activity_regularizer=keras.regularizers.L2(0.01))(inp)
    h = layers.ActivityRegularization(l1=0.02)(h)
    model = keras.Model(inp, layers.Dense(3)(h))
    model.compile(optimizer="sgd", loss="mse")
    return model


# Keras 3.15.1: model.evaluate / train_on_batch of _activity_model() on _activity_data()
KERAS_ACTIVITY = {"evaluate_b8": 0.5184550881385803, "evaluate_b4": 0.5184550285339355,
                  "mse_only": 0.5059411525726318, "train_b8": 0.5184550881385803}


def test_activity_regularizer_is_divided_by_the_batch_size_as_keras():
    x, y, weights = _activity_data()
    model = _activity_model()
    model.set_weights(weights)
    mse = float(np.mean((model.predict(x, verbose=0) - y) ** 2))
    np.testing.assert_allclose(mse, KERAS_ACTIVITY["mse_only"], rtol=1e-5)
    # NumPy reference of Keras's rule: each penalty of a (batch, ...) output divided by the batch size.
    h = np.maximum(x @ weights[0] + weights[1], 0)
    penalty = (0.01 * np.sum(h ** 2) + 0.02 * np.sum(np.abs(h))) / len(x)
    np.testing.assert_allclose(mse + penalty, KERAS_ACTIVITY["evaluate_b8"], rtol=1e-5)
    for batch_size in (8, 4):   # the same loss whatever the batch size
        got = model.evaluate(x, y, batch_size=batch_size, verbose=0)
        np.testing.assert_allclose(got, KERAS_ACTIVITY[f"evaluate_b{batch_size}"], rtol=1e-5)
    np.testing.assert_allclose(float(model.train_on_batch(x, y)), KERAS_ACTIVITY["train_b8"], rtol=1e-5)


def test_activity_regularization_layer_loss_per_sample():
    x = np.sin(np.arange(12, dtype="float32")).reshape(3, 4)
    _, _, (loss,) = layers.ActivityRegularization(l1=0.1, l2=0.2).stateless_call([], [], x, return_losses=True)
    np.testing.assert_allclose(float(loss), (0.1 * np.abs(x).sum() + 0.2 * (x ** 2).sum()) / 3, rtol=1e-6)
