"""The host prefix of a model: the preprocessing layers that run in NumPy before the compiled step.

Strings cannot enter a jitted JAX function, so layers that process them (`TextVectorization`, `StringLookup`,
`Hashing`: `runs_on_host = True`) run on the host. In a functional (or Sequential) model, every call of such a
layer whose inputs are model inputs or outputs of other host calls belongs to the host prefix. The compiled
graph (fncompiler.ir.build) then starts at the prefix's boundary: its inputs are the model's non-string inputs
followed by the prefix outputs that the rest of the model (or the model's outputs) reads. fit / evaluate /
predict / model(x) run the prefix on each batch of user data (runtime/data.flatten_x) before the step.

A host layer fed by a device layer, or a device layer fed by string data, is refused when the model is built.
"""
from .. import dtypes


class HostPrefixError(ValueError):
    """A host (NumPy) preprocessing layer is placed where a compiled step would have to run it."""


class HostPrefix:
    def __init__(self, model, nodes, device_inputs):
        self.model = model
        self.nodes = nodes                      # host nodes, in graph order
        self.node_ids = {n.id for n in nodes}
        self.device_inputs = device_inputs      # SymbolicTensors: the compiled graph's inputs

    def run(self, flat):
        """User input arrays (model input order) -> arrays for `device_inputs`, running the host layers."""
        values = {id(t): v for t, v in zip(self.model.inputs, flat)}
        for node in self.nodes:
            from ..symbolic import fill_arguments
            args, kwargs = fill_arguments(node.arguments, [values[id(t)] for t in node.input_tensors])
            out = node.layer(*args, **kwargs)
            outs = out if isinstance(out, (list, tuple)) else [out]
            for t, v in zip(node.output_tensors, outs):
                values[id(t)] = v
        return [values[id(t)] for t in self.device_inputs]


def _is_host_layer(layer):
    return getattr(type(layer), "runs_on_host", False)


def split(model):
    """The HostPrefix of a Functional model, or None when it has no host layers."""
    if not any(_is_host_layer(n.layer) for n in model._nodes) and \
            not any(dtypes.is_string(t.dtype) for t in model.inputs):
        return None
    inputs = model.inputs
    host_tensors = {id(t) for t in inputs}
    host_nodes = []
    for node in model._nodes:
        if not _is_host_layer(node.layer):
            for t in node.input_tensors:
                if dtypes.is_string(t.dtype):
                    raise HostPrefixError(
                        f"Layer {node.layer.name!r} ({type(node.layer).__name__}) reads string data ({t}); only "
                        "host preprocessing layers (TextVectorization, StringLookup, Hashing) take strings. Turn "
                        "the strings into numbers first with one of them.")
            continue
        if not all(id(t) in host_tensors for t in node.input_tensors):
            raise HostPrefixError(
                f"Layer {node.layer.name!r} ({type(node.layer).__name__}) runs on the host (NumPy), before the "
                "compiled step, so it must read model inputs (or other host preprocessing layers) directly; here it "
                "reads the output of a compiled layer. Move it to the start of the model, or apply it to the data "
                "before the model.")
        host_nodes.append(node)
        host_tensors.update(id(t) for t in node.output_tensors)
    consumed = set()
    for node in model._nodes:
        if not _is_host_layer(node.layer):
            consumed.update(id(t) for t in node.input_tensors)
    consumed.update(id(t) for t in model.outputs)
    device_inputs = [t for t in inputs if not dtypes.is_string(t.dtype)]
    seen = {id(t) for t in device_inputs}
    for node in host_nodes:
        for t in node.output_tensors:
            if id(t) in consumed and id(t) not in seen:
                if dtypes.is_string(t.dtype):
                    raise HostPrefixError(
                        f"The output of layer {node.layer.name!r} ({type(node.layer).__name__}) is string data; it "
                        "cannot enter the compiled model (or be one of its outputs). Call the layer on the "
                        "model's predictions outside the model instead.")
                device_inputs.append(t)
                seen.add(id(t))
    return HostPrefix(model, host_nodes, device_inputs)


def of(model):
    """The HostPrefix of any model (a Sequential's inner functional model included), or None."""
    inner = getattr(model, "_functional", None) or model
    return getattr(inner, "_host_prefix", None)
