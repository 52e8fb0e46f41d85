"""Reverse-mode automatic differentiation: `Function`, grad mode and the backward engine.

The whole idea fits in three sentences. Every differentiable operation is a
`Function`: `forward` computes the result with numpy, `backward` says how a
gradient flowing into the result splits among the inputs. Each call records one
node (the Function instance itself, the *context*) that points at its input
Tensors, so the outputs of a computation carry the graph that produced them.
`backward()` walks that graph from the output to the leaves in reverse
topological order, applying each node's chain rule exactly once.

    a ──┐
        ├─ Mul ── t ──┐
    b ──┘             ├─ Add ── u ── Relu ── out        forward: left to right
    c ────────────────┘                                 backward: right to left

Because every `backward` is written with Tensor operations (not raw numpy), the
backward pass can itself be recorded (`create_graph=True`) and differentiated
again: that is all second derivatives need.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .tensor import Tensor

# ---------------------------------------------------------------------------
# The one tie to tensor.py: it registers the Tensor class here once it exists.
# ---------------------------------------------------------------------------
_Tensor: Any = None
_new = object.__new__


def register_tensor_class(cls: type) -> None:
    """Called once by tensor.py, so `Function.apply` can build output Tensors."""
    global _Tensor
    _Tensor = cls


# ---------------------------------------------------------------------------
# Grad mode and scopes: two pieces of global state, read on every op.
# ---------------------------------------------------------------------------
_grad_enabled = True
_scope: tuple = ()


def is_grad_enabled() -> bool:
    """True when operations are being recorded for backward."""
    return _grad_enabled


class _GradMode:
    """Context manager *and* decorator that sets grad mode, restoring it after."""

    mode = True

    def __new__(cls, func: Callable | None = None):
        self = super().__new__(cls)
        if func is not None:  # used as a bare decorator: `@no_grad`
            return self(func)
        return self

    def __enter__(self) -> None:
        global _grad_enabled
        self._previous = getattr(self, "_previous", [])
        self._previous.append(_grad_enabled)
        _grad_enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        global _grad_enabled
        _grad_enabled = self._previous.pop()

    def __call__(self, func: Callable) -> Callable:
        mode_cls = type(self)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with mode_cls():
                return func(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Stop recording: `with no_grad():` or `@no_grad` (for evaluation, optimizer steps)."""

    mode = False


class enable_grad(_GradMode):
    """Record again inside a `no_grad` block."""

    mode = True


class scope:
    """Push an opaque entry (nn uses a module path) onto the scope stack.

    Every node recorded inside the `with` block remembers the whole stack in
    `ctx.scope`; `viz` uses it to draw one cluster per module call.
    """

    def __init__(self, entry: object):
        self.entry = entry

    def __enter__(self) -> None:
        global _scope
        self._previous = _scope
        _scope = (*_scope, self.entry)

    def __exit__(self, *exc: object) -> None:
        global _scope
        _scope = self._previous


# ---------------------------------------------------------------------------
# Function: a forward/backward pair; the instance is the context.
# ---------------------------------------------------------------------------
class Function:
    """Base class of every differentiable operation.

    Subclasses define::

        def forward(ctx, *arrays, **kwargs) -> np.ndarray      # numpy in, numpy out
        def backward(ctx, grad) -> Tensor | tuple[Tensor | None, ...]  # Tensor ops

    and are called with ``MyOp.apply(*tensors, **kwargs)``. Both may be plain
    methods or ``@staticmethod``s (PyTorch style); either way ``ctx`` is the node.
    In forward, store what backward needs: small settings as attributes
    (``ctx.axis = axis``), arrays through ``ctx.save_for_backward``, so they are
    freed after backward. ``ctx.inputs`` holds the input Tensors and
    ``ctx.needs_input_grad`` says which of them want a gradient.
    Set ``keep_output = True`` on a class whose backward reads ``ctx.output``
    (exp, sigmoid, tanh: their derivative is cheapest in terms of the result).
    """

    keep_output = False
    # Slots for what every node has (faster than a dict); subclasses keep a __dict__ for their own settings.
    __slots__ = ("inputs", "needs_input_grad", "saved_tensors", "output", "scope", "freed", "__dict__")

    @classmethod
    def apply(cls, *inputs: Any, **kwargs: Any) -> Tensor:
        Tensor = _Tensor
        record = False
        for x in inputs:
            if type(x) is not Tensor:
                return cls.apply(*[x if isinstance(x, Tensor) else Tensor(x) for x in inputs], **kwargs)
            if x.requires_grad:
                record = _grad_enabled
        ctx = _new(cls)
        ctx.needs_input_grad = tuple([x.requires_grad for x in inputs]) if record else (False,) * len(inputs)
        ctx.saved_tensors = ()
        data = cls.forward(ctx, *[x.data for x in inputs], **kwargs)
        if type(data) is not np.ndarray:
            data = np.asarray(data)
        out = _new(Tensor)
        out.data = data
        out.grad = out.name = out._hooks = None
        if record and data.dtype.kind == "f":
            out.requires_grad = True
            out._ctx = ctx
            ctx.inputs = inputs
            ctx.scope = _scope
            ctx.freed = False
            ctx.output = out if cls.keep_output else None
        else:
            out.requires_grad = False
            out._ctx = None
        return out

    def save_for_backward(self, *values: Any) -> None:
        """Keep arrays or Tensors for backward; they are dropped after it runs."""
        self.saved_tensors = values

    def forward(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    def backward(self, grad: Tensor) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define backward")

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


# ---------------------------------------------------------------------------
# The backward engine.
# ---------------------------------------------------------------------------
def _topological_order(roots: Sequence[Tensor]) -> list[Tensor]:
    """Every tensor reachable from `roots` that needs a gradient, inputs first.

    An explicit stack instead of recursion: a chain of 100,000 ops is fine.
    (Tensors are dict and set keys by identity: `__hash__` is `object.__hash__`.)
    """
    order: list[Tensor] = []
    visited: set[Tensor] = set()
    stack: list[tuple[Tensor, bool]] = [(r, False) for r in roots]
    while stack:
        t, children_done = stack.pop()
        if children_done:
            order.append(t)
        elif t not in visited:
            visited.add(t)
            stack.append((t, True))
            if t._ctx is not None:
                for x in t._ctx.inputs:
                    if x.requires_grad and x not in visited:
                        stack.append((x, False))
    return order


def _check_grad(op: Function, x: Tensor, g: Any) -> None:
    """A backward must return a Tensor of the input's shape (catches bugs in user ops)."""
    index = next(i for i, y in enumerate(op.inputs) if y is x)
    if not isinstance(g, _Tensor):
        name = type(op).__name__
        raise TypeError(f"{name}.backward returned {type(g).__name__} for input {index}; expected a Tensor")
    if g.data.shape != x.data.shape:
        raise ValueError(
            f"{type(op).__name__}.backward returned a gradient of shape {g.data.shape} for input {index} "
            f"of shape {x.data.shape}"
        )


def _run_hooks(t: Tensor, g: Tensor) -> Tensor:
    for hook in list(t._hooks.values()):
        replaced = hook(g)
        if replaced is not None:
            if not isinstance(replaced, _Tensor) or replaced.shape != t.shape:
                raise ValueError(f"a hook must return None or a Tensor of shape {t.shape}, got {replaced!r}")
            g = replaced
    return g


def run_backward(
    roots: Sequence[Tensor],
    root_grads: Sequence[Tensor],
    retain_graph: bool,
    create_graph: bool,
    inputs: Sequence[Tensor] | None = None,
) -> list[Tensor | None] | None:
    """Propagate `root_grads` from `roots` back through the recorded graph.

    With `inputs=None` (what `Tensor.backward` uses) gradients accumulate into
    the `.grad` of leaves. With `inputs` given (what `grad()` uses) nothing is
    accumulated: the gradients of those tensors are returned instead.
    """
    global _grad_enabled
    order = _topological_order(roots)
    grads: dict[Tensor, Tensor] = {}
    for r, g in zip(roots, root_grads):
        grads[r] = grads[r] + g if r in grads else g
    wanted = {x: i for i, x in enumerate(inputs)} if inputs is not None else None
    found: list[Tensor | None] = [None] * len(inputs) if inputs is not None else []

    Tensor = _Tensor
    previous_mode = _grad_enabled
    _grad_enabled = create_graph  # backward's own ops are recorded only for create_graph
    try:
        for t in reversed(order):
            g = grads.pop(t, None)
            if g is None:
                if wanted is not None and t in wanted:  # reached, but every derivative on the way was zero
                    found[wanted[t]] = Tensor._wrap(np.zeros_like(t.data))
                continue
            if t._hooks:
                g = _run_hooks(t, g)
            if wanted is not None and t in wanted:
                found[wanted[t]] = g
            ctx = t._ctx
            if ctx is None:
                if wanted is None:
                    _accumulate(t, g, create_graph)
                continue
            if ctx.freed:
                raise RuntimeError(
                    f"Trying to backward through the graph a second time (through {type(ctx).__name__}): "
                    "its saved values were freed by the first backward. "
                    "Pass retain_graph=True to the first backward if you need a second one."
                )
            result = type(ctx).backward(ctx, g)
            if type(result) is not tuple:
                result = (result,)
            if len(result) != len(ctx.inputs):
                raise ValueError(
                    f"{type(ctx).__name__}.backward returned {len(result)} gradients for {len(ctx.inputs)} inputs"
                )
            for x, gx, needed in zip(ctx.inputs, result, ctx.needs_input_grad):
                if gx is not None and needed:
                    if type(gx) is not Tensor or gx.data.shape != x.data.shape:
                        _check_grad(ctx, x, gx)
                    previous = grads.get(x)
                    grads[x] = gx if previous is None else previous + gx
            if not retain_graph:  # drop what forward saved, keep the graph's edges
                ctx.freed = True
                ctx.saved_tensors = ctx.output = None
    finally:
        _grad_enabled = previous_mode
    return found if inputs is not None else None


def _accumulate(t: Tensor, g: Tensor, create_graph: bool) -> None:
    """Add `g` into `t.grad`: across backward calls, until the user zeroes it."""
    if not create_graph:
        data = g.data
        if t.grad is None:
            # An array of its own, in the tensor's layout: Add hands one gradient to both sides,
            # Expand a read-only view, `w.T` a transposed one (which would slow every optimizer step).
            own = np.empty_like(t.data)
            np.copyto(own, data)
            data = own
        g = _Tensor._wrap(data)
    t.grad = g if t.grad is None else t.grad + g


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Tensor | Sequence[Tensor | None] | None = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor, ...]:
    """Gradients of `outputs` with respect to `inputs`, returned, not accumulated.

    Like `torch.autograd.grad`. With `create_graph=True` the returned gradients
    are themselves differentiable: a gradient penalty or a Hessian-vector product
    is `grad(grad(f, x, create_graph=True)[0] @ v, x)`. An input the graph
    reaches only through zero derivatives (relu's mask) gets zeros; one it never
    reaches is an error, or None with `allow_unused=True`.
    """
    outputs = [outputs] if isinstance(outputs, _Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, _Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, _Tensor):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    root_grads = [_default_root_grad(o, g, "grad") for o, g in zip(outputs, grad_outputs)]
    for x in inputs:
        if not x.requires_grad:
            raise RuntimeError("grad: one of the inputs does not require grad")
    if retain_graph is None:
        retain_graph = create_graph
    distinct = list({id(x): x for x in inputs}.values())  # an input may be listed twice, as in torch
    found_distinct = run_backward(outputs, root_grads, retain_graph, create_graph, distinct)
    assert found_distinct is not None
    found_by_id = {id(x): g for x, g in zip(distinct, found_distinct)}
    found = [found_by_id[id(x)] for x in inputs]
    result = []
    for i, (x, g) in enumerate(zip(inputs, found)):
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"grad: input {i} (shape {x.shape}) was not used to compute the outputs; "
                    "pass allow_unused=True to get None for it"
                )
        elif not create_graph:
            g = g.detach()
        result.append(g)
    return tuple(result)


def _default_root_grad(output: Tensor, gradient: Any, caller: str) -> Tensor:
    """The gradient that starts a backward: ones for a one-element output."""
    if not output.requires_grad:
        raise RuntimeError(
            f"{caller}: the tensor does not require grad and has no grad_fn "
            "(was it computed from tensors with requires_grad=True, outside no_grad?)"
        )
    if gradient is None:
        if output.data.size != 1:
            raise RuntimeError(
                f"{caller}: grad can be implicitly created only for one-element outputs, "
                f"this one has shape {output.shape}; pass gradient= with that shape"
            )
        return _Tensor._wrap(np.ones_like(output.data))
    if not isinstance(gradient, _Tensor):
        gradient = _Tensor(np.asarray(gradient, dtype=output.data.dtype))
    if gradient.shape != output.shape:
        raise ValueError(f"{caller}: gradient has shape {gradient.shape} but the output has shape {output.shape}")
    return gradient


def backward(
    tensor: Tensor, gradient: Any = None, retain_graph: bool | None = None, create_graph: bool = False
) -> None:
    """`tensor.backward()`: accumulate d tensor / d leaf into every leaf's `.grad`."""
    root_grad = _default_root_grad(tensor, gradient, "backward")
    if retain_graph is None:
        retain_graph = create_graph
    run_backward([tensor], [root_grad], retain_graph, create_graph)

