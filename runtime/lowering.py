"""Lowering: an IR graph becomes one pure function of (weights, inputs, rng).

    forward(trainable, non_trainable, inputs, rng, training) -> (outputs, new_non_trainable, extra_losses)

`trainable` / `non_trainable` are lists of arrays in the order of `Lowered.trainable` / `.non_trainable`, the
program's variables. These are the model's variables, except that a train program whose graph has a
ScanBlocks node with stacked state (passes/scan_blocks.py) holds each weight kind of the scanned blocks as one
StackedVariable, shape (blocks,) + the weight's, at the place of the first block's weight: its gradient is one
array and the optimizer updates it once. `model_trainable` / `model_non_trainable` are the model's own
variables; the layout between the two is what the runtime sees:

    weights_to_model(tv, ntv) / weights_to_program(tv, ntv)     weight values, program <-> model layout
    opt_state_to_model(s) / opt_state_to_program(s)              optimizer state (slots mirror the weights)
    convert_weights(src, dst, tv, ntv)                           one program's weights in another's layout
    convert_state(src, dst, state)                               a whole train state, likewise

(all identity for a program without stacked variables). Writing a StackedVariable's `_value` (the trainer's
write-back) cuts it into its members, so the model's variables, get_weights and saved files keep Keras's
per-layer layout. Inside, a StatelessScope maps each variable to its traced value and records
assignments (BatchNormalization statistics) and `add_loss` values, so the function has no side effects and
can be jitted, differentiated and exported.
"""
import dataclasses

import jax
import jax.numpy as jnp

from fncompiler import scope as scope_lib
from fncompiler.passes import scan_blocks
from . import interpreter


@dataclasses.dataclass
class Lowered:
    graph: object
    trainable: list          # Variables, in the order of the `trainable` argument
    non_trainable: list      # Variables, in the order of the `non_trainable` argument
    input_specs: list        # TensorSpec per flat input
    output_tree: object      # pytree structure of the outputs
    model_trainable: list = None       # the model's trainable Variables (None: the same as `trainable`)
    model_non_trainable: list = None

    def __post_init__(self):
        if self.model_trainable is None:
            self.model_trainable = list(self.trainable)
        if self.model_non_trainable is None:
            self.model_non_trainable = list(self.non_trainable)

    @property
    def stacked(self):
        """Whether some program variables are StackedVariables (the layouts differ)."""
        return any(hasattr(v, "members") for v in list(self.trainable) + list(self.non_trainable))

    @property
    def layout(self):
        """A hashable key of the program's variable layout: per program variable, the ids of the model
        variables it holds (one, or a stack's members)."""
        return tuple(tuple(id(m) for m in getattr(v, "members", [v])) for v in list(self.trainable) +
                     list(self.non_trainable))

    def weights_to_model(self, trainable, non_trainable):
        """Program-layout weight values -> model-layout lists (stacked arrays cut into their blocks')."""
        if not self.stacked:
            return list(trainable), list(non_trainable)
        return (_to_model(self.trainable, self.model_trainable, trainable),
                _to_model(self.non_trainable, self.model_non_trainable, non_trainable))

    def weights_to_program(self, trainable, non_trainable):
        """Model-layout weight values -> this program's layout (the blocks' arrays stacked)."""
        if not self.stacked:
            return list(trainable), list(non_trainable)
        return (_to_program(self.trainable, self.model_trainable, trainable),
                _to_program(self.non_trainable, self.model_non_trainable, non_trainable))

    def opt_state_to_model(self, opt_state):
        """The optimizer state with every slot list that mirrors the program's trainable weights (e.g. Adam's
        moments) in the model's layout, as saved files and Keras hold it. None stays None."""
        if opt_state is None or not self.stacked:
            return opt_state
        return _map_mirrors(opt_state, self.trainable,
                            lambda xs: _to_model(self.trainable, self.model_trainable, xs))

    def opt_state_to_program(self, opt_state):
        """The inverse of `opt_state_to_model` (e.g. a restored optimizer state, for this program's step)."""
        if opt_state is None or not self.stacked:
            return opt_state
        return _map_mirrors(opt_state, self.model_trainable,
                            lambda xs: _to_program(self.trainable, self.model_trainable, xs))

    def _values(self, trainable, non_trainable):
        values = {id(v): x for v, x in zip(self.trainable, trainable)}
        values.update({id(v): x for v, x in zip(self.non_trainable, non_trainable)})
        return values

    def forward(self, trainable, non_trainable, inputs, rng=None, training=False, residuals=None):
        """residuals: `self.residuals(trainable, non_trainable)` computed ahead (for the same weights), or None:
        nodes with a constant-folding plan then compute their weight-only part inline, as their layer does."""
        with scope_lib.StatelessScope(self._values(trainable, non_trainable), training=training, rng=rng) as scope:
            outputs = interpreter.execute(self.graph, list(inputs), training=training, order=self.order,
                                          residuals=residuals)
        new_non_trainable = [scope.get(v) for v in self.non_trainable]
        return outputs, new_non_trainable, list(scope.losses)

    @property
    def folds(self):
        """[(node id, WeightFold)] for the nodes whose weight-only part constant_folding split off."""
        g = self.graph
        return [(nid, g.nodes[nid]["fold"]) for nid in (self.order or g.nodes)
                if g.nodes[nid].get("fold") is not None and g.nodes[nid]["fold"].layer is g.nodes[nid].get("layer")]

    def residuals(self, trainable, non_trainable):
        """{node id: residual values}: the weight-only parts of the folded nodes, from these weights."""
        with scope_lib.StatelessScope(self._values(trainable, non_trainable), training=False):
            return {nid: fold.residuals() for nid, fold in self.folds}

    def regularization(self, trainable):
        """Sum of the weight regularizers, computed from the traced weights."""
        total = jnp.zeros((), jnp.float32)
        for var, value in zip(self.trainable, trainable):
            if var.regularizer is not None:
                total = total + var.regularizer(value)
        return total

    def apply_constraints(self, trainable):
        return [v.constraint(x) if v.constraint is not None else x for v, x in zip(self.trainable, trainable)]

    @property
    def order(self):
        return self.graph.graph.get("order")

    def pack_outputs(self, flat):
        if self.output_tree is None:
            return flat[0] if len(flat) == 1 else flat
        return jax.tree_util.tree_unflatten(self.output_tree, list(flat))


def _to_model(program_vars, model_vars, values):
    by_id = {}
    for v, x in zip(program_vars, values):
        members = getattr(v, "members", None)
        if members is None:
            by_id[id(v)] = x
        else:
            by_id.update(zip(map(id, members), scan_blocks.split_blocks(x, len(members))))
    return [by_id[id(v)] for v in model_vars]


def _to_program(program_vars, model_vars, values):
    by_id = {id(v): x for v, x in zip(model_vars, values)}
    return [by_id[id(v)] if not hasattr(v, "members") else scan_blocks.stack_blocks([by_id[id(m)] for m in v.members])
            for v in program_vars]


def _map_mirrors(tree, variables, fn):
    """`tree` with each list that mirrors `variables` (same length, same shapes) replaced by fn(list)."""
    shapes = [tuple(v.shape) for v in variables]

    def mirrors(node):
        return isinstance(node, list) and len(node) == len(shapes) and all(
            tuple(getattr(x, "shape", ())) == s for x, s in zip(node, shapes))
    return jax.tree_util.tree_map(lambda node: fn(node) if mirrors(node) else node, tree, is_leaf=mirrors)


def convert_weights(src, dst, trainable, non_trainable):
    """Weight values in `src`'s program layout -> `dst`'s (e.g. a stacked train state for an unrolled eval
    step); the values themselves when the layouts agree."""
    if src is dst or src.layout == dst.layout:
        return trainable, non_trainable
    return dst.weights_to_program(*src.weights_to_model(trainable, non_trainable))


def convert_state(src, dst, state):
    """A train state `(trainable, non_trainable, opt_state, metric_states, rng)` of `src`'s program in `dst`'s
    layout (e.g. when a tuner switches between the scanned and the unrolled program mid-fit)."""
    if src is dst or src.layout == dst.layout:
        return state
    tv, ntv = convert_weights(src, dst, state[0], state[1])
    return (tv, ntv, dst.opt_state_to_program(src.opt_state_to_model(state[2]))) + tuple(state[3:])


def _program_variables(model_vars, graph):
    """The program's variables: `model_vars`, with each ScanBlocks' StackedVariable in place of its members
    (at the first member's position) where all its members are among `model_vars`."""
    present = {id(v) for v in model_vars}
    first, dropped = {}, set()
    for nid in graph.graph.get("order") or graph.nodes:
        for stack in getattr(graph.nodes[nid].get("layer"), "stacked_variables", None) or []:
            ids = [id(m) for m in stack.members]
            if all(i in present for i in ids) and not (set(ids) & dropped) and ids[0] not in first:
                first[ids[0]] = stack
                dropped.update(ids[1:])
    return [first.get(id(v), v) for v in model_vars if id(v) not in dropped]


def _stacking_allowed(model):
    """Per-variable gradient clipping (clipnorm) reads each weight's own norm, and a distribution lays weights
    out by variable: both need the model's layout."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and getattr(optimizer, "clipnorm", None):
        return False
    from . import placement
    return placement.current() is None


def lower(graph, model):
    """Lower `graph` (the model's IR after passes) to a Lowered pure function over the program's variables."""
    tvars, ntvars = list(model.trainable_weights), list(model.non_trainable_weights)
    stacked = _stacking_allowed(model)
    return Lowered(graph=graph, trainable=_program_variables(tvars, graph) if stacked else tvars,
                   non_trainable=_program_variables(ntvars, graph) if stacked else ntvars,
                   input_specs=[graph.nodes[n]["output_specs"][0] for n in graph.graph["inputs"]],
                   output_tree=graph.graph.get("output_tree"), model_trainable=tvars, model_non_trainable=ntvars)
