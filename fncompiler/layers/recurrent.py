"""Recurrent layers: SimpleRNN, LSTM, GRU and the generic RNN(cell) (a list of cells runs as one StackedRNNCells,
stacked_rnn.py). Their cells are in rnn_cells.py and Bidirectional in bidirectional.py, both re-exported here
(the module these names have always come from).

Weights follow Keras 3 exactly (the cell owns them, so `lstm.weights` is [kernel, recurrent_kernel, bias]
with gates i, f, c, o for the LSTM and z, r, h for the GRU), so Keras-trained weights load with
`set_weights`. The time loop is one `jax.lax.scan`. On CPU each step projects its own input inside the scan
(`x_t @ kernel + bias`, as Keras's JAX backend) in training while the cell has at least as many gate units as
input features, and in inference once the projection of all steps is large (UP_FRONT_PROJECTION_MAX_BYTES);
otherwise (and on other backends) the input projection of every step is computed up front as one matmul and the
scan body only does the recurrent part. The measurements behind the rule are at `_project_up_front`.

Masking follows Keras's JAX backend: at a masked step the states are carried over unchanged and the
output is the previous output (the first state), or zeros with `zero_output_for_mask=True`.
"""
import jax
import jax.numpy as jnp

from . import nested_layers
from .bidirectional import Bidirectional
from .input_spec import InputSpec
from .layer import Layer
from .rnn_cells import DropoutCell, GRUCell, LSTMCell, SimpleRNNCell, accepts_training

# Where the input projection `x @ kernel + bias` is computed: up front for all time steps (one matmul before the
# scan, the scan body only does the recurrent part) or per step inside the scan (as Keras's JAX backend does).
#
# Training on CPU (measured 2026-12-04, issue 17, `python benchmarks/lstm_formulations.py`: hand_written.py's
# train steps, one process, alternating, median per-step time; 2-core CPU, jax 0.10.2): the backward pass of an
# up-front projection holds the (time, batch, gate units) projection and its cotangent (the whole-sequence
# kernel gradient is one matmul over it); inside the loop the scan only keeps its input (time, batch,
# features) and accumulates the kernel gradient per step. seq2seq (LSTM(128) on 64 features, batch 64): up front
# 34.4 MiB temp / 36-46 ms, in the loop 21.9 MiB / 30 ms (0.66-0.82x; Keras's step holds the same 21.9 MiB);
# batch 256 136 MiB / 240 ms vs 93 MiB / 150 ms; batch 8 4.8 / 5.3 ms vs 3.6 MiB / 5.3 ms. Ticket model
# (LSTM(128) and LSTM(32) on 64 features, batch 32): 20.9 MiB / 9.8 ms vs 14.2 MiB / 9.6 ms (0.97x); batch 256
# 124 MiB / 139 ms vs 78 MiB / 104 ms. With fewer gate units than features the projection is the smaller
# tensor: seq2seq with LSTM(32) on 512 features holds 18.3 MiB up front vs 23.3 MiB in the loop at the same
# time (0.97x, within noise). So training on CPU projects inside the loop while gate units >= features, and up
# front otherwise. fncompiler's own train steps (`--fncompiler`): seq2seq 34.4 -> 21.9 MiB, 0.59-0.64x the time;
# ticket 21.1 -> 16.6 MiB, 0.93-0.97x. One layer's training gradient (`--layers`; batch 64, 24 steps, 64
# features, 128 units): LSTM 18.1 -> 9.9 MiB, 0.78x; GRU 13.5 -> 7.6 MiB, 0.89x; SimpleRNN 4.5 -> 2.8 MiB,
# 0.85x. Other variants measured, not taken: the scan body under jax.checkpoint (in the loop: 6.9 MiB for
# seq2seq, but 1.08-1.24x the in-loop time at batch 64 and 1.21x at batch 8, faster only at batch 256: 0.87x;
# the "remat" pass is the opt-in for memory), dots saved under checkpoint (no faster, more memory), one matmul
# of [x_t, h] with the stacked kernels per step (no faster, +0.7 MiB).
#
# Inference on CPU projects up front only while that projection, (time, batch, gate units), stays small
# (UP_FRONT_PROJECTION_MAX_BYTES); larger, each step projects its own inputs inside the scan. Measured on the
# ticket model's predict step (benchmarks/fit.py; body LSTM: 100 steps, 64 gate units; 2-core CPU): batch 128
# (3.3 MB) 6.1 ms up front vs 7.0 ms in the loop, batch 256 (6.6 MB) 19.2 vs 11.6 ms, batch 1024 80 vs 54 ms;
# batch 1 0.19 vs 0.29 ms. Unknown or symbolic inference sizes (an export's symbolic batch), which cannot be
# compared with the limit, project up front. Other backends (GPU, TPU; not measured) always project up front.
UP_FRONT_PROJECTION_MAX_BYTES = 4 * 2 ** 20


def _project_up_front(cell, seq, training):
    """Whether `cell` projects the inputs of every time step before the scan (True) or per step inside it."""
    if jax.default_backend() != "cpu":
        return True
    kernel = getattr(cell, "kernel", None)
    if kernel is None:
        return True
    if training:    # gate units >= features: the projection is the larger tensor to keep for the backward pass
        return kernel.shape[-1] < kernel.shape[0]
    if not all(isinstance(d, int) for d in seq.shape):    # unknown or symbolic (export) sizes
        return True
    size = seq.shape[0] * seq.shape[1] * kernel.shape[-1] * jnp.dtype(seq.dtype).itemsize
    return size <= UP_FRONT_PROJECTION_MAX_BYTES


# ==================================================================================================
# The RNN layer
# ==================================================================================================
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
            cell = nested_layers.deserialize_layer(cell, "RNN")
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
        if isinstance(cell, DropoutCell):
            dp, rdp = cell._dropout_masks(seq.shape[0], seq.shape[-1], seq.dtype, training)
            if not _project_up_front(cell, seq, training):
                def step_projecting(x_t, states):
                    return cell._recurrent_step(cell._project_inputs(x_t, dp), states, rdp)
                return jnp.swapaxes(seq, 0, 1), step_projecting
            xs = jnp.swapaxes(cell._project_inputs(seq, dp), 0, 1)

            def step(x_t, states):
                return cell._recurrent_step(x_t, states, rdp)
            return xs, step

        kwargs = {"training": training} if accepts_training(cell) else {}

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
        return {**super().get_config(), **self._rnn_config(), "cell": nested_layers.serialize_layer(self.cell)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cell"] = nested_layers.deserialize_layer(config["cell"], cls.__name__)
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


__all__ = ["RNN", "SimpleRNN", "LSTM", "GRU", "SimpleRNNCell", "LSTMCell", "GRUCell", "Bidirectional",
           "UP_FRONT_PROJECTION_MAX_BYTES"]
