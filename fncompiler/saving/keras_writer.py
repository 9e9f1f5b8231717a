"""Writing Keras 3 files: `.keras` archives Keras's load_model reads, and `.weights.h5` (keras_format reads both).

config.json is fncompiler's own config (already Keras's layout) with Keras's module names, and node numbers of
nested models shifted the way Keras counts them; model.weights.h5 holds every layer's group at the path Keras's
loader looks for (`layers/<snake_case class>[_k]`, sub-objects as in keras_format.sub_paths), each `vars` group
carrying the layer's name, as Keras writes them.
"""
import datetime
import io
import json

import numpy as np

from . import file_format, keras_config as keras_config_lib, keras_format, keras_h5, keras_optimizer, serialization

KERAS_VERSION = "3.15.1"  # the Keras 3 release whose format this writes (and the fixtures were made with)
_MODULES = {"Functional": "keras.src.models.functional", "Model": "keras.src.models.functional",
            "Sequential": "keras"}


def _module_for(key):
    """Keras's module for an object found under config key `key` (Keras needs it to find built-in classes)."""
    if key is None:
        return None
    for suffix, module in (("initializer", "keras.initializers"), ("regularizer", "keras.regularizers"),
                           ("constraint", "keras.constraints"), ("optimizer", "keras.optimizers"),
                           ("loss", "keras.losses"), ("metrics", "keras.metrics"), ("cell", "keras.layers"),
                           ("layer", "keras.layers"), ("learning_rate", "keras.optimizers.schedules")):
        if key.endswith(suffix):
            return module
    return None


def _to_keras(obj, key=None):
    if isinstance(obj, list):
        return [_to_keras(v, key) for v in obj]
    if not isinstance(obj, dict):
        return obj
    plain = "class_name" not in obj

    def context(k):
        return k if _module_for(k) is not None or not plain else key
    out = {k: _to_keras(v, context(k)) for k, v in obj.items()}
    if "class_name" in out and isinstance(out.get("config"), dict) and not out["class_name"].startswith("__"):
        module = out.get("module")
        if module == "fncompiler.layers":
            out["module"] = _MODULES.get(out["class_name"], "keras.layers")
        elif module is None:
            out["module"] = _module_for(key)
        out.setdefault("registered_name", None)
        if out["module"] is None:
            out.pop("module")
        keras_config_lib.shift_nested_refs(out, +1)
    return out


def keras_config(model):
    config = _to_keras(serialization.serialize_object(model))
    compile_config = model.get_compile_config() if getattr(model, "optimizer", None) is not None else None
    if compile_config is not None:
        compile_config = _to_keras(compile_config)
        if compile_config.get("steps_per_execution") == "auto":
            compile_config["steps_per_execution"] = 1
    config["compile_config"] = compile_config
    return config


def weight_entries(model, prefix=""):
    """[(group path, layer name, arrays)] for `model` and every layer it holds, at Keras's paths."""
    entries = [(prefix, model.name, [])]
    for group, layer in keras_format.keras_group_names(model).items():
        path = keras_format._join(prefix, "layers", group)
        if keras_format._is_container(layer):
            entries.extend(weight_entries(layer, path))
            continue
        subs = keras_format.sub_paths(layer)
        if not subs or subs[0][0]:
            entries.append((path, layer.name, []))
        for sub, ws in subs:
            entries.append((keras_format._join(path, sub), layer.name if not sub else None,
                            [np.asarray(w.value) for w in ws]))
    return entries


def _optimizer_entry(model):
    trainer = getattr(model, "_trainer", None)
    state = getattr(trainer, "opt_state", None) if trainer is not None else None
    if state is None:
        state = model.__dict__.get("_restored_opt_state")
    if state is None or getattr(model, "optimizer", None) is None:
        return []
    arrays = keras_optimizer.state_to_keras(model, state)
    return [] if arrays is None else [("optimizer", model.optimizer.name, arrays)]


def weights_bytes(model, include_optimizer=True):
    buf = io.BytesIO()
    keras_h5.write_tree(buf, weight_entries(model) + (_optimizer_entry(model) if include_optimizer else []))
    return buf.getvalue()


def save_keras_model(model, path):
    meta = {"keras_version": KERAS_VERSION,
            "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    members = {"metadata.json": json.dumps(meta).encode(),
               "config.json": json.dumps(keras_config(model)).encode(),
               "model.weights.h5": weights_bytes(model)}
    file_format.atomic_write(path, members, hashes=False)


def save_keras_weights(model, path):
    file_format.atomic_write(path, weights_bytes(model, include_optimizer=False))
