"""Graph surgery shared by the optimizing passes: rewiring consumers, bypassing and removing nodes."""
import networkx as nx

from fncompiler import ir


def consumers(g, nid, index=None):
    """[(dst, key, data)] edges reading node `nid` (output `index` only, when given)."""
    return [(v, k, d) for _, v, k, d in g.out_edges(nid, keys=True, data=True)
            if index is None or d["src_index"] == index]


def redirect(g, old, old_index, new, new_index):
    """Make every reader of old[old_index] (edges and graph outputs) read new[new_index] instead."""
    for dst, key, data in consumers(g, old, old_index):
        g.remove_edge(old, dst, key)
        g.add_edge(new, dst, src_index=new_index, dst_index=data["dst_index"])
    g.graph["outputs"] = [(new, new_index) if (n, i) == (old, old_index) else (n, i)
                          for n, i in g.graph["outputs"]]


def bypass(g, nid):
    """Remove a one-input, one-output node, wiring its readers to its input."""
    (src, src_index), = ir.input_edges(g, nid)
    redirect(g, nid, 0, src, src_index)
    g.remove_node(nid)


def is_output(g, nid):
    return any(n == nid for n, _ in g.graph["outputs"])


def live_nodes(g):
    """Nodes from which some graph output is reachable (plus the graph inputs)."""
    live = set(g.graph["inputs"])
    for nid, _ in g.graph["outputs"]:
        live.add(nid)
        live |= nx.ancestors(g, nid)
    return live
