"""Keras's weights HDF5 (model.weights.h5 / .weights.h5), read as plain numeric datasets only, and written.

Reading opens the bytes in memory (never a path a file names) and walks the tree before any array is read:
every link must be a hard link inside the file (soft and external links are refused, so nothing outside the
tree is ever opened), every dataset a plain numeric array (no virtual datasets, no external raw storage, no
compound/string/object/reference types, no compression filters Keras never writes), and the bytes all datasets
declare must fit in the member that holds them (a dataset cannot claim gigabytes it does not store).
"""
import io

import numpy as np

from .errors import ModelFileError

LIMITS = {"objects": 200_000, "depth": 64}
_KINDS = "fiub"  # float, signed/unsigned int, bool


def _h5py():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is a dependency
        raise ImportError("Reading and writing Keras files needs h5py: pip install h5py.") from exc
    return h5py


class H5Tree:
    """The checked content of a Keras weights file: datasets by path, and the 'name' attribute of groups."""

    def __init__(self, arrays, names):
        self.arrays = arrays  # "layers/dense/vars/0" -> np.ndarray
        self.names = names    # "layers/dense" -> "my_dense" (from the group's vars/ attribute 'name')

    def vars_of(self, prefix):
        """The arrays under prefix/vars in index order (0, 1, ...), or [] when the group has none."""
        out, i = [], 0
        while f"{prefix}/vars/{i}" in self.arrays:
            out.append(self.arrays[f"{prefix}/vars/{i}"])
            i += 1
        return out

    def children(self, prefix):
        """Direct child group names under prefix (excluding 'vars')."""
        start = prefix + "/" if prefix else ""
        kids = set()
        for path in list(self.arrays) + list(self.names):
            if path.startswith(start):
                rest = path[len(start):].split("/")
                if rest[0] != "vars" and len(rest) > 1 or (rest[0] != "vars" and path in self.names):
                    kids.add(rest[0])
        return sorted(kids)


def read_tree(data, member):
    """Check and read a Keras weights HDF5 file given as bytes; ModelFileError naming the member and path."""
    h5py = _h5py()
    if not data.startswith(b"\x89HDF\r\n\x1a\n"):
        raise ModelFileError(f"{member} is not an HDF5 file (no HDF5 signature at its start).")
    try:
        f = h5py.File(io.BytesIO(data), "r")
    except Exception as exc:  # noqa: BLE001 - any h5py failure to open is a damaged file
        raise ModelFileError(f"{member} is not a readable HDF5 file: {type(exc).__name__}: {exc}") from exc
    datasets, names, count, declared = {}, {}, 0, 0
    with f:
        stack = [("", f, 0)]
        while stack:
            prefix, group, depth = stack.pop()
            if depth > LIMITS["depth"]:
                raise ModelFileError(f"{member}: groups nest more than {LIMITS['depth']} deep at {prefix!r}.")
            if prefix.endswith("vars") or prefix == "vars":
                attr = group.attrs.get("name")
                if isinstance(attr, bytes):
                    attr = attr.decode("utf-8", "replace")
                if isinstance(attr, str):
                    names[prefix[:-len("/vars")] if prefix != "vars" else ""] = attr
            for key in group.keys():
                count += 1
                if count > LIMITS["objects"]:
                    raise ModelFileError(f"{member} holds more than {LIMITS['objects']} objects.")
                path = f"{prefix}/{key}" if prefix else key
                link = group.get(key, getlink=True)
                if isinstance(link, h5py.ExternalLink):
                    raise ModelFileError(f"{member}: {path!r} is an external link (to {link.filename!r}); a weights "
                                         "file may not point at other files.")
                if isinstance(link, h5py.SoftLink):
                    raise ModelFileError(f"{member}: {path!r} is a soft link (to {link.path!r}); Keras weights "
                                         "files hold only plain groups and datasets.")
                if not isinstance(link, h5py.HardLink):
                    raise ModelFileError(f"{member}: {path!r} is a link of an unknown kind.")
                obj = group.get(key)
                if isinstance(obj, h5py.Group):
                    stack.append((path, obj, depth + 1))
                elif isinstance(obj, h5py.Dataset):
                    declared += _check_dataset(obj, path, member)
                    datasets[path] = obj
                else:
                    raise ModelFileError(f"{member}: {path!r} is neither a group nor a dataset.")
        if declared > len(data):
            raise ModelFileError(f"{member}: its datasets declare {declared} bytes but the file holds {len(data)}: "
                                 "refusing a file that claims data it does not store.")
        arrays = {}
        for path, ds in datasets.items():
            try:
                arrays[path] = np.asarray(ds[()])
            except Exception as exc:  # noqa: BLE001
                raise ModelFileError(f"{member}: cannot read dataset {path!r}: {type(exc).__name__}: {exc}") from exc
    return H5Tree(arrays, names)


def _check_dataset(ds, path, member):
    if ds.is_virtual:
        raise ModelFileError(f"{member}: dataset {path!r} is a virtual dataset (it maps other files' data); "
                             "refused.")
    if ds.external:
        raise ModelFileError(f"{member}: dataset {path!r} keeps its data in external files "
                             f"{[e[0] for e in ds.external]}; refused.")
    dt = ds.dtype
    if dt.fields is not None or dt.subdtype is not None or dt.kind not in _KINDS or dt.itemsize > 16:
        raise ModelFileError(f"{member}: dataset {path!r} has dtype {dt}; only plain numeric arrays (float, int, "
                             "bool) are read.")
    if ds.compression is not None or ds.shuffle or ds.fletcher32 or ds.scaleoffset is not None:
        raise ModelFileError(f"{member}: dataset {path!r} uses HDF5 filters (compression {ds.compression!r}); "
                             "Keras writes plain datasets and fncompiler reads only those.")
    n = 1
    for d in ds.shape or ():
        n *= int(d)
    return n * dt.itemsize


def write_tree(fh, entries):
    """Write [(group path, name attribute or None, [arrays])] as Keras lays them out: <path>/vars/<i>."""
    h5py = _h5py()
    with h5py.File(fh, "w") as f:
        for path, name, arrays in entries:
            vars_path = f"{path}/vars" if path else "vars"
            g = f.require_group(vars_path)
            if name is not None:
                g.attrs["name"] = name
            for i, a in enumerate(arrays):
                g.create_dataset(str(i), data=np.asarray(a))
