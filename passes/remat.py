"""Rematerialization (train mode, opt-in): layers with weights run under `jax.checkpoint`, so their
intermediate activations are recomputed in the backward pass instead of stored. Trades compute for memory;
the policy is `compile_model(..., passes=[..., "remat"])` with ctx.options["remat_policy"] naming one of
jax.checkpoint_policies (default: nothing_saveable)."""
import jax

from fncompiler.layers.layer import Layer
from .manager import Pass, PassResult, register


class Rematerialized(Layer):
    """Calls `layer` under jax.checkpoint with the given policy."""
    # a wrapper declares what the layer it wraps declares
    random_in_training = property(lambda self: self._layer_ref[0].random_in_training)

    def is_batch_independent(self, arguments=((), {}), input_ranks=(), training=False):
        return self._layer_ref[0].is_batch_independent(arguments, input_ranks, training)

    def __init__(self, layer, policy, name):
        super().__init__(name=name)
        self._layer_ref = [layer]           # a list: not tracked as a sub-layer (weights stay the model's)
        self._policy = policy
        self.built = True

    def call(self, *args, **kwargs):
        layer = self._layer_ref[0]
        return jax.checkpoint(lambda *a: layer(*a, **kwargs), policy=self._policy)(*args)

    def get_config(self):
        return {"name": self.name, "layer": self._layer_ref[0].name}


def run(graph, ctx):
    policy_name = ctx.options.get("remat_policy", "nothing_saveable")
    policy = getattr(jax.checkpoint_policies, policy_name, None)
    if policy is None:
        raise ValueError(f"Unknown remat policy {policy_name!r}; see jax.checkpoint_policies.")
    wrapped = []
    for nid in list(graph.graph["order"]):
        data = graph.nodes[nid]
        weights = data["layer"].weights
        # layers that update state (BatchNormalization statistics) are not wrapped: an assignment made inside
        # jax.checkpoint's trace cannot leave it
        if data["kind"] != "layer" or not weights or data["arguments"][1] or not all(w.trainable for w in weights):
            continue
        data["layer"] = Rematerialized(data["layer"], policy, name=f"remat_{nid}")
        data["meta"]["remat"] = policy_name
        wrapped.append(nid)
    return PassResult(graph, bool(wrapped), f"{len(wrapped)} layers rematerialized ({policy_name})")


remat = register(Pass("remat", run, modes=("train",), description=__doc__.splitlines()[0], options=("remat_policy",),
                      preserves=("shape_inference", "dtype_check")))
