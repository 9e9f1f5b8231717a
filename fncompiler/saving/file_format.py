"""The model file: one zip, written atomically, read with limits and checks before anything is built.

Members (no others are accepted):
    metadata.json     {"format": "fncompiler.model", "format_version": "1.0", versions, date}
    config.json       {"class_name", "config", "compile_config"}   (JSON, no code)
    weights.msgpack   {"paths": [...], "arrays": {"0": array, ...}} (flax msgpack: shape, dtype, bytes)
    optimizer.msgpack optimizer state as a flax state dict (optional)
    hashes.json       sha256 of every other member
"""
import datetime
import hashlib
import io
import json
import os
import tempfile
import zipfile

from .errors import ModelFileError

FORMAT = "fncompiler.model"
FORMAT_VERSION = "1.0"
MEMBERS = ("metadata.json", "config.json", "weights.msgpack", "optimizer.msgpack", "hashes.json")
LIMITS = {
    "file_bytes": 8 * 1024 ** 3,        # whole file
    "json_bytes": 64 * 1024 ** 2,       # config.json / metadata.json / hashes.json, decompressed
    "member_bytes": 8 * 1024 ** 3,      # any member, decompressed
    "ratio": 200,                       # decompressed / compressed, for members over 1 MiB (zip bombs)
    "json_depth": 64,
}


def metadata():
    import jax
    from .. import __version__
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "fncompiler_version": __version__,
            "jax_version": jax.__version__, "date_saved": datetime.datetime.now(datetime.timezone.utc).isoformat()}


def atomic_write(path, members):
    """Write {name: bytes} as a zip at `path`: temp file in the same folder, fsync, rename."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Cannot save to {path!r}: folder {folder!r} does not exist.")
    hashes = {name: hashlib.sha256(data).hexdigest() for name, data in members.items()}
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".fncompiler", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                for name, data in members.items():
                    zf.writestr(name, data)
                zf.writestr("hashes.json", json.dumps(hashes, indent=1))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _depth(obj, limit, level=0):
    if level > limit:
        raise ModelFileError(f"JSON nesting deeper than {limit} levels: refusing the file.")
    if isinstance(obj, dict):
        for v in obj.values():
            _depth(v, limit, level + 1)
    elif isinstance(obj, list):
        for v in obj:
            _depth(v, limit, level + 1)


def read_members(path, required=("metadata.json", "config.json", "weights.msgpack")):
    """Read and check the file's members into memory; raise ModelFileError/OSError with a clear message."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No model file at {path!r}.")
    size = os.path.getsize(path)
    if size > LIMITS["file_bytes"]:
        raise ModelFileError(f"{path!r} is {size} bytes, over the {LIMITS['file_bytes']} byte limit.")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelFileError(f"{path!r} is not a fncompiler model file (not a zip archive, or truncated): {exc}") from exc
    members = {}
    with zf:
        infos = zf.infolist()
        if len(infos) > len(MEMBERS):
            raise ModelFileError(f"{path!r} has {len(infos)} members; a model file has at most {len(MEMBERS)}.")
        for info in infos:
            name = info.filename
            if name not in MEMBERS:
                raise ModelFileError(f"{path!r} contains an unexpected member {name!r}; allowed: {MEMBERS}.")
            limit = LIMITS["json_bytes"] if name.endswith(".json") else LIMITS["member_bytes"]
            if info.file_size > limit:
                raise ModelFileError(f"Member {name!r} declares {info.file_size} bytes, over the {limit} limit.")
            if info.file_size > 2 ** 20 and info.compress_size * LIMITS["ratio"] < info.file_size:
                raise ModelFileError(f"Member {name!r} expands {info.file_size / max(info.compress_size, 1):.0f}x: "
                                     "refusing a likely zip bomb.")
            try:
                with zf.open(info) as fh:
                    data = fh.read(limit + 1)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                raise ModelFileError(f"Member {name!r} of {path!r} is corrupt or truncated: {exc}") from exc
            if len(data) > limit or len(data) != info.file_size:
                raise ModelFileError(f"Member {name!r} of {path!r} does not match its declared size.")
            members[name] = data
    for name in required:
        if name not in members:
            raise ModelFileError(f"{path!r} is missing {name!r}: not a complete fncompiler model file.")
    if "hashes.json" in members:
        hashes = parse_json(members["hashes.json"], "hashes.json")
        for name, data in members.items():
            if name == "hashes.json":
                continue
            if not isinstance(hashes, dict) or hashes.get(name) != hashlib.sha256(data).hexdigest():
                raise ModelFileError(f"Member {name!r} of {path!r} does not match its recorded sha256: the file is "
                                     "corrupt or was modified.")
    return members


def parse_json(data, name):
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelFileError(f"{name} is not valid JSON: {exc}") from exc
    _depth(obj, LIMITS["json_depth"])
    return obj


def check_metadata(meta):
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"Not a fncompiler model file (metadata format is {meta.get('format') if isinstance(meta, dict) else meta!r}).")
    version = str(meta.get("format_version", "0"))
    major = version.split(".")[0]
    if major != FORMAT_VERSION.split(".")[0]:
        raise ModelFileError(f"This file uses format version {version}, but this fncompiler reads version "
                             f"{FORMAT_VERSION.split('.')[0]}.x. Upgrade fncompiler to load it.")


def to_bytes_io(data):
    return io.BytesIO(data)
