"""Shared lookup for closed registries (losses, metrics): configs resolve only through the given tables."""


def deserialize_from(config, *, classes, get, unknown, resolve_function, wrapper_cls, custom_objects=None):
    """Inverse of a registry's `serialize`: a name, or {"class_name", "config"} resolved through `classes`
    (plus `custom_objects`); {"class_name": "function"} through `resolve_function`."""
    if isinstance(config, str):
        return get(config)
    if not isinstance(config, dict) or "class_name" not in config:
        raise TypeError("deserialize() expected a dict with keys 'class_name' and 'config' (as produced by "
                        f"serialize()); received {config!r}.")
    class_name = config["class_name"]
    inner = config.get("config", {})
    if class_name == "function":
        return resolve_function(inner, custom_objects)
    custom_objects = custom_objects or {}
    cls = custom_objects.get(class_name) or classes.get(class_name)
    if cls is None:
        raise unknown(class_name)
    if cls is wrapper_cls:
        return cls.from_config(inner, custom_objects=custom_objects)
    return cls.from_config(inner)
