"""What each step of the backprop page shows, computed once in Python: the page's script only replays it.

The recording (viz/backprop.py's `Recorder`) gives one `Visit` per node the engine ran, in its order:
the gradient the node received and the `Send`s to its inputs, each with its input's running sum.
`Story` groups the visits into steps (one per node, or per module call collapsed by `depth=`) and
works out, for each step, what changes on the graph (the badge under each node, the label on each
edge) and what the side panel says. Gradients are kept as `Summary`s: values for small tensors, shape
and norm for big ones, which is all the page shows.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..autograd import Function, op_name
from ..tensor import Tensor
from .graph import Layout, Unit, entry_title, shape_text

SMALL = 16  # a gradient of at most this many elements shows its values in the panel; a bigger one shape and norm
SHORT = 3  # ... and on the graph, at most this many (else its norm)
ORDER_SHOWN = 60  # step 0 lists the order of the steps when there are at most this many


# ---------------------------------------------------------------------------- what a gradient looks like
@dataclass(frozen=True)
class Summary:
    """What the page shows of one gradient: its values when it is small, else its shape and norm."""

    shape: tuple[int, ...]
    norm: float
    values: tuple[float, ...] | None  # None past SMALL elements

    @classmethod
    def of(cls, array: np.ndarray) -> Summary:
        a = np.asarray(array)
        norm = float(np.linalg.norm(a.astype(np.float64).ravel()))  # float64: float32's sum of squares overflows
        return cls(tuple(a.shape), norm, tuple(float(v) for v in a.ravel()) if a.size <= SMALL else None)

    @property
    def fits_graph(self) -> bool:
        """Small enough to write its values on the graph (at most SHORT of them)."""
        return self.values is not None and len(self.values) <= SHORT

    def short(self) -> str:
        """A few characters for the graph: the value "-3", the values "[1, 2]", else the norm "0.0123"."""
        if not self.fits_graph:
            return number(self.norm, 3)
        text = ", ".join(number(v, 4) for v in self.values)
        return text if self.shape == () else f"[{text}]"

    def text(self) -> str:
        """The panel's version: every value to 6 significant digits, or the shape and the norm."""
        if self.values is None:
            return f"shape {shape_text(self.shape)}, norm {number(self.norm, 6)}"
        array = np.array(self.values, dtype=np.float64).reshape(self.shape)
        return np.array2string(array, separator=", ", formatter={"float_kind": lambda v: number(v, 6)})

    def as_json(self) -> dict[str, Any]:
        """Full precision, for tools and tests (non-finite numbers as strings: JSON has none)."""
        values = None if self.values is None else [json_number(v) for v in self.values]
        return {"shape": list(self.shape), "norm": json_number(self.norm), "values": values}


def number(v: float, digits: int) -> str:
    return f"{v:.{digits}g}" if np.isfinite(v) else str(v)


def json_number(v: float) -> float | str:
    return v if np.isfinite(v) else str(v)


# ---------------------------------------------------------------------------- what the engine did
@dataclass
class Send:
    """One gradient a node sent to one input: the k-th of the n contributions that input receives."""

    tensor: Tensor
    grad: Summary
    total: Summary  # the input's running sum, this contribution included
    k: int
    n: int = 0  # known once the pass is over


@dataclass
class Visit:
    """One node the engine ran: its output tensor (`tensor._ctx` is the node), what it received, what it sent."""

    tensor: Tensor
    grad: Summary
    sent: list[Send]
    hooked: bool = False  # a hook on the tensor changed the sum of its contributions


# ---------------------------------------------------------------------------- steps
@dataclass
class PageStep:
    """One step of the page: the unit it runs (None for step 0), what it changes, and the panel's HTML."""

    number: int
    unit: Unit | None
    visits: list[Visit]
    badges: dict[str, tuple[str, str]] = field(default_factory=dict)  # unit name -> (text, status)
    edges: dict[str, str] = field(default_factory=dict)  # edge id -> the gradients it carries
    panel: str = ""


class Story:
    """The visits as steps: what each step changes on the graph, and what its panel says."""

    def __init__(self, layout: Layout, visits: list[Visit], totals: dict[int, Summary], roots: list[Tensor],
                 depth: int | None):
        """`totals`: each tensor's gradient by id, what it received (a node) or its final running sum (a leaf)."""
        self.layout, self.roots, self.depth = layout, roots, depth
        self.visits, self.totals = visits, totals
        self.steps = [PageStep(0, None, []), *group_steps(self.visits, layout)]
        self.last = len(self.steps) - 1
        self.runs_at = {id(v.tensor): s.number for s in self.steps for v in s.visits}
        self.received_at: dict[int, list[int]] = {}  # tensor -> the steps that sent it a contribution
        self.edge_ids: dict[tuple[str, str], list[str]] = {}
        for i, (source, target, _, _) in enumerate(layout.edges):
            self.edge_ids.setdefault((source, target), []).append(f"e{i}")
        self.badge_room: dict[str, str] = {}  # unit name -> the longest text its badge will show
        self.edge_room: dict[str, str] = {}
        self.leaves = self._leaves()
        self.root_name = (roots[0].name or "out") if len(roots) == 1 else "out"
        self.title = f"backward from {self.root_name}" if len(roots) == 1 else f"backward from {len(roots)} outputs"
        for step in self.steps:
            self._changes(step)
            step.panel = self._panel(step)

    # ---------------------------------------------------------------- what changes on the graph
    def _changes(self, step: PageStep) -> None:
        """What `step` changes: the badges of the tensors it sent gradients to (their running sums), the labels
        of the edges those ran along, and at the last step each leaf's `.grad`. Step 0: the seed on the output."""
        if step.number == 0:
            for visit in self.visits:
                if any(visit.tensor is r for r in self.roots):
                    self._badge(step, visit.tensor, badge_text(visit.grad, 1, 1), "complete")
        per_edge: dict[str, list[Summary]] = {}
        for visit in step.visits:
            for send in visit.sent:
                self.received_at.setdefault(id(send.tensor), []).append(step.number)
                status = "complete" if send.k == send.n else "partial"
                self._badge(step, send.tensor, badge_text(send.total, send.k, send.n), status)
                for edge in self._edges_of(send.tensor, step.unit):
                    per_edge.setdefault(edge, []).append(send.grad)
        for edge, grads in per_edge.items():
            step.edges[edge] = edge_text(grads)
            self.edge_room[edge] = max(self.edge_room.get(edge, ""), step.edges[edge], key=len)
        if step.number == self.last:
            for leaf in self.leaves:  # what backward leaves behind; (2 of 2) still says a tensor was used twice
                if leaf.grad is not None:
                    n = len(self.received_at[id(leaf)])
                    self._badge(step, leaf, badge_text(Summary.of(leaf.grad.data), n, n, ".grad"), "complete")

    def _badge(self, step: PageStep, t: Tensor, text: str, status: str) -> None:
        for unit in badge_units(self.layout, t):
            step.badges[unit.name] = (text, status)
            self.badge_room[unit.name] = max(self.badge_room.get(unit.name, ""), text, key=len)

    def _edges_of(self, x: Tensor, consumer: Unit | None) -> list[str]:
        """The drawn edges a gradient sent to `x` by `consumer` runs along (none inside a collapsed call)."""
        source = self.layout.unit_of(x if x._ctx is None else x._ctx)
        if source is None or consumer is None or source is consumer:
            return []
        return self.edge_ids.get((source.name, consumer.name), [])

    def _leaves(self) -> list[Tensor]:
        """The leaves that received a gradient, in the order of their first contribution."""
        seen: dict[int, Tensor] = {}
        for visit in self.visits:
            for send in visit.sent:
                if send.tensor._ctx is None:
                    seen.setdefault(id(send.tensor), send.tensor)
        return list(seen.values())

    # ---------------------------------------------------------------- the side panel
    def _panel(self, step: PageStep) -> str:
        if step.number == 0:
            return self._start_panel()
        parts = [self._heading(step)]
        parts.append(self._received(step))
        parts.append(self._sent(step))
        if step.number == self.last:
            parts.append(self._final())
        return "".join(parts)

    def _start_panel(self) -> str:
        n = self.last
        parts = [f"<h2>Step 0 of {n}: before backward</h2>",
                 f"<p>backward starts at {_e(self.root_name)} with its own gradient, the seed "
                 f"∂{_e(self.root_name)}/∂{_e(self.root_name)} = {_e(self._seed_text())}.</p>",
                 f"<p>The engine will run {n} node{'s' if n != 1 else ''}, each once, in reverse topological "
                 "order: a node runs only after every node that used its output has sent it a gradient, so "
                 "the gradient it passes on is complete.</p>"]
        if 0 < n <= ORDER_SHOWN:
            parts.append('<p class="order">' + " → ".join(_e(self._step_title(s)) for s in self.steps[1:]) + "</p>")
        if n == 0:
            parts.append(self._final())
        parts.append('<p class="keys">← → step · space play/pause · the address ends in #step=K</p>')
        return "".join(parts)

    def _seed_text(self) -> str:
        root_visits = [v for v in self.visits if any(v.tensor is r for r in self.roots)]
        return root_visits[0].grad.text() if root_visits else "1"

    def _step_title(self, step: PageStep) -> str:
        if step.unit is not None and step.unit.kind == "module":
            return step.unit.lines[0]
        return op_name(step.visits[0].tensor._ctx)

    def _heading(self, step: PageStep) -> str:
        title = f"<h2>Step {step.number} of {self.last}: {_e(self._step_title(step))}</h2>"
        if step.unit is not None and step.unit.kind == "module":
            ops = [v.tensor._ctx for v in step.visits]
            items = "".join(f"<li><b>{_e(op_name(op))}</b> <code>{_e(chain_rule(op))}</code></li>" for op in ops)
            n = len(ops)
            which = f"the {n} nodes that ran inside it, in order" if n > 1 else "the node that ran inside it"
            return (title + f"<p>A module call drawn as one box (depth={self.depth}): {which}.</p>"
                    f'<ol class="inside">{items}</ol>')
        op = step.visits[0].tensor._ctx
        where = f'<p class="where">inside {_e(entry_title(op.scope[-1]))}</p>' if op.scope else ""
        return title + where + f'<p class="rule">{_e(chain_rule(op))}</p>'

    def _received(self, step: PageStep) -> str:
        rows = []
        for visit in step.visits:
            senders = self.received_at.get(id(visit.tensor), [])
            if senders and all(s == step.number for s in senders):
                continue  # made and used inside this collapsed call
            name = self._name(visit.tensor)
            if not senders:
                note = "the seed: backward starts here"
            elif len(senders) == 1:
                note = f"sent at step {senders[0]}"
            else:
                note = f"complete: the sum of {len(senders)} contributions, {_sent_at(senders)}"
            if visit.hooked:
                note += "; then changed by a hook registered on the tensor"
            rows.append(f"<tr><td>g = ∂{_e(self.root_name)}/∂({_e(name)})</td>"
                        f'<td class="value">{_e(visit.grad.text())}</td><td class="note">{_e(note)}</td></tr>')
        return '<h3>Receives</h3><table class="received">' + "".join(rows) + "</table>"

    def _sent(self, step: PageStep) -> str:
        inside = {id(v.tensor._ctx) for v in step.visits}
        rows = []
        for visit in step.visits:
            for send in visit.sent:
                if send.tensor._ctx is not None and id(send.tensor._ctx) in inside:
                    continue  # stays inside this collapsed call
                runs = self.runs_at.get(id(send.tensor))
                later = f' <span class="note">(runs at step {runs})</span>' if runs is not None else ""
                count = f"{send.k} of {send.n} contribution{'s' if send.n != 1 else ''}"
                rows.append(f"<tr><td>{_e(self._name(send.tensor))}{later}</td>"
                            f'<td class="value">{_e(send.grad.text())}</td>'
                            f'<td class="value">{_e(send.total.text())}<br><span class="note">{count}</span></td></tr>')
        if not rows:
            return "<h3>Sends</h3><p>nothing: no input needs a gradient</p>"
        return ('<h3>Sends</h3><table class="sent"><tr><th>to</th><th>gradient</th><th>running sum</th></tr>'
                + "".join(rows) + "</table>")

    def _final(self) -> str:
        rows = []
        for leaf in self.leaves:
            value = Summary.of(leaf.grad.data) if leaf.grad is not None else self.totals[id(leaf)]
            rows.append(f'<tr><td>{_e(self._name(leaf))}</td><td class="value">{_e(value.text())}</td></tr>')
        kind = ".grad" if any(leaf.grad is not None for leaf in self.leaves) else "gradient"
        return (f"<h3>Backward is done: every leaf's {kind}</h3>"
                f'<table class="final">{"".join(rows)}</table>')

    def _name(self, t: Tensor) -> str:
        if t.name:
            return t.name
        if any(t is r for r in self.roots):
            return self.root_name
        if t._ctx is None:
            return f"a leaf {shape_text(t.shape)}"
        return f"{op_name(t._ctx)}'s output"

    # ---------------------------------------------------------------- for the page's script
    def as_json(self) -> dict[str, Any]:
        """What the page's script replays (badges, edges, panels) and, for tools, every gradient in full."""
        return {
            "badged": sorted(self.badge_room),
            "labelled": sorted(self.edge_room),
            "steps": [{
                "unit": None if s.unit is None else s.unit.name,
                "badges": [[unit, text, status] for unit, (text, status) in s.badges.items()],
                "edges": [[edge, text] for edge, text in s.edges.items()],
                "panel": s.panel,
                "nodes": [{"op": op_name(v.tensor._ctx), "received": v.grad.as_json(),
                           "sent": [{"to": self._name(d.tensor), "grad": d.grad.as_json(), "sum": d.total.as_json(),
                                     "k": d.k, "n": d.n} for d in v.sent]} for v in s.visits],
            } for s in self.steps],
            "leaves": [{"name": self._name(leaf), "grad": (Summary.of(leaf.grad.data) if leaf.grad is not None
                                                            else self.totals[id(leaf)]).as_json()}
                       for leaf in self.leaves],
        }


def group_steps(visits: list[Visit], layout: Layout) -> list[PageStep]:
    """One step per node, or per run of consecutive nodes drawn as the same box (a collapsed module call)."""
    steps: list[PageStep] = []
    for visit in visits:
        unit = layout.unit_of(visit.tensor._ctx)
        if steps and unit is not None and steps[-1].unit is unit and unit.kind == "module":
            steps[-1].visits.append(visit)
        else:
            steps.append(PageStep(len(steps) + 1, unit, [visit]))
    return steps


def badge_units(layout: Layout, t: Tensor) -> list[Unit]:
    """The boxes that stand for `t`: its leaf box, the op that made it, the module call it leaves, its output box."""
    if t._ctx is None:
        unit = layout.unit_of(t)
        return [unit] if unit is not None else []
    units = []
    maker = layout.unit_of(t._ctx)
    if maker is not None and (maker.kind != "module" or any(o is t for o in maker.outputs)):
        units.append(maker)
    box = layout.unit_of(t)
    if box is not None and box is not maker:
        units.append(box)
    return units


def badge_text(total: Summary, k: int, n: int, symbol: str = "∇") -> str:
    """ "∇ = -3", "‖∇‖ = 0.012", and "(1 of 2)" while a tensor used twice waits for its second contribution."""
    value = f"{symbol} = {total.short()}" if total.fits_graph else f"‖{symbol}‖ = {total.short()}"
    return f"{value} ({k} of {n})" if n > 1 else value


def edge_text(grads: list[Summary]) -> str:
    """The gradients one edge carries at one step: "∇ 3", or "∇ 3 + 3" when an op uses the same input twice."""
    return ("∇ " if all(g.fits_graph for g in grads) else "‖∇‖ ") + " + ".join(g.short() for g in grads)


def chain_rule(op: Function) -> str:
    """The first line of the primitive's docstring, which states its chain rule: "y = a · b  ⇒  da = g · b, ..."."""
    doc = (type(op).__doc__ or "").strip()
    return doc.splitlines()[0] if doc else f"{op_name(op)} (its class has no docstring to show here)"


def _sent_at(steps: list[int]) -> str:
    """"sent at steps 6 and 12", or "both sent at step 1" (an op that used the tensor twice)."""
    unique = sorted(set(steps))
    if len(unique) == 1:
        return f"{'both' if len(steps) == 2 else 'all'} sent at step {unique[0]}"
    return "sent at steps " + ", ".join(map(str, unique[:-1])) + " and " + str(unique[-1])


def _e(text: str) -> str:
    return html.escape(text, quote=False)
