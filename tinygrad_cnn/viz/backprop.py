"""Watch backprop happen: one HTML page that steps through the engine's real backward pass.

    page = viz.backprop_page(out, "backprop.html")      # runs out.backward() and writes the page
    with viz.backprop_page(None, "backprop.html"):       # or watches the backward you run yourself
        loss.backward()

Steps are numbered 0 to N. Step 0 is the state before backward starts; step k ≥ 1 is the k-th node
the engine ran (or one module call collapsed by `depth=`), in the engine's own order, as
`autograd.observe_backward` reports it while it happens: nothing here re-implements the traversal.

Three files, in the order they act:
- here, `Recorder` is the observer: for each node, the gradient it received and those it sent, with
  the running sum of each tensor that receives several (a tensor used twice gets two contributions);
- viz/steps.py turns those visits into steps: what each step changes on the graph (the badge under
  each node, the label on each edge) and the side panel's text, all computed once, in Python;
- viz/page.py draws the graph once, every node and edge already holding the longest gradient text it
  will ever show (so the layout never moves while the page steps), and writes the HTML around it.
"""

from __future__ import annotations

import html
import os
import shutil
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np

from .. import autograd
from ..tensor import Tensor
from .graph import Layout
from .page import draw_svg, page_html
from .steps import PageStep, Send, Story, Summary, Visit


# ---------------------------------------------------------------------------- recording
class Recorder:
    """The observer handed to `autograd.observe_backward`: one Visit per node, in the engine's order.

    Summaries are taken as the pass runs, so no gradient is kept alive past its use; only the running
    sums of tensors still waiting for contributions are, until the pass is over.
    """

    def __init__(self) -> None:
        self.visits: list[Visit] = []
        self.totals: dict[int, Summary] = {}
        self._sums: dict[int, np.ndarray] = {}
        self._counts: dict[int, int] = {}

    def __call__(self, tensor: Tensor, grad: Tensor, sent: list[tuple[Tensor, Tensor]]) -> None:
        if id(tensor) in self.totals:
            raise ValueError("backprop_page: a node ran twice; a page shows one backward pass, so run one per page")
        self.totals[id(tensor)] = Summary.of(grad.data)
        summed = self._sums.pop(id(tensor), None)  # complete and used: the engine has let it go too
        hooked = summed is not None and not np.array_equal(summed, grad.data)
        sends = []
        for x, gx in sent:
            total = gx.data if id(x) not in self._sums else self._sums[id(x)] + gx.data  # the engine's sum, in order
            self._sums[id(x)] = total
            self._counts[id(x)] = k = self._counts.get(id(x), 0) + 1
            sends.append(Send(x, Summary.of(gx.data), Summary.of(total), k))
        self.visits.append(Visit(tensor, self.totals[id(tensor)], sends, hooked))

    def finish(self) -> list[Visit]:
        """The visits, each send now knowing how many contributions its input got in all."""
        for visit in self.visits:
            for send in visit.sent:
                send.n = self._counts[id(send.tensor)]
                if send.k == send.n:  # a leaf's total is its last running sum (a node's, what it received)
                    self.totals.setdefault(id(send.tensor), send.total)
        self._sums.clear()
        return self.visits

    def roots(self) -> list[Tensor]:
        """The tensors the pass started from: visited, but sent nothing by any node."""
        return [v.tensor for v in self.visits if id(v.tensor) not in self._counts]


# ---------------------------------------------------------------------------- the page object
class BackpropPage:
    """A page written by `backprop_page`: its `path`, its `steps` and its `html`.

    In Jupyter it displays the page inline (`_repr_html_`). Made by `backprop_page(None, path)` it is
    a context manager that watches the backward run inside its block and writes the page at its end.
    """

    def __init__(self, path: Path, depth: int | None, max_nodes: int, roots: list[Tensor] | None = None):
        """`roots`: the tensors backward will start from, when known in advance (then a graph too big
        for `max_nodes` is refused here, before backward runs and changes `.grad`)."""
        self.path, self.depth, self.max_nodes = path, depth, max_nodes
        self.steps: list[PageStep] = []
        self.html = ""
        self._recorder = Recorder()
        self._watch: AbstractContextManager | None = None  # observe_backward, while the block runs
        self._roots = roots or []
        self._layout = page_layout(roots, depth, max_nodes) if roots else None

    @property
    def last_step(self) -> int:
        """N: steps are numbered 0 (before backward) to N."""
        return len(self.steps) - 1

    def __enter__(self) -> BackpropPage:
        if self.html or self._watch is not None:
            raise RuntimeError("backprop_page: this page is already written; make a new one with backprop_page(None, "
                               "path)")
        self._watch = autograd.observe_backward(self._recorder)
        self._watch.__enter__()
        return self

    def __exit__(self, kind: type | None, *rest: object) -> None:
        self._watch.__exit__(kind, *rest)
        if kind is None:
            roots = self._roots or self._recorder.roots()
            if not roots:
                raise ValueError("backprop_page: no backward ran inside the `with` block, so there is nothing to show")
            self._write(self._layout or page_layout(roots, self.depth, self.max_nodes), roots)

    def _write(self, layout: Layout, roots: list[Tensor]) -> None:
        """Turn what was recorded into the page and write it to `path`."""
        story = Story(layout, self._recorder.finish(), self._recorder.totals, roots, self.depth)
        self.steps = story.steps
        svg = draw_svg(layout, story.badge_room, story.edge_room)
        self.html = page_html(story.title, svg, story.as_json())
        self.path.write_text(self.html, encoding="utf-8")

    def _repr_html_(self) -> str:
        if not self.html:
            return f"<p>backprop page {html.escape(str(self.path))}: nothing recorded yet</p>"
        return (f'<iframe srcdoc="{html.escape(self.html, quote=True)}" title="backprop page" '
                'style="width: 100%; height: 640px; border: 1px solid #ddd"></iframe>')

    def __repr__(self) -> str:
        shown = f"steps 0 to {self.last_step}" if self.html else "not written yet"
        return f"BackpropPage({str(self.path)!r}, {shown})"


def backprop_page(tensor: Tensor | None, path: str | os.PathLike, *, depth: int | None = None,
                  max_nodes: int = 150) -> BackpropPage:
    """Write one self-contained HTML page that steps through the backward pass from `tensor`.

    It runs `tensor.backward()` (so `.grad` accumulates as usual), recording each node as the engine
    runs it. With `tensor=None` it runs nothing and returns a context manager instead, which records
    the backward you run in its block (`loss.backward(...)`, `autograd.grad(...)`) and writes the page
    when the block ends. `depth=k` shows each module call nested k deep as one box and one step, as
    in `draw_graph`. A graph of more than `max_nodes` nodes is refused (a ValueError that suggests
    `depth=`) before anything runs: nobody steps through hundreds of nodes.
    """
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
        raise ValueError(f"backprop_page: depth must be None or an int >= 0, got {depth!r}")
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
        raise ValueError(f"backprop_page: max_nodes must be an int >= 1, got {max_nodes!r}")
    if shutil.which("dot") is None:
        raise RuntimeError("backprop_page draws its graph with Graphviz's `dot` program, which is not on PATH; "
                           "install Graphviz (apt-get install graphviz)")
    if tensor is None:
        return BackpropPage(Path(path), depth, max_nodes)
    if not isinstance(tensor, Tensor):
        raise TypeError(f"backprop_page: expected a Tensor (or None, to watch a backward), got {type(tensor).__name__}")
    if not tensor.requires_grad:
        raise ValueError("backprop_page: the tensor does not require grad, so backward has nothing to do; "
                         "compute it from tensors made with requires_grad=True")
    page = BackpropPage(Path(path), depth, max_nodes, [tensor])
    with page:
        tensor.backward()
    return page


def readable_depth(tensor: Tensor, max_nodes: int = 50) -> int | None:
    """The most detailed `depth` (None: every primitive, then 3, 2, 1, 0) whose page has at most `max_nodes` nodes.

    What `tinygrad-cnn graph --backprop-page` uses when no `--depth` is given.
    """
    for depth in (None, 3, 2, 1):
        if len(page_layout([tensor], depth, None).units) <= max_nodes:
            return depth
    return 0


def page_layout(roots: list[Tensor], depth: int | None, max_nodes: int | None) -> Layout:
    """draw_graph's layout with every primitive a node of its own (each is a step), without saved values.

    Saved values are dropped: they exist before a backward and not after it, and the page shows both.
    """
    layout = Layout(roots, shapes=True, group=True, depth=depth, collapse=False)
    layout.units = [u for u in layout.units if u.kind != "saved"]
    layout.edges = [e for e in layout.edges if e[3] != "saved"]
    if max_nodes is not None and len(layout.units) > max_nodes:
        raise ValueError(f"backprop_page: the graph has {len(layout.units)} nodes, more than max_nodes={max_nodes}; "
                         "pass depth=1 (or 2) to step through each module call as one box, or raise max_nodes")
    return layout
