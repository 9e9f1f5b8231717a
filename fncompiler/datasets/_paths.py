"""Where data-set files are looked for, and the error raised when one is missing."""

from __future__ import annotations

import os

ENV_VAR = "FNCOMPILER_DATA_DIR"
KERAS_DIR = os.path.join("~", ".keras", "datasets")


def data_dir() -> str:
    """``$FNCOMPILER_DATA_DIR`` if set (and non-empty), else ``~/.keras/datasets/``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return os.path.expanduser(env)
    return os.path.expanduser(KERAS_DIR)


def search_dirs() -> list[str]:
    """The folders searched, in order: ``$FNCOMPILER_DATA_DIR`` (if set), then ``~/.keras/datasets``."""
    dirs = [data_dir()]
    keras_dir = os.path.expanduser(KERAS_DIR)
    if keras_dir not in dirs:
        dirs.append(keras_dir)
    return dirs


def find_file(name, alternatives=(), hint: str | None = None) -> str:
    """Return the path of data file (or folder) ``name``, or raise ``FileNotFoundError``.

    ``name`` may be absolute (used as is) or relative to the search folders.
    ``alternatives`` are other names tried, in order, after ``name``. ``hint``
    is extra text for the error message (e.g. what the file is and where it
    comes from).
    """
    names = [os.fspath(name), *(os.fspath(a) for a in alternatives)]
    dirs = search_dirs()
    tried = []
    for n in names:
        n = os.path.expanduser(n)
        if os.path.isabs(n):
            tried.append(n)
            if os.path.exists(n):
                return n
            continue
        for d in dirs:
            p = os.path.join(d, n)
            tried.append(p)
            if os.path.exists(p):
                return p

    first = os.path.expanduser(names[0])
    target = first if os.path.isabs(first) else os.path.join(data_dir(), first)
    shown = " or ".join(repr(n) for n in names)
    lines = [
        f"Data file {shown} was not found.",
        "Looked in: " + ", ".join(tried) + ".",
        "Nothing is downloaded on this machine (fncompiler never fetches data sets), "
        "so the file has to be put in place by hand.",
        f"Fix: copy it to {target}"
        + ("" if os.path.isabs(first) else
           f", or put it in any folder and set {ENV_VAR} to that folder "
           f"(e.g. `export {ENV_VAR}=/path/to/folder`)") + ".",
    ]
    if hint:
        lines.append(hint)
    raise FileNotFoundError("\n".join(lines))
