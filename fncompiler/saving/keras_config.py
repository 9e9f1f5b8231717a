"""Keras 3 config.json -> the config fncompiler's classes take (the layout is already Keras's; only the options
Keras has and fncompiler does not need translating).

Keras writes some options fncompiler's classes do not take. Each is listed here with the value at which it does
nothing; a file giving any other value is refused naming the layer and the option, rather than silently
computing something else. Nothing here imports or calls anything a file names.
"""
from .errors import ModelFileError

# option -> the value at which Keras behaves as fncompiler does (a missing key means the same)
_NEUTRAL = {
    "quantization_config": None,
    "use_gate": False,
    "sliding_window": None,
    "synchronized": False,
    "renorm": False,
    "renorm_clipping": None,
    "input_axes": None,
    "output_axes": None,
    "optional": False,
    "lora_rank": None,
    "lora_alpha": None,
    "use_ema": False,
    "ema_overwrite_frequency": None,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
}
_DROP_ALWAYS = {"shared_object_id"}
_DROP_WITH = {"renorm_momentum": ("renorm", False), "ema_momentum": ("use_ema", False)}  # meaningless while the option it belongs to is off


def _normalize_inner(inner, where):
    out = {}
    for key, value in inner.items():
        if key in _DROP_ALWAYS:
            continue
        if key in _DROP_WITH:
            owner, off = _DROP_WITH[key]
            if inner.get(owner, off) == off:
                continue
        if key in _NEUTRAL:
            if value != _NEUTRAL[key]:
                raise ModelFileError(f"{where}: the Keras option {key}={value!r} is not supported by fncompiler "
                                     f"(only {key}={_NEUTRAL[key]!r}, the default, is).")
            continue
        out[key] = normalize(value, f"{where}.{key}")
    return out


_MODEL_CLASSES = ("Functional", "Model")
_KEEP_BUILD = ("Sequential",)


def shift_nested_refs(obj, delta):
    """Keras numbers a nested Functional's calls from 1 in input_layers/output_layers (node 0 is the model's own
    construction) but from 0 in inbound_nodes; fncompiler numbers both from 0. Shift the references to nested
    models in `obj`'s input/output layers by `delta` (-1 reading a Keras config, +1 writing one), in place."""
    inner = obj.get("config")
    if obj.get("class_name") not in _MODEL_CLASSES or not isinstance(inner, dict) or \
            not isinstance(inner.get("layers"), list):
        return
    nested = {layer.get("name") for layer in inner["layers"]
              if isinstance(layer, dict) and layer.get("class_name") in _MODEL_CLASSES}

    def fix(ref):
        if isinstance(ref, list) and len(ref) == 3 and isinstance(ref[0], str) and isinstance(ref[1], int):
            if ref[0] not in nested:
                return ref
            if ref[1] + delta < 0:
                raise ModelFileError(f"config.json: the reference {ref} to the nested model {ref[0]!r} names its "
                                     "construction node, not a call.")
            return [ref[0], ref[1] + delta, ref[2]]
        if isinstance(ref, list):
            return [fix(r) for r in ref]
        if isinstance(ref, dict):
            return {k: fix(v) for k, v in ref.items()}
        return ref
    for key in ("input_layers", "output_layers"):
        if key in inner:
            inner[key] = fix(inner[key])


def normalize(obj, where="config.json"):
    """A copy of a Keras config tree with Keras-only options removed (or refused when they are not neutral)."""
    if isinstance(obj, list):
        return [normalize(v, where) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "class_name" in obj and isinstance(obj.get("config"), dict):
        inner = obj["config"]
        name = inner.get("name", obj.get("name"))
        label = f"{where} ({obj['class_name']} {name!r})" if isinstance(name, str) else f"{where} ({obj['class_name']})"
        out = {k: normalize(v, where) for k, v in obj.items() if k not in ("config",) and k not in _DROP_ALWAYS}
        out["config"] = _normalize_inner(inner, label)
        if str(out.get("module", "")).startswith("keras") and out["class_name"] not in _KEEP_BUILD:
            out.pop("build_config", None)  # the functional graph builds built-in layers; Keras's shapes_dict differs
        shift_nested_refs(out, -1)
        return out
    return {k: normalize(v, where) for k, v in obj.items() if k not in _DROP_ALWAYS}
