"""Optimizer state <-> Keras's `optimizer/vars/<i>` list: [iterations, learning_rate, slot variables...].

Keras lists slot variables per model variable, in the order of its model's trainable variables: interleaved
(m0, v0, m1, v1, ...) when an optimizer creates several slots in one call (Adam, AdamW, Adamax, Adadelta), one
block per slot kind otherwise (RMSprop: velocities, then momentums, then average gradients). Keras's variable
order follows its config.json "layers" list (Keras writes it in its model.layers order), so the state is mapped by
layer name through that list, whatever order fncompiler's own model.layers has.
"""
import jax
import jax.numpy as jnp
import numpy as np

from .errors import ModelFileError

_INTERLEAVED = {"Adam": 2, "AdamW": 2, "Adamax": 2, "Adadelta": 2}
SUPPORTED = ("Adam", "AdamW", "Adamax", "Adadelta", "RMSprop", "SGD", "Adagrad", "Lion")


def _layer_names(config):
    """Layer names in the order of a Keras config's "layers" lists, nested models expanded in place."""
    out = []
    for layer in config.get("config", {}).get("layers", []) if isinstance(config, dict) else []:
        if not isinstance(layer, dict):
            continue
        if isinstance(layer.get("config"), dict) and isinstance(layer["config"].get("layers"), list):
            out.extend(_layer_names(layer))
        else:
            out.append(layer.get("name") or layer.get("config", {}).get("name"))
    return out


def _all_layers(model):
    out = {}
    for layer in model.layers:
        if hasattr(layer, "layers") and hasattr(layer, "compile"):
            out.update(_all_layers(layer))
        else:
            out[layer.name] = layer
    return out


def keras_variable_order(model, config=None):
    """Indices into model.trainable_weights in Keras's order (config's layer list, else model.layers)."""
    position = {id(w): i for i, w in enumerate(model.trainable_weights)}
    layers = _all_layers(model)
    names = _layer_names(config) if config is not None else list(layers)
    order = []
    for name in names:
        layer = layers.get(name)
        if layer is not None:
            order.extend(position[id(w)] for w in layer.trainable_weights if id(w) in position)
    if sorted(order) != list(range(len(position))):
        raise ModelFileError("The optimizer state cannot be matched to the model's trainable weights by layer name.")
    return order


def _slots(state):
    inner = state.inner[-1]
    return [(f, getattr(inner, f)) for f in inner._fields if isinstance(getattr(inner, f), list)]


def _keras_slot_order(opt_name, slots, order):
    """[(field, variable index)] in Keras's order."""
    k = _INTERLEAVED.get(opt_name, 1)
    head, rest = slots[:k], slots[k:]
    out = [(f, i) for i in order for f, _ in head] if k > 1 else [(head[0][0], i) for i in order] if head else []
    for f, _ in rest:
        out.extend((f, i) for i in order)
    return out


def state_from_keras(model, arrays, config, member):
    """The fncompiler optimizer state for `model` (compiled) from Keras's optimizer/vars list, or None."""
    opt = model.optimizer
    name = type(opt).__name__
    if name not in SUPPORTED:
        return None
    target = opt.init([w.value for w in model.trainable_weights])
    slots = _slots(target)
    plan = _keras_slot_order(name, slots, keras_variable_order(model, config))
    if len(arrays) != 2 + len(plan):
        raise ModelFileError(f"{member}: the {name} state has {len(arrays)} variables; fncompiler's {name} for "
                             f"this model has {2 + len(plan)}.")
    values = {f: list(v) for f, v in slots}
    for (f, i), a in zip(plan, arrays[2:]):
        if tuple(a.shape) != tuple(values[f][i].shape):
            raise ModelFileError(f"{member}: optimizer slot {f}[{i}] has shape {tuple(a.shape)}, expected "
                                 f"{tuple(values[f][i].shape)}.")
        values[f][i] = jnp.asarray(a, values[f][i].dtype)
    inner = target.inner[-1]._replace(**values)
    return target._replace(iterations=jnp.asarray(arrays[0], jnp.int32).reshape(()),
                           learning_rate=jnp.asarray(arrays[1], jnp.float32).reshape(()),
                           inner=target.inner[:-1] + (inner,))


def state_to_keras(model, state):
    """Keras's optimizer/vars list for a fncompiler optimizer state (None when the optimizer has no mapping)."""
    name = type(model.optimizer).__name__
    if state is None or name not in SUPPORTED:
        return None
    slots = dict(_slots(state))
    plan = _keras_slot_order(name, list(slots.items()), keras_variable_order(model))
    return [np.asarray(state.iterations, np.int32), np.asarray(state.learning_rate, np.float32)] + \
        [np.asarray(jax.device_get(slots[f][i])) for f, i in plan]
