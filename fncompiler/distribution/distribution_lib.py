"""Keras-3-style distribution API over `jax.sharding` and `jax.distributed`: the distributions (Distribution,
DataParallel, ModelParallel), the global one (set_distribution) and array placement. Devices and processes are in
devices.py, meshes and layouts in layouts.py; both are re-exported here.

    devices = distribution.list_devices()                     # ["cpu:0", "cpu:1", ...]
    mesh = distribution.DeviceMesh((2, 2), ("batch", "model"), devices)
    layout_map = distribution.LayoutMap(mesh)
    layout_map["d.*/kernel"] = (None, "model")                # regex (re.search) on Variable.path
    distribution.set_distribution(distribution.ModelParallel(layout_map=layout_map, batch_dim_name="batch"))
    model.fit(...)                                            # the jitted steps run SPMD over the mesh

Nothing here runs a step: a `Distribution` only decides where arrays live. The runtime calls
`runtime/placement.py` for every batch, for the weights at fit/evaluate/predict start and for optimizer / metric /
RNG state, and jit compiles one SPMD program that follows those input shardings (XLA inserts the collectives).
"""
import contextlib
import warnings

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from .devices import (get_device_count, initialize, initialize_distributed, list_devices, num_processes,
                      process_id)
from .layouts import DeviceMesh, LayoutMap, TensorLayout

DEFAULT_BATCH_DIM_NAME = "batch"

__all__ = ["list_devices", "get_device_count", "initialize", "DeviceMesh", "TensorLayout", "LayoutMap",
           "Distribution", "DataParallel", "ModelParallel", "set_distribution", "get_distribution", "distribution",
           "distribute_tensor", "layout_of", "to_host", "process_id", "num_processes", "initialize_distributed"]


# -- placing arrays ---------------------------------------------------------------------------------------------

def _put(value, sharding):
    """A global jax.Array with `sharding` holding `value` (the same value on every process)."""
    if isinstance(value, jax.Array):
        if value.sharding == sharding:
            return value
        if not value.is_fully_addressable or jax.process_count() == 1:
            return jax.device_put(value, sharding)
    if jax.process_count() == 1:
        return jax.device_put(value, sharding)
    host = np.asarray(value)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def to_host(x):
    """A NumPy copy of a (possibly sharded, possibly multi-process) array. Arrays spread over several processes
    are gathered with `jax.experimental.multihost_utils.process_allgather` (every process must call this)."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable and not x.is_fully_replicated:
        from jax.experimental import multihost_utils
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


class Distribution:
    """Base class: a device mesh plus the rules that place data, weights and state on it."""

    def __init__(self, device_mesh, batch_dim_name=None):
        if not isinstance(device_mesh, DeviceMesh):
            raise ValueError(f"Expect `device_mesh` to be an instance of `DeviceMesh`. Received: "
                             f"device_mesh={device_mesh} (of type {type(device_mesh)})")
        self._device_mesh = device_mesh
        self._batch_dim_name = batch_dim_name or device_mesh.axis_names[0]
        if self._batch_dim_name not in device_mesh.axis_names:
            raise ValueError(f"batch_dim_name={self._batch_dim_name!r} is not an axis of {device_mesh} "
                             f"(axes {device_mesh.axis_names}).")
        self._state_shardings = {}

    # -- Keras's interface --
    @property
    def device_mesh(self):
        return self._device_mesh

    @property
    def batch_dim_name(self):
        return self._batch_dim_name

    def get_data_layout(self, data_shape):
        axes = [None] * len(data_shape)
        axes[0] = self._batch_dim_name
        return TensorLayout(axes, self._device_mesh)

    def get_variable_layout(self, variable):
        return TensorLayout([None] * len(variable.shape), self._device_mesh)

    def get_tensor_layout(self, path):
        return None

    @contextlib.contextmanager
    def scope(self):
        """Make this distribution current inside the block (the previous one comes back after it)."""
        previous = get_distribution()
        set_distribution(self)
        try:
            yield self
        finally:
            set_distribution(previous)

    def distribute_dataset(self, dataset):
        """fncompiler feeds NumPy arrays / generators: each process passes its own slice to fit (see
        docs/distributed.md); there is no dataset object to rewrite, so the dataset comes back unchanged."""
        return dataset

    # -- the placement hooks used by runtime/placement.py --
    def _data_groups(self):
        """How many distinct slices of the batch the processes hold: process-local batch rows x this = global
        rows (1 in a single process; the process count when the data axis spans all processes)."""
        mesh = self._device_mesh.jax_mesh
        axis = mesh.axis_names.index(self._batch_dim_name)
        size = mesh.devices.shape[axis]
        me = jax.process_index()
        local = {idx[axis] for idx, d in np.ndenumerate(mesh.devices) if d.process_index == me}
        return size // max(len(local), 1), size

    def place_batch(self, value, batch_axis=0):
        """One input/target array of a batch -> a global array split over the data axis along its batch axis
        (axis 0; axis 1 for N batches stacked for one `lax.scan` execution, shape (N, batch, ...)).

        Each process passes only its own rows (`jax.make_array_from_process_local_data`); the global batch is the
        processes' rows in process order. When the global batch size is not divisible by the data-axis size (e.g.
        the last partial batch), the batch is replicated on every device instead (gathered from all processes
        first): the step still sees the whole global batch, so losses and metrics are the global ones.
        """
        if isinstance(value, jax.Array) and not value.is_fully_addressable:
            return value                        # already a global array
        host = np.asarray(value)
        if host.ndim <= batch_axis:
            return _put(host, self.replicated_sharding())
        groups, axis_size = self._data_groups()
        global_rows = host.shape[batch_axis] * groups
        global_shape = host.shape[:batch_axis] + (global_rows,) + host.shape[batch_axis + 1:]
        mesh = self._device_mesh.jax_mesh
        if global_rows % axis_size == 0 and global_rows > 0:
            sharding = NamedSharding(mesh, PartitionSpec(*([None] * batch_axis), self._batch_dim_name))
            return jax.make_array_from_process_local_data(sharding, host, global_shape)
        if groups > 1:
            if groups != jax.process_count():
                raise ValueError(f"A batch of {global_rows} rows cannot be split over the {axis_size} devices of "
                                 f"axis {self._batch_dim_name!r}, and this mesh's processes do not each hold a "
                                 "distinct slice: use a batch size divisible by the data-axis size.")
            from jax.experimental import multihost_utils
            pieces = np.asarray(multihost_utils.process_allgather(host, tiled=False))   # (processes, *local)
            host = np.concatenate(list(pieces), axis=batch_axis)
        return jax.make_array_from_process_local_data(self.replicated_sharding(), host, host.shape)

    def batch_to_host(self, array):
        """A batch-major step output (predictions) -> NumPy, this process's rows only: the rows that match the
        rows this process fed to `place_batch` (all rows in a single process)."""
        if not isinstance(array, jax.Array) or array.is_fully_addressable:
            return np.asarray(array)
        groups, _ = self._data_groups()
        full = tuple(slice(0, n) for n in array.shape[1:])
        rows_only = array.ndim and not array.is_fully_replicated and all(
            tuple(slice(i.start or 0, array.shape[d + 1] if i.stop is None else i.stop) for d, i in
                  enumerate(shard.index[1:])) == full for shard in array.addressable_shards)
        if rows_only:
            blocks = {}
            for shard in array.addressable_shards:     # split along axis 0 only: this process's row blocks
                blocks.setdefault(shard.index[0].start or 0, shard.data)
            return np.concatenate([np.asarray(blocks[k]) for k in sorted(blocks)], axis=0)
        host = to_host(array)
        if groups == 1 or host.ndim == 0:
            return host
        rows = host.shape[0] // groups
        me = jax.process_index()
        return host[me * rows:(me + 1) * rows]

    def place_weight(self, value, variable):
        """A weight value -> a global array laid out by `get_variable_layout(variable)`."""
        layout = self.get_variable_layout(variable)
        if layout.device_mesh is None:
            layout.device_mesh = self._device_mesh
        shape = tuple(np.shape(value))
        layout.check_shape(shape, f"weight {getattr(variable, 'path', variable)!r}")
        return _put(value, layout.sharding)

    def place_weights(self, values, variables):
        """`place_weight` for a list, remembering the list's shardings so optimizer slots that mirror it (Adam's
        moments: same list structure and shapes) get the same layout in `place_state`."""
        placed = [self.place_weight(x, v) for x, v in zip(values, variables)]
        if placed:
            key = tuple((tuple(x.shape), str(x.dtype)) for x in placed)
            self._state_shardings[key] = [x.sharding for x in placed]
        return placed

    def replicated_sharding(self):
        return NamedSharding(self._device_mesh.jax_mesh, PartitionSpec())

    def place_replicated(self, tree):
        """Every array leaf of `tree` -> replicated on all devices of the mesh."""
        sharding = self.replicated_sharding()
        return jax.tree.map(lambda x: _put(x, sharding), tree)

    def place_state(self, tree):
        """Optimizer / metric / RNG state: lists that mirror a placed weight list (same length, shapes and dtypes,
        e.g. optimizer moments) take those weights' layouts; everything else is replicated."""
        if not self._state_shardings:
            return self.place_replicated(tree)
        known = self._state_shardings

        def signature(node):
            if not isinstance(node, list) or not node or not all(hasattr(x, "shape") for x in node):
                return None
            return tuple((tuple(x.shape), str(x.dtype)) for x in node)

        def mirrors(node):
            return signature(node) in known

        leaves, treedef = jax.tree_util.tree_flatten(tree, is_leaf=mirrors)
        replicated = self.replicated_sharding()
        out = []
        for leaf in leaves:
            if mirrors(leaf):
                out.append([_put(x, s) for x, s in zip(leaf, known[signature(leaf)])])
            else:
                out.append(_put(leaf, replicated))
        return jax.tree_util.tree_unflatten(treedef, out)

    def __repr__(self):
        return f"<{type(self).__name__} device_mesh={self.device_mesh}, batch_dim_name={self._batch_dim_name!r}>"

    __str__ = __repr__


class DataParallel(Distribution):
    """Data parallelism: weights replicated on every device, each batch split along axis 0 over the mesh's first
    axis. Give `device_mesh` (a DeviceMesh; its first axis is the data axis) or `devices` (a list; a 1-D mesh
    with axis "batch"), or neither (all of `list_devices()`)."""

    def __init__(self, device_mesh=None, devices=None, auto_shard_dataset=True):
        if device_mesh is not None and devices is not None:
            raise ValueError("DataParallel: pass device_mesh or devices, not both.")
        if device_mesh is not None:
            if not isinstance(device_mesh, DeviceMesh):
                raise ValueError(f"Expect `mesh` to be an instance of `DeviceMesh`. Received: mesh={device_mesh} "
                                 f"(of type {type(device_mesh)})")
            if len(device_mesh.shape) != 1:
                warnings.warn(f"Expect the input mesh to be 1D, but received a mesh of shape {device_mesh.shape}. "
                              "The first axis will be used for data-parallel sharding.", stacklevel=2)
        else:
            devs = list(devices) if devices else list_devices()
            device_mesh = DeviceMesh((len(devs),), (DEFAULT_BATCH_DIM_NAME,), devs)
        super().__init__(device_mesh, device_mesh.axis_names[0])
        self._auto_shard_dataset = auto_shard_dataset


class ModelParallel(Distribution):
    """Weights laid out by a `LayoutMap` (regex on `Variable.path` -> TensorLayout; unmatched weights are
    replicated), batches split over `batch_dim_name` (default: the mesh's first axis). The mesh is the layout
    map's (Keras 3); `device_mesh=` may be given too and must then be the same mesh."""

    def __init__(self, *, layout_map=None, batch_dim_name=None, device_mesh=None, **kwargs):
        if kwargs:
            raise TypeError(f"ModelParallel: unexpected arguments {sorted(kwargs)}.")
        if layout_map is None:
            raise ValueError("You must specify a layout_map argument.")
        if not isinstance(layout_map, LayoutMap):
            raise ValueError(f"Argument `layout_map` must be a `LayoutMap` instance. Received: "
                             f"layout_map={layout_map}")
        mesh = layout_map.device_mesh if layout_map.device_mesh is not None else device_mesh
        if mesh is None:
            raise ValueError("ModelParallel needs a device mesh: create the LayoutMap with one.")
        if device_mesh is not None and device_mesh is not mesh:
            raise ValueError("ModelParallel: device_mesh differs from layout_map.device_mesh.")
        super().__init__(mesh, batch_dim_name)
        self._layout_map = layout_map

    @property
    def layout_map(self):
        return self._layout_map

    def get_variable_layout(self, variable):
        layout = self._layout_map[variable.path]
        if layout is not None:
            if layout.device_mesh is None:
                layout.device_mesh = self._device_mesh
            return layout
        return TensorLayout([None] * len(variable.shape), self._device_mesh)

    def get_tensor_layout(self, path):
        return self._layout_map[path]


# -- the global distribution ------------------------------------------------------------------------------------

_global = {"distribution": None, "mesh_context": None}


def set_distribution(value):
    """Make `value` (a Distribution, or None for single-device) the distribution fit/evaluate/predict use.

    It also makes the distribution's mesh JAX's current mesh (`jax.set_mesh`, on this thread), so that arrays the
    runtime creates outside the placement hooks (a reset metric accumulator, a new learning rate) are created
    replicated on the mesh like the rest of the state, and the jitted steps see one input signature (one trace).
    `set_distribution(None)` restores the mesh that was current before.
    """
    if value is not None and not isinstance(value, Distribution):
        raise ValueError(f"set_distribution expects a Distribution (DataParallel, ModelParallel) or None; "
                         f"received {value!r}.")
    previous_context = _global["mesh_context"]
    if previous_context is not None:
        _global["mesh_context"] = None
        previous_context.__exit__(None, None, None)
    if value is not None:
        _global["mesh_context"] = jax.set_mesh(value.device_mesh.jax_mesh)
    _global["distribution"] = value


def get_distribution():
    """The current distribution, or None."""
    return _global["distribution"]


def distribution():
    """Keras 3's name for `get_distribution()`."""
    return get_distribution()


def distribute_tensor(tensor, layout):
    """Give `tensor` the layout: inside a jitted function a sharding constraint, outside a placed array."""
    if isinstance(layout, TensorLayout):
        if layout.device_mesh is None:
            dist = get_distribution()
            if dist is None:
                raise ValueError("distribute_tensor: the layout has no device mesh and no distribution is set.")
            layout.device_mesh = dist.device_mesh
        sharding = layout.sharding
    else:
        sharding = layout
    if isinstance(tensor, jax.core.Tracer):
        return jax.lax.with_sharding_constraint(tensor, sharding)
    return _put(tensor, sharding)


def layout_of(variable, distribution=None):
    """The `TensorLayout` the distribution (default: the current one) gives this weight, or None when there is no
    distribution. Replicated weights get a layout whose axes are all None (`str(layout)` == "replicated")."""
    dist = distribution if distribution is not None else get_distribution()
    if dist is None:
        return None
    return dist.get_variable_layout(variable)

