import numpy as np
import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory):
    """fit's autotuner remembers decisions under $FNCOMPILER_CACHE_DIR: keep the tests' out of the home dir."""
    import os
    old = os.environ.get("FNCOMPILER_CACHE_DIR")
    os.environ["FNCOMPILER_CACHE_DIR"] = str(tmp_path_factory.mktemp("fncompiler-cache"))
    yield
    if old is None:
        os.environ.pop("FNCOMPILER_CACHE_DIR", None)
    else:
        os.environ["FNCOMPILER_CACHE_DIR"] = old


@pytest.fixture(autouse=True)
def _seed():
    import fncompiler
    fncompiler.utils.set_random_seed(1234)
    yield


@pytest.fixture
def mlp():
    """The guide's first model (784-64-64-10)."""
    import fncompiler as keras
    from fncompiler import layers
    inputs = keras.Input(shape=(784,), name="pixels")
    x = layers.Dense(64, activation="relu", name="d1")(inputs)
    x = layers.Dense(64, activation="relu", name="d2")(x)
    outputs = layers.Dense(10, name="logits")(x)
    return keras.Model(inputs=inputs, outputs=outputs, name="mnist_model")


@pytest.fixture(scope="session")
def digits_flat():
    from fncompiler.datasets import digits
    (x_train, y_train), (x_test, y_test) = digits.load_data()
    return ((x_train.reshape(-1, 64).astype("float32") / 16.0, y_train.astype("int32")),
            (x_test.reshape(-1, 64).astype("float32") / 16.0, y_test.astype("int32")))


def numpy_mlp(model, x):
    """Forward pass of a Dense/relu stack in plain NumPy from the model's weights."""
    h = x
    dense = [l for l in model.layers if type(l).__name__ == "Dense"]
    for i, layer in enumerate(dense):
        w, b = layer.get_weights()
        h = h @ w + b
        if i < len(dense) - 1:
            h = np.maximum(h, 0)
    return h
