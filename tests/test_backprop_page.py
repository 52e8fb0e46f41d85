"""The backprop page: steps in the engine's order, values equal to the engine's gradients, and the page's contract
checked in a real browser (headless Chromium: `--dump-dom` after the page's script ran, and screenshots).

The contract: `<body data-steps="N" data-step="K">`, the page opens at `#step=K` and the fragment follows the
controls, and for K ≥ 1 exactly one graph node carries the class `current`, the node run at step K.
Browser tests skip only where Chromium is absent; everything else needs Graphviz's `dot`, as the page does.
"""

from __future__ import annotations

import html
import json
import re
import shutil

import numpy as np
import pytest

from tinygrad_cnn import Tensor, autograd, nn, viz
from tinygrad_cnn.cli import main
from tinygrad_cnn.viz import browser
from tinygrad_cnn.viz.graph import walk

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")
needs_chromium = pytest.mark.skipif(browser.find_chromium() is None, reason="chromium is not installed")


# ---------------------------------------------------------------------------- examples
def expression() -> Tensor:
    """micrograd's first example: (a * b + c).relu()."""
    a = Tensor(2.0, requires_grad=True, name="a")
    b = Tensor(-3.0, requires_grad=True, name="b")
    c = Tensor(10.0, requires_grad=True, name="c")
    out = (a * b + c).relu()
    out.name = "out"
    return out


def fan_out() -> tuple[Tensor, list[Tensor]]:
    """Small vectors, values not all ones, `x` used three times and `h` by two ops run at different steps."""
    x = Tensor(np.array([0.5, -1.25, 2.0], np.float32), requires_grad=True, name="x")
    w = Tensor(np.array([1.5, 0.25, -0.75], np.float32), requires_grad=True, name="w")
    big = Tensor(np.linspace(-1, 1, 40, dtype=np.float32).reshape(2, 20), requires_grad=True, name="big")
    h = (x * w).tanh()
    out = ((h * x).sum() + (h.exp() * x).sum() + (big * big).sum()) * 0.5
    out.name = "out"
    return out, [x, w, big]


def engine_gradients(out: Tensor) -> dict[int, np.ndarray]:
    """Every tensor's gradient, by `autograd.grad` (intermediates) on a graph kept for the page's backward."""
    tensors = [t for t in walk([out]) if t.requires_grad]
    grads = autograd.grad(out, tensors, retain_graph=True)
    return {id(t): g.data for t, g in zip(tensors, grads)}


def page_data(text: str) -> dict:
    found = re.search(r'<script type="application/json" id="backprop-data">(.*?)</script>', text, re.S)
    return json.loads(found.group(1))


def values(summary: dict) -> np.ndarray:
    return np.array(summary["values"], dtype=np.float64)


# ---------------------------------------------------------------------------- steps and values
def test_the_expression_has_three_steps_in_the_engines_order(tmp_path):
    out = expression()
    page = viz.backprop_page(out, tmp_path / "p.html")
    assert page.last_step == 3 and 'data-steps="3"' in page.html
    assert [s.visits[0].tensor.grad_fn.__class__.__name__ for s in page.steps[1:]] == ["ReluFn", "AddFn", "MulFn"]
    assert "y = a · b  ⇒  da = g · b, db = g · a" in page.steps[3].panel  # MulFn's chain rule line
    assert {t.name: t.grad.item() for t in walk([out]) if t._ctx is None} == {"a": -3.0, "b": 2.0, "c": 1.0}
    text = (tmp_path / "p.html").read_text(encoding="utf-8")
    assert text == page.html and not re.search(r"""(src|href)=["']?(https?:|//)|<link\b|@import""", text)


def test_every_value_equals_the_engines_gradient(tmp_path):
    out, leaves = fan_out()
    expected = engine_gradients(out)
    page = viz.backprop_page(out, tmp_path / "p.html")
    data = page_data(page.html)
    assert len(data["steps"]) == len(page.steps) and sum(len(s["nodes"]) for s in data["steps"]) == 12
    for step, shown in zip(page.steps, data["steps"]):
        for visit, node in zip(step.visits, shown["nodes"], strict=True):
            assert_equal(node["received"], expected[id(visit.tensor)])
            for send, row in zip(visit.sent, node["sent"], strict=True):
                if row["k"] == row["n"]:  # the running sum, once complete, is the tensor's gradient
                    assert_equal(row["sum"], expected[id(send.tensor)])
    final = {leaf["name"]: leaf["grad"] for leaf in data["leaves"]}
    assert sorted(final) == ["big", "w", "x"] and final["big"]["values"] is None  # 40 elements: shape and norm
    for leaf in leaves:
        assert_equal(final[leaf.name], leaf.grad.data)
        assert_equal(final[leaf.name], expected[id(leaf)])


def assert_equal(summary: dict, want: np.ndarray) -> None:
    """A gradient as the page stores it (values, or shape and norm past 16 elements) equals the engine's."""
    assert summary["shape"] == list(want.shape)
    if summary["values"] is not None:
        assert np.array_equal(values(summary), want.ravel())
    assert summary["norm"] == pytest.approx(np.linalg.norm(want.astype(np.float64).ravel()), rel=1e-12)


def test_a_tensor_used_twice_sums_its_contributions(tmp_path):
    x = Tensor(3.0, requires_grad=True, name="x")
    page = viz.backprop_page(x * x, tmp_path / "square.html")
    sends = page.steps[1].visits[0].sent
    assert [(s.k, s.n, s.grad.values, s.total.values) for s in sends] == [(1, 2, (3.0,), (3.0,)),
                                                                          (2, 2, (3.0,), (6.0,))]
    assert "2 of 2 contributions" in page.steps[1].panel and "∇ 3 + 3" in page.steps[1].edges.values()
    assert (".grad = 6 (2 of 2)", "complete") in page.steps[1].badges.values()


def test_a_gradient_waits_partial_until_its_last_contribution(tmp_path):
    out, _ = fan_out()
    page = viz.backprop_page(out, tmp_path / "p.html")
    h_runs = next(s for s in page.steps[1:] if autograd.op_name(s.visits[0].tensor.grad_fn) == "Tanh")
    h = h_runs.visits[0].tensor
    got = [(s.number, d.k, d.n) for s in page.steps for v in s.visits for d in v.sent if d.tensor is h]
    assert [(k, n) for _, k, n in got] == [(1, 2), (2, 2)] and got[0][0] < got[1][0] < h_runs.number
    assert ("∇ = [0.25, -0.625, 1] (1 of 2)", "partial") in page.steps[got[0][0]].badges.values()  # 0.5 · x
    assert f"the sum of 2 contributions, sent at steps {got[0][0]} and {got[1][0]}" in h_runs.panel


def test_a_hook_that_changes_a_gradient_is_said(tmp_path):
    w = Tensor([1.0, 2.0], requires_grad=True, name="w")
    h = w * 3
    h.register_hook(lambda g: g * 10)
    page = viz.backprop_page((h * h).sum(), tmp_path / "p.html")
    assert page.steps[3].visits[0].grad.values == (60.0, 120.0) and w.grad.tolist() == [180.0, 360.0]
    assert "the sum of 2 contributions, both sent at step 2; then changed by a hook" in page.steps[3].panel


def test_depth_makes_a_module_call_one_step_that_lists_its_primitives(tmp_path):
    Tensor.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Sequential(nn.Linear(3, 3), nn.Tanh()), nn.Linear(3, 2))
    loss = (model(Tensor.randn(5, 4)) ** 2).mean()
    full = viz.backprop_page(loss, tmp_path / "full.html", max_nodes=400)
    loss = (model(Tensor.randn(5, 4)) ** 2).mean()
    page = viz.backprop_page(loss, tmp_path / "depth.html", depth=1)
    modules = [s for s in page.steps[1:] if s.unit.kind == "module"]
    assert [s.unit.lines[0].split(":")[0] for s in modules] == ["2", "1", "0"]
    inner = modules[1]  # 1: Sequential(Linear, Tanh) as one box, one step
    assert [v.tensor.grad_fn.__class__.__name__ for v in inner.visits] == ["TanhFn", "LinearFn"]
    assert "the 2 nodes that ran inside it, in order" in inner.panel and "tanh a" in inner.panel
    assert page.last_step < full.last_step
    assert [p.name for p in model.parameters() if p.grad is not None] == [p.name for p in model.parameters()]


def test_too_many_nodes_are_refused_before_backward_runs(tmp_path):
    out, leaves = fan_out()
    with pytest.raises(ValueError, match=r"more than max_nodes=3; pass depth=1"):
        viz.backprop_page(out, tmp_path / "p.html", max_nodes=3)
    assert all(leaf.grad is None for leaf in leaves) and not (tmp_path / "p.html").exists()
    out.backward()  # the graph is intact


@pytest.mark.parametrize(("tensor", "kwargs", "error", "words"), [
    (Tensor(1.0), {}, ValueError, "does not require grad"),
    ([1.0], {}, TypeError, "expected a Tensor"),
    (None, {"depth": -1}, ValueError, "depth must be None or an int >= 0"),
    (None, {"max_nodes": 0}, ValueError, "max_nodes must be an int >= 1"),
])
def test_bad_arguments_say_what_is_wrong(tmp_path, tensor, kwargs, error, words):
    with pytest.raises(error, match=words):
        viz.backprop_page(tensor, tmp_path / "p.html", **kwargs)


def test_watching_the_backward_run_in_a_block(tmp_path):
    out, (x, w, big) = fan_out()
    expected = engine_gradients(out)
    with viz.backprop_page(None, tmp_path / "p.html") as page:
        autograd.grad(out, [x, big])  # any backward: nothing reaches .grad
    assert (tmp_path / "p.html").read_text(encoding="utf-8") == page.html and page.last_step > 3
    final = {leaf["name"]: leaf["grad"] for leaf in page_data(page.html)["leaves"]}
    assert np.array_equal(values(final["w"]), expected[id(w)]) and x.grad is None
    with pytest.raises(ValueError, match="no backward ran"), viz.backprop_page(None, tmp_path / "q.html"):
        pass
    assert not (tmp_path / "q.html").exists()


def test_jupyter_shows_the_page_inline(tmp_path):
    page = viz.backprop_page(expression(), tmp_path / "p.html")
    shown = page._repr_html_()
    srcdoc = re.fullmatch(r'<iframe srcdoc="([^"]*)".*</iframe>', shown, re.S).group(1)
    assert html.unescape(srcdoc) == page.html


def test_cli_writes_the_page_of_a_training_step(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["graph", "--model", "mlp", "--backprop-page", "mlp.html"]) == 0
    assert "wrote mlp.html (steps 0 to 17, every primitive)" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp.html"]
    assert (tmp_path / "mlp.html").stat().st_size < 1_000_000
    assert main(["graph", "--model", "mlp", "--backprop-page", "mlp.txt"]) == 2
    assert "--backprop-page mlp.txt: the file name must end in .html" in capsys.readouterr().err
    assert main(["graph", "--model", "mlp", "--backprop-page", "mlp.html", "--grads"]) == 2
    assert "add --out FILE.svg" in capsys.readouterr().err
    assert main(["graph", "--model", "mlp", "--depth", "2", "--out", "m.svg", "--backprop-page", "layers.html"]) == 0
    assert "wrote m.svg\nwrote layers.html (steps 0 to 6, depth 2)" in capsys.readouterr().out


# ---------------------------------------------------------------------------- in a browser
def current_nodes(dom: str) -> list[str]:
    """The text of every element whose class list holds `current`."""
    found = []
    for match in re.finditer(r'<(\w+)[^>]*\bclass="([^"]*)"[^>]*>', dom):
        if "current" in match.group(2).split():
            assert match.group(1) == "g" and "node" in match.group(2).split()  # a graph node, nothing else
            body = dom[match.end():dom.index("</g>", match.end())]
            found.append(" ".join(re.findall(r">([^<]+)</text>", body)))
    return found


def panel_numbers(dom: str) -> list[list[float]]:
    """The numbers of each value cell of the side panel, as the browser shows them."""
    panel = re.search(r'<aside id="panel">(.*?)</aside>', dom, re.S).group(1)
    cells = re.findall(r'<td class="value">(.*?)</td>', panel, re.S)
    return [[float(v) for v in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]\d+)?", re.sub(r"<.*", "", c, flags=re.S))]
            for c in cells]


@pytest.fixture(scope="module")
def fan_out_page(tmp_path_factory):
    """The page, every tensor's gradient, the leaves, and what the engine sent (seen by an observer of our own)."""
    out, leaves = fan_out()
    expected = engine_gradients(out)
    sent: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}  # node -> (gradient, running sum) per input
    sums: dict[int, np.ndarray] = {}

    def spy(t: Tensor, g: Tensor, pairs: list[tuple[Tensor, Tensor]]) -> None:
        for x, gx in pairs:
            sums[id(x)] = gx.data.copy() if id(x) not in sums else sums[id(x)] + gx.data
            sent.setdefault(id(t), []).append((gx.data.copy(), sums[id(x)]))

    with autograd.observe_backward(spy):
        page = viz.backprop_page(out, tmp_path_factory.mktemp("page") / "fan_out.html")
    return page, expected, leaves, sent


@needs_chromium
@pytest.mark.parametrize("asked", [0, 2, 99])
def test_the_browser_opens_the_step_in_the_address(fan_out_page, asked):
    page, expected, leaves, sent = fan_out_page
    dom = browser.dump_dom(page.path, asked)
    k = min(asked, page.last_step)
    body = re.search(r"<body([^>]*)>", dom).group(1)
    assert f'data-steps="{page.last_step}"' in body and f'data-step="{k}"' in body
    current = current_nodes(dom)
    if k == 0:
        assert current == []
        return
    visit = page.steps[k].visits[0]
    assert len(current) == 1 and current[0].startswith(autograd.op_name(visit.tensor.grad_fn))
    shown = panel_numbers(dom)
    assert_shown(shown[0], expected[id(visit.tensor)])  # what the node received
    rows = sent[id(visit.tensor)]
    assert len(shown) == 1 + 2 * len(rows) + (len(leaves) if k == page.last_step else 0)
    for (grad, total), numbers, running in zip(rows, shown[1::2], shown[2::2]):  # a gradient, a running sum
        assert_shown(numbers, grad)
        assert_shown(running, total)
    if k == page.last_step:  # the last step shows every leaf's .grad
        by_name = {leaf.name: leaf for leaf in leaves}
        for leaf, numbers in zip(page_data(page.html)["leaves"], shown[-len(leaves):]):
            assert_shown(numbers, by_name[leaf["name"]].grad.data)


def assert_shown(numbers: list[float], want: np.ndarray) -> None:
    """A small gradient shows its values; a big one its shape, then its norm."""
    want = np.asarray(want, dtype=np.float64)
    if want.size <= 16:
        assert numbers == pytest.approx(want.ravel(), rel=1e-5)
    else:
        assert numbers[:-1] == list(want.shape) and numbers[-1] == pytest.approx(np.linalg.norm(want), rel=1e-5)


@needs_chromium
def test_the_controls_move_the_step_and_the_address_follows(fan_out_page):
    page = fan_out_page[0]
    last = page.last_step
    probe = """<script>
const trace = [], note = () => trace.push(document.body.dataset.step + location.hash);
const key = (k) => document.dispatchEvent(new KeyboardEvent("keydown", { key: k, bubbles: true }));
note(); document.getElementById("next").click(); note(); key("ArrowRight"); note(); key("ArrowLeft"); note();
document.getElementById("prev").click(); note(); key("End"); note();
const s = document.getElementById("slider"); s.value = "1"; s.dispatchEvent(new Event("input")); note();
const play = document.getElementById("play"), playing = () => trace.push(play.textContent.includes("pause"));
play.click(); playing(); key(" "); playing();
document.body.setAttribute("data-trace", trace.join(" "));
</script></body>"""
    probed = page.path.with_name("probed.html")
    probed.write_text(page.html.replace("</body>", probe), encoding="utf-8")
    trace = re.search(r'data-trace="([^"]*)"', browser.dump_dom(probed, 1)).group(1).split()
    assert trace == ["1#step=1", "2#step=2", "3#step=3", "2#step=2", "1#step=1", f"{last}#step={last}", "1#step=1",
                     "true", "false"]  # play starts, the space bar pauses


@needs_chromium
def test_screenshots_of_different_steps_differ(tmp_path):
    page = viz.backprop_page(expression(), tmp_path / "p.html")
    shots = [browser.screenshot(page.path, tmp_path / f"step{k}.png", k, size=(900, 600)) for k in (1, 3)]
    first, second = (p.read_bytes() for p in shots)
    assert first.startswith(b"\x89PNG") and second.startswith(b"\x89PNG") and first != second
