"""Meshes and layouts: DeviceMesh (devices on named axes), TensorLayout (a tensor's axes -> mesh axes) and
LayoutMap (Variable.path regexes -> layouts)."""
import re
from collections import abc

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from .devices import list_devices, to_jax_device


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
            flat = [to_jax_device(d) for d in self._devices.reshape(-1)]
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
