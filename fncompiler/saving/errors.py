"""Errors raised while saving or loading model files."""


class ModelFileError(ValueError):
    """A model or weights file is missing parts, corrupt, too large, or not a fncompiler file."""


class UnsafeConfigError(ValueError):
    """A config asks for something a file may not do (code, classes outside the registry, paths)."""
