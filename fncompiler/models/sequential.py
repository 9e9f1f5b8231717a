"""`Sequential`: a plain stack of layers, built as a functional graph once its input shape is known."""
import jax

from ..layers.input_layer import Input, InputLayer
from ..layers.layer import Layer
from ..saving import serialization
from .functional import Functional
from .model import Model


class Sequential(Model):
    def __init__(self, layers=None, trainable=True, name=None):
        super().__init__(trainable=trainable, name=name)
        self._stack = []
        self._functional = None
        for layer in layers or []:
            self.add(layer, rebuild=False)
        self._maybe_rebuild()

    def add(self, layer, rebuild=True):
        if hasattr(layer, "node") and not isinstance(layer, Layer):  # a symbolic tensor from Input(...)
            layer = layer.node.layer
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a Layer instance; received {type(layer).__name__}: {layer!r}.")
        if isinstance(layer, InputLayer) and self._stack and isinstance(self._stack[0], InputLayer):
            raise ValueError("Sequential model already has an Input; a second one cannot be added.")
        if any(l.name == layer.name for l in self._stack):
            raise ValueError(f"All layers added to a Sequential model should have unique names. Name {layer.name!r} "
                             "is already the name of a layer in this model.")
        self._stack.append(layer)
        if rebuild:
            self._maybe_rebuild()

    def pop(self, rebuild=True):
        if not self._layers_no_input():
            raise TypeError("There are no layers in the model.")
        layer = self._stack.pop()
        self._functional = None
        if rebuild:
            self._maybe_rebuild()
        return layer

    def _layers_no_input(self):
        return [l for l in self._stack if not isinstance(l, InputLayer)]

    def _input_batch_shape(self):
        if self._stack and isinstance(self._stack[0], InputLayer):
            return self._stack[0].batch_shape, self._stack[0].dtype
        if self._stack and getattr(self._stack[0], "_input_shape_arg", None) is not None:
            return self._stack[0]._input_shape_arg, None
        return None, None

    def _maybe_rebuild(self):
        shape, dtype = self._input_batch_shape()
        if shape is None or not self._layers_no_input():
            object.__setattr__(self, "_layers", list(self._stack))
            self._functional = None
            return
        self.build(shape, dtype)

    def build(self, input_shape=None, dtype=None):
        if input_shape is None:
            raise ValueError(f"Sequential model {self.name!r} cannot be built without an input shape: start it with "
                             "fncompiler.Input(shape=...) or call it on data.")
        if self._stack and isinstance(self._stack[0], InputLayer) and self._stack[0].batch_shape == tuple(input_shape):
            inputs = self._stack[0].output
        else:
            inputs = Input(batch_shape=tuple(input_shape), dtype=dtype, name=f"{self.name}_input")
            if self._stack and isinstance(self._stack[0], InputLayer):
                self._stack[0] = inputs.node.layer
            else:
                self._stack.insert(0, inputs.node.layer)
        x = inputs
        for layer in self._layers_no_input():
            x = layer(x)
        self._functional = Functional(inputs, x, name=self.name + "_graph")
        object.__setattr__(self, "_layers", list(self._functional.layers))
        self.built = True

    def _maybe_build(self, args, kwargs):
        if self._functional is None:
            first = args[0]
            self.build((None,) + tuple(first.shape[1:]), getattr(first, "dtype", None))

    def _check_inputs(self, args):
        if self._functional is not None:   # the input it was built for, with Keras's rank adjustment
            self._functional._check_inputs(args, model_name=self.name)

    @property
    def layers(self):
        return self._layers_no_input() if self._functional is None else \
            [l for l in self._functional.layers if not isinstance(l, InputLayer)]

    def call(self, inputs, training=None, mask=None):
        return self._functional.call(inputs, training=training, mask=mask)

    def compute_output_spec(self, inputs, training=None, mask=None):
        return self._functional.compute_output_spec(inputs, training=training)

    @property
    def graph(self):
        return self._functional.graph

    @property
    def inputs(self):
        return self._functional.inputs if self._functional else None

    @property
    def outputs(self):
        return self._functional.outputs if self._functional else None

    @property
    def input(self):
        return self._functional.input

    @property
    def output(self):
        return self._functional.output

    @property
    def input_names(self):
        return self._functional.input_names

    @property
    def output_names(self):
        return self._functional.output_names

    def flatten_inputs(self, inputs):
        return self._functional.flatten_inputs(inputs)

    def pack_outputs(self, flat):
        return self._functional.pack_outputs(flat)

    def get_config(self):
        layers = [serialization.serialize_object(l) for l in self._stack]
        return {"name": self.name, "trainable": self.trainable, "layers": layers}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        layers = [serialization.deserialize_object(c, custom_objects=custom_objects) for c in config["layers"]]
        return cls(layers=layers, name=config.get("name"), trainable=config.get("trainable", True))


serialization.register_model_class("Sequential", Sequential)
