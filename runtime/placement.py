"""Where the step's arrays live. Without a distribution: the default device. Under
`fncompiler.distribution.set_distribution(...)` (or its `scope()`), the distribution places batches (split over
its data axis), weights (by its layout map) and optimizer / metric / RNG state, and the jitted step follows the
data: jit compiles one SPMD program for the input shardings it receives (XLA adds the collectives).

    place_batch / place_weights / place_tree   put arrays where the distribution wants them
    jit_step(fn, donate_argnums)               jit whose output keeps the donated argument's layout
    to_host(array)                             a step output -> NumPy (this process's rows in a multi-process run)
"""
import jax


_get_distribution = None


def current():
    """The active distribution, or None. (Asked several times per step and per predict call: the getter is
    looked up once, not imported each time.)"""
    global _get_distribution
    getter = _get_distribution
    if getter is None:
        try:
            from fncompiler.distribution import get_distribution as getter
        except ImportError:
            return None
        _get_distribution = getter
    return getter()


def place_batch(arrays, batch_axis=0):
    """Host arrays of one batch (a list, None for absent targets) -> what the jitted step takes. Without a
    distribution the NumPy arrays are returned as they are: jit's C++ dispatch copies them to the device within the
    call (measured: a jitted call on a 64x784 NumPy batch 29 us, with a separate `jnp.asarray` first 48 us; that
    difference was the MLP fit's whole gap to a hand-written loop). Under a
    distribution they are split over its data axis along `batch_axis` (0; 1 for N batches stacked as
    (N, batch, ...) for one lax.scan execution)."""
    dist = current()
    if dist is None:
        return list(arrays)
    if batch_axis:
        return [None if a is None else dist.place_batch(a, batch_axis=batch_axis) for a in arrays]
    return [None if a is None else dist.place_batch(a) for a in arrays]


def place_weights(values, variables):
    """Weight values (a list, in the order of `variables`) -> device arrays laid out for the distribution."""
    dist = current()
    if dist is None:
        return list(values)
    many = getattr(dist, "place_weights", None)
    if many is not None:       # also remembers the layouts, so optimizer slots can mirror them (place_tree)
        return many(list(values), list(variables))
    return [dist.place_weight(x, v) for x, v in zip(values, variables)]


def place_tree(tree):
    """Any other state (optimizer, metrics, RNG): replicated under a distribution, except optimizer slots that
    mirror the weight list (e.g. Adam's moments), which take the weights' layouts."""
    dist = current()
    if dist is None:
        return tree
    state = getattr(dist, "place_state", None)
    return state(tree) if state is not None else dist.place_replicated(tree)


def _layout_of_array(x, replicated):
    """The array's NamedSharding on the distribution's mesh, spelled canonically (P(None, None) and P() are the
    same layout; one spelling keeps one compiled step), or replicated for arrays not on that mesh."""
    sharding = getattr(x, "sharding", None)
    if not (isinstance(sharding, jax.sharding.NamedSharding) and sharding.mesh == replicated.mesh):
        return replicated
    spec = list(sharding.spec)
    while spec and spec[-1] is None:
        spec.pop()
    return jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec(*spec))


class _OptionsJit:
    """`jax.jit(fn, compiler_options=options)`, which keeps jit's C++ dispatch; called inside another trace (a
    user's own `jax.jit` or `jax.grad` around a step), where JAX accepts options only at the top level, it is
    the same jit without options (the outer program's compilation decides)."""

    def __init__(self, fn, options, **jit_kwargs):
        self.compiler_options = dict(options)
        self._top = jax.jit(fn, compiler_options=self.compiler_options, **jit_kwargs)
        self._nested = jax.jit(fn, **jit_kwargs)

    def __call__(self, *args):
        try:
            return self._top(*args)
        except ValueError as exc:
            if "top-level" not in str(exc):
                raise
        return self._nested(*args)

    def lower(self, *args, **kwargs):
        return self._top.lower(*args, **kwargs)

    def eval_shape(self, *args, **kwargs):
        return self._nested.eval_shape(*args, **kwargs)


def _jit(fn, donate_argnums=(), compiler_options=None, **jit_kwargs):
    if donate_argnums:
        jit_kwargs["donate_argnums"] = tuple(donate_argnums)
    if not compiler_options:
        return jax.jit(fn, **jit_kwargs)
    return _OptionsJit(fn, compiler_options, **jit_kwargs)


class _LayoutKeepingJit:
    """`jax.jit(fn, donate_argnums=donate)` whose outputs keep the layout of the donated argument under a
    distribution (Keras's JAX trainer passes `out_shardings` for the same reason): without it XLA picks output
    shardings by propagation, e.g. a replicated bias next to a column-split kernel can come back split, and the
    next step would then see a new input layout (a recompile, and a donated buffer it cannot reuse).
    `compiler_options` (XLA options) go to every `jax.jit`, so the C++ dispatch path is kept."""

    def __init__(self, fn, donate_argnums, compiler_options=None):
        self._fn = fn
        self._donate = tuple(donate_argnums)
        self.compiler_options = dict(compiler_options or {})
        self._plain = _jit(fn, self._donate, self.compiler_options)
        self._by_layout = {}

    def _jitted(self, args):
        dist = current()
        if dist is None or len(self._donate) != 1:
            return self._plain
        donated = args[self._donate[0]]
        replicated = dist.replicated_sharding()
        leaves, treedef = jax.tree_util.tree_flatten(donated)
        shardings = [_layout_of_array(x, replicated) for x in leaves]
        key = (treedef, tuple(shardings))
        jitted = self._by_layout.get(key)
        if jitted is None:
            jitted = _jit(self._fn, self._donate, self.compiler_options,
                          out_shardings=jax.tree_util.tree_unflatten(treedef, shardings))
            self._by_layout[key] = jitted
        return jitted

    def __call__(self, *args):
        return self._jitted(args)(*args)

    def lower(self, *args, **kwargs):
        return self._jitted(args).lower(*args, **kwargs)

    def eval_shape(self, *args, **kwargs):
        return self._plain.eval_shape(*args, **kwargs)


def jit_step(fn, donate_argnums=(), compiler_options=None):
    """`jax.jit(fn, donate_argnums=...)` for a step whose output is the new value of its one donated argument
    (train / train_multi: the state; eval: the metric states): under a distribution the output keeps the donated
    argument's shardings (out_shardings = in shardings), so donation and one executable per input signature hold
    across steps; without a distribution it is the plain jit. `compiler_options`: XLA options for its
    compilations (see _OptionsJit)."""
    if not donate_argnums:
        return _jit(fn, (), compiler_options)
    return _LayoutKeepingJit(fn, donate_argnums, compiler_options)


def to_host(array):
    """A batch-major step output (e.g. predictions) -> a NumPy array. Under a distribution spanning several
    processes, each process gets the rows of the batch it fed (a plain `np.asarray` cannot read an array whose
    shards live in other processes)."""
    dist = current()
    if dist is None or not hasattr(dist, "batch_to_host"):
        import numpy as np
        return np.asarray(array)
    return dist.batch_to_host(array)
