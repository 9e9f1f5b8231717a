"""Registration of user classes for serialization, and custom-object scopes.

A model file names classes by string; those strings resolve only through: fncompiler's own classes,
classes registered with `register_serializable`, and the `custom_objects` the caller passes.
"""
import threading

_GLOBAL_CUSTOM_OBJECTS = {}
_GLOBAL_CUSTOM_NAMES = {}
_scope = threading.local()


def register_serializable(package="Custom", name=None):
    """Class decorator: make a custom layer/loss/metric loadable as "package>Name" without custom_objects."""
    def decorator(obj):
        registered = f"{package}>{name or obj.__name__}"
        if not hasattr(obj, "get_config"):
            raise ValueError(f"Cannot register {obj.__name__}: serializable classes must define get_config().")
        _GLOBAL_CUSTOM_OBJECTS[registered] = obj
        _GLOBAL_CUSTOM_NAMES[obj] = registered
        return obj
    return decorator


register_keras_serializable = register_serializable


def get_registered_name(obj):
    cls = obj if isinstance(obj, type) else type(obj)
    return _GLOBAL_CUSTOM_NAMES.get(cls, cls.__name__)


def get_registered_object(name, custom_objects=None):
    for source in (custom_objects or {}, _active_scope(), _GLOBAL_CUSTOM_OBJECTS):
        if name in source:
            return source[name]
    return None


def _active_scope():
    merged = {}
    for d in getattr(_scope, "stack", []):
        merged.update(d)
    return merged


class CustomObjectScope:
    """`with CustomObjectScope({"MyLayer": MyLayer}): load_model(...)`."""

    def __init__(self, custom_objects):
        self.custom_objects = dict(custom_objects or {})

    def __enter__(self):
        if not hasattr(_scope, "stack"):
            _scope.stack = []
        _scope.stack.append(self.custom_objects)
        return self

    def __exit__(self, *exc):
        _scope.stack.pop()
        return False


custom_object_scope = CustomObjectScope
