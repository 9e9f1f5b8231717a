"""Serialization registry for learning-rate schedules (no import-by-name)."""

from .base import LearningRateSchedule
from .cosine import CosineDecay, CosineDecayRestarts
from .exponential import ExponentialDecay, InverseTimeDecay
from .piecewise import PiecewiseConstantDecay
from .polynomial import PolynomialDecay

CLASSES = {
    cls.__name__: cls
    for cls in (ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay, PolynomialDecay,
                CosineDecay, CosineDecayRestarts)
}


def serialize(schedule):
    """``{"class_name", "config"}`` for a registered schedule."""
    if not isinstance(schedule, LearningRateSchedule):
        raise TypeError(
            "serialize() expected a LearningRateSchedule; received "
            f"{schedule!r} of type {type(schedule).__name__}."
        )
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config, custom_objects=None):
    """Inverse of ``serialize`` (names resolve through this registry and ``custom_objects``)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise TypeError(
            "deserialize() expected a dict with keys 'class_name' and 'config'; "
            f"received {config!r}."
        )
    name = config["class_name"]
    cls = (custom_objects or {}).get(name) or CLASSES.get(name)
    if cls is None:
        raise ValueError(
            f"Unknown learning rate schedule: {name!r}. Expected one of: "
            f"{', '.join(sorted(CLASSES))}."
        )
    return cls.from_config(config.get("config", {}))
