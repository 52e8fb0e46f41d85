"""See what autograd recorded: computation graphs as `graphviz.Digraph`s.

    from tinygrad_cnn import viz
    viz.draw_graph(loss)                       # .source is DOT text; .render()/.pipe() run Graphviz's `dot`
    viz.draw_graph(loss, depth=1)              # one box per layer: a CNN training step on one screen
    viz.retain_grads(loss); loss.backward()    # keep every intermediate gradient, then ...
    viz.draw_graph(loss, show_grads=True)      # ... shade each tensor by its gradient norm
    viz.draw_graph(loss, show_backward=True)   # also draw the graph that backward(create_graph=True) records
    viz.backprop_page(loss, "step.html")       # a page that steps through the backward pass, node by node

The colours are torchviz's, so a PyTorch user reads the picture at once:

    box, light blue     parameter (a leaf that requires grad), named by its module path: features.0.weight
    box, lavender       input or constant (a leaf without grad); 0-d constants are written into their op
    ellipse, grey       an operation with its key arguments; it also stands for the tensor it makes,
                        whose shape labels the edges leaving it
    box, orange         a value the op saved for backward (gone once a backward frees it)
    box, green          the output (dashed: a gradient, with `show_backward`)
    rounded, yellow     a module call collapsed by `depth=`
    ellipse, pink       an operation of the backward pass (`show_backward=True`)

`viz/graph.py` decides what is shown (folding movement ops, module calls, collapsing); this file
styles it. `tensor_mimebundle` and `module_mimebundle` are the Jupyter displays of `Tensor` and
`nn.Module`: their `_repr_mimebundle_` methods import viz lazily and call them. An SVG of the graph,
or the usual text plus a one-line hint when Graphviz's `dot` is missing.
"""

from __future__ import annotations

import math
import shutil
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import graphviz
import numpy as np

from .. import autograd
from ..tensor import Tensor, default_generator
from .backprop import BackpropPage as BackpropPage
from .backprop import backprop_page as backprop_page
from .graph import Layout, Unit, walk
from .style import COLORS, styled_digraph

_STYLES = {"module": "filled,rounded", "saved": "filled,dashed", "grad": "filled,dashed", "seed": "filled,dashed"}
# Gradient norms on a log scale: blue (vanishing) through white to red (exploding). ColorBrewer RdBu, reversed.
RAMP = ("#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7", "#f4a582", "#d6604d",
        "#b2182b", "#67001f")
RAMP_LOG10 = (-7.0, 3.0)  # one decade per colour, white at 1e-2
_retained: dict[int, Any] = {}  # id -> weakref of tensors retain_grads already asked to keep their gradient


# ---------------------------------------------------------------------------- drawing
def draw_graph(tensor: Tensor | Sequence[Tensor], show_shapes: bool = True, show_grads: bool = False,
               group_modules: bool = True, depth: int | None = None, show_backward: bool = False,
               rankdir: str = "TB", max_nodes: int = 500, *, collapse: bool = True,
               legend: bool = True) -> graphviz.Digraph:
    """The graph that produced `tensor` (or a list of tensors), as a `graphviz.Digraph`.

    `group_modules`: one cluster per module call, "features.0: Conv2d(...)". `depth=k`: module
    calls nested k deep become single boxes (0: the whole model; 1: each child of the model).
    `show_grads`: write and shade each tensor's gradient norm; leaves use `.grad`, intermediate
    tensors need `retain_grads(tensor)` before the backward. `show_backward`: run a create_graph
    backward from `tensor` (nothing accumulates into `.grad`) and draw the ops it records.
    `collapse=False` draws every primitive, movement ops included. Past `max_nodes` nodes a
    ValueError suggests `depth=` (drawing thousands of nodes takes `dot` minutes).
    """
    roots = [tensor] if isinstance(tensor, Tensor) else list(tensor)
    if not roots or not all(isinstance(t, Tensor) for t in roots):
        raise TypeError("draw_graph: expected a Tensor or a non-empty list of Tensors")
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"draw_graph: rankdir must be TB, LR, BT or RL, got {rankdir!r}")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
        raise ValueError(f"draw_graph: depth must be None or an int >= 0, got {depth!r}")
    layout = Layout(roots, show_shapes, group_modules, depth, collapse, record_backward(roots) if show_backward
                    else None)
    if len(layout.units) > max_nodes:
        raise ValueError(f"draw_graph: the graph has {len(layout.units)} nodes, more than max_nodes={max_nodes}; "
                         "pass depth=1 (or 2) to draw each module call as one box, or raise max_nodes")
    return _digraph(layout, rankdir, show_grads, legend)


def record_backward(roots: list[Tensor]) -> tuple[list[Tensor], list[tuple[Tensor, Tensor]]]:
    """Run `grad(roots, leaves, create_graph=True)` from seeds that require grad, so every backward op is recorded.

    Returns the seeds and (leaf, gradient) pairs. Nothing accumulates into `.grad`, and hooks are
    set aside meanwhile (a `retain_grad` hook would otherwise add this run into an intermediate `.grad`).
    """
    tensors = walk(roots)
    leaves = [t for t in tensors if t._ctx is None and t.requires_grad]
    if not leaves or not all(r.requires_grad for r in roots):
        raise ValueError("draw_graph: show_backward needs outputs computed from tensors with requires_grad=True")
    seeds = [Tensor(np.ones_like(r.data), requires_grad=True, name="seed") for r in roots]
    hooked = [(t, t._hooks) for t in tensors if t._hooks]
    for t, _ in hooked:
        t._hooks = None
    try:
        grads = autograd.grad(roots, leaves, seeds, retain_graph=True, create_graph=True, allow_unused=True)
    except RuntimeError as e:
        raise RuntimeError(f"draw_graph(show_backward=True) cannot rerun backward ({e}). Draw before backward(), "
                           "or call backward(retain_graph=True).") from None
    finally:
        for t, hooks in hooked:
            t._hooks = hooks
    return seeds, [(leaf, g) for leaf, g in zip(leaves, grads) if g is not None]


def retain_grads(tensor: Tensor | Sequence[Tensor]) -> int:
    """Make every intermediate tensor of the graph keep its gradient in `.grad` after `backward()`.

    Leaves always keep theirs; intermediate tensors do only after `retain_grad()`, which this
    calls on each one (once: calling `retain_grads` again is harmless). Call it before backward,
    then `draw_graph(..., show_grads=True)` shades every op. Returns how many tensors it added.
    """
    count = 0
    for t in walk([tensor] if isinstance(tensor, Tensor) else list(tensor)):
        ref = _retained.get(id(t))
        if t._ctx is not None and t.requires_grad and (ref is None or ref() is not t):
            t.retain_grad()
            _retained[id(t)] = weakref.ref(t, _forget(id(t)))
            count += 1
    return count


def _forget(key: int) -> Any:
    return lambda _: _retained.pop(key, None)


def draw_model(model: Any, input_shape: Sequence[int] = (2, 1, 28, 28), depth: int | None = None,
               backward: bool = False, grads: bool = False, **options: Any) -> graphviz.Digraph:
    """A training step of `model`, drawn: forward on a random input, cross-entropy on dummy labels.

    The default batch is 2, not 1: BatchNorm refuses a batch of one sample in training mode.
    `backward` also draws the backward pass; `grads` runs `loss.backward()` and shades gradients.
    Other keywords go to `draw_graph`. The model is left as it was: BatchNorm statistics,
    parameters' `.grad` and the random generator (dropout) are restored afterwards.
    """
    with _untouched(model):
        loss = _training_step(model, input_shape)
        if grads:
            retain_grads(loss)
            loss.backward(retain_graph=backward)
        return draw_graph(loss, depth=depth, show_grads=grads, show_backward=backward, **options)


@contextmanager
def training_step(model: Any, input_shape: Sequence[int] = (2, 1, 28, 28)) -> Iterator[Tensor]:
    """The loss of one training step of `model`, as `draw_model` makes it; the model is restored after the block.

        with viz.training_step(model) as loss:
            viz.backprop_page(loss, "step.html")
    """
    with _untouched(model):
        yield _training_step(model, input_shape)


def _training_step(model: Any, input_shape: Sequence[int]) -> Tensor:
    x = Tensor(np.random.default_rng(0).standard_normal(tuple(input_shape)).astype(np.float32), name="input")
    logits = model(x)
    labels = np.zeros(logits.shape[:1], dtype=np.int64)
    with autograd.scope(_Entry("loss", "cross_entropy(logits, labels)")):  # F.cross_entropy's formula
        one_hot = Tensor(np.eye(logits.shape[-1], dtype=logits.dtype)[labels], name="labels (one-hot)")
        loss = -(logits.log_softmax(axis=-1) * one_hot).sum(axis=-1).mean()
    loss.name = "loss"
    return loss


class _Entry:
    """A scope entry of our own (the loss of `draw_model`), shaped like nn's."""

    def __init__(self, path: str, label: str):
        self.path, self.label, self.module = path, label, None


@contextmanager
def _untouched(model: Any) -> Iterator[None]:
    """Restore buffers, gradients and the random generator: drawing must not change training."""
    buffers = [(b, b.data.copy()) for b in model.buffers()] if hasattr(model, "buffers") else []
    params = list(model.parameters()) if hasattr(model, "parameters") else []
    grads = [p.grad for p in params]
    rng_state = default_generator().bit_generator.state
    for p in params:
        p.grad = None
    try:
        yield
    finally:
        for b, data in buffers:
            b.data = data
        for p, g in zip(params, grads):
            p.grad = g
        default_generator().bit_generator.state = rng_state


# ---------------------------------------------------------------------------- styling
def _digraph(layout: Layout, rankdir: str, grads: bool, legend: bool) -> graphviz.Digraph:
    g = styled_digraph("tinygrad_cnn", rankdir)
    members: dict[Any, list[Unit]] = {}
    for unit in layout.units:
        members.setdefault(unit.cluster, []).append(unit)
    children: dict[Any, list[Any]] = {}
    titles = dict(layout.clusters)
    if "backward" in members:
        titles["backward"] = (None, "backward pass (recorded with create_graph=True)")
    for key, (parent, _) in titles.items():
        children.setdefault(parent, []).append(key)

    cluster_of = {u.name: u.cluster for u in layout.units}
    beside: dict[Any, list[tuple[str, str]]] = {}  # a saved value sits beside its op, not below it: then
    for source, target, _, style in layout.edges:  # a cluster stays one rank tall and the next stacks under it
        if style == "saved":
            beside.setdefault(cluster_of[source], []).append((source, target))

    def fill(graph: graphviz.Digraph, key: Any) -> None:
        for unit in members.get(key, []):
            _node(graph, unit, grads)
        for op, saved in beside.get(key, []):
            graph.body.append(f"\t{{rank=same; {op}; {saved}}}\n")
        for child in children.get(key, []):
            sub = graphviz.Digraph(name=f"cluster_{len(names)}", graph_attr={
                "label": _escape(titles[child][1]), "labeljust": "l", "color": "#999999", "fontsize": "10",
                "style": "rounded,dashed" if child == "backward" else "rounded"})
            names.append(child)
            fill(sub, child)
            graph.subgraph(sub)

    names: list[Any] = []
    fill(g, None)
    for source, target, label, style in layout.edges:
        attrs = {"label": _escape(label)} if label else {}
        if style == "saved":
            attrs.update(style="dashed", arrowhead="none", color=COLORS["saved"])
        elif style in ("backward", "reads"):  # reads: backward using a forward value
            attrs.update(color="#b85450", fontcolor="#b85450", style="dashed" if style == "reads" else "solid")
        g.edge(source, target, **attrs)
    if legend:
        g.node("legend", _legend(layout, grads), shape="plaintext")
    return g


def _node(g: graphviz.Digraph, unit: Unit, grads: bool) -> None:
    lines, color, fontcolor = list(unit.lines), COLORS[unit.kind], "black"
    if grads and unit.kind != "saved":
        if unit.grad is not None:
            norm = grad_norm(unit.grad)
            lines.append(f"∇ {norm:.2g}")
            color, fontcolor = ramp_color(norm)
        elif unit.kind != "input":
            color = "white"
        param_grads = [grad_norm(p.grad) for p in unit.params.values() if p.grad is not None]
        if param_grads:
            lines.append(f"∇ params {math.sqrt(sum(n * n for n in param_grads)):.2g}")
    g.node(unit.name, _escape("\n".join(lines)), shape="ellipse" if unit.kind in ("op", "backward")
           else "box", style=_STYLES.get(unit.kind, "filled"), fillcolor=color, fontcolor=fontcolor,
           **{"class": unit.kind})


def grad_norm(g: Tensor) -> float:
    """The L2 norm of a gradient, in float64 (a float32 sum of squares overflows past 1e19)."""
    return float(np.linalg.norm(np.asarray(g.data, dtype=np.float64).ravel()))


def ramp_color(norm: float) -> tuple[str, str]:
    """(fill, font colour) for a gradient norm: log10 of it placed on RAMP, clipped to RAMP_LOG10."""
    low, high = RAMP_LOG10
    level = math.log10(norm) if norm > 0 else -math.inf
    i = round((min(max(level, low), high) - low) / (high - low) * (len(RAMP) - 1)) if math.isfinite(level) else 0
    return RAMP[i], ("white" if i <= 1 or i >= len(RAMP) - 2 else "black")


def _legend(layout: Layout, grads: bool) -> str:
    kinds = {u.kind for u in layout.units} - {"seed"}
    names = {"param": "parameter", "input": "input / constant", "op": "operation", "saved": "saved for backward",
             "module": "module call", "backward": "backward op", "output": "output", "grad": "gradient"}
    cells = [f'<TD BGCOLOR="{COLORS[k]}">{v}</TD>' for k, v in names.items() if k in kinds]
    rows = [f"<TR>{''.join(cells)}</TR>"]
    if grads:
        low, high = RAMP_LOG10
        steps = [low + (high - low) * i / (len(RAMP) - 1) for i in range(0, len(RAMP), 2)]
        ramp = "".join(f'<TD BGCOLOR="{ramp_color(10 ** s)[0]}"><FONT COLOR="{ramp_color(10 ** s)[1]}">'
                       f"1e{s:+.0f}</FONT></TD>" for s in steps)
        rows.append(f'<TR><TD>‖∇‖</TD>{ramp}</TR>')
    return f'<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3">{"".join(rows)}</TABLE>>'


def _escape(text: str) -> str:
    """Make text literal in a DOT label (backslashes, the brackets of HTML labels); newlines become DOT's \\n."""
    return text.replace("\\", "\\\\").replace("<", "‹").replace(">", "›").replace("\n", "\\n")


# ---------------------------------------------------------------------------- Jupyter display
def has_dot() -> bool:
    """True when Graphviz's `dot` program is on the PATH (needed to render, not for `.source`)."""
    return shutil.which("dot") is not None


_HINT_NO_DOT = "(install Graphviz's `dot` program, e.g. `apt install graphviz`, to see this graph as a picture)"


def _svg_bundle(text: str, draw: Any, depths: Sequence[int | None]) -> dict[str, str]:
    """{'image/svg+xml': ..., 'text/plain': ...}, or text with a one-line hint when drawing fails.

    Each depth is tried in turn until the drawing fits: a big graph is shown collapsed rather than not at all.
    """
    if not has_dot():
        return {"text/plain": f"{text}\n{_HINT_NO_DOT}"}
    sizes = []
    for depth in depths:
        try:
            return {"image/svg+xml": draw(depth).pipe(format="svg", encoding="utf-8"), "text/plain": text}
        except ValueError as e:
            if "max_nodes" not in str(e):
                return {"text/plain": f"{text}\n(could not draw the graph: {e})"}
            sizes.append(str(e).split(" nodes")[0])
            if len(sizes) > 1 and sizes[-1] == sizes[-2]:
                break  # no module calls to collapse: a smaller depth will not help
        except Exception as e:  # a display hook must never break the notebook
            return {"text/plain": f"{text}\n(could not draw the graph: {type(e).__name__}: {e})"}
    return {"text/plain": f"{text}\n(graph too large to display; draw it with viz.draw_graph(..., max_nodes=...))"}


def tensor_mimebundle(tensor: Tensor, include: Any = None, exclude: Any = None) -> dict[str, str]:
    """What `Tensor._repr_mimebundle_` returns: a tensor with a graph shows as its graph, titled by its repr.

    A leaf shows as text. `include` and `exclude` are Jupyter's (the formats it wants); they are
    ignored, as IPython allows: it picks from what is offered.
    """
    text = repr(tensor)
    if tensor._ctx is None:
        return {"text/plain": text}
    title = text if len(text) <= 120 else text[:117] + "..."

    def draw(depth: int | None) -> graphviz.Digraph:
        g = draw_graph(tensor, depth=depth, max_nodes=150)
        g.attr(label=_escape(title), labelloc="t")
        return g

    return _svg_bundle(text, draw, (None, 2, 1, 0))


def module_mimebundle(module: Any, include: Any = None, exclude: Any = None) -> dict[str, str]:
    """What `nn.Module._repr_mimebundle_` returns: the module's forward pass, one box per layer.

    The input shape is guessed from its first layer (`guess_input_shape`); without one, the
    module shows as text. The model is left as it was (see `draw_model`).
    """
    text = repr(module)
    shape = guess_input_shape(module)
    if shape is None:
        return {"text/plain": text}

    def draw(depth: int | None) -> graphviz.Digraph:
        with _untouched(module):
            out = module(Tensor(np.zeros(shape, dtype=np.float32), name="input"))
            return draw_graph(out, depth=depth, max_nodes=150)

    return _svg_bundle(text, draw, (16, 2, 1, 0))


def guess_input_shape(module: Any) -> tuple[int, ...] | None:
    """(2, C, 28, 28) if the first layer with weights is a convolution, (2, in_features) if linear."""
    for m in module.modules():
        if hasattr(m, "in_channels"):
            return (2, m.in_channels, 28, 28)
        if hasattr(m, "in_features"):
            return (2, m.in_features)
    return None

