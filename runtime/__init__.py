"""fncompiler.runtime: lowering of the IR to pure step functions, jit, the training loop, checkpoints, export."""
