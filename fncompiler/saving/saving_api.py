"""save_model / load_model / save_weights / load_weights over the zip file format (file_format.py)."""
import json
import os

from . import file_format, serialization, weights_io
from .errors import ModelFileError


def _check_overwrite(path, overwrite):
    if not overwrite and os.path.exists(os.fspath(path)):
        raise FileExistsError(f"{os.fspath(path)!r} exists and overwrite=False.")


def save_model(model, filepath, overwrite=True, **kwargs):
    """Architecture (JSON), weights and optimizer state (msgpack) and compile config in one file."""
    if kwargs:
        raise TypeError(f"save_model got unexpected arguments {sorted(kwargs)}.")
    _check_overwrite(filepath, overwrite)
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


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    members = file_format.read_members(filepath)
    file_format.check_metadata(file_format.parse_json(members["metadata.json"], "metadata.json"))
    config = file_format.parse_json(members["config.json"], "config.json")
    if not isinstance(config, dict):
        raise ModelFileError("config.json must hold an object.")
    compile_config = config.pop("compile_config", None)
    model = serialization.deserialize_object(config, custom_objects=custom_objects, safe_mode=safe_mode)
    values = weights_io.read_weights(members["weights.msgpack"], model.weights)
    for var, value in zip(model.weights, values):
        var.assign(value)
    if compile and compile_config:
        from ..runtime.compile_config import CompileConfig
        model.compile(**CompileConfig.kwargs_from_config(compile_config))
        if "optimizer.msgpack" in members:
            target = model.optimizer.init([v.value for v in model.trainable_weights])
            model._restored_opt_state = weights_io.read_state(members["optimizer.msgpack"], target)
    return model


def save_weights(model, filepath, overwrite=True):
    _check_overwrite(filepath, overwrite)
    members = {"metadata.json": json.dumps(file_format.metadata(), indent=1).encode(),
               "weights.msgpack": weights_io.weights_to_bytes(model.weights)}
    file_format.atomic_write(filepath, members)


def load_weights(model, filepath, skip_mismatch=False):
    members = file_format.read_members(filepath, required=("metadata.json", "weights.msgpack"))
    file_format.check_metadata(file_format.parse_json(members["metadata.json"], "metadata.json"))
    values = weights_io.read_weights(members["weights.msgpack"], model.weights, skip_mismatch=skip_mismatch)
    for var, value in zip(model.weights, values):
        if value is not None:
            var.assign(value)
