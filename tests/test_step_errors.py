"""An error inside a jitted step names the IR node and the layer; each node runs under jax.named_scope."""
import jax.numpy as jnp
import numpy as np
import pytest

import fncompiler as keras
from fncompiler import layers
from fncompiler.layers.layer import Layer


class WrongProjection(Layer):
    """Declares an output shape, but its call multiplies by a kernel of the wrong size."""

    def compute_output_shape(self, input_shape):
        return input_shape

    def call(self, x):
        return jnp.dot(x, jnp.ones((5, 3)))


def test_shape_error_in_a_custom_layer_names_the_layer_and_keeps_the_cause():
    inp = keras.Input((3,))
    model = keras.Model(inp, WrongProjection(name="wrong_projection")(layers.Dense(3, name="d")(inp)))
    with pytest.raises(TypeError, match=r"Layer 'wrong_projection' \(WrongProjection, IR node 'wrong_projection'") \
            as info:
        model.predict(np.ones((2, 3), np.float32), verbose=0)
    assert "dot_general requires contracting dimensions" in str(info.value)
    assert isinstance(info.value.__cause__, TypeError) and "Layer" not in str(info.value.__cause__)
    assert info.value.fncompiler_node == "wrong_projection"


def test_each_node_is_a_named_scope_in_the_lowered_step():
    inp = keras.Input((4,))
    out = layers.Dense(2, name="head_proj")(layers.Dense(3, activation="relu", name="body_proj")(inp))
    lowered = keras.compile_model(keras.Model(inp, out), passes=["shape_inference"]).lower("predict")
    text = lowered.as_text(debug_info=True)       # op locations carry the name stack
    assert "/body_proj/" in text and "/head_proj/" in text
