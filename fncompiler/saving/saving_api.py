"""save_model / load_model / save_weights / load_weights over the zip file format (file_format.py).

Loading is checked in layers, each before the next does any work: the zip (limits, names, hashes: file_format),
the JSON (size, depth), the config's shape (no 'safe_mode' key, bounded numbers of layers and calls), the weights
table (real numeric arrays: weights_io), then the layers are rebuilt through closed registries only
(serialization.resolve_class) under an allocation budget equal to the weights the file really holds (guard.py).
Whatever goes wrong surfaces as ModelFileError or UnsafeConfigError (both ValueErrors), or FileNotFoundError.
"""
import json
import os

from . import file_format, guard, keras_format, keras_h5, keras_optimizer, keras_writer, serialization, weights_io
from .errors import ModelFileError, UnsafeConfigError

_TOP_LEVEL_KEYS = {"module", "class_name", "config", "registered_name", "build_config", "compile_config"}


def _check_overwrite(path, overwrite):
    if not overwrite and os.path.exists(os.fspath(path)):
        raise FileExistsError(f"{os.fspath(path)!r} exists and overwrite=False.")


def save_model(model, filepath, overwrite=True, **kwargs):
    """Architecture (JSON), weights and optimizer state (msgpack) and compile config in one file."""
    if kwargs:
        raise TypeError(f"save_model got unexpected arguments {sorted(kwargs)}.")
    _check_overwrite(filepath, overwrite)
    if os.fspath(filepath).endswith(".keras"):
        return keras_writer.save_keras_model(model, filepath)
    config = serialization.serialize_object(model)
    config["compile_config"] = model.get_compile_config() if hasattr(model, "get_compile_config") else None
    members = {
        "metadata.json": json.dumps(file_format.metadata(), indent=1).encode(),
        "config.json": json.dumps(config).encode(),
        "weights.msgpack": weights_io.weights_to_bytes(model.weights),
    }
    trainer = getattr(model, "_trainer", None)
    opt_state = getattr(trainer, "opt_state", None) if trainer is not None else None
    if opt_state is None:
        opt_state = getattr(model, "_restored_opt_state", None)
    if opt_state is not None:
        members["optimizer.msgpack"] = weights_io.state_to_bytes(opt_state)
    file_format.atomic_write(filepath, members)


def _scan_config(config):
    """Before building anything: no 'safe_mode' key anywhere, and bounded numbers of layers and calls."""
    layers = nodes = 0
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "safe_mode" in node:
                raise UnsafeConfigError("The model config asks to set 'safe_mode': a model file cannot change how it "
                                        "is loaded (and fncompiler never runs code from a file in any mode).")
            if isinstance(node.get("layers"), list):
                layers += len(node["layers"])
            if isinstance(node.get("inbound_nodes"), list):
                nodes += len(node["inbound_nodes"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    if layers > file_format.LIMITS["layers"]:
        raise ModelFileError(f"The model config has {layers} layers, over the {file_format.LIMITS['layers']} limit.")
    if nodes > file_format.LIMITS["nodes"]:
        raise ModelFileError(f"The model config has {nodes} layer calls, over the {file_format.LIMITS['nodes']} "
                             "limit.")


def compile_kwargs_from_config(config, custom_objects):
    """model.compile(...) arguments from a saved compile config, resolving names through closed registries."""
    from .. import losses as losses_lib
    from .. import metrics as metrics_lib
    from .. import optimizers as optimizers_lib
    if not isinstance(config, dict):
        raise ModelFileError("compile_config must be an object.")
    custom = dict(custom_objects or {})

    def leaf(deserialize):
        def resolve(value):
            if isinstance(value, str):
                return custom.get(value, value)  # built-in names are resolved by compile() itself, in context
            if isinstance(value, dict):
                return deserialize(value, custom_objects=custom)
            raise ModelFileError(f"compile_config: cannot interpret {value!r}.")
        return resolve

    def walk(value, resolve):
        if value is None:
            return None
        if isinstance(value, dict) and "class_name" not in value:
            return {k: walk(v, resolve) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, resolve) for v in value]
        return resolve(value)

    optimizer = config.get("optimizer", "rmsprop")
    if isinstance(optimizer, dict):
        optimizer = optimizers_lib.deserialize(optimizer, custom_objects=custom)
    elif not isinstance(optimizer, str):
        raise ModelFileError(f"compile_config: 'optimizer' must be a name or a config; received {optimizer!r}.")
    kwargs = {
        "optimizer": optimizer,
        "loss": walk(config.get("loss"), leaf(losses_lib.deserialize)),
        "loss_weights": config.get("loss_weights"),
        "metrics": walk(config.get("metrics"), leaf(metrics_lib.deserialize)),
        "weighted_metrics": walk(config.get("weighted_metrics"), leaf(metrics_lib.deserialize)),
        "run_eagerly": config.get("run_eagerly", False),
        "steps_per_execution": config.get("steps_per_execution", 1),
        "jit_compile": config.get("jit_compile", "auto"),
        "auto_scale_loss": config.get("auto_scale_loss", True),
    }
    if config.get("gradient_accumulation_steps") is not None:     # written only when compile() was given it
        kwargs["gradient_accumulation_steps"] = config["gradient_accumulation_steps"]
    if not isinstance(kwargs["run_eagerly"], bool):
        raise ModelFileError("compile_config: 'run_eagerly' must be true or false.")
    spe = kwargs["steps_per_execution"]
    if spe != "auto" and (not isinstance(spe, int) or isinstance(spe, bool) or not 1 <= spe <= 2 ** 31):
        raise ModelFileError(f"compile_config: invalid 'steps_per_execution' {spe!r}.")
    return kwargs


def _wrap(what, path, fn, *args, **kwargs):
    """Run one loading stage; anything but the project's own errors becomes ModelFileError naming the stage."""
    try:
        return fn(*args, **kwargs)
    except (ModelFileError, UnsafeConfigError):
        raise
    except RecursionError as exc:
        raise ModelFileError(f"{path!r}: {what} failed: the config nests too deeply.") from exc
    except Exception as exc:  # noqa: BLE001 - a config the classes reject is a bad file, whatever they raise
        raise ModelFileError(f"{path!r}: {what} failed: {type(exc).__name__}: {exc}") from exc


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Rebuild a model saved with `save_model`. Refuses unknown classes, code and malformed files (see docs)."""
    path = os.fspath(filepath)
    if keras_format.is_keras_archive(path):
        return _load_keras_model(path, custom_objects, compile, safe_mode)
    members = file_format.read_members(path)
    config, compile_config = _read_config(members, path)
    table = weights_io.read_table(members["weights.msgpack"])
    model = _rebuild(config, path, custom_objects, safe_mode, table.num_elements)
    values = _wrap("reading weights.msgpack", path, weights_io.match_weights, table, model.weights)
    for var, value in zip(model.weights, values):
        var.assign(value)
    if compile and compile_config:
        kwargs = _wrap("reading the compile config", path, compile_kwargs_from_config, compile_config, custom_objects)
        _wrap("compiling the loaded model", path, model.compile, **kwargs)
        if "optimizer.msgpack" in members:
            def restore():
                target = model.optimizer.init([v.value for v in model.trainable_weights])
                return weights_io.read_state(members["optimizer.msgpack"], target)
            model._restored_opt_state = _wrap("reading optimizer.msgpack", path, restore)
    return model


def _read_config(members, path):
    """(model config, compile config) from config.json, checked (_scan_config) before anything is built."""
    config = file_format.parse_json(members["config.json"], "config.json")
    if not isinstance(config, dict):
        raise ModelFileError(f"config.json of {path!r} must hold an object; found {type(config).__name__}.")
    _scan_config(config)
    # Keys this version does not know (a newer minor version's optional fields) are ignored: never read.
    config = {k: v for k, v in config.items() if k in _TOP_LEVEL_KEYS}
    return config, config.pop("compile_config", None)


def _rebuild(config, path, custom_objects, safe_mode, budget):
    def build():
        with guard.budget(budget):
            return serialization.deserialize_object(config, custom_objects=custom_objects, safe_mode=safe_mode)
    model = _wrap("rebuilding the model from config.json", path, build)
    from ..layers.layer import Layer
    if not isinstance(model, Layer) or not hasattr(model, "compile"):
        raise ModelFileError(f"config.json of {path!r} describes a {type(model).__name__}, not a model.")
    return model


def _load_keras_model(path, custom_objects, compile, safe_mode):
    """A Keras 3 archive: same checks and registries as ours; weights by Keras's HDF5 paths (keras_format)."""
    members = keras_format.read_keras_members(path)
    config, compile_config = _read_config(members, path)
    config = keras_format.keras_config_to_ours(config, path)
    member = f"model.weights.h5 of {path!r}"
    tree = keras_h5.read_tree(members["model.weights.h5"], member)
    budget = sum(int(a.size) for a in tree.arrays.values())
    model = _rebuild(config, path, custom_objects, safe_mode, budget)
    keras_format.assign_from_tree(model, tree, member)
    if compile and compile_config:
        compile_config = keras_format.keras_config_to_ours(compile_config, path)
        kwargs = _wrap("reading the compile config", path, compile_kwargs_from_config, compile_config, custom_objects)
        _wrap("compiling the loaded model", path, model.compile, **kwargs)
        arrays = tree.vars_of("optimizer")
        if arrays:
            model._restored_opt_state = _wrap("reading the optimizer state", path, keras_optimizer.state_from_keras,
                                              model, arrays, config, member)
    return model


def save_weights(model, filepath, overwrite=True):
    _check_overwrite(filepath, overwrite)
    if os.fspath(filepath).endswith(".h5"):
        return keras_writer.save_keras_weights(model, os.fspath(filepath))
    members = {"metadata.json": json.dumps(file_format.metadata(), indent=1).encode(),
               "weights.msgpack": weights_io.weights_to_bytes(model.weights)}
    file_format.atomic_write(filepath, members)


def load_weights(model, filepath, skip_mismatch=False):
    if keras_format.is_hdf5(os.fspath(filepath)):
        if skip_mismatch:
            raise ValueError("skip_mismatch=True is not supported for Keras .weights.h5 files.")
        keras_format.load_keras_weights(model, os.fspath(filepath))
        return
    members = file_format.read_members(filepath, required=("metadata.json", "weights.msgpack"))
    values = weights_io.read_weights(members["weights.msgpack"], model.weights, skip_mismatch=skip_mismatch)
    for var, value in zip(model.weights, values):
        if value is not None:
            var.assign(value)
