"""Lowering: an IR graph becomes one pure function of (weights, inputs, rng).

    forward(trainable, non_trainable, inputs, rng, training) -> (outputs, new_non_trainable, extra_losses)

`trainable` / `non_trainable` are lists of arrays in the order of `Lowered.trainable` / `.non_trainable`
(the model's variables). Inside, a StatelessScope maps each variable to its traced value and records
assignments (BatchNormalization statistics) and `add_loss` values, so the function has no side effects and
can be jitted, differentiated and exported.
"""
import dataclasses

import jax
import jax.numpy as jnp

from fncompiler import scope as scope_lib
from . import interpreter


@dataclasses.dataclass
class Lowered:
    graph: object
    trainable: list          # Variables, in the order of the `trainable` argument
    non_trainable: list      # Variables, in the order of the `non_trainable` argument
    input_specs: list        # TensorSpec per flat input
    output_tree: object      # pytree structure of the outputs

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


def lower(graph, model):
    """Lower `graph` (the model's IR after passes) to a Lowered pure function over the model's variables."""
    return Lowered(graph=graph, trainable=list(model.trainable_weights), non_trainable=list(model.non_trainable_weights),
                   input_specs=[graph.nodes[n]["output_specs"][0] for n in graph.graph["inputs"]],
                   output_tree=graph.graph.get("output_tree"))
