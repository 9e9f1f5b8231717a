"""Initializers, regularizers and constraints: Keras defaults and math, by name and as objects."""
import math

import numpy as np
import pytest

import fncompiler as keras
from fncompiler import constraints, initializers, layers, regularizers


@pytest.mark.parametrize("name,expected_std", [
    ("glorot_uniform", math.sqrt(2.0 / (200 + 300))), ("glorot_normal", math.sqrt(2.0 / (200 + 300))),
    ("he_uniform", math.sqrt(2.0 / 200)), ("he_normal", math.sqrt(2.0 / 200)),
    ("lecun_uniform", math.sqrt(1.0 / 200)), ("lecun_normal", math.sqrt(1.0 / 200))])
def test_variance_scaling_family_has_keras_variance(name, expected_std):
    w = np.asarray(initializers.get(name)((200, 300)))
    assert w.shape == (200, 300) and w.dtype == np.float32
    assert abs(w.mean()) < 0.01 * expected_std * 10
    assert w.std() == pytest.approx(expected_std, rel=0.03)
    if name.endswith("uniform"):
        assert np.abs(w).max() <= math.sqrt(3) * expected_std + 1e-6
    else:   # truncated at two standard deviations of the underlying normal
        assert np.abs(w).max() <= 2 * expected_std / 0.87962566103423978 + 1e-6


def test_conv_kernel_fans_include_the_receptive_field():
    assert initializers.compute_fans((3, 3, 16, 32)) == (144, 288)
    w = np.asarray(initializers.GlorotUniform(seed=1)((3, 3, 16, 32)))
    assert np.abs(w).max() <= math.sqrt(6 / (144 + 288)) + 1e-7


def test_seeded_initializers_repeat_and_simple_ones():
    a = np.asarray(initializers.RandomNormal(stddev=0.5, seed=3)((100, 100)))
    b = np.asarray(initializers.RandomNormal(stddev=0.5, seed=3)((100, 100)))
    np.testing.assert_array_equal(a, b)
    assert a.std() == pytest.approx(0.5, rel=0.03)
    np.testing.assert_array_equal(np.asarray(initializers.get("zeros")((2, 2))), np.zeros((2, 2)))
    np.testing.assert_array_equal(np.asarray(initializers.Constant(3.0)((2,))), [3.0, 3.0])
    q = np.asarray(initializers.Orthogonal(seed=0)((6, 4)))
    np.testing.assert_allclose(q.T @ q, np.eye(4), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(initializers.get("identity")((2, 3))), np.eye(2, 3))
    with pytest.raises(ValueError, match="Unknown initializer 'glorot'"):
        initializers.get("glorot")


def test_dense_defaults_are_glorot_uniform_kernel_and_zero_bias():
    layer = layers.Dense(300)
    layer.build((None, 200))
    kernel, bias = layer.get_weights()
    assert np.abs(kernel).max() <= math.sqrt(6 / 500) + 1e-7 and kernel.std() > 0.03
    np.testing.assert_array_equal(bias, np.zeros(300))
    assert layer.get_config()["kernel_initializer"] == {"class_name": "GlorotUniform", "config": {"seed": None}}


def test_regularizers_match_numpy_and_add_to_the_training_loss():
    w = np.random.default_rng(0).standard_normal((4, 3)).astype("float32")
    assert float(regularizers.L1(0.1)(w)) == pytest.approx(0.1 * np.abs(w).sum(), rel=1e-6)
    assert float(regularizers.L2(0.2)(w)) == pytest.approx(0.2 * np.square(w).sum(), rel=1e-6)
    assert float(regularizers.L1L2(0.1, 0.2)(w)) == pytest.approx(0.1 * np.abs(w).sum() + 0.2 * (w ** 2).sum(),
                                                                   rel=1e-6)
    assert regularizers.get("l2").l2 == 0.01
    x = keras.Input(shape=(4,))
    model = keras.Model(x, layers.Dense(3, kernel_regularizer="l2", use_bias=False, name="d")(x))
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    data = np.ones((2, 4), "float32")
    kernel = model.get_layer("d").get_weights()[0]
    expected = np.mean((data @ kernel) ** 2) + 0.01 * np.square(kernel).sum()
    assert model.train_on_batch(data, np.zeros((2, 3), "float32")) == pytest.approx(expected, rel=1e-5)


def test_constraints_apply_after_each_update():
    w = np.array([[3.0, -1.0], [4.0, 0.5]], "float32")
    np.testing.assert_allclose(np.asarray(constraints.NonNeg()(w)), [[3.0, 0.0], [4.0, 0.5]])
    norms = np.sqrt((w ** 2).sum(0, keepdims=True))
    np.testing.assert_allclose(np.asarray(constraints.MaxNorm(2.0)(w)), w * np.minimum(norms, 2.0) / (norms + 1e-7),
                               rtol=1e-6)
    np.testing.assert_allclose(np.asarray(constraints.UnitNorm()(w)), w / (norms + 1e-7), rtol=1e-6)
    x = keras.Input(shape=(2,))
    model = keras.Model(x, layers.Dense(2, kernel_constraint="non_neg", name="d")(x))
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    model.train_on_batch(np.ones((4, 2), "float32"), np.full((4, 2), -10.0, "float32"))
    assert (model.get_layer("d").get_weights()[0] >= 0).all()


def test_vgg16_without_top_and_no_downloads():
    model = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3), pooling="avg")
    assert model.count_params() == 14714688 and model.output.shape == (None, 512)
    assert [l.name for l in model.layers][:3] == ["input_layer", "block1_conv1", "block1_conv2"]
    with pytest.raises(ValueError, match="never downloads"):
        keras.applications.VGG19(weights="imagenet")


def test_multi_output_logs_name_each_output_loss():
    a = keras.Input(shape=(3,), name="a")
    h = layers.Dense(4)(a)
    model = keras.Model(a, {"priority": layers.Dense(1, name="priority")(h),
                            "department": layers.Dense(2, name="department")(h)})
    model.compile(optimizer="rmsprop", loss={"priority": "mse", "department": "mse"},
                  loss_weights={"priority": 1.0, "department": 0.2}, metrics={"department": ["mae"]})
    x = np.random.rand(16, 3).astype("float32")
    y = {"priority": np.random.rand(16, 1).astype("float32"), "department": np.random.rand(16, 2).astype("float32")}
    history = model.fit(x, y, epochs=1, verbose=0, shuffle=False)
    assert set(history.history) == {"loss", "priority_loss", "department_loss", "department_mae"}
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(logs["priority_loss"] + 0.2 * logs["department_loss"], rel=1e-5)
