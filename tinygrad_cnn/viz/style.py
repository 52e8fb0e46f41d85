"""How graphs look: the node colours and the graphviz house style, shared by draw_graph and the backprop page."""

from __future__ import annotations

import graphviz

COLORS = {"param": "lightblue", "input": "#e6dcf5", "seed": "#e6dcf5", "op": "lightgrey", "saved": "orange",
          "output": "darkolivegreen1", "grad": "darkolivegreen1", "module": "#fff2b3", "backward": "#f9c9c3"}


def styled_digraph(name: str, rankdir: str = "TB") -> graphviz.Digraph:
    """An empty graph in the house style: fonts, spacing and edge colour."""
    return graphviz.Digraph(name, graph_attr={"rankdir": rankdir, "fontname": "Helvetica", "fontsize": "11",
                                              "nodesep": "0.25", "ranksep": "0.35"},
                            node_attr={"fontname": "Helvetica", "fontsize": "10", "height": "0.3"},
                            edge_attr={"fontname": "Helvetica", "fontsize": "8", "color": "#555555"})
