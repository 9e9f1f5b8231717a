"""``LearningRateSchedule`` base class."""

import jax.numpy as jnp


class LearningRateSchedule:
    """A jnp-pure map ``step -> learning rate`` evaluated inside the jitted train step.

    Subclasses implement ``__call__(step)`` (``step`` is a scalar array, usually
    the optimizer's int32 iteration count) and ``get_config()``.
    """

    def __call__(self, step):
        raise NotImplementedError(
            f"{self.__class__.__name__} must implement __call__(step) returning a scalar array."
        )

    def get_config(self):
        raise NotImplementedError(
            f"{self.__class__.__name__} must implement get_config() so it can be serialized."
        )

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{self.__class__.__name__} {self.get_config()}>"


def check_positive_steps(arg_name, value):
    if value <= 0:
        raise ValueError(f"Argument `{arg_name}` must be > 0. Received: {arg_name}={value}")


def as_float(x):
    return jnp.asarray(x, jnp.float32)
