"""Draw computation graphs: a micrograd-size expression, then a CNN training step at two levels of detail.

Why: autograd records a graph on every forward pass, and seeing it is the
quickest way to understand what backward() will walk. This script writes each
graph as DOT text (always) and as SVG (when Graphviz's `dot` program is
installed) into the folder given as the first argument, ./graphs by default:

    python examples/draw_graph.py [OUTPUT_FOLDER]

    expression.svg       (a * b + c).relu(), with the backward graph next to it
    cnn_depth1.svg       a CNN training step, one box per part of the model
    cnn_full.svg         the same step, every operation inside every layer
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import graphviz

from tinygrad_cnn import Tensor, viz


def save(graph: graphviz.Digraph, folder: Path, name: str) -> None:
    """Write NAME.dot, and NAME.svg when `dot` can render it."""
    (folder / f"{name}.dot").write_text(graph.source, encoding="utf-8")
    written = [f"{name}.dot"]
    if shutil.which("dot"):
        (folder / f"{name}.svg").write_bytes(graph.pipe(format="svg"))
        written.append(f"{name}.svg")
    print(f"  {', '.join(written):<32} {graph.source.count(' class=')} nodes")


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "graphs")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"writing into {folder}/" + ("" if shutil.which("dot") else " (no `dot` program: DOT text only)"))

    a = Tensor(2.0, requires_grad=True, name="a")
    b = Tensor(-3.0, requires_grad=True, name="b")
    c = Tensor(10.0, requires_grad=True, name="c")
    out = (a * b + c).relu()
    out.name = "out"
    save(viz.draw_graph(out, show_backward=True, rankdir="LR"), folder, "expression")

    try:
        from tinygrad_cnn import models
    except ImportError:
        print("  (tinygrad_cnn.models is not available: no CNN drawings)")
        return
    Tensor.manual_seed(0)
    model = models.cnn()
    save(viz.draw_model(model, input_shape=(2, 1, 28, 28), depth=1), folder, "cnn_depth1")
    save(viz.draw_model(model, input_shape=(2, 1, 28, 28)), folder, "cnn_full")


if __name__ == "__main__":
    main()
