"""Training checkpoints for an exact resume: weights, optimizer state, RNG keys and progress in one file.

    from fncompiler.runtime import checkpoint
    model.fit(x, y, epochs=2)
    checkpoint.save("run.fnckpt", model)                 # after fit: epoch 2 (from model.history), step
    ...                                                  # a new process
    model = build_model(); model.compile(...)            # same architecture and optimizer
    info = checkpoint.restore("run.fnckpt", model)       # compile first: the optimizer state needs it
    model.fit(x, y, epochs=4, initial_epoch=info.epoch)  # bit for bit the same as fit(epochs=4) in one go

The file is a zip written atomically (saving.file_format.atomic_write):
    metadata.json      {"format": "fncompiler.checkpoint", "format_version", versions, "epoch", "step",
                        "model_name", "learning_rate", "logs"}
    weights.msgpack    every weight (trainable and non-trainable, e.g. BatchNormalization statistics), as
                       saving.weights_io writes them, in the model's weight order
    optimizer.msgpack  the optimizer state (flax state dict), when the model has one
    rng.msgpack        {"trainer_key": the train step's PRNG key data (uint32; dropout),
                        "numpy": NumPy's global RNG state (shuffling), "python": Python's `random` state}
    hashes.json        sha256 of every other member

Exactness: `fit` draws each epoch's shuffle order from NumPy's global RNG (np.random.permutation) and each
step's dropout keys from the trainer's key, so both are saved and restored (np.random.get_state() is stored as
its plain pieces: the bit generator's name, the 624-word key, the position and the cached Gaussian; never a
pickle). `restore` sets NumPy's and Python's global RNG state unless `restore_global_rng=False`. Not saved:
callbacks' own state (EarlyStopping's patience counter, ReduceLROnPlateau's wait), generators' positions.
"""
import dataclasses
import datetime
import json
import os
import random
import re

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization as flax_ser

from fncompiler.saving import file_format, weights_io
from fncompiler.saving.errors import ModelFileError

FORMAT = "fncompiler.checkpoint"
FORMAT_VERSION = "1.0"
MEMBERS = ("metadata.json", "weights.msgpack", "optimizer.msgpack", "rng.msgpack", "hashes.json")

__all__ = ["save", "restore", "read_metadata", "CheckpointInfo", "CheckpointError", "FORMAT", "FORMAT_VERSION"]


class CheckpointError(ModelFileError):
    """A checkpoint file is missing parts, corrupt, of another format, or does not match the model."""


@dataclasses.dataclass
class CheckpointInfo:
    path: str
    epoch: int          # epochs completed: pass as fit(..., initial_epoch=info.epoch)
    step: int           # optimizer steps applied (None when the checkpoint has no optimizer state)
    metadata: dict


# -- state pieces ----------------------------------------------------------------------------------
def _trainer_state(model):
    trainer = getattr(model, "_trainer", None)
    opt = getattr(trainer, "opt_state", None) if trainer is not None else None
    key = getattr(trainer, "rng_state", None) if trainer is not None else None
    if opt is None:
        opt = model.__dict__.get("_restored_opt_state")
    if key is None:
        key = model.__dict__.get("_restored_rng_state")
    return opt, key


def _numpy_rng():
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"bit_generator": str(name), "keys": np.asarray(keys, np.uint32), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def _python_rng():
    version, internal, gauss = random.getstate()
    return {"version": int(version), "state": np.asarray(internal, np.uint32),
            "has_gauss": gauss is not None, "gauss": 0.0 if gauss is None else float(gauss)}


def _seeded_layers(model):
    """[(layer, attribute)] for the layers holding a Python-int seed (Dropout, GaussianNoise, RNN dropout...),
    in a fixed walk over the model's layers. The seed is folded into the train step's key, so it is part of
    the training state: a model rebuilt without the same global seed draws other seeds."""
    out, seen = [], set()
    stack = [model]
    while stack:
        layer = stack.pop(0)
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if layer is not model:
            for attr in ("seed", "_seed"):
                value = layer.__dict__.get(attr)
                if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                    out.append((layer, attr))
                    break
        stack.extend(getattr(layer, "_layers", None) or [])
    return out


def _layer_seeds(model):
    pairs = _seeded_layers(model)
    return {"classes": [type(l).__name__ for l, _ in pairs], "names": [l.name for l, _ in pairs],
            "seeds": np.asarray([int(getattr(l, a)) for l, a in pairs], np.int64)}


def _default_epoch(model):
    history = getattr(model, "history", None)
    epochs = getattr(history, "epoch", None)
    return int(epochs[-1]) + 1 if epochs else 0


def _jsonable(logs):
    out = {}
    for k, v in (logs or {}).items():
        try:
            out[str(k)] = float(v)
        except (TypeError, ValueError):
            continue
    return out


def save(path, model, epoch=None, step=None, logs=None, include_optimizer=True):
    """Write a checkpoint of `model` at `path` (atomically); return the CheckpointInfo written.

    epoch: epochs completed (what `fit(initial_epoch=...)` resumes from); default: the last epoch of
        `model.history` + 1, or 0 before any fit.
    step: default: the optimizer's iteration count.
    """
    from fncompiler import __version__
    path = os.fspath(path)
    opt_state, key = _trainer_state(model)
    members = {"weights.msgpack": weights_io.weights_to_bytes(model.weights)}
    optimizer = getattr(model, "optimizer", None)
    lr = None
    if include_optimizer and opt_state is not None:
        members["optimizer.msgpack"] = weights_io.state_to_bytes(opt_state)
        if step is None and optimizer is not None and hasattr(optimizer, "iterations"):
            step = optimizer.iterations(opt_state)
    if optimizer is not None and not getattr(optimizer, "has_schedule", True):
        lr = float(optimizer.learning_rate)    # the Python-side value fit() writes into the state next epoch
    rng = {"numpy": _numpy_rng(), "python": _python_rng(), "layer_seeds": _layer_seeds(model)}
    if key is not None:
        rng["trainer_key"] = np.asarray(key)
    members["rng.msgpack"] = flax_ser.msgpack_serialize(rng)
    epoch = _default_epoch(model) if epoch is None else int(epoch)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "fncompiler_version": __version__,
            "jax_version": jax.__version__, "date_saved": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "model_name": model.name, "epoch": epoch, "step": None if step is None else int(step),
            "learning_rate": lr, "logs": _jsonable(logs),
            "optimizer": None if optimizer is None else type(optimizer).__name__}
    members = {"metadata.json": json.dumps(meta, indent=1).encode(), **members}
    file_format.atomic_write(path, members)
    return CheckpointInfo(path, epoch, meta["step"], meta)


# -- reading ---------------------------------------------------------------------------------------
def _read_members(path):
    """The checkpoint's members, read and checked by saving.file_format.read_members (the same limits, name,
    size, compression-ratio and sha256 checks as a model file) for the checkpoint's own members and format."""
    try:
        return file_format.read_members(path, required=("metadata.json", "weights.msgpack", "rng.msgpack"),
                                        allowed=MEMBERS, check_meta=check_metadata, what="checkpoint file",
                                        exact_hashes=True)
    except CheckpointError:
        raise
    except ModelFileError as exc:
        raise CheckpointError(f"{path!r} is not a readable fncompiler checkpoint: {exc}") from exc


def check_metadata(meta, path="the file"):
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        hint = " (a model file: use fncompiler.models.load_model)" if found == file_format.FORMAT else ""
        raise CheckpointError(f"{path!r} is not a fncompiler checkpoint (metadata.json names format {found!r}, "
                              f"expected {FORMAT!r}){hint}.")
    version = meta.get("format_version")
    if not isinstance(version, str) or not re.fullmatch(r"\d{1,6}(\.\d{1,6})*", version):
        raise CheckpointError(f"{path!r} has an invalid format_version {version!r}.")
    if int(version.split(".")[0]) > int(FORMAT_VERSION.split(".")[0]):
        raise CheckpointError(f"{path!r} uses checkpoint format {version}, newer than this fncompiler reads "
                              f"({FORMAT_VERSION.split('.')[0]}.x): upgrade fncompiler.")
    for key in ("epoch", "step"):
        v = meta.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            raise CheckpointError(f"{path!r}: metadata.json has an invalid {key!r} {v!r}.")
    if not isinstance(meta.get("epoch"), int):
        raise CheckpointError(f"{path!r}: metadata.json has no 'epoch'.")
    lr = meta.get("learning_rate")
    if lr is not None and (not isinstance(lr, (int, float)) or isinstance(lr, bool) or not 0 <= lr < float("inf")):
        raise CheckpointError(f"{path!r}: metadata.json has an invalid 'learning_rate' {lr!r}.")
    return meta


def read_metadata(path):
    """The checkpoint's metadata.json (epoch, step, versions, logs), after the file's checks."""
    return json.loads(_read_members(path)["metadata.json"])


def _array(value, what, dtype, shape=None):
    if not isinstance(value, np.ndarray) or value.dtype != np.dtype(dtype) or \
            (shape is not None and tuple(value.shape) != tuple(shape)):
        found = f"{value.dtype}{list(value.shape)}" if isinstance(value, np.ndarray) else type(value).__name__
        raise CheckpointError(f"rng.msgpack: {what} must be a {dtype} array" +
                              (f" of shape {tuple(shape)}" if shape is not None else "") + f"; found {found}.")
    return value


def _int(value, what, lo=0, hi=2 ** 63):
    if isinstance(value, np.integer):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise CheckpointError(f"rng.msgpack: {what} must be an integer in [{lo}, {hi}]; found {value!r}.")
    return value


def _float(value, what):
    if isinstance(value, (np.floating, np.integer)):
        value = float(value)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise CheckpointError(f"rng.msgpack: {what} must be a number; found {value!r}.")
    return float(value)


def _read_rng(data):
    try:
        tree = flax_ser.msgpack_restore(data)
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"rng.msgpack is corrupt: {type(exc).__name__}: {exc}") from exc
    if not isinstance(tree, dict) or not set(tree) <= {"trainer_key", "numpy", "python", "layer_seeds"}:
        raise CheckpointError("rng.msgpack must hold a map with 'trainer_key', 'numpy', 'python' and "
                              "'layer_seeds'.")
    out = {}
    if "trainer_key" in tree:
        expected = jax.random.key_data(jax.random.key(0))
        out["trainer_key"] = _array(tree["trainer_key"], "the trainer's key", expected.dtype, expected.shape)
    npst = tree.get("numpy")
    if npst is not None:
        if not isinstance(npst, dict) or npst.get("bit_generator") != "MT19937":
            raise CheckpointError("rng.msgpack: 'numpy' must hold an MT19937 state.")
        out["numpy"] = ("MT19937", _array(npst.get("keys"), "numpy keys", np.uint32, (624,)),
                        _int(npst.get("pos"), "numpy pos", 0, 624), _int(npst.get("has_gauss"), "numpy has_gauss", 0, 1),
                        _float(npst.get("cached_gaussian"), "numpy cached_gaussian"))
    pyst = tree.get("python")
    if pyst is not None:
        if not isinstance(pyst, dict):
            raise CheckpointError("rng.msgpack: 'python' must be a map.")
        words = _array(pyst.get("state"), "python state", np.uint32, (625,))
        gauss = _float(pyst.get("gauss"), "python gauss") if pyst.get("has_gauss") else None
        out["python"] = (_int(pyst.get("version"), "python version", 0, 1000), tuple(int(w) for w in words), gauss)
    seeds = tree.get("layer_seeds")
    if seeds is not None:
        classes, values = seeds.get("classes") if isinstance(seeds, dict) else None, None
        if isinstance(seeds, dict) and isinstance(seeds.get("seeds"), np.ndarray):
            values = seeds["seeds"]
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes) or values is None or \
                values.dtype != np.int64 or values.shape != (len(classes),):
            raise CheckpointError("rng.msgpack: 'layer_seeds' must hold 'classes' (names) and 'seeds' (int64, one "
                                  "per class name).")
        out["layer_seeds"] = (classes, [int(v) for v in values])
    return out


def restore(path, model, restore_global_rng=True, restore_optimizer=True):
    """Restore a checkpoint into `model` (same architecture; compiled, for the optimizer state).

    Sets the weights, the optimizer state and learning rate, the train step's PRNG key and (unless
    `restore_global_rng=False`) NumPy's and Python's global RNG state. Everything is read and checked before
    anything is changed, so a bad file leaves the model as it was. Returns a CheckpointInfo: resume with
    `model.fit(..., initial_epoch=info.epoch)`.
    """
    path = os.fspath(path)
    members = _read_members(path)
    meta = json.loads(members["metadata.json"])
    try:
        weights = weights_io.read_weights(members["weights.msgpack"], model.weights)
    except ModelFileError as exc:
        raise CheckpointError(f"{path!r} does not match model {model.name!r}: {exc}") from exc
    rng = _read_rng(members["rng.msgpack"])
    opt_state = None
    optimizer = getattr(model, "optimizer", None)
    if restore_optimizer and "optimizer.msgpack" in members:
        if optimizer is None:
            raise CheckpointError(f"{path!r} holds optimizer state, but model {model.name!r} is not compiled: call "
                                  "model.compile(...) with the same optimizer before restore() (or pass "
                                  "restore_optimizer=False to restore only the weights and RNG state).")
        target = optimizer.init([v.value for v in model.trainable_weights])
        try:
            opt_state = weights_io.read_state(members["optimizer.msgpack"], target)
        except ModelFileError as exc:
            raise CheckpointError(f"{path!r}: the optimizer state does not match {type(optimizer).__name__} of model "
                                  f"{model.name!r}: {exc}") from exc
        opt_state = jax.tree_util.tree_map(jnp.asarray, opt_state)
    seeded = _seeded_layers(model)
    if "layer_seeds" in rng:
        classes, seeds = rng["layer_seeds"]
        ours = [type(l).__name__ for l, _ in seeded]
        if ours != classes:
            raise CheckpointError(f"{path!r} was saved from a model whose seeded layers are {classes}; model "
                                  f"{model.name!r} has {ours}: a different architecture.")
    # -- everything checked: now change the model --------------------------------------------------
    for var, value in zip(model.weights, weights):
        var.assign(value)
    trainer = getattr(model, "_trainer", None)
    if "layer_seeds" in rng:
        changed = False
        for (layer, attr), seed in zip(seeded, rng["layer_seeds"][1]):
            if getattr(layer, attr) != seed:
                object.__setattr__(layer, attr, seed)
                changed = True
        if changed and trainer is not None:
            # The seeds are constants in the compiled train step: let the next fit build (and trace) a new trainer,
            # which picks up the restored state below.
            if trainer.opt_state is not None and opt_state is None:
                model._restored_opt_state = trainer.opt_state
            if trainer.rng_state is not None and "trainer_key" not in rng:
                model._restored_rng_state = trainer.rng_state
            model._trainer = trainer = None
    if restore_optimizer and optimizer is not None and not getattr(optimizer, "has_schedule", True) and \
            meta.get("learning_rate") is not None:
        # fit() writes optimizer.learning_rate into the state at each epoch start (a callback such as
        # ReduceLROnPlateau may have changed it after the last step): restore the Python-side value.
        optimizer.learning_rate = float(meta["learning_rate"])
    if opt_state is not None:
        if trainer is not None:
            trainer.opt_state = opt_state
        else:
            model._restored_opt_state = opt_state
    if "trainer_key" in rng:
        key = jnp.asarray(rng["trainer_key"])
        if trainer is not None:
            trainer.rng_state = key
        else:
            model._restored_rng_state = key
    if restore_global_rng:
        if "numpy" in rng:
            np.random.set_state(rng["numpy"])
        if "python" in rng:
            random.setstate(rng["python"])
    return CheckpointInfo(path, int(meta["epoch"]), meta.get("step"), meta)
