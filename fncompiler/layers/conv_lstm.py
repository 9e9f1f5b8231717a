"""Convolutional LSTM layers (ConvLSTM1D/2D/3D): an LSTM whose input and recurrent transforms are convolutions.

Weights, in Keras 3's order and layout: ``kernel`` ``(*kernel_size, in_channels, 4 * filters)``,
``recurrent_kernel`` ``(*kernel_size, filters, 4 * filters)``, ``bias`` ``(4 * filters,)``; the 4 gate blocks
are i, f, c, o. With ``unit_forget_bias=True`` the forget block of the bias starts at 1.

The whole sequence runs as one ``jax.lax.scan``: the input convolution of every time step is computed up
front as one batched convolution, and each scan step does the recurrent ("same"-padded) convolution.
"""
import jax
import jax.numpy as jnp

from .. import activations, constraints, initializers, regularizers
from .. import scope as scope_lib
from ..utils import random as random_utils
from .conv_utils import (check_output_positive, conv_nd, conv_output_length, standardize_data_format,
                         standardize_padding, standardize_tuple)
from .input_spec import InputSpec
from .layer import Layer


def _ser(module, obj):
    return None if obj is None else module.serialize(obj)


class _UnitForgetBias:
    """Bias initializer: `base` for the i, c, o blocks and ones for the f block."""

    def __init__(self, base, filters):
        self.base, self.filters = base, filters

    def __call__(self, shape, dtype="float32"):
        f = self.filters
        return jnp.concatenate([self.base((f,), dtype=dtype), jnp.ones((f,), dtype),
                                self.base((2 * f,), dtype=dtype)])


class ConvLSTM(Layer):
    batch_independent = True
    random_in_training = property(lambda self: bool(self.dropout or self.recurrent_dropout))  # dropout draws

    rank = None

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None, return_sequences=False,
                 return_state=False, go_backwards=False, stateful=False, unroll=False, zero_output_for_mask=False,
                 **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        rank = self.rank
        if stateful:
            raise NotImplementedError(f"{type(self).__name__}: stateful=True is not supported by fncompiler; pass "
                                      "the carried states explicitly with `initial_state` / `return_state=True`.")
        if isinstance(filters, bool) or not isinstance(filters, int) or filters <= 0:
            raise ValueError("Invalid value for argument `filters`. Expected a strictly positive value. "
                             f"Received filters={filters!r}.")
        self.filters = filters
        self.kernel_size = standardize_tuple(kernel_size, rank, "kernel_size")
        self.strides = standardize_tuple(strides, rank, "strides")
        self.dilation_rate = standardize_tuple(dilation_rate, rank, "dilation_rate")
        self.padding = standardize_padding(padding)
        self.data_format = standardize_data_format(data_format)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError("Specifying `strides > 1` is not compatible with `dilation_rate > 1`. Please provide "
                             f"`strides=1` or `dilation_rate=1`. Received: strides={self.strides} and "
                             f"dilation_rate={self.dilation_rate}")
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = min(1.0, max(0.0, float(dropout)))
        self.recurrent_dropout = min(1.0, max(0.0, float(recurrent_dropout)))
        self.seed = seed
        self._seed = seed if seed is not None else random_utils.next_seed()
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = False
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.supports_masking = True
        self.kernel = self.recurrent_kernel = self.bias = None
        self.input_spec = InputSpec(ndim=rank + 3)

    # -- shapes --------------------------------------------------------------------------------------
    def _channel_axis(self):
        return -1 if self.data_format == "channels_last" else 2

    def _state_shape(self, sequences_shape):
        """Shape of h / c for a (batch, time, ...) input, in the layer's data_format."""
        if self.data_format == "channels_last":
            spatial = sequences_shape[2:-1]
        else:
            spatial = sequences_shape[3:]
        out = [conv_output_length(d, k, s, self.padding, r)
               for d, k, s, r in zip(spatial, self.kernel_size, self.strides, self.dilation_rate)]
        check_output_positive(self, sequences_shape, out)
        if self.data_format == "channels_last":
            return (sequences_shape[0],) + tuple(out) + (self.filters,)
        return (sequences_shape[0], self.filters) + tuple(out)

    def compute_output_shape(self, sequences_shape):
        state = self._state_shape(sequences_shape)
        output = (state[0], sequences_shape[1]) + state[1:] if self.return_sequences else state
        if self.return_state:
            return [output, state, state]
        return output

    def compute_mask(self, inputs, previous_mask):
        mask = previous_mask[0] if isinstance(previous_mask, (list, tuple)) else previous_mask
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask, None, None]
        return output_mask

    # -- weights -------------------------------------------------------------------------------------
    def build(self, input_shape):
        channels = input_shape[self._channel_axis()]
        if channels is None:
            raise ValueError(f"Layer {self.name!r} ({type(self).__name__}): the channel dimension of the inputs "
                             f"should be defined. Found None. Full input shape received: {tuple(input_shape)}")
        channels = int(channels)
        self._state_shape(input_shape)
        f = self.filters
        self.kernel = self.add_weight(shape=self.kernel_size + (channels, 4 * f), initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
                                      name="kernel")
        self.recurrent_kernel = self.add_weight(
            shape=self.kernel_size + (f, 4 * f), initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer, constraint=self.recurrent_constraint, name="recurrent_kernel")
        if self.use_bias:
            init = _UnitForgetBias(self.bias_initializer, f) if self.unit_forget_bias else self.bias_initializer
            self.bias = self.add_weight(shape=(4 * f,), initializer=init, regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint, name="bias")
        self.input_spec = InputSpec(ndim=self.rank + 3, axes={self._channel_axis(): channels})
        self.built = True

    # -- math ----------------------------------------------------------------------------------------
    def _to_last(self, x, time_major_offset):
        """channels_first -> channels_last for an array whose channel axis is `time_major_offset`."""
        return x if self.data_format == "channels_last" else jnp.moveaxis(x, time_major_offset, -1)

    def _from_last(self, x, offset):
        return x if self.data_format == "channels_last" else jnp.moveaxis(x, -1, offset)

    def _dropout_masks(self, rate, shape, dtype, key):
        keys = jax.random.split(key, 4)
        return [jnp.where(jax.random.bernoulli(k, 1.0 - rate, shape), 1.0 / (1.0 - rate), 0.0).astype(dtype)
                for k in keys]

    def call(self, inputs, initial_state=None, mask=None, training=None):
        dtype = inputs.dtype
        rank, f = self.rank, self.filters
        x = self._to_last(inputs, 2)                      # (B, T, *spatial, C)
        if mask is not None:
            mask = jnp.asarray(mask).astype(bool)
        if self.go_backwards:
            x = jnp.flip(x, 1)
            mask = None if mask is None else jnp.flip(mask, 1)
        batch, steps = x.shape[:2]
        kernel = self.kernel.value.astype(dtype)
        recurrent_kernel = self.recurrent_kernel.value.astype(dtype)

        use_dropout = bool(training) and 0.0 < self.dropout < 1.0
        use_rec_dropout = bool(training) and 0.0 < self.recurrent_dropout < 1.0
        key = None
        if use_dropout or use_rec_dropout:
            scope = scope_lib.current()
            key = scope.next_rng() if scope is not None else None
            key = jax.random.key(self._seed % (2 ** 31)) if key is None else \
                jax.random.fold_in(key, self._seed % (2 ** 31))
            key_in, key_rec = jax.random.split(key)

        # Input convolutions of all time steps at once: (B*T, *out_spatial, 4f).
        flat = x.reshape((batch * steps,) + x.shape[2:])
        if use_dropout:
            masks = self._dropout_masks(self.dropout, (batch,) + x.shape[2:], dtype, key_in)
            parts = []
            for g in range(4):
                xg = (x * masks[g][:, None]).reshape(flat.shape)
                parts.append(conv_nd(xg, kernel[..., g * f:(g + 1) * f], self.strides, self.padding,
                                     self.dilation_rate, "channels_last"))
            zx = jnp.concatenate(parts, axis=-1)
        else:
            zx = conv_nd(flat, kernel, self.strides, self.padding, self.dilation_rate, "channels_last")
        if self.bias is not None:
            zx = zx + self.bias.value.astype(dtype)
        zx = zx.reshape((batch, steps) + zx.shape[1:])
        zx = jnp.moveaxis(zx, 1, 0)                        # (T, B, *out_spatial, 4f)
        state_shape = zx.shape[1:-1] + (f,)

        if initial_state is not None:
            h0, c0 = (self._to_last(jnp.asarray(s).astype(dtype), 1) for s in initial_state)
        else:
            h0 = jnp.zeros(state_shape, dtype)
            c0 = jnp.zeros(state_shape, dtype)
        rec_masks = (self._dropout_masks(self.recurrent_dropout, state_shape, dtype, key_rec)
                     if use_rec_dropout else None)
        ones = (1,) * rank

        def recurrent(h):
            if rec_masks is None:
                return conv_nd(h, recurrent_kernel, ones, "same", ones, "channels_last")
            return jnp.concatenate([conv_nd(h * rec_masks[g], recurrent_kernel[..., g * f:(g + 1) * f], ones,
                                            "same", ones, "channels_last") for g in range(4)], axis=-1)

        def step(carry, xs):
            h, c, prev_out = carry
            z_t, m_t = xs
            z = z_t + recurrent(h)
            zi, zf, zc, zo = jnp.split(z, 4, axis=-1)
            i = self.recurrent_activation(zi)
            fg = self.recurrent_activation(zf)
            c_new = fg * c + i * self.activation(zc)
            o = self.recurrent_activation(zo)
            h_new = o * self.activation(c_new)
            out = h_new
            if m_t is not None:
                m = m_t.reshape((-1,) + (1,) * (h.ndim - 1))
                h_new = jnp.where(m, h_new, h)
                c_new = jnp.where(m, c_new, c)
                out = jnp.where(m, out, jnp.zeros_like(out) if self.zero_output_for_mask else prev_out)
            return (h_new, c_new, out), out

        masks_t = None if mask is None else jnp.moveaxis(mask, 1, 0)
        init = (h0, c0, jnp.zeros(state_shape, dtype))
        (h, c, last), outputs = jax.lax.scan(step, init, (zx, masks_t),
                                             unroll=max(int(steps), 1) if self.unroll else 1)
        if self.return_sequences:
            output = self._from_last(jnp.moveaxis(outputs, 0, 1), 2)
        else:
            output = self._from_last(last, 1)
        if self.return_state:
            return [output, self._from_last(h, 1), self._from_last(c, 1)]
        return output

    # -- config --------------------------------------------------------------------------------------
    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters, "kernel_size": self.kernel_size, "strides": self.strides,
            "padding": self.padding, "data_format": self.data_format, "dilation_rate": self.dilation_rate,
            "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "unit_forget_bias": self.unit_forget_bias,
            "kernel_regularizer": _ser(regularizers, self.kernel_regularizer),
            "recurrent_regularizer": _ser(regularizers, self.recurrent_regularizer),
            "bias_regularizer": _ser(regularizers, self.bias_regularizer),
            "activity_regularizer": _ser(regularizers, self.activity_regularizer),
            "kernel_constraint": _ser(constraints, self.kernel_constraint),
            "recurrent_constraint": _ser(constraints, self.recurrent_constraint),
            "bias_constraint": _ser(constraints, self.bias_constraint),
            "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout, "seed": self.seed,
            "return_sequences": self.return_sequences, "return_state": self.return_state,
            "go_backwards": self.go_backwards, "stateful": self.stateful, "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask,
        })
        return config


class ConvLSTM1D(ConvLSTM):
    """ConvLSTM over (batch, time, steps, channels) sequences."""
    rank = 1


class ConvLSTM2D(ConvLSTM):
    """ConvLSTM over (batch, time, rows, cols, channels) sequences (channels_first: (batch, time, channels,
    rows, cols))."""
    rank = 2


class ConvLSTM3D(ConvLSTM):
    rank = 3
