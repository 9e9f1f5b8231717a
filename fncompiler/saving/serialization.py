"""Objects <-> JSON-able configs, resolving class names only through fncompiler's registry.

No module path or callable named by a file is ever imported or called: a config's "module" field is
informational. Classes come from fncompiler's own layers and models, the caller's `custom_objects`, and
classes registered with `register_serializable`.
"""
from .errors import ModelFileError, UnsafeConfigError
from . import object_registration


# The model classes, each registered by its own module in fncompiler.models when it is defined: saving never
# imports the models package (the arrows go models -> saving), so it knows Model, Functional and Sequential
# only through this table.
_MODEL_CLASSES = {}


def register_model_class(name, cls):
    """Called by fncompiler/models/model.py ("Model"), functional.py ("Functional") and sequential.py
    ("Sequential") right after each class is defined."""
    _MODEL_CLASSES[name] = cls


def model_class(name):
    """The registered model class "Model", "Functional" or "Sequential" (None before fncompiler.models loads:
    then no model object exists either)."""
    return _MODEL_CLASSES.get(name)


def builtin_classes():
    from .. import layers
    classes = dict(layers._public_layer_classes())
    for name, registered in (("Functional", "Functional"), ("Sequential", "Sequential"), ("Model", "Functional")):
        if registered in _MODEL_CLASSES:      # a config's "Model" is a functional model, as in Keras
            classes[name] = _MODEL_CLASSES[registered]
    return classes


def _is_instance(obj, name):
    cls = _MODEL_CLASSES.get(name)
    return cls is not None and isinstance(obj, cls)


def serialize_object(obj):
    """{"module", "class_name", "config", "registered_name"} for a layer or model."""
    cls = type(obj)
    class_name = "Functional" if _is_instance(obj, "Functional") and cls.__name__ != "Sequential" and \
        cls.__name__ in ("Functional", "Model") else cls.__name__
    registered = object_registration.get_registered_name(obj)
    builtin = builtin_classes().get(class_name) is cls or class_name == "Functional"
    try:
        config = obj.get_config()
    except NotImplementedError as exc:
        raise NotImplementedError(f"{cls.__name__} cannot be serialized: implement get_config().") from exc
    out = {"module": "fncompiler.layers" if builtin else cls.__module__, "class_name": class_name,
           "config": config, "registered_name": None if builtin else registered}
    build = obj.get_build_config() if hasattr(obj, "get_build_config") else None
    if build is not None and not builtin:
        out["build_config"] = build
    return out


def resolve_class(class_name, registered_name=None, custom_objects=None):
    """The class a config names: registered name or class name in custom_objects / the custom-object scope /
    @register_serializable classes, then fncompiler's own layers and models. Nothing else, ever."""
    for name in (registered_name, class_name):
        if not name:
            continue
        if not isinstance(name, str):
            raise UnsafeConfigError(f"Class names in a model config must be strings; received {name!r}.")
        obj = object_registration.get_registered_object(name, custom_objects)
        if obj is not None:
            return obj
    cls = builtin_classes().get(class_name)
    if cls is not None:
        return cls
    raise UnsafeConfigError(
        f"Unknown class {class_name!r} in the model config. fncompiler resolves class names only among its own "
        f"layers and models, classes registered with @fncompiler.saving.register_serializable, and the "
        f"custom_objects you pass: load_model(path, custom_objects={{{class_name!r}: {class_name}}}). Nothing is "
        "imported by name from a file. Built-in classes fncompiler supports: "
        f"{', '.join(sorted(builtin_classes()))}.")


_LAMBDA_CODE_KEYS = ("code", "bytecode", "closure", "defaults", "function_type", "module")


def _check_lambda_config(inner):
    """Refuse a Lambda config that carries code (Keras's base64 marshal bytecode) instead of a function name."""
    fn = inner.get("function")
    name = inner.get("name")
    carries_code = False
    if isinstance(fn, dict):
        fn_config = fn.get("config")
        if fn.get("class_name") != "__lambda__" or not isinstance(fn_config, dict) or \
                any(k in fn_config for k in _LAMBDA_CODE_KEYS):
            carries_code = True
    elif isinstance(fn, (list, tuple)):
        carries_code = True  # Keras 2: [base64 bytecode, defaults, closure]
    elif not isinstance(fn, str):
        carries_code = True
    if any(k in inner for k in ("function_type", "output_shape_type", "module")):
        carries_code = True
    if carries_code:
        raise UnsafeConfigError(
            f"Lambda layer {name!r}: its config gives the function as code (e.g. base64 marshal bytecode) or as a "
            "module path, not by name. fncompiler never runs code from a model file: rebuild the layer in Python, or save the model "
            "with fncompiler (which stores only the function's name) and pass the function with "
            "custom_objects={name: fn}.")


def _check_build_shape(shape, class_name):
    def dims_ok(s):
        return isinstance(s, list) and all(d is None or (isinstance(d, int) and not isinstance(d, bool) and d >= 0)
                                           for d in s)
    if dims_ok(shape) or (isinstance(shape, list) and shape and all(dims_ok(s) for s in shape)):
        return
    raise ModelFileError(f"The build_config of {class_name!r} has an invalid input_shape {shape!r}.")


def deserialize_object(config, custom_objects=None, safe_mode=True):
    """A layer or model from {"class_name", "config", "registered_name"?, "module"?, "build_config"?}.

    Refuses (UnsafeConfigError) any class outside the registries and any Lambda carrying code; a config whose
    values the class rejects raises ModelFileError (a ValueError) naming the class.
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise UnsafeConfigError(f"Expected a layer config with 'class_name' and 'config'; received "
                                f"{type(config).__name__}.")
    class_name = config["class_name"]
    if not isinstance(class_name, str):
        raise UnsafeConfigError(f"'class_name' must be a string; received {type(class_name).__name__}.")
    inner = config.get("config", {})
    if not isinstance(inner, dict):
        raise UnsafeConfigError(f"The config of {class_name!r} must be a dict; received {type(inner).__name__}.")
    registered_name = config.get("registered_name")
    if registered_name is not None and not isinstance(registered_name, str):
        raise UnsafeConfigError(f"'registered_name' of {class_name!r} must be a string or null; received "
                                f"{type(registered_name).__name__}.")
    cls = resolve_class(class_name, registered_name, custom_objects)
    from ..layers.core import Lambda
    from ..layers.layer import Layer
    model_base = _MODEL_CLASSES.get("Model")
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise UnsafeConfigError(f"The model config names {class_name!r} as a layer, but it resolves to "
                                f"{type(cls).__name__} {getattr(cls, '__name__', cls)!r}, which is not a Layer "
                                "class: refusing to call it.")
    if issubclass(cls, Lambda):
        _check_lambda_config(inner)
        return cls.from_config(inner, safe_mode=safe_mode, custom_objects=custom_objects)
    try:
        if model_base is not None and issubclass(cls, model_base):
            obj = cls.from_config(inner, custom_objects=custom_objects)
        else:
            obj = cls.from_config(inner)
    except TypeError as exc:
        raise ModelFileError(f"Could not rebuild {class_name!r} from its config: {exc}. If this is a custom class, "
                             "make sure get_config() returns every argument __init__ needs.") from exc
    build = config.get("build_config")
    if build is not None and not isinstance(build, dict):
        raise ModelFileError(f"The build_config of {class_name!r} must be a dict; received {type(build).__name__}.")
    if build and hasattr(obj, "build") and not getattr(obj, "built", True):
        shape = build.get("input_shape")
        _check_build_shape(shape, class_name)
        if shape and isinstance(shape[0], list):
            shape = [tuple(s) for s in shape]
        else:
            shape = tuple(shape)
        obj.build(shape)
        obj.built = True
    return obj


def serialize_compile_arg(value, serialize_leaf):
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {k: serialize_compile_arg(v, serialize_leaf) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [serialize_compile_arg(v, serialize_leaf) for v in value]
    return serialize_leaf(value)


def deserialize_compile_arg(value, get_leaf):
    if value is None:
        return None
    if isinstance(value, dict) and "class_name" not in value:
        return {k: deserialize_compile_arg(v, get_leaf) for k, v in value.items()}
    if isinstance(value, list):
        return [deserialize_compile_arg(v, get_leaf) for v in value]
    if isinstance(value, str):
        return value  # names are resolved by compile() itself, in context (e.g. "accuracy")
    return get_leaf(value)
