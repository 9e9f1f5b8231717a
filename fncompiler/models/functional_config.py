"""A functional model's config (Keras 3's layout: layers with inbound_nodes, input/output layers) and back."""
import jax

from ..symbolic import Slot, is_symbolic
from ..saving import serialization
from ..saving.errors import ModelFileError
from ..saving.file_format import LIMITS

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
    for layer in model.operations:   # layers and ops (`x + y`) alike
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


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _is_ref(x):
    return isinstance(x, list) and len(x) == 3 and isinstance(x[0], str) and _is_int(x[1]) and _is_int(x[2])


def _tensor_ref(value, where):
    cfg = value.get("config")
    hist = cfg.get("keras_history") if isinstance(cfg, dict) else None
    if not _is_ref(hist):
        raise ModelFileError(f"{where}: a tensor reference needs config.keras_history = [layer name, node index, "
                             f"tensor index]; received {hist!r}.")
    return tuple(hist)


def _refs(value, where, out):
    """Collect the (layer name, node index, tensor index) of every tensor a call argument reads."""
    if isinstance(value, dict):
        if value.get("class_name") == _TENSOR:
            out.append(_tensor_ref(value, where))
            return out
        for v in value.values():
            _refs(v, where, out)
    elif isinstance(value, list):
        for v in value:
            _refs(v, where, out)
    return out


def _decode_arg(value, tensors, where):
    if isinstance(value, dict):
        cls = value.get("class_name")
        if cls == _TENSOR:
            hist = _tensor_ref(value, where)
            if hist not in tensors:
                raise ModelFileError(f"{where} reads tensor {list(hist)}, which that call does not produce.")
            return tensors[hist]
        if cls == "__slice__":
            parts = value.get("config", {}).get("value") if isinstance(value.get("config"), dict) else None
            if not (isinstance(parts, list) and len(parts) == 3 and all(p is None or _is_int(p) for p in parts)):
                raise ModelFileError(f"{where}: invalid slice {value!r}.")
            return slice(*parts)
        if cls == "__ellipsis__":
            return Ellipsis
        if cls == "__tuple__":
            items = value.get("config", {}).get("value") if isinstance(value.get("config"), dict) else None
            if not isinstance(items, list):
                raise ModelFileError(f"{where}: invalid tuple {value!r}.")
            return tuple(_decode_arg(v, tensors, where) for v in items)
        return {k: _decode_arg(v, tensors, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_arg(v, tensors, where) for v in value]
    return value


def _map_struct(struct, lookup, what):
    """input_layers/output_layers: a ref, or lists/dicts of refs (Keras's layout)."""
    if _is_ref(struct):
        return lookup(struct)
    if isinstance(struct, list) and struct:
        return [_map_struct(s, lookup, what) for s in struct]
    if isinstance(struct, dict) and struct:
        return {k: _map_struct(v, lookup, what) for k, v in struct.items()}
    raise ModelFileError(f"The model config's {what} must be [layer name, node index, tensor index] references "
                         f"(or lists/dicts of them); found {struct!r}.")


def deserialize_functional(config, cls, custom_objects=None, safe_mode=True):
    """Rebuild a functional model of class `cls` (Functional or a subclass whose __init__ takes Functional's
    arguments): make each layer, then replay the recorded calls in dependency order.

    A call (layer L, node k) runs once every tensor it reads exists and L's calls 0..k-1 have run (a shared
    layer's nodes keep their order). Kahn's algorithm: linear in the number of calls, whatever order the file
    lists them in; a cycle or a reference to a call that does not exist is a ModelFileError.
    """
    import heapq
    from ..layers.input_layer import InputLayer
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ModelFileError("A functional model config needs a 'layers' list.")
    if len(config["layers"]) > LIMITS["layers"]:
        raise ModelFileError(f"The model config has {len(config['layers'])} layers, over the {LIMITS['layers']} "
                             "limit.")
    layers, tensors, calls = {}, {}, []
    done = set()          # (layer name, node index) of calls that have run (Input layers: (name, 0))
    for entry in config["layers"]:
        if not isinstance(entry, dict):
            raise ModelFileError("Each entry of 'layers' must be a dict.")
        nodes = entry.get("inbound_nodes", [])
        if not isinstance(nodes, list):
            raise ModelFileError(f"'inbound_nodes' of layer {entry.get('name')!r} must be a list.")
        layer = serialization.deserialize_object(entry, custom_objects=custom_objects, safe_mode=safe_mode)
        name = entry.get("name", getattr(layer, "name", None))
        if not isinstance(name, str):
            raise ModelFileError(f"Layer names must be strings; received {name!r}.")
        if name in layers:
            raise ModelFileError(f"Layer name {name!r} appears twice in the model config.")
        layers[name] = layer
        if isinstance(layer, InputLayer):
            if nodes:
                raise ModelFileError(f"Input layer {name!r} cannot have inbound nodes.")
            tensors[(name, 0, 0)] = layer.output
            done.add((name, 0))
        for k, node_cfg in enumerate(nodes):
            where = f"Call {k} of layer {name!r}"
            if not isinstance(node_cfg, dict) or not isinstance(node_cfg.get("args", []), list) or \
                    not isinstance(node_cfg.get("kwargs", {}), dict):
                raise ModelFileError(f"{where}: an inbound node must be {{'args': [...], 'kwargs': {{...}}}}.")
            calls.append((name, k, layer, node_cfg, where))
            if len(calls) > LIMITS["nodes"]:
                raise ModelFileError(f"The model config has more than {LIMITS['nodes']} layer calls.")
    index = {(c[0], c[1]): i for i, c in enumerate(calls)}
    waiting_on = [0] * len(calls)
    dependents = [[] for _ in calls]
    for i, (name, k, _, node_cfg, where) in enumerate(calls):
        needs = {(r[0], r[1]) for r in _refs([node_cfg.get("args", []), node_cfg.get("kwargs", {})], where, [])}
        if k > 0:
            needs.add((name, k - 1))
        for dep in needs:
            if dep in done:
                continue
            j = index.get(dep)
            if j is None:
                raise ModelFileError(f"{where} reads a tensor of layer {dep[0]!r} node {dep[1]}, which the model "
                                     "config does not define.")
            waiting_on[i] += 1
            dependents[j].append(i)
    ready = [i for i, n in enumerate(waiting_on) if n == 0]
    heapq.heapify(ready)
    ran = 0
    while ready:
        i = heapq.heappop(ready)
        name, k, layer, node_cfg, where = calls[i]
        args = [_decode_arg(a, tensors, where) for a in node_cfg.get("args", [])]
        kwargs = {key: _decode_arg(v, tensors, where) for key, v in node_cfg.get("kwargs", {}).items()}
        out = layer(*args, **kwargs)
        for t_i, t in enumerate(x for x in jax.tree_util.tree_leaves(out) if is_symbolic(x)):
            tensors[(name, k, t_i)] = t
        ran += 1
        for j in dependents[i]:
            waiting_on[j] -= 1
            if waiting_on[j] == 0:
                heapq.heappush(ready, j)
    if ran < len(calls):
        stuck = sorted({c[0] for c, n in zip(calls, waiting_on) if n > 0})
        raise ModelFileError(f"The model config's graph cannot be rebuilt: the calls of {stuck} depend on each other "
                             "in a cycle.")

    def lookup(ref):
        key = tuple(ref)
        if key not in tensors:
            raise ModelFileError(f"The model config names output/input {ref}, which no layer produces.")
        return tensors[key]

    if "input_layers" not in config or "output_layers" not in config:
        raise ModelFileError("A functional model config needs 'input_layers' and 'output_layers'.")
    inputs = _map_struct(config["input_layers"], lookup, "input_layers")
    outputs = _map_struct(config["output_layers"], lookup, "output_layers")
    # A single input/output saved as [[name, 0, 0]] is a list of one: unwrap like Keras does.
    if isinstance(inputs, list) and len(inputs) == 1 and not isinstance(inputs[0], (list, dict)):
        inputs = inputs[0]
    if isinstance(outputs, list) and len(outputs) == 1 and not isinstance(outputs[0], (list, dict)):
        outputs = outputs[0]
    name = config.get("name")
    if name is not None and not isinstance(name, str):
        raise ModelFileError(f"The model name must be a string; received {name!r}.")
    trainable = config.get("trainable", True)
    if not isinstance(trainable, bool):
        raise ModelFileError(f"'trainable' must be true or false; received {trainable!r}.")
    return cls(inputs, outputs, name=name, trainable=trainable)
