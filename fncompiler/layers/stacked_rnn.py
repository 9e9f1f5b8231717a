"""StackedRNNCells: a list of RNN cells run as one cell, each step feeding a cell's output to the next.

`RNN([cell1, cell2])` wraps the list in a StackedRNNCells (as Keras does). The states are nested, one entry
per cell (`state_size` `[[u1, u1], [u2, u2]]` for two LSTM cells), so `RNN(..., return_state=True)` returns
`[output, [h1, c1], [h2, c2]]` and `initial_state` takes the same nesting (a flat list of all the states, in
that order, is accepted too). Weights: each cell's, in cell order.
"""
import jax.numpy as jnp

from .layer import Layer
from . import nested_layers
from .rnn_cells import DropoutCell, accepts_training


def _sizes(size):
    return list(size) if isinstance(size, (list, tuple)) else [size]


def _output_dim(cell):
    size = getattr(cell, "output_size", None)
    return size if size is not None else _sizes(cell.state_size)[0]


class StackedRNNCells(Layer):
    """Wraps `cells` (RNN cell instances) so that they behave as one cell of an `RNN`."""
    batch_independent = True
    random_in_training = property(lambda self: any(getattr(c, "random_in_training", True) for c in self.cells))

    def __init__(self, cells, **kwargs):
        super().__init__(**kwargs)
        if isinstance(cells, Layer) or not isinstance(cells, (list, tuple)) or not cells:
            raise ValueError(f"StackedRNNCells: `cells` must be a non-empty list of RNN cells; received {cells!r}.")
        cells = [nested_layers.deserialize_layer(c, "StackedRNNCells") if isinstance(c, dict) else c for c in cells]
        for cell in cells:
            if not hasattr(cell, "call"):
                raise ValueError(f"All cells must have a `call` method. Received cell without a `call` method: {cell}")
            if not hasattr(cell, "state_size"):
                raise ValueError("All cells must have a `state_size` attribute. Received cell without a "
                                 f"`state_size`: {cell}")
        self.cells = list(cells)

    @property
    def state_size(self):
        return [c.state_size for c in self.cells]

    @property
    def output_size(self):
        return _output_dim(self.cells[-1])

    def get_initial_state(self, batch_size=None, dtype=None):
        dtype = dtype or self.compute_dtype
        states = []
        for cell in self.cells:
            fn = getattr(cell, "get_initial_state", None)
            if fn is not None:
                try:
                    s = fn(batch_size=batch_size, dtype=dtype)
                except TypeError:
                    s = fn(batch_size=batch_size)
            elif isinstance(cell.state_size, (list, tuple)):
                s = [jnp.zeros((batch_size, d), dtype) for d in cell.state_size]
            else:
                s = jnp.zeros((batch_size, cell.state_size), dtype)
            if isinstance(cell.state_size, (list, tuple)) and not isinstance(s, (list, tuple)):
                s = [s]
            states.append(list(s) if isinstance(s, (list, tuple)) else s)
        return states

    def build(self, input_shape):
        shape = tuple(input_shape)
        for cell in self.cells:
            if isinstance(cell, Layer) and not cell.built:
                cell.build(shape)
                cell.built = True
            shape = (shape[0], _output_dim(cell))

    def call(self, inputs, states, training=None):
        new_states = []
        for cell, s in zip(self.cells, states):
            nested = isinstance(s, (list, tuple))
            kwargs = {"training": training} if accepts_training(cell) else {}
            inputs, s = cell.call(inputs, list(s) if nested else [s], **kwargs)
            s = list(s) if isinstance(s, (list, tuple)) else [s]
            new_states.append(s if nested or len(s) != 1 else s[0])
        return inputs, new_states

    def scan_step(self, seq, training):
        """For `RNN`'s loop: (time-major inputs, step(x_t, states) -> (output, new states)). The built-in cells'
        dropout masks are drawn here, once per call (fixed over time, as for a single cell)."""
        masks, dim = [], seq.shape[-1]
        for cell in self.cells:
            masks.append(cell._dropout_masks(seq.shape[0], dim, seq.dtype, training)
                         if isinstance(cell, DropoutCell) else None)
            dim = _output_dim(cell)

        def step(x, states):
            new_states = []
            for cell, s, m in zip(self.cells, states, masks):
                nested = isinstance(s, (list, tuple))
                s = list(s) if nested else [s]
                if m is not None:
                    x, s = cell._recurrent_step(cell._project_inputs(x, m[0]), s, m[1])
                else:
                    kwargs = {"training": training} if accepts_training(cell) else {}
                    x, s = cell.call(x, s, **kwargs)
                s = list(s) if isinstance(s, (list, tuple)) else [s]
                new_states.append(s if nested or len(s) != 1 else s[0])
            return x, new_states
        return jnp.swapaxes(seq, 0, 1), step

    def get_config(self):
        return {**super().get_config(), "cells": [nested_layers.serialize_layer(c) for c in self.cells]}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        cells = [nested_layers.deserialize_layer(c, "StackedRNNCells") for c in config.pop("cells")]
        return cls(cells, **config)
