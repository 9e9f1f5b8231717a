"""Evaluate a small jaxpr on the host with NumPy, for the bookkeeping programs around the train step.

Before its first step, `fit` needs the initial train state (weight copies, optimizer and metric state, the
dropout key), and every log line needs the metric results from their accumulators. As jitted programs each
costs an XLA compilation (50-90 ms for the state, about 25 ms for the logs on XLA:CPU, mostly fixed cost per
program), which is on the path to the first step. Their jaxprs use a handful of exact primitives (broadcasts,
copies, casts, +, -, *, /, comparisons, selects, slices, sums, the threefry seed), so they are computed
here instead, with no compilation.

`evaluate(closed_jaxpr, args)` returns the outputs as NumPy arrays, or raises `Unsupported` when the jaxpr
uses anything else (or a case whose NumPy result could differ from XLA's, such as integer division or a
float-to-int cast); callers then fall back to `jax.jit`. Results are cast to each output's declared dtype and
are bit for bit what jax computes op by op (each primitive rounded on its own); a compiled program may fuse
`a * b + c` into one rounding, so it can differ in the last bit. The programs this serves do one operation
per value (copies, zeros, `total / count`).
"""
import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore

__all__ = ["Unsupported", "evaluate", "HostOrJit", "copies", "copy_tree"]


class Unsupported(Exception):
    """The jaxpr uses a primitive (or a case) this evaluator does not reproduce exactly."""


class _Key:
    """A threefry2x32 key: its two uint32 words."""

    def __init__(self, data):
        self.data = data


def _is_float(a):
    return np.issubdtype(np.asarray(a).dtype, np.floating)


def _is_int(a):
    return np.issubdtype(np.asarray(a).dtype, np.integer)


def _broadcast_in_dim(x, shape, broadcast_dimensions, **_):
    x = np.asarray(x)
    expanded = [1] * len(shape)
    for d, size in zip(broadcast_dimensions, x.shape):
        expanded[d] = size
    return np.array(np.broadcast_to(x.reshape(expanded), tuple(shape)))


def _convert(x, new_dtype, **_):
    x = np.asarray(x)
    new = np.dtype(new_dtype)
    if _is_float(x) and (np.issubdtype(new, np.integer) or new == np.bool_):
        raise Unsupported("float -> int/bool cast")          # XLA saturates / rounds differently at the edges
    return x.astype(new)


def _div(a, b):
    if _is_int(a) or _is_int(b):
        raise Unsupported("integer division")                # XLA truncates toward zero, NumPy floors
    return np.true_divide(a, b)


def _select_n(which, *cases):
    which = np.asarray(which)
    if which.dtype == np.bool_:
        return np.where(which, cases[1], cases[0]) if len(cases) == 2 else cases[0]
    return np.choose(which, cases)


def _slice(x, start_indices, limit_indices, strides=None, **_):
    strides = strides or (1,) * len(start_indices)
    return np.asarray(x)[tuple(slice(s, e, st) for s, e, st in zip(start_indices, limit_indices, strides))]


def _reduce(fn):
    def run(x, axes, **_):
        x = np.asarray(x)
        return fn(x, axis=tuple(axes)).astype(x.dtype)
    return run


def _random_seed(seed, impl, **_):
    if getattr(impl, "name", None) != "threefry2x32":
        raise Unsupported(f"PRNG implementation {getattr(impl, 'name', impl)!r}")
    seed = np.asarray(seed)
    if seed.shape != () or not _is_int(seed):
        raise Unsupported("non-scalar or non-integer seed")
    value = int(seed)
    bits = np.dtype(seed.dtype).itemsize * 8
    high = (value >> 32) & 0xFFFFFFFF if bits > 32 else 0
    return _Key(np.array([high, value & 0xFFFFFFFF], np.uint32))


def _random_unwrap(key, **_):
    if not isinstance(key, _Key):
        raise Unsupported("random_unwrap of a non-key")
    return key.data.copy()


def _random_wrap(data, impl, **_):
    if getattr(impl, "name", None) != "threefry2x32" or np.asarray(data).shape != (2,):
        raise Unsupported("random_wrap")
    return _Key(np.asarray(data, np.uint32).copy())


def _binary(fn):
    return lambda a, b, **_: fn(a, b)


def _unary(fn):
    return lambda a, **_: fn(a)


# primitive name -> NumPy implementation with the same result as XLA (each exact: no transcendental functions).
_RULES = {
    "broadcast_in_dim": _broadcast_in_dim,            # place x's axes at broadcast_dimensions of `shape`
    "convert_element_type": _convert,                 # dtype cast (not float -> int)
    "copy": _unary(lambda a: np.array(a, copy=True)),  # a fresh buffer
    "copy_p": _unary(lambda a: np.array(a, copy=True)),
    "add": _binary(np.add),
    "sub": _binary(np.subtract),
    "mul": _binary(np.multiply),
    "div": _binary(_div),                             # float division only
    "max": _binary(np.maximum),                       # both propagate NaN
    "min": _binary(np.minimum),
    "neg": _unary(np.negative),
    "abs": _unary(np.abs),
    "sqrt": _unary(np.sqrt),                          # correctly rounded in IEEE and in XLA
    "eq": _binary(np.equal),
    "ne": _binary(np.not_equal),
    "lt": _binary(np.less),
    "le": _binary(np.less_equal),
    "gt": _binary(np.greater),
    "ge": _binary(np.greater_equal),
    "and": _binary(np.logical_and),
    "or": _binary(np.logical_or),
    "not": _unary(np.logical_not),
    "select_n": lambda which, *cases: _select_n(which, *cases),
    "slice": _slice,
    "reshape": lambda x, new_sizes, **_: np.reshape(x, tuple(new_sizes)),
    "squeeze": lambda x, dimensions, **_: np.squeeze(x, axis=tuple(dimensions)),
    "expand_dims": lambda x, dimensions, **_: np.expand_dims(x, tuple(dimensions)),
    "transpose": lambda x, permutation, **_: np.transpose(x, permutation),
    "concatenate": lambda *xs, dimension, **_: np.concatenate(xs, axis=dimension),
    "reduce_sum": _reduce(np.sum),                    # order of float additions may differ in the last bit
    "reduce_max": _reduce(np.max),
    "reduce_min": _reduce(np.min),
    "random_seed": _random_seed,                      # threefry2x32: [high word, low word] of the seed
    "random_unwrap": _random_unwrap,                  # key -> its uint32 words
    "random_wrap": _random_wrap,                      # uint32 words -> key
}
_NESTED = ("jit", "pjit", "closed_call", "core_call")


def _read(env, v):
    if isinstance(v, jcore.Literal):
        return v.val
    return env[v]


def _eval_jaxpr(jaxpr, consts, args):
    env = {}
    for v, c in zip(jaxpr.constvars, consts):
        env[v] = c
    for v, a in zip(jaxpr.invars, args):
        env[v] = a
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        ins = [_read(env, v) for v in eqn.invars]
        if name in _NESTED:
            inner = eqn.params.get("jaxpr") or eqn.params.get("call_jaxpr")
            if inner is None:
                raise Unsupported(name)
            outs = _eval_jaxpr(inner.jaxpr, inner.consts, ins) if hasattr(inner, "consts") else \
                _eval_jaxpr(inner, (), ins)
        else:
            rule = _RULES.get(name)
            if rule is None:
                raise Unsupported(name)
            params = {k: v for k, v in eqn.params.items()}
            with np.errstate(all="ignore"):       # integer wrap-around and inf / nan as XLA computes them
                out = rule(*ins, **params)
            outs = [out]
        for v, o in zip(eqn.outvars, outs):
            if isinstance(v, jcore.DropVar):
                continue
            if not isinstance(o, _Key):
                o = np.asarray(o)
                if o.dtype != v.aval.dtype:
                    o = o.astype(v.aval.dtype)
            env[v] = o
    return [_read(env, v) for v in jaxpr.outvars]


def evaluate(closed_jaxpr, args):
    """Outputs of `closed_jaxpr` on `args` (NumPy-convertible), as NumPy arrays. Raises Unsupported."""
    outs = _eval_jaxpr(closed_jaxpr.jaxpr, [np.asarray(c) for c in closed_jaxpr.consts],
                       [np.asarray(a) for a in args])
    if any(isinstance(o, _Key) for o in outs):
        raise Unsupported("a key as an output")
    return outs


class HostOrJit:
    """`fn` computed by `evaluate` on the host when the default device is a CPU and its jaxpr allows, else by
    `jax.jit(fn)`. The jaxpr (or the decision to use jit, taken at the first `Unsupported`) is cached per input
    signature. With `on_device` (default) outputs are jax arrays on the default device either way (host
    results are `device_put`, which compiles nothing); without it host results stay NumPy arrays (for values
    read on the host, such as log lines)."""

    def __init__(self, fn, on_device=True):
        self.fn = fn
        self.on_device = on_device
        self._jit = None
        self._plans = {}       # input signature -> (closed jaxpr, out tree) or None (use jit)
        self.host_calls = 0

    def _jitted(self):
        if self._jit is None:
            self._jit = jax.jit(self.fn)
        return self._jit

    def __call__(self, *args):
        leaves, tree = jax.tree_util.tree_flatten(args)
        key = (tree, tuple((np.shape(a), str(getattr(a, "dtype", type(a)))) for a in leaves))
        plan = self._plans.get(key, False)
        if plan is False:
            plan = self._plans[key] = self._plan(args)
        if plan is None:
            return self._jitted()(*args)
        closed, out_tree = plan
        try:
            outs = evaluate(closed, [np.asarray(a) for a in leaves])
        except Unsupported:
            self._plans[key] = None
            return self._jitted()(*args)
        self.host_calls += 1
        return jax.tree_util.tree_unflatten(out_tree, jax.device_put(outs) if self.on_device else outs)

    def _plan(self, args):
        if not host_path_on():
            return None        # on an accelerator the weights would travel to the host and back
        try:
            closed, shapes = jax.make_jaxpr(self.fn, return_shape=True)(*args)
        except Exception:      # noqa: BLE001 - let jit report the error in the user's terms
            return None
        out_leaves, out_tree = jax.tree_util.tree_flatten(shapes)
        if any(getattr(s, "weak_type", False) for s in out_leaves):
            return None        # NumPy results are strongly typed: the next program would see a new signature
        return closed, out_tree


def host_path_on():
    """True where HostOrJit may evaluate on the host (the default device is a CPU); off on accelerators."""
    return jax.devices()[0].platform == "cpu"


def copies(arrays):
    """Fresh device copies of jax arrays, each on its array's device and as committed to it as the original (a
    jitted step's cache tells committed from uncommitted arguments: a copy that differs compiles the step again).
    Arrays on one CPU device go through NumPy (a memcpy each), which avoids compiling a `copy` program per shape;
    others (on accelerators, split over devices, or weakly typed) get `jnp.array(a, copy=True)`."""
    arrays = list(arrays)
    host = all(isinstance(a, jax.Array) and not a.weak_type and len(a.sharding.device_set) == 1
               and next(iter(a.sharding.device_set)).platform == "cpu" for a in arrays)
    if not host:      # (arrays split over several devices keep their layout through jnp.array)
        return [jnp.array(a, copy=True) for a in arrays]
    out = [None] * len(arrays)
    committed = [i for i, a in enumerate(arrays) if a.committed]
    loose = [i for i, a in enumerate(arrays) if not a.committed]
    if committed:
        placed = jax.device_put([np.array(arrays[i], copy=True) for i in committed],
                                [arrays[i].sharding for i in committed])
        for i, x in zip(committed, placed):
            out[i] = x
    if loose:         # uncommitted: on the default device, as jit outputs from uncommitted inputs are
        for i, x in zip(loose, jax.device_put([np.array(arrays[i], copy=True) for i in loose])):
            out[i] = x
    return out


def copy_tree(tree):
    """`copies` of every array in a pytree (e.g. a train state before it is donated)."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return jax.tree_util.tree_unflatten(treedef, copies(leaves))
