"""Mixed precision as a pass: layers compute in float16/bfloat16 while variables stay float32.

The policy comes from ctx.options["dtype_policy"] ("mixed_float16" / "mixed_bfloat16"; "float32" or absent
leaves the graph alone). Each layer node is wrapped so that its float inputs are cast to the compute dtype
at the layer boundary and its weights are read in that dtype; numerically sensitive layers (normalizations,
softmax: `Layer.keep_float32`) and the layers producing model outputs keep computing in float32, so losses
see float32.
"""
import jax.numpy as jnp

from fncompiler import ir
from fncompiler.layers.layer import Layer
from .manager import Pass, PassResult, register

POLICIES = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}


class Autocast(Layer):
    """Runs `layer` under a mixed dtype policy: float inputs cast to the compute dtype, variables float32."""
    # a wrapper declares what the layer it wraps declares
    random_in_training = property(lambda self: self._layer_ref[0].random_in_training)

    def is_batch_independent(self, arguments=((), {}), input_ranks=(), training=False):
        return self._layer_ref[0].is_batch_independent(arguments, input_ranks, training)

    def __init__(self, layer, policy, name):
        super().__init__(name=name)
        self._layer_ref = [layer]
        self._policy = policy
        self.built = True

    def call(self, *args, **kwargs):
        layer = self._layer_ref[0]
        saved = layer._dtype_policy
        layer._dtype_policy = self._policy
        try:
            return layer(*args, **kwargs)
        finally:
            layer._dtype_policy = saved

    def get_config(self):
        return {"name": self.name, "layer": self._layer_ref[0].name, "policy": self._policy}


def run(graph, ctx):
    policy = ctx.options.get("dtype_policy")
    if policy in (None, "float32"):
        return PassResult(graph, False, "policy float32: nothing to do")
    if policy not in POLICIES:
        raise ValueError(f"Unknown dtype policy {policy!r}; expected one of {sorted(POLICIES)} or 'float32'.")
    compute = POLICIES[policy]
    outputs = {n for n, _ in graph.graph["outputs"]}
    wrapped = []
    for nid in list(graph.graph["order"]):
        data = graph.nodes[nid]
        if data["kind"] != "layer" or getattr(data["layer"], "keep_float32", False) or nid in outputs:
            continue
        if not all(s.dtype in ("float32", "float16", "bfloat16") for s in data["output_specs"]):
            continue
        data["layer"] = Autocast(data["layer"], policy, name=f"autocast_{nid}")
        data["output_specs"] = [ir.TensorSpec(s.shape, compute) for s in data["output_specs"]]
        data["meta"]["mixed_precision"] = compute
        wrapped.append(nid)
    return PassResult(graph, bool(wrapped), f"{len(wrapped)} layers compute in {compute} ({policy}); "
                                           f"{len(outputs)} output layers and normalizations stay float32")


mixed_precision = register(Pass("mixed_precision", run, description=__doc__.splitlines()[0],
                                options=("dtype_policy",)))
