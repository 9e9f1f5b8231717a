"""Symbolic tensors and the nodes that connect them.

`Input(...)` and every layer call on a symbolic tensor create a `Node`; each output is a
`SymbolicTensor` that knows its shape and dtype (so errors fire at the line that built the graph) and
which node and output index produced it. The IR builder (`fncompiler.ir`) walks these nodes.
"""
import itertools

import jax

from . import dtypes

_node_ids = itertools.count()


class Slot:
    """Placeholder for the i-th symbolic input inside a node's argument template."""

    __slots__ = ("index",)

    def __init__(self, index):
        self.index = index

    def __repr__(self):
        return f"Slot({self.index})"


class SymbolicTensor:
    """A tensor in the graph being built: shape (None for unknown dims), dtype and history."""

    def __init__(self, shape, dtype="float32", name=None, sparse=False):
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = dtypes.standardize(dtype)
        self.name = name
        self.sparse = sparse
        self.node = None   # the Node that produced this tensor
        self.index = 0     # which output of that node

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def _keras_history(self):
        layer = self.node.layer
        return layer, layer._inbound_nodes.index(self.node), self.index

    def __repr__(self):
        src = f", produced by {self.node.layer.name!r}" if self.node is not None else ""
        return f"<SymbolicTensor shape={self.shape}, dtype={self.dtype}{src}>"

    def __hash__(self):
        return id(self)

    def __bool__(self):
        raise TypeError("A symbolic tensor has no truth value while the graph is being built: it holds no data. "
                        "Use fncompiler.ops.where / ops.cond for data-dependent choices.")

    def __len__(self):
        if not self.shape or self.shape[0] is None:
            raise TypeError(f"len() of a symbolic tensor needs a known first dimension; shape is {self.shape}.")
        return self.shape[0]

    def __iter__(self):
        raise TypeError("A symbolic tensor cannot be iterated; index it (x[:, 0]) or use ops.unstack.")

    def __array__(self, *args, **kwargs):
        raise TypeError(
            f"A symbolic tensor {self.shape} has no value: it is a placeholder in the graph being built. "
            "Call the model on data (model(x) or model.predict(x)) to get arrays, or use fncompiler.ops "
            "functions instead of NumPy on symbolic tensors.")


def _op(name, reverse=False):
    def method(self, other=None):
        from . import ops
        fn = getattr(ops, name)
        return fn(other, self) if reverse else fn(self, other)
    return method


def _unary(name):
    def method(self):
        from . import ops
        return getattr(ops, name)(self)
    return method


for _dunder, _fn, _rev in (
        ("__add__", "add", False), ("__radd__", "add", True), ("__sub__", "subtract", False),
        ("__rsub__", "subtract", True), ("__mul__", "multiply", False), ("__rmul__", "multiply", True),
        ("__truediv__", "true_divide", False), ("__rtruediv__", "true_divide", True),
        ("__floordiv__", "floor_divide", False), ("__rfloordiv__", "floor_divide", True),
        ("__pow__", "power", False), ("__rpow__", "power", True), ("__matmul__", "matmul", False),
        ("__rmatmul__", "matmul", True), ("__mod__", "mod", False), ("__lt__", "less", False),
        ("__le__", "less_equal", False), ("__gt__", "greater", False), ("__ge__", "greater_equal", False)):
    setattr(SymbolicTensor, _dunder, _op(_fn, _rev))
SymbolicTensor.__neg__ = _unary("negative")
SymbolicTensor.__abs__ = _unary("abs")
SymbolicTensor.__invert__ = _unary("logical_not")


def _getitem(self, key):
    from . import ops
    return ops.getitem(self, key)


def _reshape(self, *shape):
    from . import ops
    return ops.reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)


def _astype(self, dtype):
    from . import ops
    return ops.cast(self, dtype)


SymbolicTensor.__getitem__ = _getitem
SymbolicTensor.reshape = _reshape
SymbolicTensor.astype = _astype
SymbolicTensor.T = property(lambda self: __import__("fncompiler.ops", fromlist=["transpose"]).transpose(self))

KerasTensor = SymbolicTensor


def is_symbolic(x):
    return isinstance(x, SymbolicTensor)


def flatten(structure):
    """Flatten a nested structure of tensors (lists, tuples, dicts by sorted key) into a list."""
    return jax.tree_util.tree_leaves(structure, is_leaf=lambda x: x is None)


def any_symbolic(structure):
    return any(is_symbolic(x) for x in jax.tree_util.tree_leaves(structure))


class Node:
    """One call of a layer: the symbolic inputs it read, the arguments it was called with, its outputs."""

    def __init__(self, layer, call_args=(), call_kwargs=None, outputs=None):
        self.id = next(_node_ids)
        self.layer = layer
        call_kwargs = dict(call_kwargs or {})
        leaves, treedef = jax.tree_util.tree_flatten((tuple(call_args), call_kwargs))
        self.input_tensors = []
        template = []
        for leaf in leaves:
            if is_symbolic(leaf):
                template.append(Slot(len(self.input_tensors)))
                self.input_tensors.append(leaf)
            else:
                template.append(leaf)
        self.arguments = jax.tree_util.tree_unflatten(treedef, template)  # (args, kwargs) with Slots
        self.outputs_struct = outputs
        self.output_tensors = [t for t in jax.tree_util.tree_leaves(outputs) if is_symbolic(t)]
        for i, t in enumerate(self.output_tensors):
            t.node = self
            t.index = i
        layer._inbound_nodes.append(self)

    @property
    def is_input(self):
        return not self.input_tensors and getattr(self.layer, "_is_input_layer", False)

    @property
    def parent_nodes(self):
        return [t.node for t in self.input_tensors]

    def call_arguments(self, values):
        """Rebuild (args, kwargs) with the given input values in place of the Slots."""
        return fill_arguments(self.arguments, values)

    def __repr__(self):
        return f"<Node {self.layer.name} #{self.id}: {len(self.input_tensors)} in, {len(self.output_tensors)} out>"


def fill_arguments(arguments, values):
    """(args, kwargs) from an argument template, with values[i] in place of each Slot(i)."""
    return jax.tree_util.tree_map(lambda leaf: values[leaf.index] if isinstance(leaf, Slot) else leaf, arguments,
                                  is_leaf=lambda x: isinstance(x, Slot))
