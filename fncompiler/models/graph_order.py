"""The order of a functional model's layers, as Keras 3 computes it.

Keras walks the graph depth-first from each output (outputs flattened as `tree.flatten` does: dicts by
sorted key), recording the order in which it first meets each layer and, in post-order, the nodes. Each node
then gets a depth (output nodes 0, a node one deeper than the deepest node reading it; a shared layer takes
the largest depth of its calls). Layers are listed from the deepest depth to depth 0, and within a depth by
first-meeting order. `model.layers`, `model.weights`, `get_weights()` and summary rows all follow this order,
so that weights listed by a Keras model can be given to `set_weights` here.
"""


def operation_order(inputs, outputs):
    """The layers (ops included) of the graph from `inputs` to `outputs`, in Keras 3's order."""
    input_ids = {id(t) for t in inputs}
    finished, in_progress = set(), set()
    post_order = []          # nodes, inputs first
    first_seen = {}          # id(layer) -> traversal index
    layers_by_id = {}

    for output in outputs:
        stack = [(output, None)]
        while stack:
            tensor, pending = stack[-1]
            node = tensor.node
            if pending is None:
                if node is None or id(node) in finished:
                    stack.pop()
                    continue
                if not node.is_input and id(tensor) in input_ids:
                    finished.add(id(node))
                    stack.pop()
                    continue
                if id(node) in in_progress:  # pragma: no cover - a graph built by calls cannot have cycles
                    raise ValueError(f"Tensor {tensor!r} from layer {node.layer.name!r} is part of a cycle.")
                first_seen.setdefault(id(node.layer), len(first_seen))
                layers_by_id[id(node.layer)] = node.layer
                in_progress.add(id(node))
                pending = [] if node.is_input else list(reversed(node.input_tensors))
                stack[-1] = (tensor, pending)
            if pending:
                stack.append((pending.pop(), None))
                continue
            stack.pop()
            finished.add(id(node))
            in_progress.discard(id(node))
            post_order.append(node)

    in_graph = {id(n) for n in post_order}
    node_depth, layer_depth = {}, {}
    for node in reversed(post_order):
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = depth
        node_depth[id(node)] = depth
        for t in node.input_tensors:
            parent = t.node
            if parent is not None and id(parent) in in_graph:
                node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))

    # Inputs that no output depends on are still listed (Keras keeps them for losses and metrics).
    for t in inputs:
        node = t.node
        if node is not None and node.is_input and id(node.layer) not in layer_depth:
            layer_depth[id(node.layer)] = 0
            first_seen[id(node.layer)] = -1
            layers_by_id[id(node.layer)] = node.layer

    order = sorted(layer_depth, key=lambda k: (-layer_depth[k], first_seen[k]))
    return [layers_by_id[k] for k in order]
