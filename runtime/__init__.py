"""fncompiler.runtime: lowering of the IR to pure step functions, jit, the training loop, checkpoints, export."""
from .exported_loader import load_exported  # noqa: E402,F401  (imports only jax, numpy, msgpack)
from .cache import enable_compilation_cache  # noqa: E402
