"""Keras 3 files: `.keras` archives (metadata.json, config.json, model.weights.h5) and `.weights.h5`.

The model is built from config.json through the same closed registries and checks as fncompiler's own files
(saving_api), after keras_config.normalize translated Keras-only options; weights are matched by Keras's HDF5
paths: each container's `layers/<group>` carries the layer's name in its `vars` attribute, so layers are found
by name (never by position), and a layer's own arrays sit at the sub-paths Keras gives its sub-objects
(`cell` of an RNN, `forward_layer`/`backward_layer` of Bidirectional, `query_dense`... of MultiHeadAttention).
"""
import re
import zipfile

from . import file_format, keras_config, keras_h5, serialization
from .errors import ModelFileError

KERAS_MEMBERS = ("metadata.json", "config.json", "model.weights.h5")

_RNN_CLASSES = {"RNN", "SimpleRNN", "LSTM", "GRU", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"}
_MHA_SUB = {"query": "query_dense", "key": "key_dense", "value": "value_dense",
            "attention_output": "output_dense"}


def is_keras_archive(path):
    """True when the zip at `path` lists model.weights.h5 (Keras's layout); only the zip directory is parsed."""
    try:
        with open(path, "rb") as raw:
            file_format.check_central_directory(raw, path)
            raw.seek(0)
            with zipfile.ZipFile(raw) as zf:
                return "model.weights.h5" in zf.namelist()
    except Exception:  # noqa: BLE001 - not a readable zip: the fncompiler reader reports why, with its checks
        return False


def is_hdf5(path):
    try:
        with open(path, "rb") as fh:
            return fh.read(8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


def check_keras_metadata(meta, path="the file"):
    if not isinstance(meta, dict) or not isinstance(meta.get("keras_version"), str):
        raise ModelFileError(f"{path!r}: metadata.json of a Keras archive must name its 'keras_version'.")
    if "safe_mode" in meta:
        from .errors import UnsafeConfigError
        raise UnsafeConfigError("metadata.json asks to set safe_mode: a model file cannot change how it is loaded.")
    major = meta["keras_version"].split(".")[0]
    if major != "3":
        raise ModelFileError(f"{path!r} was written by Keras {meta['keras_version']}; fncompiler reads Keras 3 "
                             "archives only.")


def read_keras_members(path):
    return file_format.read_members(path, required=KERAS_MEMBERS, allowed=KERAS_MEMBERS,
                                    check_meta=check_keras_metadata, what="Keras archive", hashes=False)


def _is_container(layer):
    functional = serialization.model_class("Functional")
    return functional is not None and isinstance(layer, functional)


def sub_paths(layer):
    """[(sub-path under the layer's group, [its weights])] in the layer's weight order, as Keras stores them."""
    cls = type(layer).__name__
    weights = list(layer.weights)
    if not weights:
        return []
    if cls == "MultiHeadAttention":
        groups = []
        for w in weights:
            part = w.path.split("/")[-2]
            sub = _MHA_SUB.get(part, part)
            if groups and groups[-1][0] == sub:
                groups[-1][1].append(w)
            else:
                groups.append((sub, [w]))
        return groups
    if cls == "Bidirectional":
        half = len(weights) // 2
        inner = "/cell" if type(layer.forward_layer).__name__ in _RNN_CLASSES else ""
        return [("forward_layer" + inner, weights[:half]), ("backward_layer" + inner, weights[half:])]
    if cls in _RNN_CLASSES:
        return [("cell", weights)]
    return [("", weights)]


def _snake(name):
    """Keras's snake_case of a class name (Dense -> dense, ConvLSTM1D -> conv_lstm1d)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def keras_group_names(model):
    """Keras's group name for each layer of a container: snake_case class name, '_<k>' from the second on."""
    used, out = {}, {}
    for layer in model.layers:
        cls = "Functional" if _is_container(layer) and type(layer).__name__ in ("Model", "Functional") \
            else type(layer).__name__
        base = _snake(cls)
        k = used.get(base, 0)
        used[base] = k + 1
        out[base if k == 0 else f"{base}_{k}"] = layer
    return out


def _join(*parts):
    return "/".join(p for p in parts if p)


def assign_from_tree(model, tree, member):
    """Set every weight of `model` from the checked HDF5 tree, by Keras's paths; ModelFileError on any mismatch
    (raised before any weight changes)."""
    pairs = []
    _match(model, tree, member, "", pairs)
    for w, a in pairs:
        w.assign(a.astype(w.dtype))


def _match(model, tree, member, prefix, pairs):
    by_name = {layer.name: layer for layer in model.layers}
    by_group = keras_group_names(model)
    groups = [g for g in tree.children(_join(prefix, "layers"))]
    # Names are used only when every group's name is a layer of this model (auto-generated names of another
    # session could otherwise point at the wrong layer); else Keras's own addressing, as Keras loads.
    by_name_complete = all(tree.names.get(_join(prefix, "layers", g)) in by_name for g in groups)
    seen = set()
    for g in groups:
        gpath = _join(prefix, "layers", g)
        name = tree.names.get(gpath)
        # By name first; a file whose layers were named differently (auto-generated names of another session)
        # falls back on Keras's own addressing: the k-th layer of that class in model.layers.
        layer = (by_name if by_name_complete else by_group).get(name if by_name_complete else g)
        if layer is None:
            if tree.vars_of(gpath) or any(p.startswith(gpath + "/") for p in tree.arrays):
                raise ModelFileError(f"{member}: group {gpath!r} holds weights of a layer named {name!r}, which the "
                                     f"model does not have (its layers: {sorted(by_name)}).")
            continue
        seen.add(layer.name)
        if _is_container(layer):
            _match(layer, tree, member, gpath, pairs)
            continue
        used = set()
        for sub, ws in sub_paths(layer):
            arrays = tree.vars_of(_join(gpath, sub))
            if len(arrays) != len(ws):
                raise ModelFileError(f"{member}: layer {layer.name!r} ({type(layer).__name__}) has {len(ws)} "
                                     f"weights at {_join(gpath, sub)!r} but the file holds {len(arrays)}.")
            for i, (w, a) in enumerate(zip(ws, arrays)):
                if tuple(a.shape) != tuple(w.shape):
                    raise ModelFileError(f"{member}: weight {_join(gpath, sub, 'vars', str(i))!r} of layer "
                                         f"{layer.name!r} has shape {tuple(a.shape)}; the layer expects "
                                         f"{tuple(w.shape)} ({w.path}).")
                used.add(_join(gpath, sub, "vars", str(i)))
            pairs.extend(zip(ws, arrays))
        extra = [p for p in tree.arrays if p.startswith(gpath + "/") and p not in used]
        if extra:
            raise ModelFileError(f"{member}: the file holds weights {extra[:4]} for layer {layer.name!r} that "
                                 f"fncompiler's {type(layer).__name__} does not have.")
    missing = [layer.name for layer in model.layers if layer.weights and layer.name not in seen]
    if missing:
        raise ModelFileError(f"{member}: no weights in the file for layers {missing}.")


def load_keras_weights(model, path):
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        if size > file_format.LIMITS["member_bytes"]:
            raise ModelFileError(f"{path!r} is {size} bytes, over the {file_format.LIMITS['member_bytes']} limit.")
        fh.seek(0)
        data = fh.read()
    tree = keras_h5.read_tree(data, repr(path))
    assign_from_tree(model, tree, repr(path))


def keras_config_to_ours(config, path):
    """config.json of a Keras archive -> the config deserialize_object takes (see keras_config.normalize)."""
    return keras_config.normalize(config, f"config.json of {path!r}")
