"""A persistent compilation cache for re-runs: XLA executables are stored on disk and reused by later
processes, so a second run of the same model skips compilation.

    fncompiler.runtime.enable_compilation_cache("~/.cache/fncompiler/xla")   # or FNCOMPILER_COMPILATION_CACHE=dir
"""
import os

import jax


def enable_compilation_cache(directory=None, min_compile_seconds=0.0):
    """Store compiled steps in `directory` (default `$FNCOMPILER_COMPILATION_CACHE`, else
    `~/.cache/fncompiler/xla`) and reuse them across processes. Returns the directory used."""
    directory = directory or os.environ.get("FNCOMPILER_COMPILATION_CACHE") or \
        os.path.join(os.path.expanduser("~"), ".cache", "fncompiler", "xla")
    directory = os.path.abspath(os.path.expanduser(directory))
    os.makedirs(directory, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return directory
