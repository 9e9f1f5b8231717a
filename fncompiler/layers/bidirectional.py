"""Bidirectional: a copy of a recurrent layer run forwards and another backwards, outputs merged."""
import jax.numpy as jnp

from . import nested_layers
from .layer import Layer


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
            layer = nested_layers.deserialize_layer(layer, "Bidirectional")
        if isinstance(backward_layer, dict):
            backward_layer = nested_layers.deserialize_layer(backward_layer, "Bidirectional")
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
                "layer": nested_layers.serialize_layer(self.forward_layer),
                "backward_layer": nested_layers.serialize_layer(self.backward_layer)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = nested_layers.deserialize_layer(config["layer"], "Bidirectional")
        if config.get("backward_layer") is not None:
            config["backward_layer"] = nested_layers.deserialize_layer(config["backward_layer"], "Bidirectional")
        return cls(**config)
