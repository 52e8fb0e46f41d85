"""Tests for viz: the structure of the drawn graph (read back from its DOT text), then real renderings.

Structure tests need no Graphviz program: `Digraph.source` is plain text, parsed here by `parse`.
Rendering tests run the real `dot` and read the SVG as XML; they skip when `dot` is absent.
"""

from __future__ import annotations

import ast
import re
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn import Tensor, nn, viz
from tinygrad_cnn.autograd import grad, scope

ROOT = Path(__file__).resolve().parents[1]
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")
_ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|<.*>|[^\s\]]+)')


# ---------------------------------------------------------------------------- reading a Digraph back
@dataclass
class Graph:
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> attributes (+ "cluster")
    edges: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    clusters: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # name -> (label, parent)

    def kind(self, kind: str) -> list[str]:
        return [n for n, a in self.nodes.items() if a.get("class") == kind]

    def label(self, name: str) -> str:
        return self.nodes[name]["label"]

    def by_label(self, text: str) -> str:
        found = [n for n, a in self.nodes.items() if text in a.get("label", "")]
        assert len(found) == 1, f"{len(found)} nodes with {text!r} in their label"
        return found[0]

    def named(self, first_line: str) -> str:
        """The node whose label starts with this line (a tensor's name, an op, a module title)."""
        found = [n for n, a in self.nodes.items() if a.get("label", "").split("\n")[0] == first_line]
        assert len(found) == 1, f"{len(found)} nodes named {first_line!r}"
        return found[0]

    def cluster_path(self, name: str) -> list[str]:
        """Labels of the clusters around a node, outermost first."""
        path, c = [], self.nodes[name]["cluster"]
        while c is not None:
            path.insert(0, self.clusters[c][0])
            c = self.clusters[c][1]
        return path


def parse(g) -> Graph:
    """Nodes, edges and nested clusters of a Digraph's DOT text (the legend left out)."""
    out, stack = Graph(), [None]
    for line in g.source.splitlines():
        line = line.strip()
        if m := re.match(r"subgraph (cluster_\d+) \{", line):
            out.clusters[m.group(1)] = ("", stack[-1])
            stack.append(m.group(1))
        elif line == "}":
            stack.pop()
        elif line.startswith("graph [") and stack[-1] is not None:
            attrs = {k: _unquote(v) for k, v in _ATTR.findall(line)}
            out.clusters[stack[-1]] = (attrs.get("label", ""), out.clusters[stack[-1]][1])
        elif m := re.match(r"(\w+) -> (\w+)(?: \[(.*)\])?$", line):
            out.edges.append((m.group(1), m.group(2), {k: _unquote(v) for k, v in _ATTR.findall(m.group(3) or "")}))
        elif (m := re.match(r"(\w+) \[(.*)\]$", line)) and m.group(1) not in ("graph", "node", "edge", "legend"):
            out.nodes[m.group(1)] = {k: _unquote(v) for k, v in _ATTR.findall(m.group(2))} | {"cluster": stack[-1]}
    return out


def _unquote(value: str) -> str:
    """A DOT attribute value as text: quotes dropped, DOT's \\n back to a newline."""
    if not value.startswith('"'):
        return value
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value[1:-1])


def edge_labels(graph: Graph, target: str) -> list[str]:
    return [a.get("label", "") for _, t, a in graph.edges if t == target]


class Entry:
    """A stand-in for nn's scope entries: what `Module.__call__` pushes."""

    def __init__(self, path: str, label: str):
        self.path, self.label, self.module = path, label, None


def param(*shape: int, name: str | None = None, seed: int = 0) -> Tensor:
    data = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return Tensor(data, requires_grad=True, name=name)


# ---------------------------------------------------------------------------- nodes, edges, labels
def test_micrograd_expression_nodes_and_edges() -> None:
    a, b, c = param(3, name="a", seed=1), param(3, name="b", seed=2), param(3, name="c", seed=3)
    graph = parse(viz.draw_graph((a * b + c).relu()))
    assert len(graph.nodes) == 7 and len(graph.edges) == 6
    assert len(graph.kind("param")) == 3 and len(graph.kind("output")) == 1
    assert sorted(graph.label(n) for n in graph.kind("op")) == ["Add", "Mul", "Relu"]
    names = {graph.label(n).split("\n")[0]: n for n in graph.nodes}
    mul, add, relu = graph.by_label("Mul"), graph.by_label("Add"), graph.by_label("Relu")
    assert {(s, t) for s, t, _ in graph.edges} == {
        (names["a"], mul), (names["b"], mul), (mul, add), (names["c"], add), (add, relu),
        (relu, graph.kind("output")[0])}


def test_labels_carry_names_shapes_dtypes_and_values() -> None:
    w = param(4, 3, name="fc.weight")
    x = Tensor(np.ones((2, 3), np.float32))
    s = Tensor(2.0, requires_grad=True, name="scale")
    out = ((x @ w.T) * s).sum()
    graph = parse(viz.draw_graph(out))
    assert graph.label(graph.by_label("fc.weight")) == "fc.weight\n(4, 3) float32"
    assert graph.label(graph.by_label("scale")) == "scale\n= 2\nscalar float32"
    assert "(2, 3) float32" in graph.label(graph.kind("input")[0])
    assert edge_labels(graph, graph.by_label("Sum")) == ["(2, 4)"]
    assert graph.label(graph.kind("output")[0]).startswith("= ")
    assert edge_labels(graph, graph.by_label("Matmul")).count("permute (1, 0)\n(4, 3) → (3, 4)") == 1
    bare = parse(viz.draw_graph(out, show_shapes=False))
    assert not any("(2, 4)" in a.get("label", "") for _, _, a in bare.edges)
    assert bare.label(bare.by_label("fc.weight")) == "fc.weight"


def test_op_labels_show_key_arguments() -> None:
    x = param(2, 3, 8, 8)
    w = param(4, 3, 3, 3, name="w")
    y = x.conv2d(w, stride=1, padding=1).max_pool2d(2)
    z = (y.sum(axis=1) * 0.5)[0, 1:3]
    graph = parse(viz.draw_graph(z))
    assert graph.label(graph.by_label("Conv2d")) == "Conv2d\nkernel=(3, 3) stride=(1, 1) padding=(1, 1)"
    assert graph.label(graph.by_label("Sum")) == "Sum\naxis=(1,)"
    assert graph.label(graph.by_label("MaxPool")) == "MaxPool\nkernel=(2, 2)"
    assert graph.label(graph.by_label("Mul")) == "Mul\nx × 0.5"  # the 0-d constant is written in, not a box
    assert graph.label(graph.by_label("Slice")) == "Slice\n[0, 1:3]"
    assert not graph.kind("input")
    raw = parse(viz.draw_graph(param(2, 3, 4, 5).permute(0, 2, 3, 1), collapse=False))
    assert raw.label(raw.by_label("Permute")) == "Permute\ndims=(0, 2, 3, 1)"
    reflected = parse(viz.draw_graph(1 - param(3)))
    assert reflected.label(reflected.kind("op")[0]) == "Sub\n1 − x"


def test_movement_ops_fold_into_edges() -> None:
    x, b = param(4, 5), param(5, name="bias")
    out = (x + b).reshape(2, 10).sum()
    folded = parse(viz.draw_graph(out))
    assert {a["label"].split("\n")[0] for a in folded.nodes.values()} >= {"Add", "Sum"}
    assert not any(a["label"].startswith(("Expand", "Reshape")) for a in folded.nodes.values())
    assert "expand\n(5,) → (4, 5)" in edge_labels(folded, folded.by_label("Add"))
    assert edge_labels(folded, folded.by_label("Sum")) == ["reshape\n(4, 5) → (2, 10)"]
    raw = parse(viz.draw_graph(out, collapse=False))
    assert len(raw.kind("op")) == len(folded.kind("op")) + 2


def test_colours_follow_roles() -> None:
    w = param(3, name="w")
    x = Tensor(np.ones(3, np.float32))
    out = (x * w).exp().sum()  # Exp keeps its output for backward
    graph = parse(viz.draw_graph(out))
    fills = {kind: {graph.nodes[n]["fillcolor"] for n in graph.kind(kind)} for kind in
             ("param", "input", "op", "saved", "output")}
    assert fills == {"param": {"lightblue"}, "input": {viz.COLORS["input"]}, "op": {"lightgrey"},
                     "saved": {"orange"}, "output": {"darkolivegreen1"}}
    assert graph.label(graph.kind("saved")[0]) == "saved output\n(3,) float32 · 12 B"
    assert "saved for backward" in viz.draw_graph(out).source  # the legend names the roles drawn
    out.backward()
    assert not parse(viz.draw_graph(out)).kind("saved")  # freed by the backward
    assert "legend" not in viz.draw_graph(out, legend=False).source


# ---------------------------------------------------------------------------- modules: clusters and depth
def _two_layer_net(x: Tensor, w1: Tensor, w2: Tensor) -> Tensor:
    root, fc1, act, fc2 = Entry("", "Net()"), Entry("fc1", "Linear(3, 4)"), Entry("act", "ReLU()"), \
        Entry("fc2", "Linear(4, 2)")
    with scope(root):
        with scope(fc1):
            h = x @ w1
        with scope(act):
            h = h.relu()
        with scope(fc2):
            h = h @ w2
        return h * 2.0


def test_one_cluster_per_module_call_nested_by_scope() -> None:
    w1, w2 = param(3, 4, name="fc1.weight"), param(4, 2, name="fc2.weight")
    graph = parse(viz.draw_graph(_two_layer_net(Tensor(np.ones((5, 3), np.float32)), w1, w2).sum()))
    assert sorted(label for label, _ in graph.clusters.values()) == ["Net()", "act: ReLU()", "fc1: Linear(3, 4)",
                                                                      "fc2: Linear(4, 2)"]
    assert graph.cluster_path(graph.by_label("Relu")) == ["Net()", "act: ReLU()"]
    assert graph.cluster_path(graph.by_label("x × 2")) == ["Net()"]
    assert graph.cluster_path(graph.by_label("fc1.weight")) == ["Net()", "fc1: Linear(3, 4)"]
    assert graph.cluster_path(graph.by_label("Sum")) == []
    assert not parse(viz.draw_graph(_two_layer_net(Tensor(np.ones((5, 3), np.float32)), w1, w2),
                                    group_modules=False)).clusters


def test_a_module_called_twice_gives_two_clusters() -> None:
    shared, root = Entry("act", "ReLU()"), Entry("", "Net()")
    x = param(3)
    with scope(root):
        with scope(shared):
            h = x.relu()
        h = h * 3.0
        with scope(shared):
            h = h.relu()
    graph = parse(viz.draw_graph(h))
    relus = [n for n in graph.nodes if graph.label(n) == "Relu"]
    assert len(relus) == 2 and graph.nodes[relus[0]]["cluster"] != graph.nodes[relus[1]]["cluster"]
    assert [graph.cluster_path(n) for n in relus] == [["Net()", "act: ReLU()"]] * 2
    y1 = _two_layer_net(Tensor(np.ones((5, 3), np.float32)), w1 := param(3, 4), w2 := param(4, 2))
    y2 = _two_layer_net(Tensor(np.ones((5, 3), np.float32)), w1, w2)
    twice = parse(viz.draw_graph([y1, y2], depth=0))  # two calls of the whole model: two boxes
    assert [twice.label(n) for n in twice.kind("module")] == ["Net()\n→ (5, 2)"] * 2
    assert len(twice.kind("param")) == 2  # shared by both calls: drawn once, outside them


def test_depth_collapses_module_calls_into_boxes() -> None:
    x = Tensor(np.ones((5, 3), np.float32))
    out = _two_layer_net(x, param(3, 4, name="fc1.weight"), param(4, 2, name="fc2.weight")).sum()
    whole = parse(viz.draw_graph(out, depth=0))
    assert [whole.label(n) for n in whole.kind("module")] == ["Net()\n→ (5, 2)\n20 params"]
    assert not whole.kind("param") and len(whole.kind("input")) == 1  # parameters inside, the input outside
    assert [whole.label(n) for n in whole.kind("op")] == ["Sum\naxis=(0, 1)"]
    layers = parse(viz.draw_graph(out, depth=1))
    assert [layers.label(n).split("\n")[0] for n in layers.kind("module")] == [
        "fc1: Linear(3, 4)", "act: ReLU()", "fc2: Linear(4, 2)"]
    assert layers.label(layers.by_label("fc1:")) == "fc1: Linear(3, 4)\n→ (5, 4)\n12 params"
    assert sorted(layers.label(n) for n in layers.kind("op")) == ["Mul\nx × 2", "Sum\naxis=(0, 1)"]  # Net's op stays
    assert edge_labels(layers, layers.by_label("act:")) == ["(5, 4)"]
    assert layers.cluster_path(layers.by_label("act:")) == ["Net()"]


def test_real_modules_name_clusters_and_parameters() -> None:
    Tensor.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    out = model(Tensor.randn(2, 1, 6, 6))
    graph = parse(viz.draw_graph(out))
    assert graph.label(graph.by_label("0.weight")) == "0.weight\n(4, 1, 3, 3) float32"
    conv = graph.by_label("Conv2d")
    assert graph.cluster_path(conv) == ["Sequential()", "0: Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), "
                                                        "padding=(1, 1))"]
    assert graph.cluster_path(graph.by_label("Reshape"))[-1].startswith("2: Flatten")  # alone in its module: kept
    layers = parse(viz.draw_graph(out, depth=1))
    assert [layers.label(n).split("\n")[0].split(":")[0] for n in layers.kind("module")] == ["0", "1", "2", "3"]
    assert "40 params" in layers.label(layers.by_label("0: Conv2d"))


def test_max_nodes_suggests_depth() -> None:
    x = param(3)
    for _ in range(30):
        x = x.exp().log()
    with pytest.raises(ValueError, match="depth="):
        viz.draw_graph(x, max_nodes=20)
    assert len(parse(viz.draw_graph(x, max_nodes=100)).kind("op")) == 60


# ---------------------------------------------------------------------------- gradients
def _deep_sigmoid_mlp(layers: int = 8) -> tuple[nn.Module, Tensor]:
    Tensor.manual_seed(0)
    modules: list[nn.Module] = []
    for _ in range(layers):
        modules += [nn.Linear(16, 16), nn.Sigmoid()]
    model = nn.Sequential(*modules, nn.Linear(16, 1))
    return model, model(Tensor.randn(8, 16)).sum()


def test_gradient_norms_shade_vanishing_and_large_gradients() -> None:
    model, loss = _deep_sigmoid_mlp()
    assert viz.retain_grads(loss) > 0
    loss.backward()
    graph = parse(viz.draw_graph(loss, show_grads=True))
    first, last = graph.named("0.weight"), graph.named("16.weight")
    first_norm = float(np.linalg.norm(model[0].weight.grad.data))
    assert graph.label(first).endswith(f"∇ {first_norm:.2g}")
    assert graph.nodes[first]["fillcolor"] == viz.ramp_color(first_norm)[0] in viz.RAMP[:4]  # blue: vanishing
    assert graph.nodes[last]["fillcolor"] in viz.RAMP[6:]  # red side: large
    assert all("∇" in graph.label(n) for n in graph.kind("op"))  # retain_grads reached every op
    layers = parse(viz.draw_graph(loss, show_grads=True, depth=1))
    first_layer = [n for n in layers.kind("module") if layers.label(n).startswith("0: Linear")]
    assert "∇ params" in layers.label(first_layer[0])
    assert viz.ramp_color(0.0)[0] == viz.RAMP[0] and viz.ramp_color(1e9)[0] == viz.RAMP[-1]


def test_without_retain_grads_ops_are_unshaded_and_retain_grads_is_idempotent() -> None:
    w = param(3, name="w")
    out = (w * 2.0).sum()
    out.backward(retain_graph=True)
    graph = parse(viz.draw_graph(out, show_grads=True))
    assert {graph.nodes[n]["fillcolor"] for n in graph.kind("op")} == {"white"}
    h = w * 3.0
    loss = h.sum()
    assert viz.retain_grads(loss) == 2 and viz.retain_grads(loss) == 0
    loss.backward()
    np.testing.assert_array_equal(h.grad.data, np.ones(3, np.float32))  # kept once, not twice


# ---------------------------------------------------------------------------- the backward graph
def test_show_backward_draws_what_backward_computes() -> None:
    a, b, c = (Tensor(v, requires_grad=True, name=n) for v, n in ((2.0, "a"), (-3.0, "b"), (10.0, "c")))
    out = (a * b + c).relu()
    out.name = "out"
    graph = parse(viz.draw_graph(out, show_backward=True))
    grads = {graph.label(n).split("\n")[0]: graph.label(n).split("\n")[1] for n in graph.kind("grad")}
    assert grads == {"∂out/∂a": "= -3", "∂out/∂b": "= 2", "∂out/∂c": "= 1"}
    backward_ops = graph.kind("backward")
    assert sorted(graph.label(n).split("\n")[0] for n in backward_ops) == ["Mul", "Mul", "ReluGrad"]
    assert all(graph.nodes[n]["fillcolor"] == viz.COLORS["backward"] for n in backward_ops)
    assert all(graph.cluster_path(n) == ["backward pass (recorded with create_graph=True)"] for n in backward_ops)
    reads = [(s, t) for s, t, attrs in graph.edges if attrs.get("style") == "dashed" and t in backward_ops]
    # d(a·b)/da reads b, and back; ReluGrad reads relu's input, the Add's output
    assert {graph.label(s).split("\n")[0] for s, _ in reads} == {"a", "b", "Add"}
    assert a.grad is None and len(graph.kind("op")) == 3  # nothing accumulated; the forward is drawn too
    out.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        viz.draw_graph(out, show_backward=True)


def test_drawing_a_gradient_shows_forward_and_backward_ops() -> None:
    x = param(4, name="x")
    loss = (x.tanh() * x).sum()
    (g,) = grad(loss, x, create_graph=True)
    graph = parse(viz.draw_graph(g))
    labels = {graph.label(n).split("\n")[0] for n in graph.kind("op")}
    assert {"Tanh", "TanhGrad", "Mul", "Add"} <= labels
    assert len(graph.kind("param")) == 1


# ---------------------------------------------------------------------------- draw_model, display, rendering
def test_draw_model_draws_a_training_step_and_leaves_the_model_untouched() -> None:
    Tensor.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Dropout(0.5), nn.Flatten(),
                          nn.Linear(2 * 4 * 4, 3))
    before = {k: v.copy() for k, v in model.state_dict().items()}
    model[0].weight.grad = Tensor.ones(2, 1, 3, 3)
    graph = parse(viz.draw_model(model, input_shape=(2, 1, 6, 6), depth=1, grads=True, backward=True))
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())  # BatchNorm stats restored
    np.testing.assert_array_equal(model[0].weight.grad.data, np.ones((2, 1, 3, 3)))  # the user's .grad too
    assert graph.label(graph.kind("output")[0]).startswith("loss\n= ")
    assert any(graph.label(n).startswith("loss: cross_entropy") for n in graph.kind("module"))
    assert graph.kind("backward") and graph.kind("grad")
    assert graph.label(graph.kind("input")[0]).startswith("input\n(2, 1, 6, 6) float32")


def test_draw_model_keeps_the_random_stream() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(4, 2))
    Tensor.manual_seed(1)
    expected = Tensor.randn(3).data
    Tensor.manual_seed(1)
    viz.draw_model(model, input_shape=(2, 1, 2, 2))
    np.testing.assert_array_equal(Tensor.randn(3).data, expected)


def test_source_needs_no_dot_and_display_falls_back_to_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    out = (param(3) * 2.0).sum()
    assert viz.draw_graph(out).source.startswith("digraph")
    bundle = out._repr_mimebundle_()
    assert list(bundle) == ["text/plain"] and bundle["text/plain"].startswith("Tensor(")
    assert bundle["text/plain"].splitlines()[-1].startswith("(install Graphviz")
    assert "install" in nn.Linear(2, 2)._repr_mimebundle_()["text/plain"]


@needs_dot
def test_display_hooks_give_svg() -> None:
    out = (param(3) * 2.0).sum()
    assert out._repr_mimebundle_()["image/svg+xml"].lstrip().startswith("<?xml")
    assert list(param(3)._repr_mimebundle_()) == ["text/plain"]  # a leaf has no graph to show
    Tensor.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 26 * 26, 3))
    svg = model._repr_mimebundle_()["image/svg+xml"]
    assert "0: Conv2d" in svg and "3: Linear" in svg


@needs_dot
def test_rendering_through_dot_gives_valid_svg() -> None:
    _, loss = _deep_sigmoid_mlp(layers=2)
    svg = viz.draw_graph(loss, depth=1).pipe(format="svg", encoding="utf-8")
    root = ET.fromstring(svg)
    ns = {"svg": "http://www.w3.org/2000/svg"}
    groups = root.findall(".//svg:g", ns)
    classes = [g.get("class", "") for g in groups]
    assert sum(c == "node module" for c in classes) == 5
    assert sum(c == "cluster" for c in classes) == 1
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "0: Linear(in_features=16, out_features=16, bias=True)" in texts and "→ (8, 1)" in texts


def test_viz_imports_only_the_engine_at_module_level() -> None:
    for name in ("__init__.py", "graph.py"):
        tree = ast.parse((ROOT / "tinygrad_cnn" / "viz" / name).read_text(encoding="utf-8"))
        modules = [n.module or "" for n in tree.body if isinstance(n, ast.ImportFrom) and n.level > 0]
        assert set(modules) <= {"", "autograd", "tensor", "graph", "style", "backprop"}, (name, modules)


def test_bad_arguments() -> None:
    out = param(2).sum()
    with pytest.raises(TypeError):
        viz.draw_graph([])
    with pytest.raises(ValueError, match="rankdir"):
        viz.draw_graph(out, rankdir="XY")
    with pytest.raises(ValueError, match="depth"):
        viz.draw_graph(out, depth=-1)
    with pytest.raises(ValueError, match="requires_grad"):
        viz.draw_graph(Tensor.ones(2), show_backward=True)
    assert "rankdir=LR" in viz.draw_graph(out, rankdir="LR").source
    assert parse(viz.draw_graph(param(2, name="w"))).kind("output")  # a leaf alone is its own output
