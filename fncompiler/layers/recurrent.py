"""Recurrent layers: SimpleRNN, LSTM, GRU, the generic RNN(cell) (a list of cells runs as one StackedRNNCells,
stacked_rnn.py), their cells, and Bidirectional.

Weights follow Keras 3 exactly (the cell owns them, so `lstm.weights` is [kernel, recurrent_kernel, bias]
with gates i, f, c, o for the LSTM and z, r, h for the GRU), so Keras-trained weights load with
`set_weights`. The time loop is one `jax.lax.scan`: the input projection `x @ kernel + bias` of every
step is computed up front as one matmul, and the scan body only does the recurrent part (in inference on CPU
only while that projection is small, UP_FRONT_PROJECTION_MAX_BYTES; larger, each step projects its own input).

Masking follows Keras's JAX backend: at a masked step the states are carried over unchanged and the
output is the previous output (the first state), or zeros with `zero_output_for_mask=True`.
"""
import inspect

import jax
import jax.numpy as jnp

from .. import activations, constraints, initializers, regularizers
from .. import scope as scope_lib
from ..utils import random as random_utils
from .input_spec import InputSpec
from .layer import Layer


def _ser(module, obj):
    return None if obj is None else module.serialize(obj)


def _rng(seed):
    scope = scope_lib.current()
    key = scope.next_rng() if scope is not None else None
    if key is None:
        return jax.random.key(seed % (2 ** 31))
    return jax.random.fold_in(key, seed % (2 ** 31))


def _dropout_mask(key, rate, shape, dtype):
    """Inverted-dropout multiplier: 0 with probability `rate`, 1/(1-rate) otherwise."""
    if rate >= 1:
        return jnp.zeros(shape, dtype)
    keep = jax.random.bernoulli(key, 1.0 - rate, shape)
    return keep.astype(dtype) / jnp.asarray(1.0 - rate, dtype)


def _layer_classes():
    """This package's own layer classes by name (cells included): the only classes configs may name."""
    from .. import layers
    classes = dict(layers._public_layer_classes())
    classes.update({c.__name__: c for c in (SimpleRNNCell, LSTMCell, GRUCell, RNN, SimpleRNN, LSTM, GRU,
                                            Bidirectional)})
    return classes


def _serialize_layer(layer):
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def _deserialize_layer(config, who):
    if isinstance(config, Layer):
        return config
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"{who}: expected a layer config dict with 'class_name' and 'config'; received {config!r}.")
    cls = _layer_classes().get(config["class_name"])
    if cls is None:
        raise ValueError(f"{who}: unknown layer class {config['class_name']!r}. Only fncompiler's own layer classes "
                         "can be rebuilt from a config here.")
    return cls.from_config(dict(config.get("config", {})))


# ==================================================================================================
# Cells
# Inference on CPU projects the inputs of all time steps up front (one matmul before the scan) only while that
# projection, (time, batch, gate units), stays this small; larger, each step projects its own inputs inside
# the scan. Measured on the ticket model's predict step (benchmarks/fit.py; body LSTM: 100 steps, 64 gate
# units; 2-core CPU): batch 128 (3.3 MB) 6.1 ms up front vs 7.0 ms in the loop, batch 256 (6.6 MB) 19.2 vs
# 11.6 ms, batch 1024 80 vs 54 ms; batch 1 0.19 vs 0.29 ms. Training always projects up front (its backward
# pass needs the projections of every step; measured 1.23x faster for the ticket model), and so do unknown or
# symbolic sizes (an export's symbolic batch), which cannot be compared with the limit.
UP_FRONT_PROJECTION_MAX_BYTES = 4 * 2 ** 20


def _project_up_front(cell, seq, training):
    if training or jax.default_backend() != "cpu":
        return True
    kernel = getattr(cell, "kernel", None)
    if kernel is None or not all(isinstance(d, int) for d in seq.shape):    # unknown or symbolic (export) sizes
        return True
    size = seq.shape[0] * seq.shape[1] * kernel.shape[-1] * jnp.dtype(seq.dtype).itemsize
    return size <= UP_FRONT_PROJECTION_MAX_BYTES


# ==================================================================================================
class _DropoutCell(Layer):
    """Shared parts of the built-in cells: dropout masks, initial state, the split into input projection
    (done for all steps at once) and recurrent step (inside the scan)."""
    batch_independent = True
    random_in_training = property(lambda self: bool(self.dropout or self.recurrent_dropout))  # dropout draws

    def __init__(self, units, dropout=0.0, recurrent_dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or isinstance(units, bool) or units <= 0:
            raise ValueError("Received an invalid value for argument `units`, expected a positive integer, "
                             f"got {units}.")
        self.units = units
        self.dropout = min(1.0, max(0.0, float(dropout)))
        self.recurrent_dropout = min(1.0, max(0.0, float(recurrent_dropout)))
        self.seed = seed
        self._seed = seed if seed is not None else random_utils.next_seed()

    def get_initial_state(self, batch_size=None, dtype=None):
        return [jnp.zeros((batch_size, s), dtype or self.compute_dtype) for s in self._state_sizes()]

    def _state_sizes(self):
        s = self.state_size
        return list(s) if isinstance(s, (list, tuple)) else [s]

    def _dropout_masks(self, batch, input_dim, dtype, training):
        """(input mask (batch, input_dim) or None, recurrent mask (batch, units) or None); fixed over time."""
        dp = rdp = None
        if training and (0 < self.dropout or 0 < self.recurrent_dropout):
            k1, k2 = jax.random.split(_rng(self._seed))
            if 0 < self.dropout:
                dp = _dropout_mask(k1, self.dropout, (batch, input_dim), dtype)
            if 0 < self.recurrent_dropout:
                rdp = _dropout_mask(k2, self.recurrent_dropout, (batch, self.units), dtype)
        return dp, rdp

    def _w(self, var, dtype):
        return None if var is None else var.value.astype(dtype)

    def call(self, inputs, states, training=None):
        """One step: inputs (batch, features), states a list -> (output, new states list)."""
        single = not isinstance(states, (list, tuple))
        states = [states] if single else list(states)
        dp, rdp = self._dropout_masks(inputs.shape[0], inputs.shape[-1], inputs.dtype, training)
        out, new_states = self._recurrent_step(self._project_inputs(inputs, dp), states, rdp)
        return out, (new_states[0] if single else new_states)

    def _dropout_config(self):
        return {"dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout, "seed": self.seed}


class SimpleRNNCell(_DropoutCell):
    """`h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)`."""

    def __init__(self, units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 **kwargs):
        super().__init__(units, dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed, **kwargs)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.state_size = units
        self.output_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel",
                                      initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), name="recurrent_kernel",
                                                initializer=self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint)
        self.bias = self.add_weight(shape=(self.units,), name="bias", initializer=self.bias_initializer,
                                    regularizer=self.bias_regularizer, constraint=self.bias_constraint) \
            if self.use_bias else None

    def _project_inputs(self, x, dp):
        if dp is not None:
            x = x * (dp if x.ndim == 2 else dp[:, None, :])
        y = jnp.matmul(x, self._w(self.kernel, x.dtype))
        if self.bias is not None:
            y = y + self._w(self.bias, x.dtype)
        return y

    def _recurrent_step(self, proj, states, rdp):
        h = states[0]
        hr = h if rdp is None else h * rdp
        out = self.activation(proj + jnp.matmul(hr, self._w(self.recurrent_kernel, proj.dtype)))
        return out, [out]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias, **_init_reg_config(self), **self._dropout_config()}


class LSTMCell(_DropoutCell):
    """Keras's LSTM step, gates i, f, c, o: `c_t = f * c_{t-1} + i * tanh(z_c)`, `h_t = o * tanh(c_t)`."""

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, **kwargs):
        kwargs.pop("implementation", None)
        super().__init__(units, dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed, **kwargs)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = use_bias
        self.unit_forget_bias = unit_forget_bias
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.state_size = [units, units]
        self.output_size = units

    def build(self, input_shape):
        u = self.units
        self.kernel = self.add_weight(shape=(input_shape[-1], 4 * u), name="kernel",
                                      initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight(shape=(u, 4 * u), name="recurrent_kernel",
                                                initializer=self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint)
        if self.use_bias:
            if self.unit_forget_bias:
                base = self.bias_initializer

                def bias_initializer(shape, dtype="float32"):
                    return jnp.concatenate([jnp.asarray(base((u,), dtype=dtype), dtype), jnp.ones((u,), dtype),
                                            jnp.asarray(base((2 * u,), dtype=dtype), dtype)])
            else:
                bias_initializer = self.bias_initializer
            self.bias = self.add_weight(shape=(4 * u,), name="bias", initializer=bias_initializer,
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint)
        else:
            self.bias = None

    def _project_inputs(self, x, dp):
        if dp is not None:
            x = x * (dp if x.ndim == 2 else dp[:, None, :])
        y = jnp.matmul(x, self._w(self.kernel, x.dtype))
        if self.bias is not None:
            y = y + self._w(self.bias, x.dtype)
        return y

    def _recurrent_step(self, proj, states, rdp):
        h, c = states[0], states[1]
        hr = h if rdp is None else h * rdp
        z = proj + jnp.matmul(hr, self._w(self.recurrent_kernel, proj.dtype))
        z0, z1, z2, z3 = jnp.split(z, 4, axis=-1)
        i = self.recurrent_activation(z0)
        f = self.recurrent_activation(z1)
        c = f * c + i * self.activation(z2)
        o = self.recurrent_activation(z3)
        h = o * self.activation(c)
        return h, [h, c]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": activations.serialize(self.activation),
                "recurrent_activation": activations.serialize(self.recurrent_activation), "use_bias": self.use_bias,
                "unit_forget_bias": self.unit_forget_bias, **_init_reg_config(self), **self._dropout_config()}


class GRUCell(_DropoutCell):
    """Keras's GRU step, gates z, r, h: `h_t = z * h_{t-1} + (1 - z) * hh`. With `reset_after=True` (the
    Keras 3 default) the reset gate multiplies `h_{t-1} @ recurrent_kernel_h + recurrent_bias_h` and the bias
    has shape (2, 3 * units) (input bias, recurrent bias); otherwise it multiplies h_{t-1} before the matmul."""

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0, recurrent_dropout=0.0,
                 reset_after=True, seed=None, **kwargs):
        kwargs.pop("implementation", None)
        super().__init__(units, dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed, **kwargs)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = use_bias
        self.reset_after = reset_after
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.state_size = units
        self.output_size = units

    def build(self, input_shape):
        u = self.units
        self.kernel = self.add_weight(shape=(input_shape[-1], 3 * u), name="kernel",
                                      initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight(shape=(u, 3 * u), name="recurrent_kernel",
                                                initializer=self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint)
        self.bias = self.add_weight(shape=(2, 3 * u) if self.reset_after else (3 * u,), name="bias",
                                    initializer=self.bias_initializer, regularizer=self.bias_regularizer,
                                    constraint=self.bias_constraint) if self.use_bias else None

    def _project_inputs(self, x, dp):
        if dp is not None:
            x = x * (dp if x.ndim == 2 else dp[:, None, :])
        y = jnp.matmul(x, self._w(self.kernel, x.dtype))
        if self.bias is not None:
            b = self._w(self.bias, x.dtype)
            y = y + (b[0] if self.reset_after else b)
        return y

    def _recurrent_step(self, proj, states, rdp):
        u = self.units
        h = states[0]
        hr = h if rdp is None else h * rdp
        rk = self._w(self.recurrent_kernel, proj.dtype)
        x_z, x_r, x_h = proj[..., :u], proj[..., u:2 * u], proj[..., 2 * u:]
        if self.reset_after:
            inner = jnp.matmul(hr, rk)
            if self.bias is not None:
                inner = inner + self._w(self.bias, proj.dtype)[1]
            z = self.recurrent_activation(x_z + inner[..., :u])
            r = self.recurrent_activation(x_r + inner[..., u:2 * u])
            hh = self.activation(x_h + r * inner[..., 2 * u:])
        else:
            inner = jnp.matmul(hr, rk[:, :2 * u])
            z = self.recurrent_activation(x_z + inner[..., :u])
            r = self.recurrent_activation(x_r + inner[..., u:])
            hh = self.activation(x_h + jnp.matmul(r * hr, rk[:, 2 * u:]))
        h = z * h + (1 - z) * hh
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": activations.serialize(self.activation),
                "recurrent_activation": activations.serialize(self.recurrent_activation), "use_bias": self.use_bias,
                **_init_reg_config(self), **self._dropout_config(), "reset_after": self.reset_after}


def _init_reg_config(obj):
    return {"kernel_initializer": initializers.serialize(obj.kernel_initializer),
            "recurrent_initializer": initializers.serialize(obj.recurrent_initializer),
            "bias_initializer": initializers.serialize(obj.bias_initializer),
            "kernel_regularizer": _ser(regularizers, obj.kernel_regularizer),
            "recurrent_regularizer": _ser(regularizers, obj.recurrent_regularizer),
            "bias_regularizer": _ser(regularizers, obj.bias_regularizer),
            "kernel_constraint": _ser(constraints, obj.kernel_constraint),
            "recurrent_constraint": _ser(constraints, obj.recurrent_constraint),
            "bias_constraint": _ser(constraints, obj.bias_constraint)}


# ==================================================================================================
# The RNN layer
# ==================================================================================================
def _accepts_training(cell):
    try:
        return "training" in inspect.signature(type(cell).call).parameters
    except (TypeError, ValueError):
        return False


class RNN(Layer):
    """Runs a cell over the time axis of a (batch, time, features) input with one `jax.lax.scan`.

    Call arguments: `initial_state` (a tensor or a list, one per state), `mask` (batch, time) booleans,
    `training`. Returns the last output, or all outputs with `return_sequences` (in processing order, i.e.
    reversed in time with `go_backwards`), followed by the final states with `return_state` (a list).
    """
    batch_independent = True
    random_in_training = property(lambda self: getattr(self.cell, "random_in_training", True))

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False, stateful=False,
                 unroll=False, zero_output_for_mask=False, **kwargs):
        if isinstance(cell, (list, tuple)):   # a stack of cells runs as one cell (as Keras)
            from .stacked_rnn import StackedRNNCells
            cell = StackedRNNCells(cell)
        if isinstance(cell, dict):
            cell = _deserialize_layer(cell, "RNN")
        if not hasattr(cell, "call") or not hasattr(cell, "state_size"):
            raise ValueError("RNN: argument `cell` should have a `call` method and a `state_size` attribute "
                             f"(single integer or list of integers). Received: cell={cell}")
        if stateful:
            raise ValueError("RNN: stateful=True is not supported by fncompiler (a compiled step is a pure "
                             "function); pass the previous final states as `initial_state` instead.")
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = False
        self.unroll = bool(unroll)   # accepted for compatibility: the loop is always a scan
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.supports_masking = True
        self.input_spec = InputSpec(min_ndim=3)
        size = cell.state_size
        self.state_size = list(size) if isinstance(size, (list, tuple)) else [size]
        self.single_state = not isinstance(size, (list, tuple))

    # -- shapes ------------------------------------------------------------------------------------
    @property
    def _output_size(self):
        size = getattr(self.cell, "output_size", None)
        return self.state_size[0] if size is None else size

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError(f"Layer {self.name!r} ({type(self).__name__}) needs the last (features) dimension of its "
                             f"input to be known; received input shape {tuple(input_shape)}.")
        if isinstance(self.cell, Layer) and not self.cell.built:
            self.cell.build((input_shape[0],) + tuple(input_shape[2:]))
            self.cell.built = True
            for w in self.cell.weights:
                w.path = f"{self.name}/{self.cell.name}/{w.name}"
            for sub in getattr(self.cell, "cells", ()):   # StackedRNNCells: one more level, per cell
                for w in getattr(sub, "weights", ()):
                    w.path = f"{self.name}/{self.cell.name}/{sub.name}/{w.name}"
        spec = self.input_spec
        if spec is not None:   # later calls must bring the same number of features
            self.input_spec = InputSpec(ndim=spec.ndim, min_ndim=spec.min_ndim, axes={-1: input_shape[-1]})

    def compute_output_shape(self, input_shape):
        batch, length = input_shape[0], input_shape[1]
        out = (batch, length, self._output_size) if self.return_sequences else (batch, self._output_size)
        if self.return_state:
            return [out] + [(batch, s) if isinstance(s, int) else [(batch, d) for d in s] for s in self.state_size]
        return out

    def _flat_state_sizes(self):
        """The state sizes, flattened (a stack of cells has one list per cell)."""
        return [d for s in self.state_size for d in (s if isinstance(s, (list, tuple)) else [s])]

    def _nest_states(self, flat):
        """Flat states back into the structure of `state_size`."""
        out, i = [], 0
        for s in self.state_size:
            if isinstance(s, (list, tuple)):
                out.append(list(flat[i:i + len(s)]))
                i += len(s)
            else:
                out.append(flat[i])
                i += 1
        return out

    def compute_mask(self, inputs, previous_mask):
        mask = previous_mask
        if isinstance(mask, (list, tuple)):
            mask = mask[0] if mask else None
        out_mask = mask if self.return_sequences else None
        if self.return_state:
            return [out_mask] + [None] * len(self._flat_state_sizes())
        return out_mask

    def get_initial_state(self, batch_size, dtype=None):
        dtype = dtype or self.compute_dtype
        fn = getattr(self.cell, "get_initial_state", None)
        if fn is not None:
            try:
                states = fn(batch_size=batch_size, dtype=dtype)
            except TypeError:
                states = fn(batch_size=batch_size)
            return list(states) if isinstance(states, (list, tuple)) else [states]
        return [jnp.zeros((batch_size, s), dtype) for s in self.state_size]

    # -- the loop ----------------------------------------------------------------------------------
    def _initial_states(self, initial_state, batch, dtype):
        sizes = self._flat_state_sizes()
        if initial_state is None:
            states = jax.tree_util.tree_leaves(self.get_initial_state(batch, dtype))
            return self._nest_states([jnp.asarray(s, dtype) for s in states])
        states = jax.tree_util.tree_leaves(initial_state)
        who = f"Layer {self.name!r} ({type(self).__name__})"
        if len(states) != len(sizes):
            raise ValueError(f"{who}: an initial_state was passed that is not compatible with the cell's "
                             f"state_size {self.state_size}: expected {len(sizes)} state tensor(s), "
                             f"received {len(states)}.")
        out = []
        for s, size in zip(states, sizes):
            s = jnp.asarray(s).astype(dtype)
            if s.ndim != 2 or s.shape[-1] != size or s.shape[0] != batch:
                raise ValueError(f"{who}: initial state of shape {tuple(s.shape)} does not match the expected "
                                 f"shape ({batch}, {size}).")
            out.append(s)
        return self._nest_states(out)

    def _step_fn(self, seq, training):
        """(inputs scanned over time (time-major), step(x_t, states) -> (output, new states))."""
        cell = self.cell
        if hasattr(cell, "scan_step"):   # StackedRNNCells: its cells' dropout masks drawn once, outside the loop
            return cell.scan_step(seq, training)
        if isinstance(cell, _DropoutCell):
            dp, rdp = cell._dropout_masks(seq.shape[0], seq.shape[-1], seq.dtype, training)
            if not _project_up_front(cell, seq, training):
                def step_projecting(x_t, states):
                    return cell._recurrent_step(cell._project_inputs(x_t, dp), states, rdp)
                return jnp.swapaxes(seq, 0, 1), step_projecting
            xs = jnp.swapaxes(cell._project_inputs(seq, dp), 0, 1)

            def step(x_t, states):
                return cell._recurrent_step(x_t, states, rdp)
            return xs, step

        kwargs = {"training": training} if _accepts_training(cell) else {}

        def step(x_t, states):
            out, new_states = cell.call(x_t, list(states), **kwargs)   # Keras always passes a list
            new_states = list(new_states) if isinstance(new_states, (list, tuple)) else [new_states]
            return out, new_states
        return jnp.swapaxes(seq, 0, 1), step

    def call(self, sequences, initial_state=None, mask=None, training=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0] if mask else None
        batch = sequences.shape[0]
        dtype = sequences.dtype if jnp.issubdtype(sequences.dtype, jnp.floating) else jnp.dtype(self.compute_dtype)
        sequences = sequences.astype(dtype)
        states0 = self._initial_states(initial_state, batch, dtype)
        xs, step = self._step_fn(sequences, training)
        zero_out = self.zero_output_for_mask
        if mask is not None:
            mask = jnp.asarray(mask)
            if mask.ndim == 3:
                mask = mask[:, :, 0]
            if tuple(mask.shape) != tuple(sequences.shape[:2]):
                raise ValueError(f"Layer {self.name!r} ({type(self).__name__}): mask of shape {tuple(mask.shape)} does "
                                 f"not match the (batch, time) dimensions of the input {tuple(sequences.shape)}.")
            xs = (xs, jnp.swapaxes(mask.astype(bool), 0, 1)[..., None])
        last0 = jnp.zeros((batch, self._output_size), dtype)
        keep_all = self.return_sequences

        def body(carry, inp):
            states, _ = carry
            if mask is not None:
                x_t, m_t = inp
            else:
                x_t = inp
            out, new_states = step(x_t, states)
            out = out.astype(dtype)
            new_states = jax.tree_util.tree_map(lambda n: n.astype(dtype), list(new_states))
            if mask is not None:
                prev = states[-1] if hasattr(self.cell, "scan_step") else states   # stacked: the last cell's
                prev = prev[0] if isinstance(prev, (list, tuple)) else prev
                out = jnp.where(m_t, out, jnp.zeros_like(out) if zero_out else prev)
                new_states = jax.tree_util.tree_map(lambda n, s: jnp.where(m_t, n, s), new_states, list(states))
            return (new_states, out), (out if keep_all else None)

        (final_states, last), outs = jax.lax.scan(body, (states0, last0), xs, reverse=self.go_backwards)
        if keep_all:
            if self.go_backwards:
                outs = jnp.flip(outs, axis=0)
            output = jnp.swapaxes(outs, 0, 1)
        else:
            output = last
        output = output.astype(self.compute_dtype)
        if self.return_state:
            return [output] + jax.tree_util.tree_map(lambda s: s.astype(self.compute_dtype), list(final_states))
        return output

    # -- config ------------------------------------------------------------------------------------
    def _rnn_config(self):
        return {"return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards, "stateful": self.stateful, "unroll": self.unroll,
                "zero_output_for_mask": self.zero_output_for_mask}

    def get_config(self):
        return {**super().get_config(), **self._rnn_config(), "cell": _serialize_layer(self.cell)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cell"] = _deserialize_layer(config["cell"], cls.__name__)
        return cls(**config)


_CELL_ARGS = ("activation", "recurrent_activation", "use_bias", "kernel_initializer", "recurrent_initializer",
              "bias_initializer", "unit_forget_bias", "kernel_regularizer", "recurrent_regularizer",
              "bias_regularizer", "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout",
              "recurrent_dropout", "reset_after", "seed")


class _CellRNN(RNN):
    """An RNN that builds its own cell (SimpleRNN, LSTM, GRU) and flattens the cell's arguments in its config."""

    _cell_class = None
    _cell_name = None

    def __init__(self, units, return_sequences=False, return_state=False, go_backwards=False, stateful=False,
                 unroll=False, zero_output_for_mask=False, activity_regularizer=None, cell_kwargs=None, **kwargs):
        kwargs.pop("use_cudnn", None)
        kwargs.pop("implementation", None)
        kwargs.pop("time_major", None)
        cell = self._cell_class(units, name=self._cell_name, dtype=kwargs.get("dtype"),
                                trainable=kwargs.get("trainable", True), **(cell_kwargs or {}))
        super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                         zero_output_for_mask=zero_output_for_mask, activity_regularizer=activity_regularizer,
                         **kwargs)
        self.input_spec = InputSpec(ndim=3)

    def __getattr__(self, name):
        # units, activation, kernel_initializer, dropout, ... read through to the cell (as Keras's properties)
        if name in ("units",) + _CELL_ARGS and "cell" in self.__dict__:
            return getattr(self.__dict__["cell"], name)
        raise AttributeError(f"{type(self).__name__!s} object has no attribute {name!r}")

    def get_config(self):
        config = {**Layer.get_config(self), **self._rnn_config()}
        cell_config = self.cell.get_config()
        for k in ("name", "trainable", "dtype"):
            cell_config.pop(k, None)
        config.update(cell_config)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class SimpleRNN(_CellRNN):
    """Fully-connected RNN: `h_t = tanh(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)`."""

    _cell_class = SimpleRNNCell
    _cell_name = "simple_rnn_cell"

    def __init__(self, units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0, recurrent_dropout=0.0,
                 return_sequences=False, return_state=False, go_backwards=False, stateful=False, unroll=False,
                 seed=None, **kwargs):
        cell_kwargs = dict(activation=activation, use_bias=use_bias, kernel_initializer=kernel_initializer,
                           recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
                           kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
                           bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
                           recurrent_constraint=recurrent_constraint, bias_constraint=bias_constraint,
                           dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed)
        super().__init__(units, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                         activity_regularizer=activity_regularizer, cell_kwargs=cell_kwargs, **kwargs)


class LSTM(_CellRNN):
    """Long Short-Term Memory (Hochreiter 1997), Keras 3 gates and weights; `return_state` gives [output, h, c]."""

    _cell_class = LSTMCell
    _cell_name = "lstm_cell"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                 dropout=0.0, recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False, use_cudnn="auto", **kwargs):
        cell_kwargs = dict(activation=activation, recurrent_activation=recurrent_activation, use_bias=use_bias,
                           kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
                           bias_initializer=bias_initializer, unit_forget_bias=unit_forget_bias,
                           kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
                           bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
                           recurrent_constraint=recurrent_constraint, bias_constraint=bias_constraint,
                           dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed)
        super().__init__(units, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                         activity_regularizer=activity_regularizer, cell_kwargs=cell_kwargs, **kwargs)


class GRU(_CellRNN):
    """Gated Recurrent Unit (Cho et al. 2014), Keras 3 gates z, r, h and `reset_after=True` by default."""

    _cell_class = GRUCell
    _cell_name = "gru_cell"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, reset_after=True, use_cudnn="auto", **kwargs):
        cell_kwargs = dict(activation=activation, recurrent_activation=recurrent_activation, use_bias=use_bias,
                           kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
                           bias_initializer=bias_initializer, kernel_regularizer=kernel_regularizer,
                           recurrent_regularizer=recurrent_regularizer, bias_regularizer=bias_regularizer,
                           kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
                           bias_constraint=bias_constraint, dropout=dropout, recurrent_dropout=recurrent_dropout,
                           reset_after=reset_after, seed=seed)
        super().__init__(units, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                         activity_regularizer=activity_regularizer, cell_kwargs=cell_kwargs, **kwargs)


# ==================================================================================================
# Bidirectional
# ==================================================================================================
def _removeprefix(s, prefix):
    return s[len(prefix):] if s.startswith(prefix) else s


class Bidirectional(Layer):
    """Runs a copy of `layer` forwards and another backwards (go_backwards) over the sequence and merges the
    outputs (`merge_mode` 'concat', 'sum', 'mul', 'ave' or None for a list). The backward output sequence is
    flipped back to time order. Weights: the forward layer's, then the backward layer's."""
    batch_independent = True
    random_in_training = property(lambda self: self.forward_layer.random_in_training or
                                  self.backward_layer.random_in_training)

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        if isinstance(layer, dict):
            layer = _deserialize_layer(layer, "Bidirectional")
        if isinstance(backward_layer, dict):
            backward_layer = _deserialize_layer(backward_layer, "Bidirectional")
        if not isinstance(layer, Layer):
            raise ValueError("Please initialize `Bidirectional` layer with a `Layer` instance. "
                             f"Received: {layer}")
        if backward_layer is not None and not isinstance(backward_layer, Layer):
            raise ValueError(f"`backward_layer` need to be a `Layer` instance. Received: {backward_layer}")
        if merge_mode not in ("sum", "mul", "ave", "concat", None):
            raise ValueError(f"Invalid merge mode. Received: {merge_mode}. Merge mode should be one of "
                             '{"sum", "mul", "ave", "concat", None}')
        for attr in ("go_backwards", "return_sequences", "return_state"):
            if not hasattr(layer, attr):
                raise ValueError(f"Bidirectional: the wrapped layer must be a recurrent layer with a `{attr}` "
                                 f"attribute; received {type(layer).__name__}.")
        super().__init__(**kwargs)
        # Fresh copies built from the layer's config: the wrapped instance's weights are not reused (as in Keras).
        config = self._copy_config(layer)
        config["name"] = "forward_" + _removeprefix(layer.name, "forward_")
        self.forward_layer = type(layer).from_config(config)
        if backward_layer is None:
            config = self._copy_config(layer)
            config["go_backwards"] = True
            config["name"] = "backward_" + _removeprefix(layer.name, "backward_")
            self.backward_layer = type(layer).from_config(config)
        else:
            self.backward_layer = backward_layer
        if self.forward_layer.go_backwards == self.backward_layer.go_backwards:
            raise ValueError("Forward layer and backward layer should have different `go_backwards` value. Received: "
                             f"forward_layer.go_backwards {self.forward_layer.go_backwards}, "
                             f"backward_layer.go_backwards={self.backward_layer.go_backwards}")
        for a in ("stateful", "return_sequences", "return_state"):
            fv, bv = getattr(self.forward_layer, a, None), getattr(self.backward_layer, a, None)
            if fv != bv:
                raise ValueError(f'Forward layer and backward layer are expected to have the same value for attribute '
                                 f'"{a}", got "{fv}" for forward layer and "{bv}" for backward layer')
        for sub in (self.forward_layer, self.backward_layer):
            if hasattr(sub, "zero_output_for_mask"):
                sub.zero_output_for_mask = sub.return_sequences
        self.merge_mode = merge_mode
        self.stateful = getattr(layer, "stateful", False)
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.supports_masking = True
        self.input_spec = layer.input_spec
        self._initial_weights = list(weights) if weights else None

    @staticmethod
    def _copy_config(layer):
        config = layer.get_config()
        cell = getattr(layer, "cell", None)
        if "cell" in config and isinstance(cell, Layer):
            # a fresh cell of the same class (no lookup by name, so user-defined cells work too)
            config["cell"] = type(cell).from_config(cell.get_config())
        return config

    def build(self, input_shape):
        for sub in (self.forward_layer, self.backward_layer):
            if not sub.built:
                sub.build(input_shape)
                sub.built = True
                for w in sub.weights:   # Keras's paths: bidirectional/forward_lstm/lstm_cell/kernel
                    if not w.path.startswith(f"{self.name}/"):
                        w.path = f"{self.name}/{w.path}"
        self.built = True
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def _n_states(self):
        return len(getattr(self.forward_layer, "state_size", []))

    def compute_output_shape(self, input_shape):
        out = self.forward_layer.compute_output_shape(input_shape)
        states = []
        if self.return_state:
            out, states = out[0], list(out[1:])
        if self.merge_mode == "concat":
            out = tuple(out[:-1]) + (None if out[-1] is None else 2 * out[-1],)
            outs = [out]
        elif self.merge_mode is None:
            outs = [tuple(out), tuple(out)]
        else:
            outs = [tuple(out)]
        if self.return_state:
            return outs + states + states
        return outs[0] if len(outs) == 1 else outs

    def call(self, sequences, initial_state=None, mask=None, training=None):
        kwargs = {"training": training}
        if mask is not None:
            kwargs["mask"] = mask
        forward_state = backward_state = None
        if initial_state is not None:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
            half = len(states) // 2
            forward_state, backward_state = states[:half], states[half:]
        y = self.forward_layer(sequences, initial_state=forward_state, **kwargs)
        y_rev = self.backward_layer(sequences, initial_state=backward_state, **kwargs)
        states = []
        if self.return_state:
            states = list(y[1:]) + list(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        y = y.astype(self.compute_dtype)
        y_rev = y_rev.astype(self.compute_dtype)
        if self.return_sequences:
            y_rev = jnp.flip(y_rev, axis=1)
        if self.merge_mode == "concat":
            outs = [jnp.concatenate([y, y_rev], axis=-1)]
        elif self.merge_mode == "sum":
            outs = [y + y_rev]
        elif self.merge_mode == "ave":
            outs = [(y + y_rev) / 2]
        elif self.merge_mode == "mul":
            outs = [y * y_rev]
        else:
            outs = [y, y_rev]
        if self.return_state:
            return outs + states
        return outs[0] if len(outs) == 1 else outs

    def compute_mask(self, inputs, previous_mask):
        mask = previous_mask
        if isinstance(mask, (list, tuple)):
            mask = mask[0] if mask else None
        out_mask = mask if self.return_sequences else None
        out_masks = [out_mask, out_mask] if self.merge_mode is None else [out_mask]
        if self.return_state:
            return out_masks + [None] * (2 * self._n_states())
        return out_masks[0] if len(out_masks) == 1 else out_masks

    def get_config(self):
        return {**super().get_config(), "merge_mode": self.merge_mode,
                "layer": _serialize_layer(self.forward_layer), "backward_layer": _serialize_layer(self.backward_layer)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = _deserialize_layer(config["layer"], "Bidirectional")
        if config.get("backward_layer") is not None:
            config["backward_layer"] = _deserialize_layer(config["backward_layer"], "Bidirectional")
        return cls(**config)
