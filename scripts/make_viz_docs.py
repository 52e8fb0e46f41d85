"""Regenerate the pictures of docs/visualizing.md into docs/images/ (needs Graphviz's `dot`).

    python scripts/make_viz_docs.py

Every picture is drawn from fixed seeds, so running this twice gives the same files
and a diff shows what a change to viz did to the drawings.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import graphviz
import numpy as np

from tinygrad_cnn import Tensor, models, nn, viz

IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"


def save(graph: graphviz.Digraph, name: str) -> None:
    (IMAGES / f"{name}.svg").write_bytes(graph.pipe(format="svg"))
    print(f"docs/images/{name}.svg: {graph.source.count(' class=')} nodes")


def expression() -> None:
    """micrograd's first example: three scalars, three ops."""
    a = Tensor(2.0, requires_grad=True, name="a")
    b = Tensor(-3.0, requires_grad=True, name="b")
    c = Tensor(10.0, requires_grad=True, name="c")
    out = (a * b + c).relu()
    out.name = "out"
    save(viz.draw_graph(out, rankdir="LR"), "expression")
    save(viz.draw_graph(out, show_backward=True, rankdir="LR"), "expression_backward")


def neuron_backward() -> None:
    """One tanh neuron and a squared error: small enough to follow every backward op."""
    rng = np.random.default_rng(0)
    w = Tensor(rng.standard_normal((1, 3)).astype(np.float32), requires_grad=True, name="w")
    b = Tensor(np.zeros(1, np.float32), requires_grad=True, name="b")
    x = Tensor(rng.standard_normal((4, 3)).astype(np.float32), name="x")
    target = Tensor(np.ones((4, 1), np.float32), name="target")
    y = (x @ w.T + b).tanh()
    loss = ((y - target) ** 2).mean()
    loss.name = "loss"
    save(viz.draw_graph(loss, show_backward=True), "neuron_backward")


def networks() -> None:
    """The models the CLI trains: a training step of the MLP, and of the CNN at three levels of detail."""
    Tensor.manual_seed(0)
    save(viz.draw_model(models.mlp(), input_shape=(2, 1, 28, 28)), "mlp")
    cnn = models.cnn()
    save(viz.draw_model(cnn, input_shape=(2, 1, 28, 28), depth=1), "cnn_depth1")
    save(viz.draw_model(cnn, input_shape=(2, 1, 28, 28), depth=2), "cnn_depth2")
    save(viz.draw_model(cnn, input_shape=(2, 1, 28, 28)), "cnn_full")


def vanishing_gradients() -> None:
    """Eight sigmoid layers: each multiplies the gradient by at most 1/4 on its way back.

    For contrast, the same depth with ReLU and He initialisation (weights scaled for ReLU), which
    keeps the gradient's size from layer to layer.
    """
    for name, activation in (("sigmoid", nn.Sigmoid), ("relu", nn.ReLU)):
        Tensor.manual_seed(0)
        layers: list[nn.Module] = []
        for _ in range(8):
            layers += [nn.Linear(32, 32), activation()]
        model = nn.Sequential(*layers, nn.Linear(32, 10))
        if name == "relu":
            for layer in layers[::2]:
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)
        save(viz.draw_model(model, input_shape=(16, 32), depth=1, grads=True), f"gradients_{name}")


def backprop_pages() -> None:
    """Screenshots of the backprop page (needs chromium): three steps of (a * b + c).relu(), x * x, the MLP."""
    from tinygrad_cnn.viz import browser

    if browser.find_chromium() is None:
        print("make_viz_docs: no chromium, so no backprop screenshots")
        return
    work, size = Path(tempfile.mkdtemp()), (1100, 700)
    a = Tensor(2.0, requires_grad=True, name="a")
    b = Tensor(-3.0, requires_grad=True, name="b")
    c = Tensor(10.0, requires_grad=True, name="c")
    out = (a * b + c).relu()
    out.name = "out"
    page = viz.backprop_page(out, work / "expression.html")
    for k in (1, 2, 3):
        browser.screenshot(page.path, IMAGES / f"backprop_expression_{k}.png", k, size)
    x = Tensor(3.0, requires_grad=True, name="x")
    y = x * x
    y.name = "y"
    browser.screenshot(viz.backprop_page(y, work / "square.html").path, IMAGES / "backprop_square.png", 1, size)
    Tensor.manual_seed(0)
    with viz.training_step(models.mlp()) as loss:
        page = viz.backprop_page(loss, work / "mlp.html")
    browser.screenshot(page.path, IMAGES / "backprop_mlp.png", 13, size)


def main() -> None:
    if shutil.which("dot") is None:
        sys.exit("make_viz_docs: Graphviz's `dot` program is needed (apt install graphviz)")
    IMAGES.mkdir(parents=True, exist_ok=True)
    expression()
    neuron_backward()
    networks()
    vanishing_gradients()
    backprop_pages()


if __name__ == "__main__":
    main()
