"""Learning-rate schedules (Keras ``keras.optimizers.schedules``), jnp-pure."""

from .base import LearningRateSchedule
from .cosine import CosineDecay, CosineDecayRestarts
from .exponential import ExponentialDecay, InverseTimeDecay
from .piecewise import PiecewiseConstantDecay
from .polynomial import PolynomialDecay
from .registry import deserialize, serialize

__all__ = [
    "LearningRateSchedule", "ExponentialDecay", "InverseTimeDecay", "PiecewiseConstantDecay",
    "PolynomialDecay", "CosineDecay", "CosineDecayRestarts", "serialize", "deserialize",
]
