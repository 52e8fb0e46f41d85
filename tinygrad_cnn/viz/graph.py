"""From a recorded graph to what `viz` draws: nodes ("units"), edges and module clusters.

This file decides *what* is shown; `viz/__init__.py` decides how it looks. It reads only what the
engine records: `t._ctx` (the op that made `t`), `ctx.inputs` (the edges), `ctx.scope`
(the module calls around the op), the settings an op stored on `ctx`, and `saved_tensors`.

Three simplifications keep real networks readable:
- Movement ops (Expand, Reshape, Permute, Cast) become a note on the edge they sit on, unless
  one is the only op of a module call (a Flatten) or makes an output.
- A 0-d constant (the 0.5 of `x * 0.5`) is written into its op's label instead of a box.
- With `depth=k`, each module call nested k deep becomes one box, and so does a shallower call
  with no module calls inside it; the parameters (and unnamed constants) used only inside a box
  disappear into it, counted in its label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..autograd import Function, op_name
from ..tensor import Tensor

PLUMBING = frozenset({"Expand", "Reshape", "Permute", "Cast"})
_SYMBOLS = {"Add": "+", "Sub": "−", "Mul": "×", "Div": "÷", "Pow": "^"}
_HIDDEN_ARGS = frozenset({"input_shape", "kept_shape", "input_dtype", "middle", "sizes", "weights", "shape"})
_RENAMED_ARGS = {"low": "min", "high": "max"}


def walk(roots: Sequence[Tensor]) -> list[Tensor]:
    """Every tensor reachable from `roots` (with or without grad), inputs before their users.

    An explicit stack, as in the engine: no recursion limit on deep graphs.
    """
    order: list[Tensor] = []
    seen: set[int] = set()
    stack = [(t, False) for t in reversed(roots)]
    while stack:
        t, done = stack.pop()
        if done:
            order.append(t)
        elif id(t) not in seen:
            seen.add(id(t))
            stack.append((t, True))
            if t._ctx is not None:
                stack.extend((x, False) for x in reversed(t._ctx.inputs) if id(x) not in seen)
    return order


class Calls:
    """Which module call recorded each op, at every nesting level of its scope.

    `ctx.scope` is the tuple current when the op was recorded. All ops recorded directly in one
    call share that tuple *object*, so it names the innermost call exactly (a ReLU module used
    twice gives two calls). Outer calls left no object behind, so ops whose scopes agree up to
    level j are put in one level-j call when data flows between them, unless both sit directly
    in level-j calls with different tuples (two calls of the same module). A union-find does it.
    """

    def __init__(self, ops: Sequence[Function]):
        self.parent: dict[tuple, tuple] = {}
        self.direct: dict[tuple, int | None] = {}
        for op in ops:
            for j in range(len(op.scope)):
                key = (id(op.scope), j)
                if key not in self.parent:
                    self.parent[key] = key
                    self.direct[key] = id(op.scope) if j == len(op.scope) - 1 else None
        recorded = {id(op) for op in ops}
        for op in ops:
            for x in op.inputs:
                if x._ctx is not None and id(x._ctx) in recorded:
                    a, b = x._ctx.scope, op.scope
                    for j in range(min(len(a), len(b))):
                        if a[j] is not b[j] or not self._union((id(a), j), (id(b), j)):
                            break

    def find(self, op: Function, level: int) -> tuple:
        """The call at `level` (0: outermost) around `op`."""
        return self._root((id(op.scope), level))

    def _root(self, key: tuple) -> tuple:
        while self.parent[key] != key:
            self.parent[key] = key = self.parent[self.parent[key]]  # path halving
        return key

    def _union(self, a: tuple, b: tuple) -> bool:
        a, b = self._root(a), self._root(b)
        if a != b:
            da, db = self.direct[a], self.direct[b]
            if da is not None and db is not None and da != db:
                return False
            self.parent[b] = a
            self.direct[a] = da if da is not None else db
        return True


class Unit:
    """One node of the drawing: kind is op, backward, module, param, input, seed, saved, output or grad."""

    def __init__(self, name: str, kind: str, lines: list[str], cluster: Any, grad: Tensor | None = None):
        self.name, self.kind, self.lines, self.cluster, self.grad = name, kind, lines, cluster, grad
        self.order: tuple[int, int] = (0, 0)
        self.ops: list[Function] = []
        self.outputs: list[Tensor] = []  # for a module: the tensors that leave it
        self.params: dict[int, Tensor] = {}  # for a module: the parameters drawn inside it


class Layout:
    """Units, edges (source, target, label, style) and clusters (key -> (parent key, label)) of a drawing."""

    def __init__(self, roots: list[Tensor], shapes: bool = True, group: bool = True, depth: int | None = None,
                 collapse: bool = True, backward: tuple[list[Tensor], list[tuple[Tensor, Tensor]]] | None = None):
        """`backward`: the seeds and (leaf, gradient) pairs of a recorded backward pass, drawn with the forward."""
        self.shapes, self.group, self.depth, self.collapse = shapes, group, depth, collapse
        self.units: list[Unit] = []
        self.edges: list[tuple[str, str, str, str]] = []
        self.clusters: dict[Any, tuple[Any, str]] = {}
        self.forward_ops = {id(t._ctx) for t in walk(roots) if t._ctx is not None}
        self.results: list[tuple[Tensor, str | None]] = [(r, None) for r in roots]
        self.seeds: set[int] = set()
        if backward is not None:
            seeds, grads = backward
            self.seeds = {id(s) for s in seeds}
            top = roots[0].name or "output"
            self.results += [(g, f"∂{top}/∂{leaf.name or 'leaf'}") for leaf, g in grads]
        self._unit_of: dict[int, Unit] = {}  # id(op) or id(leaf) -> its unit
        self._modules: dict[tuple, Unit] = {}
        self._leaf_uses: dict[int, tuple[Tensor, list[tuple[Unit, str]]]] = {}
        self._edge_set: set[tuple] = set()
        self._build()

    def _build(self) -> None:
        tensors = walk([t for t, _ in self.results])
        self._order = {id(t): i for i, t in enumerate(tensors)}
        ops = [t._ctx for t in tensors if t._ctx is not None]
        self._output_of = {id(t._ctx): t for t in tensors if t._ctx is not None}
        calls = Calls(ops)
        per_call: dict[tuple, list[Function]] = {}
        for op in ops:
            if op.scope:
                per_call.setdefault(calls.find(op, len(op.scope) - 1), []).append(op)
        self._parents = {calls.find(op, j) for op in ops for j in range(len(op.scope) - 1)}
        kept = {id(t._ctx) for t, _ in self.results if t._ctx is not None}
        kept |= {id(group[0]) for group in per_call.values() if len(group) == 1}
        for op in ops:
            self._place(op, calls, kept)
        for unit in list(self.units):
            self._input_edges(unit)
        self._leaf_edges()
        for t, title in self.results:
            self._result(t, title)
        for unit in self._modules.values():
            self._module_lines(unit)
        self.units.sort(key=lambda u: u.order)

    def unit_of(self, x: Tensor | Function) -> Unit | None:
        """The unit drawn for an op, a leaf or an output tensor (`backprop_page` puts gradients on it).

        None for what is not drawn: a folded movement op, a parameter inside a collapsed module call.
        """
        return self._unit_of.get(id(x))

    # ------------------------------------------------------------------ nodes
    def _unit(self, kind: str, lines: list[str], cluster: Any, grad: Tensor | None = None,
              made: Tensor | None = None) -> Unit:
        """A new node; `made` is the tensor it stands for, whose place in the graph orders the DOT file."""
        unit = Unit(f"n{len(self.units)}", kind, lines, cluster, grad)
        unit.order = (self._order.get(id(made), len(self._order)), len(self.units))
        self.units.append(unit)
        return unit

    def _cluster(self, op: Function, calls: Calls, levels: int) -> Any:
        """The cluster of `op`'s call at level `levels - 1` (None: top level), registering its parents."""
        if not self.group:
            return None
        if levels == 0:
            return "backward" if id(op) not in self.forward_ops else None
        key = calls.find(op, levels - 1)
        if key not in self.clusters:
            self.clusters[key] = (self._cluster(op, calls, levels - 1), entry_title(op.scope[levels - 1]))
        return key

    def _collapsed_level(self, op: Function, calls: Calls) -> int | None:
        """The level of the module call that swallows `op` under `depth` (None: drawn as itself).

        A call `depth` deep is one box; so is a shallower call without module calls inside it
        (a Linear, the loss): with `depth` set, only ops written directly in a container's
        forward stay visible.
        """
        if self.depth is None or not op.scope:
            return None
        if len(op.scope) > self.depth:
            return self.depth
        innermost = len(op.scope) - 1
        return None if calls.find(op, innermost) in self._parents else innermost

    def _place(self, op: Function, calls: Calls, kept: set[int]) -> None:
        """Give `op` a unit: its own ellipse, the box of its collapsed module call, or none (folded)."""
        level = self._collapsed_level(op, calls)
        if level is not None:
            key = calls.find(op, level)
            unit = self._modules.get(key)
            if unit is None:
                title = entry_title(op.scope[level])
                unit = self._modules[key] = self._unit("module", [title], self._cluster(op, calls, level),
                                                       made=self._output_of[id(op)])
            unit.ops.append(op)
            self._unit_of[id(op)] = unit
        elif not (self.collapse and op_name(op) in PLUMBING and id(op) not in kept):
            out = self._output_of[id(op)]
            kind = "op" if id(op) in self.forward_ops else "backward"
            unit = self._unit(kind, op_lines(op, out), self._cluster(op, calls, len(op.scope)), out.grad, out)
            unit.ops.append(op)
            self._unit_of[id(op)] = unit
            for value in saved_values(op):
                title = "saved output" if value is getattr(op, "output", None) else "saved"
                saved = self._unit("saved", [title, describe(value, self.shapes)], unit.cluster, made=out)
                self.edges.append((unit.name, saved.name, "", "saved"))

    def _leaf_unit(self, leaf: Tensor) -> Unit:
        unit = self._unit_of.get(id(leaf))
        if unit is None:
            kind = "seed" if id(leaf) in self.seeds else "param" if leaf.requires_grad else "input"
            cluster = "backward" if kind == "seed" and self.group else None
            unit = self._unit(kind, tensor_lines(leaf, self.shapes), cluster, leaf.grad, leaf)
            self._unit_of[id(leaf)] = unit
        return unit

    # ------------------------------------------------------------------ edges
    def _source(self, x: Tensor, consumer: Unit | None) -> tuple[Unit | Tensor | None, str]:
        """Follow `x` back through folded ops: (the unit or leaf it comes from, the edge's label).

        None when `x` is made inside `consumer` itself (an edge inside a collapsed module call).
        """
        steps, arriving = [], x
        while x._ctx is not None:
            unit = self._unit_of.get(id(x._ctx))
            if unit is consumer:
                return None, ""
            if unit is not None:
                if unit.kind == "module" and (consumer is None or consumer.kind != "backward") \
                        and all(o is not x for o in unit.outputs):
                    unit.outputs.append(x)
                break
            steps.append(plumbing_note(x._ctx))
            x = x._ctx.inputs[0]
        named = arriving.name and arriving._ctx is not None and consumer is not None
        parts = [f"{arriving.name}:"] if named else []
        if steps:
            parts.append(" · ".join(reversed(steps)))
            if self.shapes:
                parts.append(f"{shape_text(x.shape)} → {shape_text(arriving.shape)}")
        elif self.shapes and x._ctx is not None:
            parts.append(shape_text(arriving.shape))
        return (x if x._ctx is None else self._unit_of[id(x._ctx)]), "\n".join(parts)

    def _input_edges(self, unit: Unit) -> None:
        for op in unit.ops:
            for x in op.inputs:
                if is_folded_constant(x):
                    continue
                source, label = self._source(x, unit)
                if isinstance(source, Tensor):
                    self._leaf_uses.setdefault(id(source), (source, []))[1].append((unit, label))
                elif source is not None:
                    self._edge(source, unit, label)

    def _edge(self, source: Unit, target: Unit, label: str) -> None:
        style = ""
        if source.kind in ("backward", "seed"):
            style = "backward"
        elif target.kind == "backward":
            style = "reads"  # the backward pass reads a value of the forward pass
        edge = (source.name, target.name, label, style)
        if edge not in self._edge_set:
            self._edge_set.add(edge)
            self.edges.append(edge)

    def _leaf_edges(self) -> None:
        """Give leaves their boxes, except those that disappear into the one collapsed call using them.

        A parameter used only inside one collapsed call is counted in its label. So is an unnamed
        constant (a dropout mask, a max-shift), when the call also gets data from another node: the
        model's own unnamed input stays visible. A parameter used in a single cluster is drawn in it.
        """
        fed = {target for _, target, _, _ in self.edges}
        for leaf, uses in self._leaf_uses.values():
            target = uses[0][0]
            is_param = leaf.requires_grad and id(leaf) not in self.seeds
            if target.kind == "module" and all(u is target for u, _ in uses):
                if is_param:
                    target.params[id(leaf)] = leaf
                    continue
                if not leaf.requires_grad and not leaf.name and target.name in fed:
                    continue
            box = self._leaf_unit(leaf)
            if is_param and all(u.cluster == target.cluster for u, _ in uses) and target.cluster != "backward":
                box.cluster = target.cluster
            for unit, label in uses:
                self._edge(box, unit, label)

    def _result(self, t: Tensor, title: str | None) -> None:
        if title is None and t._ctx is None:  # drawing a leaf: its own box is the output
            self._leaf_unit(t).kind = "output"
            return
        unit = self._unit("output" if title is None else "grad", tensor_lines(t, self.shapes, title), None, t.grad, t)
        self._unit_of[id(t)] = unit
        source, label = (t, "") if t._ctx is None else self._source(t, None)
        self._edge(self._leaf_unit(source) if isinstance(source, Tensor) else source, unit, label)

    def _module_lines(self, unit: Unit) -> None:
        if unit.outputs and self.shapes:
            shapes = ", ".join(shape_text(t.shape) for t in unit.outputs[:2])
            unit.lines.append("→ " + shapes + (" …" if len(unit.outputs) > 2 else ""))
        extras = []
        if unit.params:
            extras.append(f"{sum(p.numel() for p in unit.params.values()):,} params")
        saved = sum(nbytes(v) for op in unit.ops for v in saved_values(op))
        if saved:
            extras.append(f"saves {bytes_text(saved)}")
        if extras:
            unit.lines.append(" · ".join(extras))
        unit.grad = unit.outputs[0].grad if unit.outputs else None


# ---------------------------------------------------------------------------- labels
def entry_title(entry: object) -> str:
    """"features.0: Conv2d(1, 32, ...)" for nn's scope entries (duck-typed), str(entry) otherwise."""
    path, label = getattr(entry, "path", None), getattr(entry, "label", None)
    if label is None:
        return str(path if path is not None else entry)
    return f"{path}: {label}" if path else str(label)


def is_folded_constant(x: Tensor) -> bool:
    return x._ctx is None and not x.requires_grad and x.ndim == 0 and not x.name


def shape_text(shape: tuple) -> str:
    return "scalar" if shape == () else str(tuple(shape))


def _value(x: Any) -> str:
    return f"{x.item():.4g}" if isinstance(x, (Tensor, np.ndarray)) else f"{x:.4g}"


def op_lines(op: Function, out: Tensor) -> list[str]:
    """["Conv2d", "kernel=(3, 3) stride=(1, 1) padding=(1, 1)"]: the op and the settings it stored."""
    name = op_name(op)
    args = []
    constants = [(i, x) for i, x in enumerate(op.inputs) if is_folded_constant(x)]
    if constants and name in _SYMBOLS and len(op.inputs) == 2:
        i, c = constants[0]
        args.append(f"x {_SYMBOLS[name]} {_value(c)}" if i == 1 else f"{_value(c)} {_SYMBOLS[name]} x")
    elif constants:
        args.append("const " + ", ".join(_value(c) for _, c in constants))
    if name == "Cast":
        args.append(f"→ {out.dtype}")
    elif name == "Pad" and hasattr(op, "middle"):
        args.append("pad=" + str(tuple((s.start, n - s.stop) for s, n in zip(op.middle, out.shape))))
    for key, value in getattr(op, "__dict__", {}).items():
        if key in _HIDDEN_ARGS or value is None or value is False:
            continue
        if key == "key":
            args.append(index_text(value))
        elif hasattr(value, "_asdict"):  # a NamedTuple such as conv's Geometry
            args += [f"{k}={v}" for k, v in value._asdict().items() if not (k == "dilation" and v == (1, 1))]
        elif value is True:
            args.append(key)
        elif isinstance(value, (int, float, str, np.dtype, np.generic)) or (
                isinstance(value, tuple) and len(value) <= 8 and all(isinstance(v, int) for v in value)):
            args.append(f"{_RENAMED_ARGS.get(key, key)}={value}")
    return [name, " ".join(args)] if args else [name]


def index_text(key: Any) -> str:
    """A basic or integer-array index as written in Python: [1:3, :, None, idx(4,)]."""
    def one(k: Any) -> str:
        if isinstance(k, slice):
            text = f"{'' if k.start is None else k.start}:{'' if k.stop is None else k.stop}"
            return text + (f":{k.step}" if k.step is not None else "")
        if isinstance(k, np.ndarray):
            return f"idx{k.shape}"
        return "..." if k is Ellipsis else str(k)
    return "[" + ", ".join(one(k) for k in (key if isinstance(key, tuple) else (key,))) + "]"


def plumbing_note(op: Function) -> str:
    name = op_name(op).lower()
    if name == "permute":
        return f"permute {op.dims}"
    if name == "cast":
        return f"cast {op.input_dtype}"
    return name


def tensor_lines(t: Tensor, shapes: bool, title: str | None = None) -> list[str]:
    """A tensor box: its name (or `title`), its value when it has one element, shape and dtype."""
    lines = [title] if title else [t.name] if t.name else []
    if t.numel() == 1:
        lines.append(f"= {_value(t.data.reshape(()))}")
    if shapes:
        lines.append(f"{shape_text(t.shape)} {t.dtype}")
    return lines or [str(t.dtype)]


def saved_values(op: Function) -> list[Any]:
    """What `op` keeps alive for its backward: save_for_backward's values and a kept output."""
    values = [v for v in (op.saved_tensors or ()) if v is not None]
    output = getattr(op, "output", None)
    return values + ([output] if output is not None else [])


def nbytes(value: Any) -> int:
    return int(getattr(value, "nbytes", 0) or getattr(getattr(value, "data", None), "nbytes", 0))


def bytes_text(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def describe(value: Any, shapes: bool) -> str:
    """A saved value in one line: '(1568, 9) float32 · 55.1 KB' (its size: what backward costs in memory)."""
    if not hasattr(value, "shape"):
        return type(value).__name__
    return f"{shape_text(value.shape)} {value.dtype} · {bytes_text(nbytes(value))}" if shapes else str(value.dtype)
