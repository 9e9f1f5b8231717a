"""compile() arguments that used to do nothing: each works as in Keras or raises an error naming it."""
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import layers


def _model(dtype=None, name=None):
    inp = keras.Input((3,))
    return keras.Model(inp, layers.Dense(1, kernel_initializer="ones", dtype=dtype)(inp), name=name)


def _data():
    rng = np.random.default_rng(0)
    return (rng.random((8, 3), dtype=np.float32), rng.random((8, 1), dtype=np.float32),
            np.arange(8, dtype=np.float32))


def test_weighted_metrics_use_the_sample_weights_and_metrics_do_not():
    model = _model()
    model.compile("sgd", "mse", metrics=["mae"], weighted_metrics=["mae"])
    x, y, w = _data()
    logs = model.evaluate(x, y, sample_weight=w, return_dict=True, verbose=0)
    err = np.abs(x.sum(1, keepdims=True) - y)[:, 0]          # kernel of ones, bias 0
    assert sorted(logs) == ["loss", "mae", "weighted_mae"]    # Keras's names for a metric given in both
    np.testing.assert_allclose(logs["mae"], err.mean(), rtol=1e-5)
    np.testing.assert_allclose(logs["weighted_mae"], (err * w).sum() / w.sum(), rtol=1e-5)


def test_weighted_metrics_alone_keep_their_name_and_round_trip_the_config():
    model = _model()
    model.compile("sgd", "mse", weighted_metrics=["mae"])
    config = model.get_compile_config()
    assert config["weighted_metrics"] == ["mae"] and "auto_scale_loss" not in config
    other = _model()
    other.compile_from_config(config)
    x, y, w = _data()
    logs = other.evaluate(x, y, sample_weight=w, return_dict=True, verbose=0)
    err = np.abs(x.sum(1, keepdims=True) - y)[:, 0]
    np.testing.assert_allclose(logs["mae"], (err * w).sum() / w.sum(), rtol=1e-5)


def test_weighted_metrics_must_be_a_list_or_dict():
    with pytest.raises(TypeError, match="weighted_metrics"):
        _model().compile("sgd", "mse", weighted_metrics="mae")


def test_jit_compile_false_runs_the_eager_interpreter_with_the_same_values():
    x, y, _ = _data()
    eager, jitted = _model(), _model()
    eager.compile("sgd", "mse", jit_compile=False)
    jitted.compile("sgd", "mse")
    np.testing.assert_allclose(eager.evaluate(x, y, verbose=0), jitted.evaluate(x, y, verbose=0), rtol=1e-6)
    assert eager._get_trainer().compiled.mode == "eager" and jitted._get_trainer().compiled.mode == "jit"
    assert eager.get_compile_config()["jit_compile"] is False


@pytest.mark.parametrize("kwargs, match", [({"jit_compile": "yes"}, "jit_compile must be"),
                                           ({"jit_compile": True, "run_eagerly": True}, "jit_compile=True")])
def test_jit_compile_errors_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _model().compile("sgd", "mse", **kwargs)


def test_auto_scale_loss_on_a_float16_model_raises_and_false_compiles():
    from fncompiler.layers import layer as layer_lib
    layer_lib.set_dtype_policy("mixed_float16")
    try:
        model = _model(name="half")          # the model takes the global policy, as in Keras
    finally:
        layer_lib.set_dtype_policy("float32")
    assert model.dtype_policy == "mixed_float16"
    with pytest.raises(ValueError, match="auto_scale_loss=False"):
        model.compile("sgd", "mse")
    model.compile("sgd", "mse", auto_scale_loss=False)
    assert model.get_compile_config()["auto_scale_loss"] is False
    with pytest.raises(TypeError, match="auto_scale_loss"):
        _model().compile("sgd", "mse", auto_scale_loss="yes")
    _model().compile("sgd", "mse", auto_scale_loss=True)   # float32: Keras scales nothing either


def test_unknown_pass_option_raises_naming_the_key_and_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['scan_block'\].*'scan_blocks'"):
        keras.compile_model(_model(), pass_options={"scan_block": "always"})
    keras.compile_model(_model(), pass_options={"scan_blocks": "always", "remat_policy": "dots_saveable"})
