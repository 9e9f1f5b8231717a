"""Keras-3-style distribution API over `jax.sharding` and `jax.distributed`.

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
import os
import re
import warnings
from collections import abc

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

DEFAULT_BATCH_DIM_NAME = "batch"

__all__ = ["list_devices", "get_device_count", "initialize", "DeviceMesh", "TensorLayout", "LayoutMap",
           "Distribution", "DataParallel", "ModelParallel", "set_distribution", "get_distribution", "distribution",
           "distribute_tensor", "layout_of", "to_host", "process_id", "num_processes"]


# -- devices and processes --------------------------------------------------------------------------------------

def list_devices(device_type=None):
    """All devices (global ones in a multi-process run) as "platform:id" strings, e.g. "cpu:0", "gpu:3".

    device_type: "cpu", "gpu" or "tpu"; default: the default backend (accelerators when present).
    """
    device_type = device_type.lower() if device_type else None
    return [f"{d.platform}:{d.id}" for d in jax.devices(device_type)]


def get_device_count(device_type=None):
    """How many devices `list_devices(device_type)` returns."""
    return len(list_devices(device_type))


def process_id():
    return jax.process_index()


def num_processes():
    return jax.process_count()


def _env_int(name):
    value = os.environ.get(name)
    return None if value in (None, "") else int(value)


def initialize(job_addresses=None, num_processes=None, process_id=None, coordinator_address=None, **kwargs):
    """Join a multi-process (multi-host) run: `jax.distributed.initialize` under Keras's argument names.

    Call it once per process, before any computation. job_addresses: comma-separated "host:port" addresses of all
    jobs; only the first one (process 0, the coordinator) is used by JAX, so one address is enough. Each value
    falls back to the environment variables KERAS_DISTRIBUTION_JOB_ADDRESSES / _NUM_PROCESSES / _PROCESS_ID, and
    with none of them JAX's own cluster detection runs (SLURM, Open MPI, Cloud TPU). `coordinator_address` is
    JAX's name for the same thing; other keyword arguments (`local_device_ids`, `initialization_timeout`, ...)
    go to `jax.distributed.initialize` unchanged.
    """
    if job_addresses is not None and coordinator_address is not None:
        raise ValueError("initialize: pass job_addresses or coordinator_address, not both.")
    address = job_addresses if job_addresses is not None else coordinator_address
    if address is None:
        address = os.environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES") or None
    if num_processes is None:
        num_processes = _env_int("KERAS_DISTRIBUTION_NUM_PROCESSES")
    if process_id is None:
        process_id = _env_int("KERAS_DISTRIBUTION_PROCESS_ID")
    if address is not None:
        address = address.split(",")[0].strip()
    jax.distributed.initialize(coordinator_address=address, num_processes=num_processes, process_id=process_id,
                               **kwargs)


def initialize_distributed(coordinator_address=None, num_processes=None, process_id=None, **kwargs):
    """`initialize` under JAX's argument names (`jax.distributed.initialize(coordinator_address=...)`)."""
    initialize(coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id,
               **kwargs)


def _to_jax_device(device):
    if isinstance(device, jax.Device):
        return device
    if isinstance(device, str):
        platform, _, index = device.partition(":")
        platform = platform.lower()
        try:
            candidates = jax.devices(platform)
        except RuntimeError as exc:
            raise ValueError(f"Unknown device {device!r}: no {platform!r} backend ({exc}).") from None
        for d in candidates:
            if str(d.id) == index:
                return d
        raise ValueError(f"Unknown device {device!r}; available: {list_devices(platform)}.")
    raise TypeError(f"A device must be a jax.Device or a 'platform:id' string; received {device!r}.")


# -- mesh and layouts -------------------------------------------------------------------------------------------

class DeviceMesh:
    """A named grid of devices (`jax.sharding.Mesh` underneath, see `.jax_mesh`).

    shape: e.g. (8,) for data parallel, (2, 4) for data x model parallel. axis_names: one name per mesh axis.
    devices: "platform:id" strings or jax devices (default: `list_devices()`), reshaped to `shape` in order.
    """

    def __init__(self, shape, axis_names, devices=None):
        if not shape or not axis_names:
            raise ValueError(f"Shape and axis_names cannot be empty. Received: shape={shape}, "
                             f"axis_names={axis_names}")
        if isinstance(axis_names, str):
            axis_names = (axis_names,)
        if len(shape) != len(axis_names):
            raise ValueError(f"Shape and axis_names should have same size. Received: shape={shape}, "
                             f"axis_names={axis_names}")
        if len(set(axis_names)) != len(axis_names):
            raise ValueError(f"Mesh axis names must be unique; received {axis_names}.")
        if devices is None:
            devices = list_devices()
        devices = np.array(devices, dtype=object)
        if int(np.prod(shape)) != devices.size:
            raise ValueError(f"Shape does not match the number of devices. Received: shape={shape}; "
                             f"devices.shape={devices.shape}")
        self._shape = tuple(int(s) for s in shape)
        self._axis_names = tuple(axis_names)
        self._devices = np.reshape(devices, self._shape)
        self._jax_mesh = None

    @property
    def shape(self):
        return self._shape

    @property
    def axis_names(self):
        return self._axis_names

    @property
    def devices(self):
        return self._devices

    def axis_size(self, name):
        return self._shape[self._axis_names.index(name)]

    @property
    def jax_mesh(self):
        """The `jax.sharding.Mesh` over the same devices and axis names."""
        if self._jax_mesh is None:
            flat = [_to_jax_device(d) for d in self._devices.reshape(-1)]
            grid = np.empty(len(flat), dtype=object)
            grid[:] = flat
            self._jax_mesh = jax.sharding.Mesh(grid.reshape(self._shape), self._axis_names)
        return self._jax_mesh

    def __repr__(self):
        return f"<DeviceMesh shape={self.shape}, axis_names={self.axis_names}>"

    __str__ = __repr__


def _axis_tuple(entry):
    if entry is None:
        return ()
    return tuple(entry) if isinstance(entry, (tuple, list)) else (entry,)


class TensorLayout:
    """How one tensor is laid out on a mesh: one entry per tensor dimension, a mesh axis name (that dimension is
    split over that mesh axis), a tuple of names (split over several axes), or None (not split). A tensor whose
    entries are all None is replicated on every device. `jax.sharding.NamedSharding(mesh, P(*axes))` underneath.
    """

    def __init__(self, axes, device_mesh=None):
        if isinstance(axes, str):
            axes = (axes,)
        self._axes = tuple(tuple(a) if isinstance(a, list) else a for a in axes)
        self._device_mesh = device_mesh
        self._validate_axes()

    @property
    def axes(self):
        return self._axes

    @property
    def device_mesh(self):
        return self._device_mesh

    @device_mesh.setter
    def device_mesh(self, device_mesh):
        if self._device_mesh is not None:
            raise ValueError(f"Cannot override device mesh value. Existing value is {self._device_mesh}")
        self._device_mesh = device_mesh
        self._validate_axes()

    def _validate_axes(self):
        if self._device_mesh is not None:
            valid = set(self._device_mesh.axis_names)
            used = [n for a in self._axes for n in _axis_tuple(a)]
            unknown = set(used) - valid
            if unknown:
                raise ValueError(f"Invalid axis names for Layout. Valid axis names: {valid}, Got {set(used)}")
            if len(used) != len(set(used)):
                raise ValueError(f"A mesh axis may split only one tensor dimension; received axes={self._axes}.")

    @property
    def is_replicated(self):
        return all(a is None for a in self._axes)

    @property
    def partition_spec(self):
        return PartitionSpec(*self._axes)

    @property
    def sharding(self):
        """The `jax.sharding.NamedSharding` (needs a device mesh)."""
        if self._device_mesh is None:
            raise ValueError(f"{self!r} has no device mesh yet; create it with device_mesh=... or insert it into a "
                             "LayoutMap.")
        return NamedSharding(self._device_mesh.jax_mesh, self.partition_spec)

    def check_shape(self, shape, what="tensor"):
        """Raise a ValueError naming `what` unless the layout fits a tensor of this shape."""
        shape = tuple(shape)
        if len(self._axes) != len(shape):
            raise ValueError(f"Layout axes={self._axes} has rank {len(self._axes)} but {what} has shape {shape} "
                             f"(rank {len(shape)}). Give one entry per dimension (None = not split).")
        if self._device_mesh is None:
            return
        for dim, (size, entry) in enumerate(zip(shape, self._axes)):
            parts = int(np.prod([self._device_mesh.axis_size(n) for n in _axis_tuple(entry)] or [1]))
            if size % parts:
                raise ValueError(f"Layout axes={self._axes} splits dimension {dim} of {what} (shape {shape}) over "
                                 f"{entry!r} ({parts} devices), but {size} is not divisible by {parts}. Choose a "
                                 "mesh whose axis size divides it, or leave that dimension None.")

    def __eq__(self, other):
        return (isinstance(other, TensorLayout) and self._axes == other._axes
                and self._device_mesh is other._device_mesh)

    def __hash__(self):
        return hash((self._axes, id(self._device_mesh)))

    def __repr__(self):
        return f"<TensorLayout axes={self.axes}, device_mesh={self.device_mesh}>"

    def __str__(self):
        if self.is_replicated:
            return "replicated"
        return "(" + ", ".join("None" if a is None else repr(a) for a in self._axes) + ")"


class LayoutMap(abc.MutableMapping):
    """A dict from regexes to `TensorLayout`s. Lookup (`layout_map[path]`): the exact key if present, else every
    key is tried with `re.search` against the path; one match gives its layout, none gives None (the weight is
    replicated), several raise a ValueError. Paths are `Variable.path`, "<layer name>/<weight name>", e.g.
    "dense/kernel"; list them with `[v.path for v in model.weights]`. Values may be given as tuples/lists of axes.
    """

    def __init__(self, device_mesh):
        self._layout_map = {}
        self._device_mesh = device_mesh

    def __getitem__(self, key):
        if key in self._layout_map:
            return self._layout_map[key]
        matching = [k for k in self._layout_map if re.search(k, key)]
        if len(matching) > 1:
            raise ValueError(f"Path '{key}' matches multiple layout specification keys: {matching}. Please make "
                             "sure each tensor/variable path only matches at most one layout specification key in "
                             "the LayoutMap.")
        return self._layout_map[matching[0]] if matching else None

    def __setitem__(self, key, layout):
        if key in self._layout_map:
            raise ValueError(f"{key} already exist in the LayoutMap with value {self._layout_map[key]}. Please make "
                             "sure to not use duplicated keys.")
        if isinstance(layout, (tuple, list)):
            layout = TensorLayout(axes=layout, device_mesh=None)
        if not isinstance(layout, TensorLayout):
            raise ValueError(f"{layout} should be a TensorLayout type, got {type(layout)}")
        re.compile(key)   # a bad regex fails here, not at the first lookup
        if layout.device_mesh is None and self._device_mesh is not None:
            layout.device_mesh = self._device_mesh
        elif layout.device_mesh is not None and self._device_mesh is not None \
                and layout.device_mesh is not self._device_mesh:
            raise ValueError(f"Layout for {key!r} uses a different device mesh than the LayoutMap.")
        self._layout_map[key] = layout

    def __delitem__(self, key):
        return self._layout_map.pop(key)

    def __len__(self):
        return len(self._layout_map)

    def __iter__(self):
        return iter(self._layout_map)

    @property
    def device_mesh(self):
        return self._device_mesh

    def __repr__(self):
        items = ", ".join(f"{k!r}: {v}" for k, v in self._layout_map.items())
        return f"<LayoutMap {{{items}}} on {self._device_mesh}>"


LayoutMap.get.__doc__ = LayoutMap.__getitem__.__doc__


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
