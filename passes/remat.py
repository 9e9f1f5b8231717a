"""Rematerialization (train mode, opt-in): segments of several layers run under `jax.checkpoint`, so the backward
pass keeps only each segment's input and recomputes the segment's activations. Trades compute for memory.

    compile_model(model, passes=passes.default_pipeline("train") + ["remat"],
                  pass_options={"remat_mode": ..., "remat_policy": ..., "remat_segment_size": ...})

remat_mode:
    "auto" (default)      "segments" for ScanBlocks loop bodies; the unrolled segments too, except on XLA:CPU: there
                          the compiled step drops their recomputation (the checkpoint's optimization barriers are
                          expanded early and CSE merges the recomputed forward into the first), keeps the barriers'
                          copies, and so holds more temporary memory, not less (docs/benchmarks.md, "Memory");
    "segments"            the graph is cut at its single-tensor cut points (the nodes every path to the output
                          goes through: scan_blocks' `_cuts`), and every `remat_segment_size` consecutive
                          pieces between cuts become one RematSegment node whose call runs those layers under
                          jax.checkpoint; a ScanBlocks node (passes/scan_blocks.py) instead gets its loop body
                          checkpointed, so the scan keeps only each block's input carry. Layers that assign state
                          (BatchNormalization's moving statistics) run inside a segment: the segment returns the
                          assignments (and add_loss losses) as outputs of the checkpointed function and assigns
                          them outside it. Pieces with a Keras mask reaching them stay as they are.
    "layers"              each layer with (trainable-only) weights and no state assignments under jax.checkpoint
                          alone (the first version; measured to change no XLA peak: a layer's backward needs its
                          input and output, which a per-layer checkpoint keeps anyway).
remat_policy: one of jax.checkpoint_policies (default nothing_saveable).
remat_segment_size: pieces between cuts per segment, an int >= 1 or "sqrt" (default: ceil(sqrt(pieces)), the
    O(sqrt(n)) memory schedule of Chen et al. 2016).
Measurements: docs/passes.md and docs/benchmarks.md ("Memory")."""
import copy
import math

import jax
import jax.numpy as jnp

from fncompiler import scope as scope_lib
from fncompiler.layers.layer import Layer
from .manager import Pass, PassResult, register
from .rewrite import redirect
from . import scan_blocks
from .scan_blocks import ScanBlocks, TemplateLayer, _cuts, _masks_may_reach, _segment, _template_graph, ir_slot

MODES = ("auto", "segments", "layers")


def _options(options):
    policy_name = options.get("remat_policy", "nothing_saveable")
    policy = getattr(jax.checkpoint_policies, policy_name, None) if isinstance(policy_name, str) else None
    if policy is None or not callable(policy):
        raise ValueError(f"remat: pass_options['remat_policy'] must name one of jax.checkpoint_policies (e.g. "
                         f"'nothing_saveable', 'dots_saveable'); received {policy_name!r}.")
    mode = options.get("remat_mode", "auto")
    if mode not in MODES:
        raise ValueError(f"remat: pass_options['remat_mode'] must be one of {list(MODES)}; received {mode!r}.")
    size = options.get("remat_segment_size", "sqrt")
    if size != "sqrt" and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"remat: pass_options['remat_segment_size'] must be 'sqrt' or an int >= 1 (pieces between "
                         f"cut points per checkpointed segment); received {size!r}.")
    return policy_name, policy, mode, size


class Rematerialized(Layer):
    """Calls `layer` under jax.checkpoint with the given policy (remat_mode="layers")."""
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


def _visible_values():
    """{id(variable): value} as the current scope stack resolves it (innermost scope and assignments first)."""
    values = {}
    for s in scope_lib._stack():
        values.update(s.values)
        values.update(s.updates)
    return values


class RematSegment(TemplateLayer):
    """Runs a segment of the graph (a template IR with one input "block_input" and one output) under
    jax.checkpoint: the backward pass recomputes the segment from its input. Assignments made inside
    (BatchNormalization statistics) and add_loss losses come out of the checkpointed function as outputs and
    are recorded in the enclosing scopes outside it."""

    def __init__(self, template, policy, name):
        super().__init__(name=name)
        self._template = template
        self._policy = policy
        self.segment_nodes = template.number_of_nodes() - 1     # its layers (program_size counts them)
        self.built = True

    def call(self, inputs, training=None):
        from fncompiler.runtime import interpreter
        outer = scope_lib.current()
        values = _visible_values()
        key = outer.next_rng() if outer is not None else None
        scope_training = outer.training if outer is not None else training
        traced = {}

        def segment(x):
            # every variable the enclosing scopes map is mapped here too, so an assignment is recorded in this
            # scope (inside the checkpoint's trace) and leaves it only as an output
            with scope_lib.StatelessScope(values, training=scope_training, rng=key) as inner:
                y, = interpreter.execute(self._template, [x], training=training)
            keys = list(inner.updates)
            traced.update(keys=keys, n_losses=len(inner.losses))
            return y, [inner.updates[k] for k in keys], list(inner.losses)

        y, updates, losses = jax.checkpoint(segment, policy=self._policy)(inputs)
        for k, value in zip(traced["keys"], updates):
            owner = next((s for s in reversed(scope_lib._stack()) if k in s.values), None)
            if owner is not None:
                owner.updates[k] = value
        if outer is not None and losses:
            outer.losses.extend(losses)
        return y

    def get_config(self):
        return {"name": self.name, "nodes": self.segment_nodes}


def _run_layers(graph, policy_name, policy):
    wrapped = []
    for nid in list(graph.graph["order"]):
        data = graph.nodes[nid]
        weights = data["layer"].weights if data["kind"] == "layer" else None
        # layers that update state (BatchNormalization statistics) are not wrapped: an assignment made inside
        # jax.checkpoint's trace cannot leave it
        if not weights or data["arguments"][1] or not all(w.trainable for w in weights):
            continue
        data["layer"] = Rematerialized(data["layer"], policy, name=f"remat_{nid}")
        data["meta"]["remat"] = policy_name
        wrapped.append(nid)
    return PassResult(graph, bool(wrapped), f"{len(wrapped)} layers rematerialized ({policy_name})")


def _closed(graph, start, nodes):
    """Whether `nodes` read only `start` and each other, and only their last node is read from outside."""
    inside = set(nodes)
    for n in nodes:
        if any(src != start and src not in inside for src, _ in graph.in_edges(n)):
            return False
        if n != nodes[-1] and any(dst not in inside for _, dst in graph.out_edges(n)):
            return False
    out_ids = {nid for nid, _ in graph.graph["outputs"]}
    return not (out_ids & (inside - {nodes[-1]}))


def _groups(pieces, size):
    """Consecutive pieces (start, nodes) merged `size` at a time; a ScanBlocks piece stands alone."""
    groups, current = [], []
    for piece in pieces:
        if piece[2]:
            if current:
                groups.append(current)
            groups.append([piece])
            current = []
            continue
        current.append(piece)
        if len(current) == size:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


CPU_NOTE = ("unrolled segments left as they are on XLA:CPU, which removes their recomputation (CSE once the "
            "optimization barriers are expanded) and keeps the barriers' copies: more temporary memory, measured; "
            "remat_mode='segments' forces them")


def _run_segments(graph, policy_name, policy, size_option, unrolled=True):
    cuts = [c for c in _cuts(graph) if len(graph.nodes[c]["output_specs"]) == 1]
    pieces = []
    for a, b in zip(cuts, cuts[1:]):
        nodes = _segment(graph, a, b)
        scan = len(nodes) == 1 and isinstance(graph.nodes[nodes[0]].get("layer"), ScanBlocks)
        pieces.append((a, nodes, scan))
    # every ScanBlocks node, on the cut chain or not, gets its loop body checkpointed
    scans = [n for n in graph.graph["order"] if isinstance(graph.nodes[n].get("layer"), ScanBlocks)]
    plain = [p for p in pieces if not p[2]]
    size = size_option if size_option != "sqrt" else max(1, math.ceil(math.sqrt(len(plain)))) if plain else 1
    for nid in scans:
        data = graph.nodes[nid]
        layer = copy.copy(data["layer"])    # the pass's graph gets its own node; the scan's template is shared
        layer.remat_policy = policy
        data["layer"] = layer
        data["meta"]["remat"] = policy_name
    segments, skipped = [], 0
    if not unrolled:
        pieces = [p for p in pieces if p[2]]
    replaced = {}                           # end node of a segment already rewritten -> its RematSegment node
    for group in _groups(pieces, size):
        if group[0][2]:
            continue
        start, nodes = group[0][0], [n for _, ns, _ in group for n in ns]
        start = replaced.get(start, start)  # a segment starts where the previous one ended
        if len(nodes) < 2:
            continue                        # one layer alone: a checkpoint keeps its input and output anyway
        # a Keras mask made before or inside the segment would not reach its layers or leave it
        if not _closed(graph, start, nodes) or _masks_may_reach(graph, nodes[-1]) or \
                any(graph.nodes[n]["kind"] == "input" for n in nodes):
            skipped += 1
            continue
        end = nodes[-1]
        new_id = f"remat[{nodes[0]}..{end}]"
        template = _template_graph(graph, start, nodes)
        graph.add_node(new_id, kind="layer", layer=RematSegment(template, policy, name=new_id), op="RematSegment",
                       config={"nodes": len(nodes), "ops": [graph.nodes[n]["op"] for n in nodes]},
                       arguments=((ir_slot(),), {}), output_specs=list(graph.nodes[end]["output_specs"]),
                       order=graph.nodes[nodes[0]]["order"], meta={"remat": policy_name})
        graph.add_edge(start, new_id, src_index=0, dst_index=0)
        redirect(graph, end, 0, new_id, 0)
        graph.remove_nodes_from(nodes)
        replaced[end] = new_id
        segments.append(len(nodes))
    changed = bool(segments or scans)
    report = (f"{len(segments)} segments rematerialized ({sum(segments)} nodes, {size} pieces between cuts each), "
              f"{len(scans)} scan bodies ({policy_name})")
    if skipped:
        report += f"; {skipped} segment(s) left as they are (read from outside or a Keras mask may reach them)"
    if not unrolled:
        report += "; " + CPU_NOTE
    elif not pieces:
        report += "; the graph has no cut points (several outputs, or none between input and output)"
    return PassResult(graph, changed, report)


def run(graph, ctx):
    policy_name, policy, mode, size = _options(ctx.options)
    if mode == "layers":
        return _run_layers(graph, policy_name, policy)
    unrolled = mode == "segments" or scan_blocks._backend() != "cpu"
    return _run_segments(graph, policy_name, policy, size, unrolled)


remat = register(Pass("remat", run, modes=("train",), description=__doc__.splitlines()[0],
                      options=("remat_policy", "remat_mode", "remat_segment_size"),
                      preserves=("shape_inference", "dtype_check")))
