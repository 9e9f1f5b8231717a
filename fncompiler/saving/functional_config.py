"""A functional model's config (Keras 3's layout: layers with inbound_nodes, input/output layers) and back."""
import jax

from ..symbolic import Slot, SymbolicTensor, is_symbolic
from . import serialization
from .errors import ModelFileError

_TENSOR = "__keras_tensor__"


def _node_keys(model):
    """node id -> (layer name, node index among this model's calls of that layer)."""
    keys, counts = {}, {}
    for t in model.inputs:
        if t.node.is_input:
            keys[t.node.id] = (t.node.layer.name, 0)
    for node in model._nodes:
        if node.id in keys:
            continue
        k = counts.get(node.layer.name, 0)
        counts[node.layer.name] = k + 1
        keys[node.id] = (node.layer.name, k)
    return keys


def _encode_arg(value, node, keys):
    if isinstance(value, Slot):
        t = node.input_tensors[value.index]
        name, k = keys[t.node.id]
        return {"class_name": _TENSOR, "config": {"shape": list(t.shape), "dtype": t.dtype,
                                                  "keras_history": [name, k, t.index]}}
    if isinstance(value, slice):
        return {"class_name": "__slice__", "config": {"value": [value.start, value.stop, value.step]}}
    if value is Ellipsis:
        return {"class_name": "__ellipsis__", "config": {}}
    if isinstance(value, tuple):
        return {"class_name": "__tuple__", "config": {"value": [_encode_arg(v, node, keys) for v in value]}}
    if isinstance(value, list):
        return [_encode_arg(v, node, keys) for v in value]
    if isinstance(value, dict):
        return {k: _encode_arg(v, node, keys) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    raise TypeError(f"Cannot serialize call argument {value!r} of layer {node.layer.name!r}: only tensors, numbers, "
                    "strings, None, slices and lists/tuples/dicts of them can be saved.")


def _history_ref(t, keys):
    name, k = keys[t.node.id]
    return [name, k, t.index]


def serialize_functional(model):
    keys = _node_keys(model)
    layer_entries, by_layer = [], {}
    for layer in model.layers:
        entry = serialization.serialize_object(layer)
        entry["name"] = layer.name
        entry["inbound_nodes"] = []
        by_layer[id(layer)] = entry
        layer_entries.append(entry)
    for node in model._nodes:
        if node.is_input:
            continue
        args, kwargs = node.arguments
        by_layer[id(node.layer)]["inbound_nodes"].append(
            {"args": [_encode_arg(a, node, keys) for a in args],
             "kwargs": {k: _encode_arg(v, node, keys) for k, v in kwargs.items()}})

    def struct(s):
        return jax.tree_util.tree_map(lambda t: _history_ref(t, keys), s, is_leaf=is_symbolic)
    return {"name": model.name, "trainable": model.trainable, "layers": layer_entries,
            "input_layers": struct(model._inputs_struct), "output_layers": struct(model._outputs_struct)}


def _decode_arg(value, tensors):
    if isinstance(value, dict):
        cls = value.get("class_name")
        if cls == _TENSOR:
            hist = tuple(value["config"]["keras_history"])
            if hist not in tensors:
                raise _NotReady(hist)
            return tensors[hist]
        if cls == "__slice__":
            return slice(*value["config"]["value"])
        if cls == "__ellipsis__":
            return Ellipsis
        if cls == "__tuple__":
            return tuple(_decode_arg(v, tensors) for v in value["config"]["value"])
        return {k: _decode_arg(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_arg(v, tensors) for v in value]
    return value


class _NotReady(Exception):
    pass


def _is_ref(x):
    return isinstance(x, list) and len(x) == 3 and isinstance(x[0], str) and all(isinstance(i, int) for i in x[1:])


def deserialize_functional(config, custom_objects=None, cls=None, safe_mode=True):
    from ..layers.input_layer import InputLayer
    from ..models.functional import Functional
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ModelFileError("A functional model config needs a 'layers' list.")
    layers, pending = {}, []
    tensors = {}
    for entry in config["layers"]:
        if not isinstance(entry, dict):
            raise ModelFileError("Each entry of 'layers' must be a dict.")
        layer = serialization.deserialize_object(entry, custom_objects=custom_objects, safe_mode=safe_mode)
        name = entry.get("name", getattr(layer, "name", None))
        if name in layers:
            raise ModelFileError(f"Layer name {name!r} appears twice in the model config.")
        layers[name] = layer
        if isinstance(layer, InputLayer):
            tensors[(name, 0, 0)] = layer.output
        for node_cfg in entry.get("inbound_nodes", []):
            pending.append((name, layer, node_cfg))
    counts = {}
    # Replay the calls: a call runs once all the tensors it reads exist (shared layers: in order).
    progress = True
    while pending and progress:
        progress = False
        remaining = []
        blocked = set()
        for name, layer, node_cfg in pending:
            if name in blocked:
                remaining.append((name, layer, node_cfg))
                continue
            try:
                args = [_decode_arg(a, tensors) for a in node_cfg.get("args", [])]
                kwargs = {k: _decode_arg(v, tensors) for k, v in node_cfg.get("kwargs", {}).items()}
            except _NotReady:
                remaining.append((name, layer, node_cfg))
                blocked.add(name)
                continue
            out = layer(*args, **kwargs)
            k = counts.get(name, 0)
            counts[name] = k + 1
            for i, t in enumerate(x for x in jax.tree_util.tree_leaves(out) if is_symbolic(x)):
                tensors[(name, k, i)] = t
            progress = True
        pending = remaining
    if pending:
        raise ModelFileError(f"The model config's graph cannot be rebuilt: calls of {sorted({p[0] for p in pending})} "
                             "read tensors that no layer produces (or form a cycle).")

    def lookup(ref):
        key = tuple(ref)
        if key not in tensors:
            raise ModelFileError(f"The model config names output/input {ref}, which no layer produces.")
        return tensors[key]

    inputs = jax.tree_util.tree_map(lookup, config["input_layers"], is_leaf=_is_ref)
    outputs = jax.tree_util.tree_map(lookup, config["output_layers"], is_leaf=_is_ref)
    # A single input/output saved as [[name, 0, 0]] is a list of one: unwrap like Keras does.
    if isinstance(inputs, list) and len(inputs) == 1 and not isinstance(inputs[0], (list, dict)):
        inputs = inputs[0]
    if isinstance(outputs, list) and len(outputs) == 1 and not isinstance(outputs[0], (list, dict)):
        outputs = outputs[0]
    target = cls if cls is not None and issubclass(cls, Functional) else Functional
    if target.__init__ is not Functional.__init__:
        target = Functional
    return target(inputs, outputs, name=config.get("name"), trainable=config.get("trainable", True))


def clone_model(model, input_tensors=None, clone_function=None):
    """Rebuild a model from its config (fresh weights). Sequential and functional models are supported."""
    from ..models.sequential import Sequential
    if clone_function is not None:
        raise NotImplementedError("clone_model(clone_function=...) is not supported yet.")
    if input_tensors is not None:
        raise NotImplementedError("clone_model(input_tensors=...) is not supported yet.")
    import copy
    config = copy.deepcopy(model.get_config())
    if isinstance(model, Sequential):
        return Sequential.from_config(_rename(config, model))
    return type(model).from_config(_rename(config, model)) if hasattr(model, "_nodes") else \
        type(model).from_config(config)


def _rename(config, model):
    return config
