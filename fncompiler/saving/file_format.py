"""The model file: one zip, written atomically, read with limits and checks before anything is built.

Members (no others are accepted):
    metadata.json     {"format": "fncompiler.model", "format_version": "1.0", versions, date}
    config.json       {"class_name", "config", "compile_config"}   (JSON, no code)
    weights.msgpack   {"paths": [...], "arrays": {"0": array, ...}} (flax msgpack: shape, dtype, bytes)
    optimizer.msgpack optimizer state as a flax state dict (optional)
    hashes.json       sha256 of every other member

Every way a file can be malformed ends in `ModelFileError` (or `UnsafeConfigError` for a file that asks for
something no fncompiler file may ask for, e.g. a member path with '..'), never in a zipfile/zlib/json/msgpack
exception: see docs/file-format.md.
"""
import datetime
import hashlib
import io
import json
import os
import re
import stat
import tempfile
import zipfile

from .errors import ModelFileError, UnsafeConfigError

FORMAT = "fncompiler.model"
FORMAT_VERSION = "1.0"
MEMBERS = ("metadata.json", "config.json", "weights.msgpack", "optimizer.msgpack", "hashes.json")
LIMITS = {
    "file_bytes": 8 * 1024 ** 3,        # whole file
    "json_bytes": 64 * 1024 ** 2,       # config.json / metadata.json / hashes.json, decompressed
    "member_bytes": 8 * 1024 ** 3,      # any member, decompressed
    "ratio": 200,                       # decompressed / compressed, for members over `ratio_min_bytes` (zip bombs)
    "ratio_min_bytes": 1024 ** 2,
    "central_directory_bytes": 1024 ** 2,  # the zip's table of contents
    "zip_entries": 64,                  # entries the table of contents may list before it is parsed at all
    "json_depth": 64,                   # nesting of JSON objects/arrays
    "json_containers": 4_000_000,       # JSON objects + arrays in one member (memory of the parsed tree)
    "layers": 100_000,                  # layer entries in a model config, nested models included
    "nodes": 100_000,                   # layer calls (inbound nodes) in a model config, nested models included
}


def metadata():
    import jax
    from .. import __version__
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "fncompiler_version": __version__,
            "jax_version": jax.__version__, "date_saved": datetime.datetime.now(datetime.timezone.utc).isoformat()}


# -- writing ---------------------------------------------------------------------------------------
def _new_file_mode(path):
    """The mode the file would get from open(): the old file's mode when overwriting, else 0o666 & ~umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        pass
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path, members, hashes=True):
    """Write {name: bytes} as a zip at `path`: temp file in the same folder, fsync, rename. `hashes=False` leaves
    out hashes.json (Keras's archives have none); `members` given as bytes is written as the whole file (an
    HDF5 weights file).

    Either the whole new file is at `path` afterwards or (on any error, including KeyboardInterrupt) the old file
    is untouched and the temp file is removed. A process killed while writing (kill -9, power loss) cannot
    remove its temp file; the next save into that folder does (`remove_stale_temp_files`).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Cannot save to {path!r}: folder {folder!r} does not exist.")
    if os.path.isdir(path):
        raise IsADirectoryError(f"Cannot save to {path!r}: it is a directory. Pass a file path, e.g. 'model.fnc'.")
    remove_stale_temp_files(folder)
    raw = members if isinstance(members, bytes) else None
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in members.items()} \
        if hashes and raw is None else None
    mode = _new_file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(), suffix=TEMP_SUFFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            if raw is not None:
                fh.write(raw)
            else:
                _write_zip(fh, members, digests)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


# -- temporary files of killed writers -----------------------------------------------------------------
# A temp file is named `.tmp-<host>-<pid>-<start>-<random>.fncompiler`: the writer's host (8 hex digits of a
# hash of its name), its process id and that process's start time (Linux: clock ticks since boot, from
# /proc/<pid>/stat; 0 where unknown). Another save removes such a file only when it was written on this host by
# a process that is gone: no process has that pid any more, or the pid now belongs to a process that started at
# another time (the pid was reused), or to a zombie. A live writer's file (in this process or any other) is never
# removed; nor is any file of another name or from another host (a shared network folder).
TEMP_SUFFIX = ".fncompiler"
_TEMP_NAME = re.compile(r"^\.tmp-([0-9a-f]{8})-(\d+)-(\d+)-[a-z0-9_]+" + re.escape(TEMP_SUFFIX) + r"$")


def _host_tag():
    import socket
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def _process_start(pid):
    """(alive, start) of process `pid`: start is its start time in clock ticks since boot (Linux), else 0;
    alive is None where it cannot be told (no /proc and not POSIX)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        # fields[0] is field 3 of proc(5), the state; field 22 is the start time
        return fields[0] != b"Z", int(fields[19])
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            return False, 0
    except (OSError, IndexError, ValueError):
        return None, 0
    if os.name != "posix":
        return None, 0  # on Windows os.kill(pid, 0) would terminate the process: never guess there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False, 0
    except OSError:  # PermissionError: it exists, owned by someone else
        return True, 0
    return True, 0


def temp_prefix(pid=None):
    """The name prefix of the temp files that process `pid` (default: this one) writes."""
    pid = os.getpid() if pid is None else pid
    return f".tmp-{_host_tag()}-{pid}-{_process_start(pid)[1]}-"


def remove_stale_temp_files(folder):
    """Remove the temp files in `folder` left by writers that were killed (see above); return their names.
    Best effort: a file that cannot be removed (or that another cleaner removed first) is skipped."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    host, removed = None, []
    for name in names:
        match = _TEMP_NAME.match(name)
        if match is None:
            continue
        host = host or _host_tag()
        tag, pid, start = match.group(1), int(match.group(2)), int(match.group(3))
        if tag != host:
            continue
        alive, now_start = _process_start(pid)
        if alive is None or (alive and (now_start == start or 0 in (start, now_start))):
            continue  # a live writer (this process included), or one we cannot tell
        try:
            os.unlink(os.path.join(folder, name))
        except OSError:
            continue
        removed.append(name)
    return removed


def _write_zip(fh, members, digests):
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if digests is not None:
            zf.writestr("hashes.json", json.dumps(digests, indent=1))


def _fsync_folder(folder):
    """Make the rename durable (POSIX); best effort elsewhere."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- reading ---------------------------------------------------------------------------------------
_DRIVE = re.compile(r"^[A-Za-z]:")


def check_member_name(name, path):
    """Refuse member names that are paths out of the archive (zip-slip), whatever else the file holds."""
    parts = re.split(r"[/\\]", name)
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise UnsafeConfigError(f"{path!r} contains a member with an absolute path, {name!r}: refusing the file "
                                "(a model file's members are plain names such as 'config.json').")
    if ".." in parts:
        raise UnsafeConfigError(f"{path!r} contains a member whose path climbs out of the archive, {name!r}: "
                                "refusing the file (a model file's members are plain names such as 'config.json').")
    if "\x00" in name:
        raise UnsafeConfigError(f"{path!r} contains a member name with a NUL byte, {name!r}: refusing the file.")


def check_central_directory(fh, path):
    """Before zipfile parses the table of contents: bound its size and entry count (cheap to check, and a
    crafted table with millions of entries would otherwise cost memory and time)."""
    end_rec_data = getattr(zipfile, "_EndRecData", None)
    if end_rec_data is None:  # pragma: no cover - private API of CPython's zipfile; other checks still apply
        return
    try:
        endrec = end_rec_data(fh)
    except Exception as exc:  # noqa: BLE001 - whatever a damaged tail does, it is not a model file
        raise ModelFileError(f"{path!r} is not a fncompiler model file (damaged zip directory): {exc}") from exc
    if not endrec:
        raise ModelFileError(f"{path!r} is not a fncompiler model file (not a zip archive, or truncated).")
    entries, size = endrec[zipfile._ECD_ENTRIES_TOTAL], endrec[zipfile._ECD_SIZE]
    if entries > LIMITS["zip_entries"]:
        raise ModelFileError(f"{path!r} has {entries} members; a model file has at most {len(MEMBERS)}.")
    if size > LIMITS["central_directory_bytes"]:
        raise ModelFileError(f"{path!r} has a {size}-byte zip directory, over the "
                             f"{LIMITS['central_directory_bytes']} byte limit.")


def read_member(zf, info, path):
    name = info.filename
    limit = LIMITS["json_bytes"] if name.endswith(".json") else LIMITS["member_bytes"]
    if info.file_size > limit:
        raise ModelFileError(f"Member {name!r} of {path!r} declares {info.file_size} bytes, over the {limit} byte "
                             "limit.")
    if info.file_size > LIMITS["ratio_min_bytes"] and info.compress_size * LIMITS["ratio"] < info.file_size:
        raise ModelFileError(f"Member {name!r} of {path!r} would expand {info.file_size / max(info.compress_size, 1):.0f}"
                             f"x (declared {info.file_size} bytes from {info.compress_size}): refusing a likely zip "
                             f"bomb (the limit is {LIMITS['ratio']}x).")
    try:
        with zf.open(info) as fh:
            data = fh.read(limit + 1)
    except Exception as exc:  # noqa: BLE001 - BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError...
        raise ModelFileError(f"Member {name!r} of {path!r} is corrupt or truncated: {type(exc).__name__}: {exc}") \
            from exc
    if len(data) > limit or len(data) != info.file_size:
        raise ModelFileError(f"Member {name!r} of {path!r} does not match its declared size.")
    return data


def read_members(path, required=("metadata.json", "config.json", "weights.msgpack"), allowed=None, check_meta=None,
                 what="model file", exact_hashes=False, hashes=True):
    """Read and check the file's members into memory; raise ModelFileError/OSError with a clear message.

    The same reader serves other zip files of the project (runtime/checkpoint.py): `allowed` (the member names
    such a file may hold; default MEMBERS), `check_meta` (checks the parsed metadata.json; default
    check_metadata), `what` (the file's name in messages) and `exact_hashes` (hashes.json must list every
    member, not only some).

    Order of checks: the file exists and is not too large; the zip directory is small; member names are plain
    (no '..', no absolute paths) and unique; metadata.json is read first and its format version checked (so a
    newer file says so rather than failing on a member this version does not know); then only known members,
    each within its size and compression-ratio limits; then sha256 of every member against hashes.json
    (`hashes=False`: a file format that has none, i.e. Keras's archives).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No {what} at {path!r}.")
    if os.path.isdir(path):
        raise ModelFileError(f"{path!r} is a directory, not a fncompiler {what}.")
    size = os.path.getsize(path)
    if size > LIMITS["file_bytes"]:
        raise ModelFileError(f"{path!r} is {size} bytes, over the {LIMITS['file_bytes']} byte limit.")
    members = {}
    with open(path, "rb") as raw:
        check_central_directory(raw, path)
        raw.seek(0)
        try:
            zf = zipfile.ZipFile(raw)
        except Exception as exc:  # noqa: BLE001 - BadZipFile, OSError, ValueError, EOFError, struct.error...
            raise ModelFileError(f"{path!r} is not a fncompiler {what} (not a zip archive, or truncated): "
                                 f"{type(exc).__name__}: {exc}") from exc
        with zf:
            infos = zf.infolist()
            names = [info.filename for info in infos]
            for name in names:
                check_member_name(name, path)
            if len(set(names)) != len(names):
                dup = sorted({n for n in names if names.count(n) > 1})
                raise ModelFileError(f"{path!r} holds more than one member named {dup}: refusing an ambiguous file.")
            by_name = {info.filename: info for info in infos}
            if "metadata.json" in by_name:
                members["metadata.json"] = read_member(zf, by_name["metadata.json"], path)
                (check_meta or check_metadata)(parse_json(members["metadata.json"], "metadata.json"), path)
            allowed = MEMBERS if allowed is None else tuple(allowed)
            for name in names:
                if name not in allowed:
                    raise ModelFileError(f"{path!r} contains an unexpected member {name!r}; a {what} holds only "
                                         f"{', '.join(allowed)}.")
            for info in infos:
                if info.filename not in members:
                    members[info.filename] = read_member(zf, info, path)
    for name in tuple(required) + ("metadata.json",) + (("hashes.json",) if hashes else ()):
        if name not in members:
            raise ModelFileError(f"{path!r} is missing {name!r}: not a complete fncompiler {what}.")
    if not hashes:
        return members
    hashes = parse_json(members["hashes.json"], "hashes.json")
    if not isinstance(hashes, dict) or not all(isinstance(v, str) for v in hashes.values()):
        raise ModelFileError(f"hashes.json of {path!r} must map member names to sha256 hex digests.")
    if exact_hashes and set(hashes) != set(members) - {"hashes.json"}:
        raise ModelFileError(f"hashes.json of {path!r} does not list exactly the file's members: the {what} is "
                             "incomplete or was modified.")
    for name in hashes:
        if name not in members or name == "hashes.json":
            raise ModelFileError(f"hashes.json of {path!r} lists {name!r}, which the file does not hold: the file is "
                                 "incomplete or was modified.")
    for name, data in members.items():
        if name == "hashes.json":
            continue
        if hashes.get(name) != hashlib.sha256(data).hexdigest():
            raise ModelFileError(f"Member {name!r} of {path!r} does not match its recorded sha256: the {what} is "
                                 "corrupt or was modified.")
    return members


def _check_json_tree(obj, limit):
    """Depth of nested containers, iteratively (a deep tree cannot exhaust the stack here)."""
    stack = [(obj, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if level >= limit:
            raise ModelFileError(f"JSON nesting deeper than {limit} levels: refusing the file.")
        stack.extend((child, level + 1) for child in children)


def parse_json(data, name):
    if data.count(b"{") + data.count(b"[") > LIMITS["json_containers"]:
        raise ModelFileError(f"{name} holds more than {LIMITS['json_containers']} JSON objects/arrays: refusing "
                             "the file.")
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError, MemoryError) as exc:
        # ValueError covers json.JSONDecodeError and integers longer than Python's digit limit.
        raise ModelFileError(f"{name} is not valid JSON: {type(exc).__name__}: {exc}") from exc
    _check_json_tree(obj, LIMITS["json_depth"])
    return obj


def check_metadata(meta, path="the file"):
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ModelFileError(f"{path!r} is not a fncompiler model file (metadata.json names format {found!r}, "
                             f"expected {FORMAT!r}).")
    if "safe_mode" in meta:
        raise UnsafeConfigError("metadata.json asks to set safe_mode: a model file cannot change how it is loaded.")
    version = meta.get("format_version")
    if not isinstance(version, str) or not re.fullmatch(r"\d{1,6}(\.\d{1,6})*", version):
        raise ModelFileError(f"{path!r} has an invalid format_version {version!r} in metadata.json (expected "
                             "'MAJOR.MINOR', e.g. '1.0').")
    major = int(version.split(".")[0])
    ours = int(FORMAT_VERSION.split(".")[0])
    if major > ours:
        raise ModelFileError(f"{path!r} uses file format version {version}, which is newer than this fncompiler "
                             f"reads ({ours}.x): it was written by a newer fncompiler. Upgrade fncompiler to load it.")
    if major < ours:
        raise ModelFileError(f"{path!r} uses file format version {version}, older than this fncompiler reads "
                             f"({ours}.x).")


def to_bytes_io(data):
    return io.BytesIO(data)
