"""`Layer`: the base of every layer and model.

A layer knows its math (`call`, over jax arrays), its weights (`build` / `add_weight`, in Keras's layout
and order) and its config. Calling it on a `SymbolicTensor` records a `Node` and returns symbolic outputs
whose shape and dtype are computed right away (`compute_output_spec`), so errors surface at the line
that built the graph. Calling it on arrays runs `call` directly.
"""
import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np

from .. import activations, dtypes, initializers, naming, regularizers, constraints
from .. import scope as scope_lib
from ..symbolic import Node, SymbolicTensor, any_symbolic, is_symbolic
from ..variables import Variable
from . import input_spec as input_spec_lib

_MIXED = {"mixed_float16": ("float32", "float16"), "mixed_bfloat16": ("float32", "bfloat16")}
_global_policy = ["float32"]


def set_dtype_policy(policy):
    """Set the global dtype policy ("float32", "mixed_float16", "mixed_bfloat16", ...)."""
    name = policy if isinstance(policy, str) else getattr(policy, "name", str(policy))
    if name not in _MIXED:
        dtypes.standardize(name)
    _global_policy[0] = name


def dtype_policy():
    return _global_policy[0]


def _policy_name(dtype):
    if dtype is None:
        return _global_policy[0]
    if isinstance(dtype, dict):  # Keras 3 DTypePolicy config
        dtype = dtype.get("config", {}).get("name", "float32")
    if isinstance(dtype, str) and dtype in _MIXED:
        return dtype
    return dtypes.standardize(dtype)


@functools.lru_cache(maxsize=None)
def _call_params(cls):
    try:
        return tuple(inspect.signature(cls.call).parameters)
    except (TypeError, ValueError):
        return ()


@functools.lru_cache(maxsize=None)
def _build_params(cls):
    try:
        return tuple(p for p in inspect.signature(cls.build).parameters if p != "self")
    except (TypeError, ValueError):
        return ("input_shape",)


def _shape_of(x):
    if isinstance(x, (SymbolicTensor, Variable)) or hasattr(x, "shape"):
        return tuple(x.shape)
    return tuple(np.shape(x))


def _is_shape(s):
    return isinstance(s, (tuple, list)) and all(d is None or isinstance(d, (int, np.integer)) for d in s)


def _to_array(x, compute_dtype, autocast):
    if isinstance(x, Variable):
        x = x.value
    if isinstance(x, (np.ndarray, np.generic)):
        if x.dtype.kind in "USO":      # text stays NumPy: only host preprocessing layers read it
            return x
        x = jnp.asarray(x)
    if autocast and hasattr(x, "dtype") and hasattr(x, "shape") and jnp.issubdtype(x.dtype, jnp.floating) \
            and x.dtype != jnp.dtype(compute_dtype):
        x = x.astype(compute_dtype)
    return x


def eval_spec(fn, args, kwargs, who):
    """Output SymbolicTensors of `fn(*args, **kwargs)` by abstract evaluation (jax.eval_shape).

    Unknown (None) dimensions are filled with two different sizes; a dimension of the result that
    differs between the two runs is unknown too.
    """
    leaves, treedef = jax.tree_util.tree_flatten((tuple(args), dict(kwargs)))
    sym = [i for i, leaf in enumerate(leaves) if is_symbolic(leaf)]
    has_none = any(d is None for i in sym for d in leaves[i].shape)

    def run(fill):
        structs = [jax.ShapeDtypeStruct(tuple(fill if d is None else d for d in leaves[i].shape), leaves[i].dtype)
                   for i in sym]

        def f(*vals):
            new = list(leaves)
            for i, v in zip(sym, vals):
                new[i] = v
            a, k = jax.tree_util.tree_unflatten(treedef, new)
            return fn(*a, **k)
        return jax.eval_shape(f, *structs)

    try:
        out = run(83 if has_none else None)
        out2 = run(89) if has_none else out
    except (ValueError, TypeError) as exc:
        if getattr(exc, "_fncompiler_named", False):
            raise
        shapes = [leaves[i].shape for i in sym]
        err = ValueError(f"{who} cannot be called on inputs of shape "
                         f"{shapes[0] if len(shapes) == 1 else shapes}: {exc}")
        err._fncompiler_named = True
        raise err from exc

    def merge(a, b):
        shape = tuple(d1 if d1 == d2 else None for d1, d2 in zip(a.shape, b.shape))
        return SymbolicTensor(shape, a.dtype)
    return jax.tree_util.tree_map(merge, out, out2)


# Private attributes the framework itself uses to hold layers it does not own as sub-layers.
_UNTRACKED = {"_layers", "_functional", "_stack", "_trainer", "_predict_trainer", "_chain", "_linear", "_bn",
              "_after", "_template", "_vars", "_layer_ref"}


def _activity_loss(regularizer, output):
    """The activity penalty of one output, divided by its batch size as Keras 3 does (0 for an empty batch),
    so its strength does not depend on the batch size."""
    loss = regularizer(output)
    if jnp.ndim(output) > 0:
        batch = jnp.shape(output)[0]
        loss = loss / batch if batch else jnp.zeros_like(loss)
    return loss


def batch_independent_unless_training(layer, arguments=((), {}), input_ranks=(), training=False):
    """`is_batch_independent` for a layer that mixes the batch (batch statistics) or draws from the batch's
    shape (random masks) only in training: independent unless training, or training=True in the call."""
    return not (training or arguments[1].get("training"))


class Layer:
    """Base class of layers: weights, config, symbolic and concrete calls."""

    _is_input_layer = False

    # -- declarations the compiler passes read (docs/layers.md, "What a layer declares") ------------------------
    # Each default is the safe answer for a layer fncompiler knows nothing about (a user's subclass): a layer
    # must declare the opposite for a pass to rely on it. Built-in layers declare theirs in their class body.
    batch_independent = False       # each sample's output depends on that sample alone (in predict/inference)
    random_in_training = True       # a call with training=True may draw random numbers (never merged by CSE)
    identity_in = ()                # modes ("eval", "predict", "export") in which the layer returns its input
    keep_float32 = False            # mixed precision keeps it computing in float32 (normalizations, softmax)
    index_input = False             # its input is integer indices (dtype_check does not treat them as floats)

    def is_batch_independent(self, arguments=((), {}), input_ranks=(), training=False):
        """May predict pad a batch with extra rows for this call and drop their outputs? `arguments` is the
        node's (args, kwargs) with tensors as Slots, `input_ranks` the ranks of its tensor inputs. Override
        when the answer depends on the call (OpLayer: the op and its axis; BatchNormalization: training)."""
        return bool(self.batch_independent)

    def __init__(self, *, activity_regularizer=None, trainable=True, dtype=None, autocast=True, name=None,
                 input_shape=None, input_dim=None, batch_size=None, batch_input_shape=None, **kwargs):
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}")
        object.__setattr__(self, "_layers", [])
        self._trainable_variables = []
        self._non_trainable_variables = []
        self._inbound_nodes = []
        self._tracked_losses = []
        self.built = False
        self._trainable = bool(trainable)
        self._dtype_policy = _policy_name(dtype)
        self.autocast = autocast
        self.supports_masking = getattr(self, "supports_masking", False)
        self.input_spec = getattr(self, "input_spec", None)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.name = name or naming.uniquify(naming.to_snake_case(type(self).__name__))
        if batch_input_shape is not None:
            self._input_shape_arg = tuple(batch_input_shape)
        elif input_shape is not None:
            self._input_shape_arg = (batch_size,) + tuple(input_shape)
        elif input_dim is not None:
            self._input_shape_arg = (batch_size, input_dim)
        else:
            self._input_shape_arg = None

    # -- attribute tracking ------------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_layers" not in self.__dict__:
            object.__setattr__(self, "_layers", [])
        if not name.startswith("__") and name not in _UNTRACKED:
            for v in (value if isinstance(value, (list, tuple)) else [value]):
                if isinstance(v, Layer) and v is not self and not any(v is l for l in self._layers):
                    self._layers.append(v)
        object.__setattr__(self, name, value)

    # -- dtype -------------------------------------------------------------------------------------
    @property
    def dtype_policy(self):
        return self._dtype_policy

    @property
    def dtype(self):
        """The dtype of this layer's variables."""
        return _MIXED.get(self._dtype_policy, (self._dtype_policy,))[0]

    @property
    def variable_dtype(self):
        return self.dtype

    @property
    def compute_dtype(self):
        return _MIXED.get(self._dtype_policy, (None, self._dtype_policy))[1]

    # -- weights -----------------------------------------------------------------------------------
    def add_weight(self, shape=None, initializer=None, dtype=None, trainable=True, autocast=True,
                   regularizer=None, constraint=None, aggregation="mean", name=None):
        shape = () if shape is None else tuple(shape)
        for d in shape:
            if d is None or int(d) < 0:
                raise ValueError(f"Layer {self.name!r}: cannot create weight {name or 'variable'!r} with an unknown "
                                 f"or negative dimension in shape {shape}. The input's shape must be fully known "
                                 "along the axes this layer builds on.")
        dtype = dtypes.standardize(dtype or self.dtype)
        if initializer is None:
            initializer = "glorot_uniform" if dtypes.is_float(dtype) else "zeros"
        own = self._trainable_variables + self._non_trainable_variables
        if name is None:
            name = "variable" if not any(v.name == "variable" for v in own) else \
                f"variable_{sum(v.name.startswith('variable') for v in own)}"
        var = Variable(initializers.get(initializer), shape, dtype=dtype, trainable=trainable, name=name,
                       path=f"{self.name}/{name}", constraint=constraints.get(constraint),
                       regularizer=regularizers.get(regularizer))
        (self._trainable_variables if trainable else self._non_trainable_variables).append(var)
        return var

    def _own_weights(self):
        return self._trainable_variables + self._non_trainable_variables

    @property
    def weights(self):
        """All weights: this layer's own (trainable, then non-trainable), then its sub-layers', deduplicated."""
        out, seen = [], set()
        for w in self._own_weights():
            if id(w) not in seen:
                seen.add(id(w))
                out.append(w)
        for layer in self._layers:
            for w in layer.weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    out.append(w)
        return out

    variables = weights

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        for layer in self._layers:
            layer.trainable = value

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        out, seen = [], set()
        for w in self._trainable_variables:
            if id(w) not in seen:
                seen.add(id(w))
                out.append(w)
        for layer in self._layers:
            for w in layer.trainable_weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    out.append(w)
        return out

    @property
    def non_trainable_weights(self):
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights

    def get_weights(self):
        return [np.asarray(w.value) for w in self.weights]

    def set_weights(self, weights):
        params = self.weights
        if len(weights) != len(params):
            raise ValueError(f"Layer {self.name!r} expects {len(params)} weights "
                             f"({', '.join(w.path for w in params) or 'none'}), but received {len(weights)}.")
        for var, value in zip(params, weights):
            value = np.asarray(value)
            if tuple(value.shape) != var.shape:
                raise ValueError(f"Layer {self.name!r}: weight {var.path!r} has shape {var.shape}, "
                                 f"but the value given has shape {tuple(value.shape)}.")
            var.assign(value)

    def count_params(self):
        if not self.built:
            raise ValueError(f"Layer {self.name!r} has no weights yet: call it on an input (or build it) first.")
        return int(sum(w.size for w in self.weights))

    # -- losses ------------------------------------------------------------------------------------
    def add_loss(self, loss):
        """Add a scalar to the training loss (inside a training step) from `call`."""
        scope = scope_lib.current()
        if scope is not None:
            scope.losses.append(jnp.sum(loss) if jnp.ndim(loss) else loss)
        elif not isinstance(loss, jax.core.Tracer):
            self._tracked_losses.append(loss)

    @property
    def losses(self):
        out = list(self._tracked_losses)
        for w in self.weights:
            if w.regularizer is not None:
                out.append(w.regularizer(w.value))
        return out

    # -- building ----------------------------------------------------------------------------------
    def build(self, input_shape=None):
        self.built = True

    def _maybe_build(self, args, kwargs):
        if self.built:
            return
        params = _build_params(type(self))
        if len(params) <= 1 or not all(p.endswith("_shape") for p in params):
            first = args[0] if args else next(iter(kwargs.values()), None)
            shapes = jax.tree_util.tree_map(_shape_of, first, is_leaf=lambda x: hasattr(x, "shape"))
            if params:
                self.build(shapes)
            else:
                self.build()
        else:
            names = [p for p in _call_params(type(self)) if p != "self"]
            bound = dict(zip(names, args))
            bound.update(kwargs)
            shapes = {}
            for p in params:
                arg = bound.get(p[: -len("_shape")])
                if arg is not None:
                    shapes[p] = _shape_of(arg)
            self.build(**shapes)
        self.built = True

    def _check_inputs(self, args):
        if self.input_spec is None or not args:
            return
        first = args[0]
        tensors = first if isinstance(first, (list, tuple)) else [first]
        input_spec_lib.check(self.input_spec, [_shape_of(t) for t in tensors], self.name)

    # -- calling -----------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if any_symbolic((args, kwargs)):
            return self._symbolic_call(args, kwargs)
        return self._concrete_call(args, kwargs)

    def _concrete_call(self, args, kwargs):
        args, kwargs = jax.tree_util.tree_map(
            lambda x: _to_array(x, self.compute_dtype, self.autocast), (tuple(args), dict(kwargs)),
            is_leaf=lambda x: isinstance(x, Variable))
        self._check_inputs(args)
        self._maybe_build(args, kwargs)
        params = _call_params(type(self))
        scope = scope_lib.current()
        if "training" in params and kwargs.get("training") is None and scope is not None:
            kwargs["training"] = scope.training
        outputs = self.call(*args, **kwargs)
        if self.activity_regularizer is not None and scope is not None:
            for out in jax.tree_util.tree_leaves(outputs):
                self.add_loss(_activity_loss(self.activity_regularizer, out))
        return outputs

    def _symbolic_call(self, args, kwargs):
        self._check_inputs(args)
        self._maybe_build(args, kwargs)
        outputs = self.compute_output_spec(*args, **kwargs)
        Node(self, args, kwargs, outputs)
        return outputs

    def call(self, *args, **kwargs):
        raise NotImplementedError(f"Layer {type(self).__name__} does not implement call().")

    def compute_output_shape(self, input_shape):
        raise NotImplementedError

    def compute_output_spec(self, *args, **kwargs):
        if type(self).compute_output_shape is not Layer.compute_output_shape:
            first = args[0] if args else next(iter(kwargs.values()))
            shapes = jax.tree_util.tree_map(lambda t: tuple(t.shape), first,
                                            is_leaf=lambda x: isinstance(x, SymbolicTensor))
            out = self.compute_output_shape(shapes)
            dtype = self.compute_dtype
            in_dtypes = {t.dtype for t in jax.tree_util.tree_leaves(args) if isinstance(t, SymbolicTensor)}
            if not self.weights and len(in_dtypes) == 1 and not dtypes.is_float(next(iter(in_dtypes))):
                dtype = next(iter(in_dtypes))   # shape-only layers keep integer/bool dtypes
            if _is_shape(out):
                return SymbolicTensor(out, dtype)
            return jax.tree_util.tree_map(lambda s: SymbolicTensor(s, dtype), out, is_leaf=_is_shape)
        return eval_spec(lambda *a, **k: self._concrete_call(a, k), args, kwargs,
                         f"Layer {self.name!r} ({type(self).__name__})")

    def compute_mask(self, inputs, previous_mask):
        return previous_mask if self.supports_masking else None

    def stateless_call(self, trainable_variables, non_trainable_variables, *args, return_losses=False,
                       rng=None, **kwargs):
        """Call the layer as a pure function of its weights: returns (outputs, new non-trainable values).

        `trainable_variables` / `non_trainable_variables` are arrays in the order of `trainable_weights` /
        `non_trainable_weights`. Usable under `jax.grad` and `jax.jit`.
        """
        trainable, non_trainable = self.trainable_weights, self.non_trainable_weights
        if len(trainable_variables) != len(trainable) or len(non_trainable_variables) != len(non_trainable):
            raise ValueError(f"Layer {self.name!r}.stateless_call expects {len(trainable)} trainable and "
                             f"{len(non_trainable)} non-trainable values; received {len(trainable_variables)} and "
                             f"{len(non_trainable_variables)}.")
        values = {id(v): x for v, x in zip(trainable, trainable_variables)}
        values.update({id(v): x for v, x in zip(non_trainable, non_trainable_variables)})
        with scope_lib.StatelessScope(values, training=bool(kwargs.get("training")), rng=rng) as scope:
            outputs = self(*args, **kwargs)
        new_non_trainable = [scope.get(v) for v in non_trainable]
        if return_losses:
            return outputs, new_non_trainable, list(scope.losses)
        return outputs, new_non_trainable

    # -- graph access ------------------------------------------------------------------------------
    def _single_node(self, what):
        if not self._inbound_nodes:
            raise AttributeError(f"Layer {self.name!r} has never been called and thus has no defined {what}.")
        if len(self._inbound_nodes) > 1:
            raise AttributeError(f"Layer {self.name!r} has been called {len(self._inbound_nodes)} times, so its "
                                 f"{what} is ambiguous. Use get_{what}_at(node_index) instead.")
        return self._inbound_nodes[0]

    @property
    def input(self):
        node = self._single_node("input")
        return node.input_tensors[0] if len(node.input_tensors) == 1 else list(node.input_tensors)

    @property
    def output(self):
        node = self._single_node("output")
        return node.outputs_struct

    def get_input_at(self, node_index):
        node = self._inbound_nodes[node_index]
        return node.input_tensors[0] if len(node.input_tensors) == 1 else list(node.input_tensors)

    def get_output_at(self, node_index):
        return self._inbound_nodes[node_index].outputs_struct

    # -- config ------------------------------------------------------------------------------------
    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable, "dtype": self._dtype_policy}
        if self.activity_regularizer is not None:
            config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_build_config(self):
        node = self._inbound_nodes[0] if self._inbound_nodes else None
        if node is None or not node.input_tensors:
            return None
        shapes = [list(t.shape) for t in node.input_tensors]
        return {"input_shape": shapes[0] if len(shapes) == 1 else shapes}

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


def standardize_activation(activation):
    return activations.get(activation)
