"""Sequential, clone_model, subclassed models and custom layers with add_loss / training / mask."""
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import layers, ops


def test_sequential_list_add_pop_and_deferred_build():
    model = keras.Sequential([layers.Dense(4, activation="relu", name="a"), layers.Dense(2, name="b")])
    assert model.inputs is None                       # no input shape yet: built on first call
    x = np.random.rand(3, 5).astype("float32")
    y = model(x)
    assert y.shape == (3, 2) and model.count_params() == 5 * 4 + 4 + 4 * 2 + 2
    w_a, b_a = model.get_layer("a").get_weights()
    w_b, b_b = model.get_layer("b").get_weights()
    np.testing.assert_allclose(np.asarray(y), np.maximum(x @ w_a + b_a, 0) @ w_b + b_b, rtol=1e-5, atol=1e-6)
    seq = keras.Sequential()
    seq.add(keras.Input(shape=(5,)))
    seq.add(layers.Dense(3, name="c"))
    seq.add(layers.Dense(1, name="d"))
    assert [l.name for l in seq.layers] == ["c", "d"] and seq.output.shape == (None, 1)
    popped = seq.pop()
    assert popped.name == "d" and seq.output.shape == (None, 3)
    with pytest.raises(ValueError, match="unique names"):
        seq.add(layers.Dense(2, name="c"))
    with pytest.raises(TypeError, match="Layer instance"):
        seq.add("dense")


def test_sequential_trains_and_round_trips(tmp_path):
    model = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(8, activation="tanh"), layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    x = np.random.rand(64, 4).astype("float32")
    y = x.sum(-1, keepdims=True)
    history = model.fit(x, y, epochs=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    model.save(tmp_path / "seq.keras")
    loaded = keras.models.load_model(tmp_path / "seq.keras")
    assert type(loaded).__name__ == "Sequential"
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)


def test_clone_model_same_architecture_fresh_weights():
    x = keras.Input(shape=(3,), name="x")
    model = keras.Model(x, layers.Dense(2, name="d")(layers.Dense(4, name="h")(x)), name="orig")
    clone = keras.models.clone_model(model)
    assert [l.name for l in clone.layers] == [l.name for l in model.layers]
    assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]
    assert not np.allclose(clone.get_layer("h").get_weights()[0], model.get_layer("h").get_weights()[0])
    clone.set_weights(model.get_weights())
    data = np.random.rand(2, 3).astype("float32")
    np.testing.assert_allclose(clone.predict(data, verbose=0), model.predict(data, verbose=0), rtol=1e-6)


def test_functional_subclass_keeps_its_class():
    class MyModel(keras.Model):
        def __init__(self):
            inputs = keras.Input(shape=(3,))
            super().__init__(inputs, layers.Dense(2)(inputs), name="mine")

        def double(self, x):
            return 2 * self.predict(x, verbose=0)
    m = MyModel()
    assert isinstance(m, keras.Functional) and isinstance(m, MyModel)
    x = np.ones((1, 3), "float32")
    np.testing.assert_allclose(m.double(x), 2 * m.predict(x, verbose=0))


class AddsLoss(layers.Layer):
    """Identity that adds rate * mean(x**2) to the training loss and scales by 2 when training."""

    def __init__(self, rate=0.5, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate

    def call(self, inputs, training=None):
        self.add_loss(self.rate * ops.mean(inputs ** 2))
        return inputs * 2.0 if training else inputs

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


def test_custom_layer_add_loss_and_training_flag():
    x = keras.Input(shape=(2,))
    out = AddsLoss(rate=0.5)(x)
    model = keras.Model(x, out)
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    data = np.array([[1.0, 2.0], [3.0, 4.0]], "float32")
    target = np.zeros_like(data)
    loss = model.train_on_batch(data, target)
    # training=True: output 2x -> mse = mean((2x)^2) = 30; add_loss = 0.5 * mean(x^2) = 3.75
    assert loss == pytest.approx(30.0 + 3.75, rel=1e-6)
    assert model.evaluate(data, target, verbose=0) == pytest.approx(7.5 + 3.75, rel=1e-6)
    np.testing.assert_allclose(model.predict(data, verbose=0), data)


class MaskedMean(layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.mean(inputs, axis=1)
        m = ops.cast(mask, "float32")[..., None]
        return ops.sum(inputs * m, axis=1) / ops.maximum(ops.sum(m, axis=1), 1.0)

    def compute_mask(self, inputs, previous_mask):
        return None


def test_custom_layer_receives_the_embedding_mask():
    ids = keras.Input(shape=(None,), dtype="int32")
    emb = layers.Embedding(10, 3, mask_zero=True, name="emb")
    model = keras.Model(ids, MaskedMean()(emb(ids)))
    x = np.array([[1, 2, 0, 0], [3, 0, 0, 0]], "int32")
    table = emb.get_weights()[0]
    expected = np.stack([table[[1, 2]].mean(0), table[[3]].mean(0)])
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)
