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


# ----------------------------------------------------------------------------- losses given as functions
def _loss_data():
    x = np.sin(np.arange(40, dtype="float32")).reshape(8, 5)
    y = (np.cos(np.arange(8, dtype="float32") * 1.7) > 0).astype("float32").reshape(8, 1)
    sw = np.linspace(0.5, 2.0, 8).astype("float32")
    k = (np.cos(np.arange(5, dtype="float32") * 0.9).reshape(5, 1)) * 0.5
    return x, y, sw, [k, np.array([0.1], "float32")]


def my_loss(y_true, y_pred):
    return keras.ops.mean(keras.ops.abs(y_true - y_pred) ** 3, axis=-1)


# Keras 3.15.1: evaluate (plain, with sample_weight) and train_on_batch of Dense(1, sigmoid) on _loss_data()
KERAS_FN_LOSSES = {
    "bce_fn": (0.49815231561660767, 0.7156363725662231, 0.49815231561660767),
    "mse_fn": (0.16162742674350739, 0.24644118547439575, 0.16162742674350739),
    "my_loss": (0.08677427470684052, 0.1445731818675995, 0.08677427470684052),
}


@pytest.mark.parametrize("key", sorted(KERAS_FN_LOSSES))
def test_plain_function_loss_in_compile_fit_evaluate(key):
    loss = {"bce_fn": keras.losses.binary_crossentropy, "mse_fn": keras.losses.mean_squared_error,
            "my_loss": my_loss}[key]
    x, y, sw, weights = _loss_data()
    inp = keras.Input((5,))
    model = keras.Model(inp, layers.Dense(1, activation="sigmoid")(inp))
    model.set_weights(weights)
    model.compile(optimizer="sgd", loss=loss)
    plain, weighted, train = KERAS_FN_LOSSES[key]
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), plain, rtol=1e-5)
    np.testing.assert_allclose(model.evaluate(x, y, sample_weight=sw, verbose=0), weighted, rtol=1e-5)
    np.testing.assert_allclose(float(model.train_on_batch(x, y)), train, rtol=1e-5)
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


def test_as_loss_wraps_functions_as_keras():
    wrapped = keras.losses.as_loss(my_loss)
    assert isinstance(wrapped, keras.losses.LossFunctionWrapper)
    assert wrapped.name == "my_loss" and wrapped.reduction == "sum_over_batch_size"
    assert isinstance(keras.losses.as_loss(keras.losses.binary_crossentropy), keras.losses.BinaryCrossentropy)
    assert keras.losses.as_loss(lambda a, b: (a - b) ** 2).name == "lambda"


def test_a_failing_loss_is_named_in_the_error():
    def bad_loss(y_true, y_pred):
        raise ValueError("shapes do not fit")
    inp = keras.Input((5,))
    model = keras.Model(inp, layers.Dense(1, name="out")(inp))
    model.compile(optimizer="sgd", loss=bad_loss)
    x, y, _, _ = _loss_data()
    with pytest.raises(ValueError, match=r"loss 'bad_loss' of output 'out'.*shapes do not fit"):
        model.evaluate(x, y, verbose=0)


LOGITS = np.sin(np.arange(12, dtype="float32") * 0.8).reshape(4, 3) * 3
ONE_HOT = np.eye(3, dtype="float32")[[0, 2, 1, 2]]
IDS = np.array([0, 2, 1, 2])


def test_loss_functions_take_keras_keyword_arguments():
    L = keras.losses
    np.testing.assert_allclose(L.binary_crossentropy(ONE_HOT, LOGITS, from_logits=True, label_smoothing=0.1, axis=-1),
                               [1.9150044918060303, 1.6407417058944702, 1.0011866092681885, 1.8224797248840332],
                               rtol=1e-5)
    np.testing.assert_allclose(
        L.categorical_crossentropy(ONE_HOT, LOGITS, from_logits=True, label_smoothing=0.2, axis=-1),
        [3.046497344970703, 3.987771987915039, 2.299290657043457, 1.707578182220459], rtol=1e-5)
    np.testing.assert_allclose(L.sparse_categorical_crossentropy(IDS, LOGITS, from_logits=True, axis=-1),
                               [3.389883279800415, 4.413910865783691, 2.3758742809295654, 1.830216646194458],
                               rtol=1e-5)
    np.testing.assert_allclose(
        float(L.BinaryCrossentropy(from_logits=True)(ONE_HOT, LOGITS, sample_weight=np.array([1., 0., 2., .5]))),
        1.2298954725265503, rtol=1e-5)
    scce = L.SparseCategoricalCrossentropy(from_logits=True, axis=-1)
    np.testing.assert_allclose(float(scce(IDS, LOGITS)), 3.0024712085723877, rtol=1e-5)
    assert type(scce).from_config(scce.get_config()).axis == -1


# ----------------------------------------------------------------------------- rank-1 inputs
# Keras 3.15.1: Dense(1) (kernel 2, bias 0.5) on an Input((1,)) fed x = arange(6) * 0.5 of shape (6,)
KERAS_RANK1 = {"predict_shape": (6, 1), "predict": [0.5, 1.5, 2.5, 3.5, 4.5, 5.5], "evaluate": 13.934197425842285,
               "call_shape": (6, 1), "kernel_after_fit": 1.8884029388427734, "squeeze_shape": (6, 1)}


@pytest.mark.parametrize("kind", ["functional", "sequential"])
def test_rank1_data_is_expanded_for_an_input_of_shape_1(kind):
    x = np.arange(6, dtype="float32") * 0.5
    y = np.cos(np.arange(6, dtype="float32"))
    if kind == "functional":
        inp = keras.Input((1,))
        model = keras.Model(inp, layers.Dense(1)(inp))
    else:
        model = keras.Sequential([keras.Input((1,)), layers.Dense(1)])
    model.set_weights([np.array([[2.0]], "float32"), np.array([0.5], "float32")])
    model.compile(optimizer="sgd", loss="mse")
    pred = model.predict(x, verbose=0)
    assert pred.shape == KERAS_RANK1["predict_shape"]
    np.testing.assert_allclose(pred.ravel(), KERAS_RANK1["predict"], rtol=1e-6)
    assert np.asarray(model(x)).shape == KERAS_RANK1["call_shape"]
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), KERAS_RANK1["evaluate"], rtol=1e-5)
    model.fit(x, y, epochs=1, batch_size=6, verbose=0, shuffle=False)
    np.testing.assert_allclose(model.get_weights()[0][0, 0], KERAS_RANK1["kernel_after_fit"], rtol=1e-5)
    assert model.predict(x[:, None, None], verbose=0).shape == KERAS_RANK1["squeeze_shape"]   # (n,1,1) squeezed


def test_sequential_shape_error_reports_the_data_shape():
    model = keras.Sequential([keras.Input((3,)), layers.Dense(1)], name="seq3")
    x = np.zeros((10,), "float32")
    with pytest.raises(ValueError, match=r'model "seq3".*\(None, 3\).*received \(10,\)'):
        model.predict(x, verbose=0)
    with pytest.raises(ValueError, match=r'model "seq3".*\(None, 3\).*received shape \(10,\)'):
        model(x)


# ----------------------------------------------------------------------------- missing names
@pytest.mark.parametrize("module, name", [
    ("layers", "MelSpectrogram"), ("layers", "AugMix"), ("ops", "ctc_loss"), ("ops.image", "gaussian_blur"),
    ("losses", "Dice"), ("metrics", "F1Score"), ("callbacks", "OrbaxCheckpoint"), ("utils", "FeatureSpace"),
    ("optimizers", "Ftrl"), ("applications", "NASNetLarge")])
def test_a_keras_name_we_lack_says_so(module, name):
    import importlib
    mod = importlib.import_module(f"fncompiler.{module}")
    with pytest.raises(AttributeError) as info:
        getattr(mod, name)
    message = str(info.value)
    assert message.startswith(f"fncompiler does not implement {module}.{name} yet")
    assert info.value.name is None and info.value.obj is None     # Python adds no suggestion of its own
    assert not hasattr(mod, name)


def test_top_level_keras_name_we_lack_says_so_and_typos_suggest():
    with pytest.raises(AttributeError) as info:
        keras.mixed_precision
    assert str(info.value).startswith("fncompiler does not implement mixed_precision yet (Keras 3 has "
                                      "keras.mixed_precision)")
    assert info.value.name is None and info.value.obj is None
    with pytest.raises(AttributeError, match=r"module 'fncompiler' has no attribute 'Modle' \(nor has keras\)\. "
                                             r"Did you mean: 'Model'"):
        keras.Modle
    with pytest.raises(AttributeError, match="no attribute '__wrapped__'"):
        keras.__wrapped__


def test_a_typo_suggests_public_names_only():
    with pytest.raises(AttributeError, match=r"no attribute 'Dnese' \(nor has keras.layers\)\. Did you mean: 'Dense'"):
        keras.layers.Dnese
    with pytest.raises(AttributeError) as info:
        keras.layers.normalizatio        # close to the private submodule 'normalization': not suggested
    assert "normalization" not in str(info.value)
    import traceback
    last_line = traceback.format_exception(info.value)[-1]   # what Python prints, suggestions included
    assert "'normalization'" not in last_line and last_line.count("Did you mean") == 1


def test_existing_names_and_dunders_unaffected():
    assert keras.layers.Dense.__name__ == "Dense"
    assert keras.ops.image.resize is not None and keras.optimizers.schedules is not None
    with pytest.raises(AttributeError):
        keras.layers.__wrapped__
    assert getattr(keras.losses, "NoSuchLoss", None) is None
