"""`get_file` (keras.utils) without downloads: it finds a file already in Keras's cache folder, checks its hash,
extracts a local archive if asked, and otherwise says where to put the file. fncompiler never fetches anything."""
import hashlib
import os
import tarfile
import urllib.parse
import zipfile

from fncompiler.datasets import _paths

__all__ = ["get_file"]


def _keras_home():
    return os.path.expanduser(os.environ.get("KERAS_HOME") or os.path.join("~", ".keras"))


def _hash(path, algorithm, expected):
    if algorithm == "auto":
        algorithm = "sha256" if len(expected) == 64 else "md5"
    if algorithm not in ("sha256", "md5"):
        raise ValueError(f'get_file: hash_algorithm must be "auto", "sha256" or "md5"; received {algorithm!r}.')
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return algorithm, h.hexdigest()


def _inside(root, name):
    target = os.path.realpath(os.path.join(root, name))
    return target == os.path.realpath(root) or target.startswith(os.path.realpath(root) + os.sep)


def _extract(archive, into, archive_format):
    """Extract `archive` (tar or zip) into `into`, refusing members that would land outside it."""
    formats = {"auto": ("tar", "zip"), "tar": ("tar",), "zip": ("zip",)}.get(archive_format) \
        if isinstance(archive_format, str) else tuple(archive_format or ())
    if formats is None:
        raise ValueError(f'get_file: archive_format must be "auto", "tar", "zip" or a list of them; received '
                         f"{archive_format!r}.")
    if "tar" in formats and tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if not _inside(into, member.name) or member.issym() or member.islnk():
                    raise ValueError(f"get_file: archive {archive!r} has a member {member.name!r} that is a link "
                                     "or points outside the extraction folder; refusing to extract it.")
            try:
                tar.extractall(into, filter="data")
            except TypeError:      # Python without extraction filters: the members were checked above
                tar.extractall(into)
        return
    if "zip" in formats and zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if not _inside(into, name):
                    raise ValueError(f"get_file: archive {archive!r} has a member {name!r} that points outside the "
                                     "extraction folder; refusing to extract it.")
            zf.extractall(into)
        return
    raise ValueError(f"get_file: {archive!r} is not a {' or '.join(formats)} archive; cannot extract it.")


def get_file(fname=None, origin=None, untar=False, md5_hash=None, file_hash=None, cache_subdir="datasets",
             hash_algorithm="auto", extract=False, archive_format="auto", cache_dir=None, force_download=False):
    """The local path of `fname` in ``cache_dir/cache_subdir`` (Keras's layout: cache_dir defaults to
    ``$KERAS_HOME`` or ``~/.keras``; for cache_subdir "datasets" ``$FNCOMPILER_DATA_DIR`` is searched first), as
    keras.utils.get_file returns it after a download. With extract/untar the archive is extracted (once, safely)
    to the folder Keras uses (``<name>_extracted``, or ``<fname>`` when fname has no extension or was not
    given) and that folder is returned. file_hash / md5_hash: the file must match (sha256 or md5).

    Nothing is ever downloaded: a missing file, force_download=True, or a hash mismatch raise an error that names
    `origin` and the path to copy the file to.
    """
    if origin is None and fname is None:
        raise ValueError('get_file: give `origin` (the URL Keras would download) or `fname` (the file name).')
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    provided = fname is not None
    fname = os.fspath(fname) if provided else os.path.basename(urllib.parse.urlsplit(origin).path)
    if not fname:
        raise ValueError(f"get_file: cannot tell the file name from origin {origin!r}; pass fname=...")
    if os.sep in fname:
        raise ValueError(f"get_file: fname must be a file name, not a path (received {fname!r}); give the folder "
                         "as cache_dir=... instead.")
    if extract or untar:
        if provided and "." in fname:
            target_name, extracted_name = fname, f"{fname[:fname.find('.')]}_extracted"
        else:
            target_name, extracted_name = f"{fname}_archive", fname
    else:
        target_name, extracted_name = fname, None
    if cache_dir is None:
        bases = [os.path.join(_keras_home(), cache_subdir)]
        if cache_subdir == "datasets":
            bases = [d for d in _paths.search_dirs() if d not in bases] + bases
    else:
        bases = [os.path.join(os.path.expanduser(os.fspath(cache_dir)), cache_subdir)]
    where = os.path.join(bases[-1] if cache_dir is None else bases[0], target_name)

    def refuse(reason):
        lines = [f"get_file: {reason}", "fncompiler never downloads files.",
                 f"Fix: fetch {origin or fname!r} yourself and copy it to {where}"]
        if cache_dir is None and cache_subdir == "datasets":
            lines[-1] += f" (or into the folder named by ${_paths.ENV_VAR})"
        lines[-1] += "."
        raise FileNotFoundError("\n".join(lines))

    if force_download:
        refuse("force_download=True asks for a download.")
    if extracted_name is not None:
        for base in bases:
            if os.path.isdir(os.path.join(base, extracted_name)):
                return os.path.join(base, extracted_name)
    found = next((os.path.join(b, target_name) for b in bases if os.path.exists(os.path.join(b, target_name))), None)
    if found is None:
        refuse(f"{target_name!r} is not in {' or '.join(bases)}.")
    if file_hash is not None:
        algorithm, digest = _hash(found, hash_algorithm, file_hash)
        if digest != file_hash:
            where = found
            refuse(f"{found} does not match the expected {algorithm} hash {file_hash} (it has {digest}): it is "
                   "incomplete or a different file.")
    if extracted_name is None:
        return found
    into = os.path.join(os.path.dirname(found), extracted_name)
    _extract(found, into, "tar" if untar and not extract else archive_format)
    return into
