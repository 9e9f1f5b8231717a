"""Known/unknown splitting of one layer call: the parts that depend only on the layer's weights.

`WeightFold.plan(layer, arguments, input_specs)` traces the layer's inference call with `jax.make_jaxpr`
(weights and inputs as arguments), flattens the jaxpr (inlining `jit`, `custom_jvp_call`, ... so that weight-only
math inside library functions is visible) and marks each equation *known* when all its operands are known:
the layer's weights, constants, literals, constant call arguments, or outputs of known equations. The call is
traced with two sizes for every unknown (None) dimension; an equation whose result shape, parameters or
literal operands differ between the two traces depends on the batch (e.g. a weight broadcast to the batch's
shape) and stays unknown, so what is evaluated ahead never depends on the input's shape.

The split is used in two halves (the runtime calls them; see runtime/lowering.py and runtime/steps.py):
    fold.residuals(weights)                 evaluates the known equations whose values the rest reads (the
                                            *residuals*: e.g. BatchNormalization's scale and offset), once per
                                            weight version
    fold.apply(layer, args, kwargs, res)    retraces the call on the real arguments, checks it has the same
                                            structure as the plan, and evaluates only the unknown equations,
                                            reading the residuals; it returns NOT_APPLIED (and the caller runs the
                                            layer as usual) when anything differs, e.g. an upstream mask
"""
import inspect
import itertools

import jax
import numpy as np
from jax.extend import core as jcore

from fncompiler import scope as scope_lib
from fncompiler.symbolic import fill_arguments

# Call-like primitives whose body is inlined (their forward value is their body's value).
_INLINE = {"jit", "pjit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr",
           "checkpoint", "remat", "remat2"}
# Never evaluated ahead: host callbacks and stateful random number generation.
_NEVER_KNOWN = {"pure_callback", "io_callback", "debug_callback", "debug_print", "callback", "rng_uniform"}
# Known equations that do no arithmetic (they are not counted as folded expressions).
_FREE = {"reshape", "squeeze", "expand_dims", "broadcast_in_dim", "copy", "copy_p"}
# Sizes given to unknown (None) dimensions in the two planning traces (the same as shape inference uses).
TRACE_SIZES = (83, 89)

NOT_APPLIED = object()


class _Op:
    __slots__ = ("prim", "params", "ins", "outs", "ctx", "effects")

    def __init__(self, prim, params, ins, outs, ctx, effects):
        self.prim, self.params, self.ins, self.outs, self.ctx, self.effects = prim, params, ins, outs, ctx, effects


class Program:
    """A jaxpr flattened into one list of primitive applications over numbered values (refs).

    Refs 0..n_inputs-1 are the traced function's inputs; constants and equation outputs get the next numbers
    in walk order, so two traces of the same code number their values alike. An operand is ("r", ref) or
    ("l", literal value)."""

    def __init__(self, closed):
        self.avals, self.consts, self.ops = {}, [], []
        self._next = itertools.count()
        env = {}
        for v in closed.jaxpr.invars:
            env[v] = ("r", self._new(v.aval))
        self.n_inputs = len(closed.jaxpr.invars)
        self._walk(closed.jaxpr, closed.consts, env)
        self.outputs = [self._atom(env, v) for v in closed.jaxpr.outvars]

    def _new(self, aval):
        ref = next(self._next)
        self.avals[ref] = aval
        return ref

    @staticmethod
    def _atom(env, v):
        return ("l", v.val) if isinstance(v, jcore.Literal) else env[v]

    def _walk(self, jaxpr, consts, env):
        for v, c in zip(jaxpr.constvars, consts):
            ref = self._new(v.aval)
            self.consts.append((ref, c))
            env[v] = ("r", ref)
        for eqn in jaxpr.eqns:
            ins = [self._atom(env, v) for v in eqn.invars]
            inner = _inner_jaxpr(eqn)
            if inner is not None:
                body, body_consts = inner
                sub = dict(zip(body.invars, ins))
                self._walk(body, body_consts, sub)
                for ov, iv in zip(eqn.outvars, body.outvars):
                    if not isinstance(ov, jcore.DropVar):
                        env[ov] = self._atom(sub, iv)
                continue
            outs = []
            for ov in eqn.outvars:
                ref = self._new(ov.aval)
                outs.append(ref)
                if not isinstance(ov, jcore.DropVar):
                    env[ov] = ("r", ref)
            self.ops.append(_Op(eqn.primitive, eqn.params, ins, outs, eqn.ctx, eqn.effects))

    def skeleton(self):
        """The dataflow structure (primitives and which refs they read and write), independent of shapes."""
        return (self.n_inputs, tuple(r for r, _ in self.consts),
                tuple((op.prim.name, tuple(a[1] if a[0] == "r" else "l" for a in op.ins), tuple(op.outs))
                      for op in self.ops),
                tuple(a[1] if a[0] == "r" else "l" for a in self.outputs))


def _inner_jaxpr(eqn):
    if eqn.primitive.name not in _INLINE:
        return None
    for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        body = eqn.params.get(key)
        if isinstance(body, jcore.ClosedJaxpr):
            body, consts = body.jaxpr, body.consts
        elif isinstance(body, jcore.Jaxpr):
            consts = ()
        else:
            continue
        if len(body.invars) == len(eqn.invars) and len(body.outvars) == len(eqn.outvars) and \
                len(body.constvars) == len(consts):
            return body, consts
        return None
    return None


def _bind(op, values):
    params = op.prim.get_bind_params(op.params)
    subfuns = ()
    if isinstance(params, tuple):            # older jax: (subfuns, params)
        subfuns, params = params
    ctx = getattr(op.ctx, "manager", None)
    if ctx is None:
        out = op.prim.bind(*subfuns, *values, **params)
    else:
        with ctx:
            out = op.prim.bind(*subfuns, *values, **params)
    return list(out) if op.prim.multiple_results else [out]


def _run(program, env, ops):
    def read(a):
        return a[1] if a[0] == "l" else env[a[1]]
    for op in ops:
        for ref, value in zip(op.outs, _bind(op, [read(a) for a in op.ins])):
            env[ref] = value
    return read


class _ClaimAll(dict):
    """A scope's variable map that claims every variable, so that the scope owns (records) every assignment."""

    def __contains__(self, key):
        return True


class _RecordingScope(scope_lib.StatelessScope):
    """A stateless scope that records the variables read that it does not map, and the variables assigned.
    With `claim_all`, it owns every variable's assignments (so none reaches an outer scope or a variable)."""

    def __init__(self, values, claim_all=False):
        super().__init__(values, training=False)
        if claim_all:
            self.values = _ClaimAll(self.values)
        self.missed = {}
        self.assigned = {}

    def get(self, variable):
        key = id(variable)
        if key in self.updates:
            return self.updates[key]
        value = dict.get(self.values, key)
        if value is None and not dict.__contains__(self.values, key):
            self.missed.setdefault(key, variable)
        return value

    def assign(self, variable, value):
        self.assigned.setdefault(id(variable), variable)
        super().assign(variable, value)


def _is_data(leaf):
    return isinstance(leaf, (jax.Array, np.ndarray, jax.ShapeDtypeStruct, jax.core.Tracer))


def _trace(layer, variables, weights, args, kwargs, claim_all=False):
    """Trace `layer(*args, **kwargs)` as a function of (weights, array leaves of the arguments). The traced
    function returns (outputs, values assigned to variables, losses added), so that a call that assigns
    (e.g. a layer updating statistics) can be replayed; info["assigned"] lists the variables in that order."""
    leaves, treedef = jax.tree_util.tree_flatten((tuple(args), dict(kwargs)),
                                                 is_leaf=lambda x: isinstance(x, jax.ShapeDtypeStruct))
    data_at = [i for i, leaf in enumerate(leaves) if _is_data(leaf)]
    static = tuple(None if i in data_at else leaf for i, leaf in enumerate(leaves))
    info = {}

    def f(wvals, dvals):
        new = list(leaves)
        for i, v in zip(data_at, dvals):
            new[i] = v
        a, k = jax.tree_util.tree_unflatten(treedef, new)
        scope = _RecordingScope({id(v): w for v, w in zip(variables, wvals)}, claim_all=claim_all)
        with scope:
            out = layer(*a, **k)
        assigned = list(scope.assigned.values())
        info.update(missed=list(scope.missed.values()), assigned=assigned, n_losses=len(scope.losses),
                    out_tree=jax.tree_util.tree_structure(out))
        return out, [scope.updates[id(v)] for v in assigned], list(scope.losses)

    data = [leaves[i] for i in data_at]
    closed = jax.make_jaxpr(f)(list(weights), data)
    return closed, info["out_tree"], (treedef, static), data, info


def _same_static(a, b):
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x is y:
            continue
        try:
            if type(x) is not type(y) or not bool(x == y):
                return False
        except Exception:
            return False
    return True


def _same_value(a, b):
    try:
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a, b, equal_nan=True))
    except Exception:
        return False


def _same_aval(a, b):
    return tuple(a.shape) == tuple(b.shape) and a.dtype == b.dtype


def _op_signature(op):
    return (op.prim.name, str(op.params), tuple(("l", repr(a[1])) if a[0] == "l" else a for a in op.ins))


def accepts_training(layer):
    try:
        return "training" in inspect.signature(type(layer).call).parameters
    except (TypeError, ValueError):
        return False


def call_arguments(layer, arguments, input_specs, size):
    """(args, kwargs) of an inference call with ShapeDtypeStructs (None dimensions set to `size`) in the Slots,
    the way runtime/interpreter.py calls the layer (training=False where `call` takes it)."""
    structs = [jax.ShapeDtypeStruct(tuple(size if d is None else d for d in s.shape), s.dtype) for s in input_specs]
    args, kwargs = fill_arguments(arguments, structs)
    kwargs = dict(kwargs)
    if kwargs.get("training") is None and accepts_training(layer):
        kwargs["training"] = False
    return tuple(args), kwargs


class WeightFold:
    """The plan for one node: which equations of its call are evaluated once per weight version."""

    def __init__(self, layer, variables, program, known, residual_refs, needed_ops, skeleton, static, out_tree,
                 known_data, known_signature, expressions, assigned=(), n_losses=0):
        self.layer = layer
        self.variables = variables          # the Variables the call reads, in the order of its weight arguments
        self._program = program             # the first planning trace
        self._known = known                 # per op index: evaluated in the residual half only?
        self.residual_refs = residual_refs
        self.residual_avals = [program.avals[r] for r in residual_refs]
        self._needed_ops = needed_ops       # known ops the residuals need, in order
        self._skeleton = skeleton
        self._static = static               # (treedef, static leaves) of the call's arguments
        self._out_tree = out_tree
        self._known_data = known_data       # {input ref: value} for constant array arguments
        self._known_signature = known_signature
        self.expressions = expressions      # known equations that do arithmetic (what the report counts)
        self._assigned = list(assigned)     # variables the call assigns (replayed in the caller's scope)
        self._n_losses = n_losses

    @property
    def residual_bytes(self):
        return int(sum(np.prod(a.shape, dtype=np.int64) * np.dtype(a.dtype).itemsize for a in self.residual_avals))

    # -- planning ----------------------------------------------------------------------------------
    @classmethod
    def plan(cls, layer, arguments, input_specs):
        """A WeightFold for an inference call of `layer` (IR node arguments and input specs), or None when
        nothing in the call is known ahead or it cannot be split safely."""
        discover = _trace(layer, [], [], *call_arguments(layer, arguments, input_specs, TRACE_SIZES[0]),
                          claim_all=True)[4]
        variables = list({id(v): v for v in discover["missed"] + discover["assigned"]}.values())
        weights = [jax.ShapeDtypeStruct(v.shape, v.dtype) for v in variables]
        traces = []
        for size in TRACE_SIZES:
            closed, out_tree, static, data, info = _trace(layer, variables, weights,
                                                          *call_arguments(layer, arguments, input_specs, size),
                                                          claim_all=True)
            if info["missed"]:
                return None
            traces.append((Program(closed), out_tree, static, data, info))
        (pa, tree_a, static_a, data_a, info_a), (pb, tree_b, static_b, data_b, info_b) = traces
        if pa.skeleton() != pb.skeleton() or tree_a != tree_b or static_a[0] != static_b[0] or \
                [id(v) for v in info_a["assigned"]] != [id(v) for v in info_b["assigned"]]:
            return None
        known = {r: True for r in range(len(variables))}           # weights
        known_data = {}
        for j, (da, db) in enumerate(zip(data_a, data_b)):          # constant array arguments are known
            ref = len(variables) + j
            if not isinstance(da, jax.ShapeDtypeStruct) and _same_value(da, db):
                known[ref] = True
                known_data[ref] = da
        for (ra, ca), (_, cb) in zip(pa.consts, pb.consts):
            if _same_value(ca, cb):
                known[ra] = True

        def operand_known(a, b):
            if a[0] == "l":
                return _same_value(a[1], b[1])
            return known.get(a[1], False)

        raw = set(known)                   # weights, constant arguments, constants: available in both halves
        known_op, derived = [], []
        for oa, ob in zip(pa.ops, pb.ops):
            ok = (oa.prim.name not in _NEVER_KNOWN and not oa.effects
                  and all(operand_known(a, b) for a, b in zip(oa.ins, ob.ins))
                  and all(_same_aval(pa.avals[r], pb.avals[s]) for r, s in zip(oa.outs, ob.outs))
                  and str(oa.params) == str(ob.params))
            # a reshape/cast-free op of raw values only is redone in the per-batch half (no copy of a weight)
            drv = ok and _free(oa, pa) and all(a[0] == "l" or a[1] in raw for a in oa.ins)
            known_op.append(ok)
            derived.append(drv)
            for r in oa.outs:
                known[r] = ok
                if drv:
                    raw.add(r)
        produced_by = {r: i for i, op in enumerate(pa.ops) for r in op.outs}
        ahead = [k and not d for k, d in zip(known_op, derived)]    # evaluated in the residual half only
        residual, seen = [], set()

        def want(a):
            if a[0] == "r" and a[1] in produced_by and ahead[produced_by[a[1]]] and a[1] not in seen:
                seen.add(a[1])
                residual.append(a[1])
        for i, op in enumerate(pa.ops):
            if not ahead[i]:
                for a in op.ins:
                    want(a)
        for a in pa.outputs:
            want(a)
        if not residual:
            return None
        needed, stack = set(), [produced_by[r] for r in residual]
        while stack:
            i = stack.pop()
            if i in needed:
                continue
            needed.add(i)
            for a in pa.ops[i].ins:
                if a[0] == "r" and a[1] in produced_by:
                    stack.append(produced_by[a[1]])
        needed_ops = [pa.ops[i] for i in sorted(needed)]
        expressions = sum(1 for op in needed_ops if not _free(op, pa))
        residual.sort()
        if any(jax.dtypes.issubdtype(pa.avals[r].dtype, jax.dtypes.extended) for r in residual):
            return None    # a PRNG key (a seeded Dropout called with training=True): not an array to keep ahead
        signature = {i: _op_signature(pa.ops[i]) for i in sorted(needed)}
        return cls(layer, variables, pa, ahead, residual, needed_ops, pa.skeleton(), static_a, tree_a,
                   known_data, signature, expressions, info_a["assigned"], info_a["n_losses"])

    # -- the two halves ----------------------------------------------------------------------------
    def residuals(self, weights=None):
        """The residual values from the weights (default: the variables' values in the current scope)."""
        if weights is None:
            weights = [v.value for v in self.variables]
        env = {r: w for r, w in enumerate(weights)}
        env.update(self._known_data)
        env.update(dict(self._program.consts))
        _run(self._program, env, self._needed_ops)
        return [env[r] for r in self.residual_refs]

    def apply(self, layer, args, kwargs, residuals):
        """The call's outputs computed from `residuals` and the unknown equations, or NOT_APPLIED when the call
        differs from the plan (then the caller runs the layer as usual)."""
        if layer is not self.layer or len(residuals) != len(self.residual_refs):
            return NOT_APPLIED
        weights = [v.value for v in self.variables]
        closed, out_tree, static, data, info = _trace(layer, self.variables, weights, args, kwargs, claim_all=True)
        if info["missed"] or out_tree != self._out_tree or static[0] != self._static[0] \
                or not _same_static(static[1], self._static[1]) or info["n_losses"] != self._n_losses \
                or [id(v) for v in info["assigned"]] != [id(v) for v in self._assigned]:
            return NOT_APPLIED
        program = Program(closed)
        if program.skeleton() != self._skeleton:
            return NOT_APPLIED
        if not all(_same_aval(program.avals[r], a) for r, a in zip(self.residual_refs, self.residual_avals)):
            return NOT_APPLIED
        if any(_op_signature(program.ops[i]) != sig for i, sig in self._known_signature.items()):
            return NOT_APPLIED
        for r, value in zip(self.residual_refs, residuals):
            if tuple(np.shape(value)) != tuple(program.avals[r].shape):
                return NOT_APPLIED
        env = {r: w for r, w in enumerate(list(weights) + list(data))}
        env.update(dict(program.consts))
        env.update(zip(self.residual_refs, residuals))
        read = _run(program, env, [op for op, k in zip(program.ops, self._known) if not k])
        flat = [read(a) for a in program.outputs]
        n_out = out_tree.num_leaves
        for variable, value in zip(self._assigned, flat[n_out:n_out + len(self._assigned)]):
            variable.assign(value)                  # into the caller's scope, as the layer itself would
        if self._n_losses:
            current = scope_lib.current()
            if current is not None:
                current.losses.extend(flat[n_out + len(self._assigned):])
        return jax.tree_util.tree_unflatten(out_tree, flat[:n_out])


def _free(op, program):
    if op.prim.name in _FREE:
        return True
    if op.prim.name == "convert_element_type":
        src = op.ins[0]
        src_dtype = np.asarray(src[1]).dtype if src[0] == "l" else program.avals[src[1]].dtype
        return src_dtype == program.avals[op.outs[0]].dtype
    return False
