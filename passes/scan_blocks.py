"""Repeated blocks -> one `jax.lax.scan` over stacked weights (decides by itself where it pays).

The graph is cut at the nodes every path to the output goes through (dominators); the pieces between
consecutive cuts are blocks with one input and one output. A run of at least `min_repeats` consecutive blocks
with the same structure (same layer classes, configs up to names, shapes, wiring and weight shapes) becomes
one ScanBlocks node: it stacks each weight across the blocks and scans the first block's layers over them.

When it rewrites (`pass_options={"scan_blocks": ...}`):
    "auto" (default)  only where it is expected to pay (auto_decision): in train mode a run of at least
                      AUTO_TRAIN_MIN_BLOCKS blocks (not convolution blocks on XLA:CPU); in predict / eval mode
                      not on XLA:CPU;
    "always"          every run found (tests, measuring, and a runtime that chose the scanned program);
    "never"           report the runs found, change nothing.
It runs in the train pipeline (passes/__init__.py); name it for the others.

In train mode each ScanBlocks holds one StackedVariable per weight kind (`stacked_variables`): the lowered train
program (runtime/lowering.py) keeps that stacked array in its state, parameters and optimizer slots instead of
the blocks' own variables, so the step reads the stack as is and its gradient for each weight kind is one
array, updated once by the optimizer. Before, the state kept one array per block weight: each step stacked them
and cut the stacked gradient back into one static slice per block and weight, each its own XLA kernel fused
into that weight's optimizer update (the unrolled graph's identical blocks share their kernels), so the scanned
train step compiled slower than the unrolled one on XLA:CPU. With the stacked state the step's HLO no longer
grows with depth (transformer: 265 fusions at 4, 16 and 32 blocks; unrolled 631 / 2383 / 4719). The model's
variables stay per layer (the trainer's write-back cuts the stacks into them). Outside a stacked program (other
modes, per-variable clipnorm, a distribution, a block layer also called outside the scan) ScanBlocks stacks the
blocks' weights in each call as before. Convolutions inside the loop body still miss XLA:CPU's convolution
canonicalization (it rewrites the entry computation only) and run on a generic, ~10x slower path.

In train mode on XLA:CPU the loop body runs under jax.checkpoint (`pass_options={"scan_remat": ...}`,
remat_decision): the forward loop keeps each block's input only and the backward loop recomputes the block,
which measured faster than storing and reloading every block's residuals (docs/passes.md). The remat pass
(passes/remat.py) sets the same `ScanBlocks.remat_policy` with its own policy, on any platform.
"""
import json

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np

from fncompiler import ir
from fncompiler import scope as scope_lib
from fncompiler.layers.layer import Layer
from fncompiler.variables import Variable
from .cse import _arguments_key
from .manager import Pass, PassResult, register
from .rewrite import redirect

MIN_REPEATS = 3
POLICIES = ("auto", "always", "never")


def _policy(options, key="scan_blocks"):
    """pass_options[key] ("scan_blocks" or "scan_remat"): one of POLICIES, "auto" when not given."""
    policy = options.get(key, "auto")
    if policy not in POLICIES:
        raise ValueError(f"scan_repeated_blocks: pass_options['{key}'] must be one of {list(POLICIES)}; "
                         f"received {policy!r}.")
    return policy


def remat_decision(mode, backend, policy="auto"):
    """(remat, reason): whether a train-mode ScanBlocks runs its loop body under jax.checkpoint, so the forward
    loop stores only each block's input and the backward loop recomputes the block (docs/passes.md).

    Measured on XLA:CPU (the transformer of benchmarks/zoo.py, quick sizes, batch 32, train step alone, one
    process, alternating): without it the scanned step was 1.1-1.2x the unrolled one at 4-32 blocks, because the
    forward loop writes every block's residuals (attention probabilities, pre-activations) into stacked
    (blocks, ...) buffers that the backward loop reads back; with it 1.03x (4 blocks), 0.98x (8), 0.69x (16),
    0.70-0.78x (32) of the unrolled step, its XLA temporaries 3.3 vs 11.3 MiB (4) and 4.9 vs 75 MiB (32), its
    compile time the same. Not measured on GPU / TPU, so "auto" leaves it off there."""
    if mode != "train" or policy == "never":
        return False, None
    if policy == "always":
        return True, "loop body rematerialized (scan_remat='always')"
    if backend == "cpu":
        return True, ("loop body rematerialized (XLA:CPU: recomputing a block in the backward loop measured "
                      "faster than storing its residuals, and holds only the blocks' inputs)")
    return False, None


def _min_repeats(options, min_repeats):
    value = min_repeats if min_repeats is not None else options.get("scan_min_repeats", MIN_REPEATS)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"scan_repeated_blocks: scan_min_repeats must be an int; received {value!r}.")
    if value < 2:
        raise ValueError(f"scan_repeated_blocks: scan_min_repeats must be at least 2; received {value}.")
    return value


def _backend():
    return jax.default_backend()


AUTO_TRAIN_MIN_BLOCKS = 8      # "auto" scans a train-mode run of at least this many blocks (docs/passes.md)


def auto_decision(mode, backend, blocks=None, block_ops=()):
    """(apply, reason) for pass_options["scan_blocks"] == "auto" and a run of `blocks` repeated blocks whose
    layers are `block_ops`; measurements in docs/passes.md (the depth table of docs/benchmarks.md)."""
    if mode == "train":
        if backend == "cpu" and any("Conv" in op for op in block_ops):
            return False, ("not applied to convolution blocks on XLA:CPU, where the backward convolutions inside "
                           "the loop miss its convolution canonicalization and run ~10x slower")
        if blocks is not None and blocks < AUTO_TRAIN_MIN_BLOCKS:
            return False, (f"not applied in train mode to {blocks} blocks (fewer than {AUTO_TRAIN_MIN_BLOCKS}): "
                           "there the unrolled step compiles about as fast and steps faster")
        return True, (f"applied in train mode ({blocks} blocks >= {AUTO_TRAIN_MIN_BLOCKS}: the stacked train "
                      "state keeps the step's compile time flat in depth)")
    if backend == "cpu":
        return False, ("not applied on XLA:CPU, where the scanned step was measured no faster to compile and "
                       "slower to run (each call copies every block weight into the stacked arrays)")
    return True, f"applied ({backend}, {mode} mode)"


def program_size(graph):
    """The number of nodes a graph's program computes: each ScanBlocks node counts as its one block's nodes
    (what its loop body compiles), so a scanned deep model is about one block's size, an unrolled one `blocks`
    times that (the runtime's tuner estimates compile times from it). A remat pass's RematSegment counts as the
    nodes it runs."""
    total = 0
    for _, data in graph.nodes(data=True):
        layer = data.get("layer")
        total += layer.template_size if isinstance(layer, ScanBlocks) else getattr(layer, "segment_nodes", 1)
    return total


def _block_ops(graph, run_):
    return [graph.nodes[n]["op"] for n in run_[0][1]]


def _cuts(g):
    """Nodes on every path from the inputs to the (single) output, in topological order."""
    if len(g.graph["outputs"]) != 1:
        return []
    out, _ = g.graph["outputs"][0]
    h = nx.DiGraph(g)
    h.add_node("__source__")
    for nid in g.graph["inputs"]:
        h.add_edge("__source__", nid)
    dom = nx.immediate_dominators(h, "__source__")
    chain = [out]
    while chain[-1] != "__source__":
        chain.append(dom[chain[-1]])
    order = {n: i for i, n in enumerate(g.graph["order"])}
    return sorted(chain[:-1], key=order.get)


def _segment(g, start, end):
    """Nodes after `start` up to and including `end` (`end`'s ancestors not before `start`)."""
    nodes = (nx.ancestors(g, end) | {end}) - nx.ancestors(g, start) - {start}
    order = {n: i for i, n in enumerate(g.graph["order"])}
    return sorted(nodes, key=order.get)


def _signature(g, start, nodes):
    local = {n: i for i, n in enumerate(nodes)}
    sig = []
    for nid in nodes:
        data = g.nodes[nid]
        if data["kind"] != "layer" or len(data["output_specs"]) != 1 and nid == nodes[-1]:
            return None
        layer = data["layer"]
        if hasattr(layer, "_nodes") or hasattr(layer, "_functional"):
            return None
        ins = []
        for src, idx in ir.input_edges(g, nid):
            if src == start:
                ins.append((-1, idx))
            elif src in local:
                ins.append((local[src], idx))
            else:
                return None       # reads a tensor from outside the block
        if start in local or g.nodes[start]["output_specs"].__len__() != 1:
            return None
        # names and random seeds differ between blocks without changing their math
        config = {k: v for k, v in data["config"].items() if k not in ("name", "seed")}
        sig.append((data["op"], json.dumps(config, sort_keys=True, default=str), tuple(ins),
                    tuple((s.shape, s.dtype) for s in data["output_specs"]), _arguments_key(data["arguments"]),
                    tuple((w.shape, w.dtype, w.trainable) for w in layer.weights)))
    return tuple(sig)


def _find_runs(sigs, min_repeats, max_period=8):
    """[(start, period, repeats)]: non-overlapping runs where sigs[start:start+period] repeats, greedily
    preferring the run that covers the most segments."""
    runs, i = [], 0
    while i < len(sigs):
        best = None
        for p in range(1, max_period + 1):
            unit = sigs[i:i + p]
            if len(unit) < p or any(s is None for s in unit):
                break
            r = 1
            while sigs[i + r * p: i + (r + 1) * p] == unit:
                r += 1
            if r >= min_repeats and (best is None or r * p > best[1] * best[2]):
                best = (i, p, r)
        if best:
            runs.append(best)
            i += best[1] * best[2]
        else:
            i += 1
    return runs


def _merge_segments(segs):
    """Consecutive segments (start, nodes, sig) as one block with the first start."""
    return segs[0][0], [n for _, nodes, _ in segs for n in nodes], tuple(s for _, _, s in segs)


def _mask_source(layer):
    """Whether a layer can start a Keras mask (the scanned blocks run without the masks their layers would get)."""
    if layer is None:
        return False
    if getattr(layer, "mask_zero", False) or getattr(layer, "mask", None) is not None:
        return True
    cls = type(layer)
    return cls.compute_mask is not Layer.compute_mask and not cls.__module__.startswith("fncompiler.")


def _masks_may_reach(g, start):
    return any(_mask_source(g.nodes[n].get("layer")) for n in nx.ancestors(g, start) | {start})


def split_blocks(x, n):
    """[x[0], ..., x[n-1]]: a stacked array cut back into its blocks' arrays. Concrete arrays on one CPU device
    go through NumPy (a copy each, no compiled program per block and shape); others are sliced by jax."""
    if isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer) and len(x.sharding.device_set) == 1 \
            and next(iter(x.sharding.device_set)).platform == "cpu":
        host = np.asarray(x)
        if x.committed:
            return [jax.device_put(np.array(host[b]), x.sharding) for b in range(n)]
        return [jnp.asarray(np.array(host[b])) for b in range(n)]
    if isinstance(x, np.ndarray):
        return [jnp.asarray(np.array(x[b])) for b in range(n)]
    return [x[b] for b in range(n)]


def stack_blocks(values):
    """The blocks' arrays stacked on a new axis 0 (NumPy for concrete CPU arrays, else jnp.stack)."""
    values = list(values)
    concrete = all(isinstance(v, np.ndarray) or (isinstance(v, jax.Array) and not isinstance(v, jax.core.Tracer)
                                                 and len(v.sharding.device_set) == 1
                                                 and next(iter(v.sharding.device_set)).platform == "cpu")
                   for v in values)
    if concrete:
        out = np.stack([np.asarray(v) for v in values])
        first = values[0]
        if isinstance(first, jax.Array) and first.committed:
            return jax.device_put(out, first.sharding)
        return jnp.asarray(out)
    return jnp.stack(values)


class StackedVariable(Variable):
    """One weight of a scan's blocks, all blocks at once: a program variable of shape (blocks,) + the weight's
    shape, standing for `members` (the blocks' own Variables, which the model, get_weights and saved files
    keep). A lowered train program that holds it in its state updates the stacked array as one (one gradient,
    one optimizer update per weight kind, whatever the depth). Reading `_value` stacks the members' current
    values (cached while they are unchanged, so the same object comes back); writing it cuts the array back
    into the members. Inside a step's scope it maps to the traced stacked array like any variable."""

    def __init__(self, members):
        first = members[0]
        self.members = list(members)
        self.name = first.name
        self.path = f"{first.path}..{members[-1].path}"
        self.trainable = first.trainable
        self.dtype = first.dtype
        self.shape = (len(members),) + tuple(first.shape)
        self.constraint = _per_block_constraint(self.members)
        self.regularizer = _summed_regularizer(self.members)
        self._cache = None          # (member values it was built from, stacked array)

    def _get_value(self):
        current = [m._value for m in self.members]
        cache = self._cache
        if cache is not None and all(a is b for a, b in zip(cache[0], current)):
            return cache[1]
        stacked = stack_blocks(current)
        self._cache = (current, stacked)
        return stacked

    def _set_value(self, value):
        parts = split_blocks(value, len(self.members))
        for m, part in zip(self.members, parts):
            m._value = part
        self._cache = ([m._value for m in self.members], value)

    _value = property(_get_value, _set_value)

    def __repr__(self):
        return f"<StackedVariable path={self.path} shape={self.shape} dtype={self.dtype} trainable={self.trainable}>"


def _per_block_constraint(members):
    constraints = [m.constraint for m in members]
    if all(c is None for c in constraints):
        return None

    def constrain(x):
        return jnp.stack([x[b] if c is None else c(x[b]) for b, c in enumerate(constraints)])
    return constrain


def _summed_regularizer(members):
    regularizers = [m.regularizer for m in members]
    if all(r is None for r in regularizers):
        return None

    def regularize(x):
        return sum(r(x[b]) for b, r in enumerate(regularizers) if r is not None)
    return regularize


class TemplateLayer(Layer):
    """A node that runs a template IR (`self._template`, input node "block_input") inside a JAX transformation
    (ScanBlocks, the remat pass's RematSegment): it declares what the template's layers declare."""
    random_in_training = property(lambda self: any(
        getattr(d.get("layer"), "random_in_training", True) for _, d in self._template.nodes(data=True)
        if d.get("kind") != "input"))

    def is_batch_independent(self, arguments=((), {}), input_ranks=(), training=False):
        from fncompiler.runtime import buckets
        return buckets.per_sample(self._template, training)


class ScanBlocks(TemplateLayer):
    """Runs `len(blocks)` structurally identical blocks as one lax.scan over their stacked weights."""

    def __init__(self, template, block_variables, name, stacked_state=False, remat=False):
        super().__init__(name=name)
        self._template = template              # IR of the first block: input node "block_input"
        self.template_size = template.number_of_nodes()
        self._vars = block_variables           # [[Variable per weight] per block]
        # one StackedVariable per weight kind: a lowered program may hold these instead of the block variables
        self._stacks = [StackedVariable([block[k] for block in block_variables])
                        for k in range(len(block_variables[0]))] if stacked_state else []
        # training: the loop body runs under jax.checkpoint with this policy (remat_decision; the remat pass)
        self.remat_policy = jax.checkpoint_policies.nothing_saveable if remat else None
        self.built = True

    @property
    def stacked_variables(self):
        """The StackedVariables a lowered program may keep in its state in place of the blocks' own variables
        (runtime/lowering.py); empty when the blocks' weights are read one by one and stacked in each call."""
        return list(self._stacks)

    def _stacked_weights(self):
        """Per weight kind: the stacked array the step's scope holds for it (a program with stacked state), or
        the blocks' weights stacked here (one copy of each weight kind per call)."""
        out = []
        for k in range(len(self._vars[0])):
            value = scope_lib.lookup(self._stacks[k]) if self._stacks else None
            out.append((value, True) if value is not None else
                       (jnp.stack([block[k].value for block in self._vars]), False))
        return out

    def call(self, inputs, training=None):
        from fncompiler.runtime import interpreter
        template_vars = self._vars[0]
        weights = self._stacked_weights()
        stacked = [w for w, _ in weights]
        outer = scope_lib.current()
        base_key = outer.next_rng() if outer is not None else None
        traced = {}

        def body(carry, xs):
            weights, index = xs
            key = None if base_key is None else jax.random.fold_in(base_key, index)
            with scope_lib.StatelessScope({id(v): w for v, w in zip(template_vars, weights)}, training=training,
                                          rng=key) as inner:
                y, = interpreter.execute(self._template, [carry], training=training)
            # only the weights the block assigned (e.g. BatchNormalization statistics) come out of the loop
            assigned = [k for k, v in enumerate(template_vars) if id(v) in inner.updates]
            traced.update(assigned=assigned, has_losses=bool(inner.losses))
            updates = [inner.updates[id(template_vars[k])] for k in assigned]
            loss = sum(inner.losses) if inner.losses else jnp.zeros((), jnp.float32)
            return y, (updates, loss)

        if self.remat_policy is not None and training:
            # the forward loop keeps each block's input carry; the backward loop recomputes the block from it (the
            # assigned statistics and losses are outputs of the checkpointed body, so none leak; prevent_cse=False:
            # the scan already keeps the recomputation apart, and measured the same either way)
            body = jax.checkpoint(body, policy=self.remat_policy, prevent_cse=False)
        y, (updates, losses) = jax.lax.scan(body, inputs, (stacked, jnp.arange(len(self._vars))))
        for j, k in enumerate(traced["assigned"]):
            if weights[k][1]:                  # the state holds the stack: the new statistics stay stacked
                self._stacks[k].assign(updates[j])
                continue
            for b, block in enumerate(self._vars):
                block[k].assign(updates[j][b])
        if outer is not None and traced["has_losses"]:
            outer.losses.append(jnp.sum(losses))
        return y

    def get_config(self):
        return {"name": self.name, "blocks": len(self._vars)}


def _template_graph(g, start, nodes):
    t = nx.MultiDiGraph(name="block")
    spec = g.nodes[start]["output_specs"][0]
    t.add_node("block_input", kind="input", layer=None, op="InputLayer", config={}, arguments=((), {}),
               output_specs=[spec], order=-1, meta={})
    for nid in nodes:
        t.add_node(nid, **dict(g.nodes[nid], meta={}))
        for pos, (src, idx) in enumerate(ir.input_edges(g, nid)):
            t.add_edge("block_input" if src == start else src, nid, src_index=idx, dst_index=pos)
    t.graph.update(inputs=["block_input"], outputs=[(nodes[-1], 0)], output_tree=None)
    t.graph["order"] = ir.topo_order(t)
    return t


def _describe(runs):
    return ", ".join(f"{len(r)} x {len(r[0][1])} nodes" for r in runs)


def run(graph, ctx, min_repeats=None):
    policy = _policy(ctx.options)
    min_repeats = _min_repeats(ctx.options, min_repeats)
    remat, remat_note = remat_decision(ctx.mode, _backend(), _policy(ctx.options, "scan_remat"))
    cuts = _cuts(graph)
    segments = []
    for a, b in zip(cuts, cuts[1:]):
        nodes = _segment(graph, a, b)
        segments.append((a, nodes, _signature(graph, a, nodes)))
    runs = [[_merge_segments(segments[k:k + p]) for k in range(i, i + r * p, p)]
            for i, p, r in _find_runs([s[2] for s in segments], min_repeats)]
    masked = [r for r in runs if _masks_may_reach(graph, r[0][0])]
    runs = [r for r in runs if not any(r is m for m in masked)]
    skipped = f"; {len(masked)} run(s) left unrolled: a Keras mask may reach them" if masked else ""
    if not runs:
        return PassResult(graph, False, "scanned 0 runs of repeated blocks" + skipped)
    if policy == "never":
        return PassResult(graph, False, f"found {len(runs)} runs ({_describe(runs)}); not applied "
                                        f"(scan_blocks='never')" + skipped)
    auto_note = ""
    if policy == "auto":
        decisions = [auto_decision(ctx.mode, _backend(), len(r), _block_ops(graph, r)) for r in runs]
        declined = [(r, why) for r, (apply, why) in zip(runs, decisions) if not apply]
        kept = [r for r, (apply, _) in zip(runs, decisions) if apply]
        if not kept:
            reasons = "; ".join(dict.fromkeys(why for _, why in declined))
            return PassResult(graph, False, f"found {len(runs)} runs ({_describe(runs)}); {reasons}; "
                                            f"pass_options={{'scan_blocks': 'always'}} forces it" + skipped)
        auto_note = "; " + "; ".join(dict.fromkeys(why for _, (apply, why) in zip(runs, decisions) if apply))
        if declined:
            auto_note += f"; {len(declined)} run(s) ({_describe([r for r, _ in declined])}) left unrolled: " + \
                "; ".join(dict.fromkeys(why for _, why in declined))
        runs = kept
    # In train mode the lowered program may keep each weight kind's blocks as one stacked array in its state
    # (StackedVariable), where no other layer reads those weights (a shared layer would read its own copy).
    uses = {}
    for _, data in graph.nodes(data=True):
        for w in getattr(data.get("layer"), "weights", None) or []:
            uses[id(w)] = uses.get(id(w), 0) + 1
    replaced = {}                               # end node of a run already rewritten -> its ScanBlocks node
    for run_ in runs:
        start, first_nodes, _ = run_[0]
        start = replaced.get(start, start)      # a run may start where the previous one ended
        end = run_[-1][1][-1]
        block_vars = []
        for _, nodes, _ in run_:
            block_vars.append([w for n in nodes for w in graph.nodes[n]["layer"].weights])
        new_id = f"scan[{first_nodes[0]}..{end}]"
        template = _template_graph(graph, start, first_nodes)
        stacked_state = ctx.mode == "train" and all(uses.get(id(w)) == 1 for block in block_vars for w in block)
        layer = ScanBlocks(template, block_vars, name=new_id, stacked_state=stacked_state, remat=remat)
        graph.add_node(new_id, kind="layer", layer=layer, op="ScanBlocks",
                       config={"blocks": len(run_), "block_ops": [graph.nodes[n]["op"] for n in first_nodes]},
                       arguments=((ir_slot(),), {}), output_specs=list(graph.nodes[end]["output_specs"]),
                       order=graph.nodes[first_nodes[0]]["order"],
                       meta={"scan_blocks": len(run_), **({"remat": "scan body"} if remat else {})})
        graph.add_edge(start, new_id, src_index=0, dst_index=0)
        redirect(graph, end, 0, new_id, 0)
        graph.remove_nodes_from([n for _, nodes, _ in run_ for n in nodes])
        replaced[end] = new_id
    remat_note = f"; {remat_note}" if remat_note else ""
    return PassResult(graph, True, f"scanned {len(runs)} runs of repeated blocks ({_describe(runs)})" + auto_note +
                      remat_note + skipped)


def ir_slot():
    from fncompiler.symbolic import Slot
    return Slot(0)


scan_repeated_blocks = register(Pass("scan_repeated_blocks", run, requires=("shape_inference",),
                                     options=("scan_blocks", "scan_min_repeats", "scan_remat"),
                                     description=__doc__.splitlines()[0],
                                     preserves=("shape_inference", "dtype_check")))
