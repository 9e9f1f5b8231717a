"""ResNet50, MobileNetV2, EfficientNetB0 and DenseNet121 with weights=None: layer count, parameter counts,
output shapes, the class of every layer in `model.layers` order and every weighted layer's name and weight
shapes in order, compared with digests recorded from Keras 3.15.1 (small inputs, symbolic builds: nothing is
compiled in the fast tests)."""
import hashlib
import json
import re

import numpy as np
import pytest

import fncompiler as keras
from fncompiler import applications as A

# Keras 3.15.1, jax backend: fn(weights=None, include_top=top, input_shape=(size, size, 3), classes=10 if top else
# 1000). Digests: sha256 of the JSON list of layer class names in model.layers order, and of
# [[layer name, [weight shapes]]] for the layers with weights (auto-generated names reduced to the class's
# snake-case name, e.g. "normalization_1" -> "normalization").
KERAS = {
    ("ResNet50", True): dict(layers=177, params=23608202, trainable=23555082, output=(None, 10),
                             classes="c4fd7a6e013e74c4", weighted="19c78537aca682c6", n_weights=320),
    ("ResNet50", False): dict(layers=175, params=23587712, trainable=23534592, output=(None, 2, 2, 2048),
                              classes="4b47b5946578c37a", weighted="9aaa02e9a302f392", n_weights=318),
    ("MobileNetV2", True): dict(layers=156, params=2270794, trainable=2236682, output=(None, 10),
                                classes="f7d98adb27794903", weighted="f476caaef7b8efde", n_weights=262),
    ("MobileNetV2", False): dict(layers=154, params=2257984, trainable=2223872, output=(None, 3, 3, 1280),
                                 classes="c3ac95cfd00020ca", weighted="fb1c70e0ef233936", n_weights=260),
    ("EfficientNetB0", True): dict(layers=240, params=4062381, trainable=4020358, output=(None, 10),
                                   classes="596638ec13787393", weighted="e27cfe99159100a1", n_weights=314),
    ("EfficientNetB0", False): dict(layers=237, params=4049571, trainable=4007548, output=(None, 2, 2, 1280),
                                    classes="4b6fe9442e7c3638", weighted="d9a14d5b9b16ce13", n_weights=312),
    ("DenseNet121", True): dict(layers=429, params=7047754, trainable=6964106, output=(None, 10),
                                classes="135ab488f40b61b8", weighted="98ad4ad2803f3cbc", n_weights=606),
    ("DenseNet121", False): dict(layers=427, params=7037504, trainable=6953856, output=(None, 2, 2, 1024),
                                 classes="1e6947ed823e4a56", weighted="876cd14272cd5d01", n_weights=604),
}
SIZE = {"ResNet50": 64, "MobileNetV2": 96, "EfficientNetB0": 64, "DenseNet121": 64}
# keras.io/api/applications: parameters at the default 224x224 input with the ImageNet top
KERAS_224_PARAMS = {"ResNet50": 25636712, "MobileNetV2": 3538984, "EfficientNetB0": 5330571,
                    "DenseNet121": 8062504}


def _digest(items):
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:16]


def _snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _class_name(layer):
    return type(layer).__name__


def _layer_name(layer):
    base = _snake(_class_name(layer))
    return base if re.fullmatch(re.escape(base) + r"(_\d+)?", layer.name) else layer.name


def structure(model):
    weighted = [[_layer_name(l), [list(w.shape) for w in l.weights]] for l in model.layers if l.weights]
    return dict(layers=len(model.layers), params=model.count_params(),
                trainable=int(sum(np.prod(w.shape) for w in model.trainable_weights)), output=model.output.shape,
                classes=_digest([_class_name(l) for l in model.layers]), weighted=_digest(weighted),
                n_weights=len(model.weights))


@pytest.mark.parametrize("name,include_top", sorted(KERAS))
def test_application_structure_matches_keras(name, include_top):
    size = SIZE[name]
    model = getattr(A, name)(weights=None, include_top=include_top, input_shape=(size, size, 3),
                             classes=10 if include_top else 1000)
    assert structure(model) == KERAS[(name, include_top)]


@pytest.mark.parametrize("name", sorted(KERAS_224_PARAMS))
def test_application_default_input_parameter_count(name):
    model = getattr(A, name)(weights=None)
    assert model.input.shape == (None, 224, 224, 3) and model.output.shape == (None, 1000)
    assert model.count_params() == KERAS_224_PARAMS[name]
    assert model.name == {"MobileNetV2": "mobilenetv2_1.00_224"}.get(name, name.lower())


@pytest.mark.parametrize("name", sorted(KERAS_224_PARAMS))
def test_application_pooling_unknown_size_and_errors(name):
    fn = getattr(A, name)
    for pooling, width in (("avg", None), ("max", None)):
        model = fn(weights=None, include_top=False, pooling=pooling)
        assert model.input.shape == (None, None, None, 3) and model.output.shape[0] == width
        assert len(model.output.shape) == 2
    with pytest.raises(ValueError, match="never downloads anything"):
        fn(weights="imagenet")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fn(weights="/nonexistent/weights.file")
    with pytest.raises(ValueError, match="at least 32x32"):
        fn(weights=None, include_top=False, input_shape=(16, 16, 3))
    with pytest.raises(ValueError, match="pooling must be"):
        fn(weights=None, include_top=False, pooling="mean")


def test_application_input_tensor_and_mobilenet_alpha():
    inp = keras.Input((96, 96, 3))
    model = A.MobileNetV2(weights=None, include_top=False, input_tensor=inp, alpha=0.35, pooling="avg")
    assert model.input is inp and model.output.shape == (None, 1280) and model.name == "mobilenetv2_0.35_96"
    assert model.get_layer("Conv1").kernel.shape == (3, 3, 3, 16)


@pytest.mark.slow
def test_applications_predict_and_local_weights_file(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(2, 64, 64, 3)).astype("float32")
    for fn in (A.ResNet50, A.EfficientNetB0, A.DenseNet121):
        model = fn(weights=None, input_shape=(64, 64, 3), classes=5)
        p = model.predict(x, verbose=0)
        assert p.shape == (2, 5) and np.allclose(p.sum(-1), 1, atol=1e-5)
    small = A.MobileNetV2(weights=None, include_top=False, input_shape=(96, 96, 3), alpha=0.35, pooling="avg")
    path = str(tmp_path / "mobilenet.weights.msgpack")
    small.save_weights(path)
    again = A.MobileNetV2(weights=path, include_top=False, input_shape=(96, 96, 3), alpha=0.35, pooling="avg")
    xm = rng.uniform(-1, 1, size=(2, 96, 96, 3)).astype("float32")
    np.testing.assert_array_equal(again.predict(xm, verbose=0), small.predict(xm, verbose=0))
