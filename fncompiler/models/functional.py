"""`Functional`: a model defined by a graph of layer calls from `Input`s to outputs."""
import jax

from ..layers.input_layer import InputLayer
from ..layers.layer import Layer, eval_spec
from ..saving import serialization
from ..symbolic import SymbolicTensor, is_symbolic
from . import graph_order
from . import model as model_lib
from .model import Model


class GraphError(ValueError):
    """The tensors given to Model(...) do not form a valid graph."""


def _flatten_struct(struct, what):
    leaves = jax.tree_util.tree_leaves(struct)
    for i, t in enumerate(leaves):
        if not is_symbolic(t):
            raise TypeError(f"All model {what} must be symbolic tensors created with fncompiler.Input(...) or by "
                            f"calling layers on them; {what[:-1]} {i} is {type(t).__name__}: {t!r}.")
    if not leaves:
        raise GraphError(f"Model(...) needs at least one of {what}; received {struct!r}.")
    return leaves


class Functional(Model):
    """A model whose forward pass is the recorded graph of layer calls."""

    def __init__(self, inputs, outputs, name=None, trainable=True, **kwargs):
        Model.__init__(self, name=name, trainable=trainable, **kwargs)
        if isinstance(inputs, dict):
            for key, t in inputs.items():
                if is_symbolic(t) and t.node is not None and t.node.layer.name != key:
                    pass  # Keras allows dict keys that differ from input names; keys win for feeding
        self._inputs_struct = inputs
        self._outputs_struct = outputs
        self._input_tensors = _flatten_struct(inputs, "inputs")
        self._output_tensors = _flatten_struct(outputs, "outputs")
        self._nodes = self._collect_nodes()
        layers = graph_order.operation_order(self._input_tensors, self._output_tensors)
        names = {}
        for layer in layers:
            if layer.name in names and names[layer.name] is not layer:
                raise GraphError(f"The name {layer.name!r} is used by 2 different layers in the model. All layer names "
                                 "should be unique: pass name=... to one of them.")
            names[layer.name] = layer
        object.__setattr__(self, "_layers", layers)
        self.built = True
        self._graph_cache = None
        from . import host_prefix
        self._host_prefix = host_prefix.split(self)   # preprocessing run in NumPy before the step (or None)

    # -- graph -------------------------------------------------------------------------------------
    def _collect_nodes(self):
        input_ids = {id(t) for t in self.inputs}
        if len(input_ids) != len(self.inputs):
            raise GraphError("The same tensor is given twice in the model inputs.")
        nodes = {}
        for t in self.inputs:
            if t.node is None:
                raise GraphError(f"Model input {t!r} has no history: create inputs with fncompiler.Input(...).")
            nodes[t.node.id] = t.node if t.node.is_input else None
        stack = list(self.outputs)
        seen = set()
        while stack:
            t = stack.pop()
            if id(t) in seen or id(t) in input_ids:
                continue
            seen.add(id(t))
            node = t.node
            if node is None:
                raise GraphError(f"Model output {t!r} has no history: it was not produced by a layer.")
            if node.is_input:
                raise GraphError(
                    f"Output tensors of the model are not connected to its inputs: they depend on the Input "
                    f"{node.layer.name!r} (shape {node.layer.batch_shape}), which is not in `inputs`. Add it to "
                    f"`inputs` (given: {[i.node.layer.name for i in self.inputs]}).")
            nodes[node.id] = node
            stack.extend(node.input_tensors)
        # Inputs that are not InputLayer outputs stand for themselves: their producing node is not ours.
        for t in self.inputs:
            if not t.node.is_input:
                nodes.pop(t.node.id, None)
        return [nodes[k] for k in sorted(nodes) if nodes[k] is not None]

    @property
    def graph(self):
        """The model's IR: a networkx.MultiDiGraph of layer calls (see fncompiler.ir)."""
        from . import to_ir
        if self._graph_cache is None:
            self._graph_cache = to_ir.functional_graph(self)
        return self._graph_cache

    @property
    def operations(self):
        """Every layer of the graph in Keras's order, including the ops applied to symbolic tensors (`x + y`,
        `ops.abs(x)`): what `summary()` lists."""
        return list(self._layers)

    @property
    def layers(self):
        """The model's layers in Keras 3's order (see fncompiler.models.graph_order); as in Keras, the ops
        applied to symbolic tensors are not layers here (they are in `operations`)."""
        from ..ops.op_layer import OpLayer
        return [layer for layer in self._layers if not isinstance(layer, OpLayer)]

    @property
    def inputs(self):
        return list(self._input_tensors)

    @property
    def outputs(self):
        return list(self._output_tensors)

    @property
    def input(self):
        return self._inputs_struct

    @property
    def output(self):
        return self._outputs_struct

    @property
    def input_names(self):
        return [t.node.layer.name if t.node.is_input else (t.name or f"input_{i}") for i, t in enumerate(self.inputs)]

    @property
    def output_names(self):
        if isinstance(self._outputs_struct, dict):
            return sorted(self._outputs_struct)
        return [t.node.layer.name for t in self.outputs]

    @property
    def input_shape(self):
        shapes = [t.shape for t in self.inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self):
        shapes = [t.shape for t in self.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    # -- calling -----------------------------------------------------------------------------------
    def flatten_inputs(self, inputs):
        """Map user inputs (one array, a list, or a dict keyed by input name) to the flat input order."""
        n = len(self.inputs)
        if isinstance(inputs, dict):
            keys = (list(self._inputs_struct) if isinstance(self._inputs_struct, dict) else self.input_names)
            missing = [k for k in keys if k not in inputs]
            if missing:
                raise ValueError(f"Model {self.name!r}: missing input(s) {missing} in the dict given; expected keys "
                                 f"{keys}, received {sorted(inputs)}.")
            if isinstance(self._inputs_struct, dict):
                return jax.tree_util.tree_leaves({k: inputs[k] for k in self._inputs_struct})
            return [inputs[k] for k in keys]
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != n:
                raise ValueError(f"Model {self.name!r} expects {n} input(s) {self.input_names}, but received "
                                 f"{len(inputs)}.")
            return list(inputs)
        if n != 1:
            raise ValueError(f"Model {self.name!r} expects {n} inputs {self.input_names}, but received a single "
                             "array. Pass a list or a dict keyed by input name.")
        return [inputs]

    def pack_outputs(self, flat):
        treedef = jax.tree_util.tree_structure(self._outputs_struct)
        return jax.tree_util.tree_unflatten(treedef, list(flat))

    def call(self, inputs, training=None, mask=None):
        from ..runtime import interpreter
        from fncompiler.runtime.data import adjust_input_rank     # (models -> runtime, never back)
        flat = [adjust_input_rank(x, t.shape) for x, t in zip(self.flatten_inputs(inputs), self.inputs)]
        if self._host_prefix is not None:
            flat = self._host_prefix.run(flat)
        outputs = interpreter.execute(self.graph, flat, training=training)
        return self.pack_outputs(outputs)

    def _maybe_build(self, args, kwargs):
        self.built = True

    def compute_output_spec(self, inputs, training=None, mask=None):
        flat = self.flatten_inputs(inputs)
        if all(is_symbolic(x) and x.shape == t.shape and x.dtype == t.dtype for x, t in zip(flat, self.inputs)):
            return self.pack_outputs([SymbolicTensor(t.shape, t.dtype) for t in self.outputs])
        return eval_spec(lambda x: self._concrete_call((x,), {"training": training}), (inputs,), {},
                         f"Model {self.name!r}")

    def _check_inputs(self, args, model_name=None):
        if not args:
            return
        from fncompiler.runtime.data import adjust_input_rank
        flat = self.flatten_inputs(args[0])
        for i, (x, t) in enumerate(zip(flat, self.inputs)):
            shape = tuple(getattr(adjust_input_rank(x, t.shape), "shape", ()))
            if len(shape) != len(t.shape) or any(a is not None and b is not None and a != b
                                                 for a, b in zip(shape, t.shape)):
                raise ValueError(f'Input {i} ("{self.input_names[i]}") of model "{model_name or self.name}" is '
                                 f'incompatible: '
                                 f"expected shape {t.shape}, received shape {shape}.")

    # -- config ------------------------------------------------------------------------------------
    def get_config(self):
        from . import functional_config
        return functional_config.serialize_functional(self)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from . import functional_config
        # a subclass whose __init__ takes other arguments is rebuilt as a plain Functional (as Keras does)
        target = cls if cls.__init__ is Functional.__init__ else Functional
        return functional_config.deserialize_functional(config, target, custom_objects=custom_objects)


model_lib.register_functional_class(Functional)
serialization.register_model_class("Functional", Functional)
