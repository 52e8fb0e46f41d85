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
again: that is all second derivatives need. Forward mode (`jvp`) runs inside `apply`.
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .backend.flat import gradient_array

if TYPE_CHECKING:
    from .tensor import Tensor

# ---------------------------------------------------------------------------
# The one tie to tensor.py: it registers the Tensor class here once it exists.
# ---------------------------------------------------------------------------
_Tensor: Any = None
_new = object.__new__  # for apply: looked up once, not per call (~65 ns of each `object.__new__(cls)`)


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
        return self(func) if func is not None else self  # with func: used as a bare decorator, `@no_grad`

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


def current_scope() -> tuple:
    """The scope entries around the operation running now, outermost first (nn: module paths)."""
    return _scope


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


@contextlib.contextmanager
def observe_backward(observer: Callable[[Tensor, Tensor, list], None]) -> Iterator[None]:
    """Within the block, call `observer(tensor, grad, sent)` for each node the engine runs, in its order:
    `grad` is what the node received, `sent` its (input, gradient) pairs (what `viz.backprop_page` replays)."""
    _observers.append(observer)
    try:
        yield
    finally:
        _observers.remove(observer)


_observers: list[Callable[[Tensor, Tensor, list], None]] = []


# ---------------------------------------------------------------------------
# In-place writes: PyTorch's version counter, as one clock. A node notes the clock when it is
# made; an in-place op ticks it and stamps the array it wrote (views share their base's stamp).
# ---------------------------------------------------------------------------
_clock = 0
_written: dict[int, tuple[weakref.ref, int]] = {}  # id(base array) → (a weak reference to it, when written)


def mark_modified(a: np.ndarray) -> None:
    global _clock
    _clock += 1
    base, key = _owner(a), id(_owner(a))
    _written[key] = (weakref.ref(base, lambda _: _written.pop(key, None)), _clock)  # gone with the array


def _owner(a: np.ndarray) -> np.ndarray:
    """The array that owns a's memory (numpy stops `.base` short for subclass views: follow it to the end)."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def _check_unmodified(ctx: Function) -> None:
    kept = [x.data for x in ctx.inputs] + [a for a in (*ctx.saved_tensors, ctx.output) if a is not None]
    for a in kept:
        base = _owner(a.data if isinstance(a, _Tensor) else a) if isinstance(a, (_Tensor, np.ndarray)) else None
        ref, when = _written.get(id(base), (None, 0))
        if base is not None and ref is not None and ref() is base and when > ctx.clock:
            raise RuntimeError(f"one of the variables needed for gradient computation has been modified by an "
                               f"inplace operation: an array of shape {base.shape} that {op_name(ctx)} reads")


# ---------------------------------------------------------------------------
# Forward mode: while a dual level is open, tangents ride along with the values.
# ---------------------------------------------------------------------------
_dual_level_open = False
# id(tensor) → (a weak reference to it, its tangent). By id: `==` on Tensors is elementwise.
_tangents: dict[int, tuple[weakref.ref, Tensor]] = {}


def set_dual_level(is_open: bool) -> None:
    """Open or close forward mode's level; closing forgets every tangent (unpacked ones stay usable)."""
    global _dual_level_open
    if is_open and _dual_level_open:
        raise RuntimeError("dual_level: nested forward-mode levels are not supported here (one level at a time)")
    _dual_level_open = is_open
    _tangents.clear()


def is_dual_level_open() -> bool:
    return _dual_level_open


def tangent_of(t: Tensor) -> Tensor | None:
    """The tangent a tensor carries in the open dual level (None: it has none)."""
    entry = _tangents.get(id(t))
    return entry[1] if entry is not None and entry[0]() is t else None


def set_tangent(t: Tensor, tangent: Tensor) -> None:
    key = id(t)
    _tangents[key] = (weakref.ref(t, lambda _: _tangents.pop(key, None)), tangent)  # gone with the tensor


def _forward_tangent(ctx: Function, inputs: list, kwargs: dict, out: Tensor) -> None:
    """Forward mode, one node: the output's tangent from the inputs' tangents, by the primitive's `jvp`.

    An input without a tangent (a constant, a mask) has tangent zero, and `jvp` gets
    zeros for it; `ctx.has_tangent` says which inputs had one. The rule is Tensor ops,
    so it is recorded for reverse mode, and a tangent of a gradient is a Hessian product.
    """
    ctx.inputs, ctx.kwargs = tuple(inputs), kwargs
    given = [tangent_of(x) for x in inputs]
    ctx.has_tangent = tuple(t is not None for t in given)  # forward mode's needs_input_grad
    if type(ctx).keep_output:
        ctx.output = out
    tangents = [t if t is not None else _Tensor._wrap(np.zeros_like(x.data)) for t, x in zip(given, inputs)]
    global _dual_level_open
    _dual_level_open = False  # the rule's own ops carry no tangents: one level of forward mode
    try:
        tangent = type(ctx).jvp(ctx, *tangents)
    finally:
        _dual_level_open = True
    set_tangent(out, tangent)


# ---------------------------------------------------------------------------
# Function: a forward/backward pair; the instance is the context.
# ---------------------------------------------------------------------------
class Function:
    """Base class of every differentiable operation.

    Subclasses define::

        def forward(ctx, *arrays, **kwargs) -> np.ndarray      # numpy in, numpy out
        def backward(ctx, grad) -> Tensor | tuple[Tensor | None, ...]  # Tensor ops
        def jvp(ctx, *tangents) -> Tensor                       # Tensor ops, for forward mode

    and are called with ``MyOp.apply(*tensors, **kwargs)``. Both may be plain
    methods or ``@staticmethod``s (PyTorch style); either way ``ctx`` is the node.
    In forward, store what backward needs: small settings as attributes (``ctx.axis = axis``),
    arrays through ``ctx.save_for_backward``, so they are freed after backward (``ctx.saved_tensors``
    is then None: never set it to None yourself). ``ctx.inputs`` holds the input Tensors and
    ``ctx.needs_input_grad`` says which of them want a gradient.
    Set ``keep_output = True`` on a class whose backward reads ``ctx.output``
    (exp, sigmoid, tanh: their derivative is cheapest in terms of the result).
    """

    keep_output = False
    shape_checked = True  # whether the engine checks each gradient's shape (`_check_gradient`)
    # Slots for what every node has (faster than a dict); subclasses keep a __dict__ for their own settings.
    __slots__ = ("inputs", "needs_input_grad", "saved_tensors", "output", "scope", "clock", "__dict__")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A user's Function is checked at every node; our primitives' shapes are proven by the tests (~3%)."""
        super().__init_subclass__(**kwargs)
        cls.shape_checked = not cls.__module__.startswith("tinygrad_cnn.")

    @classmethod
    def apply(cls, *inputs: Any, **kwargs: Any) -> Tensor:
        """Run `forward` on the inputs' arrays; if a gradient will be needed, record this call as a node.

        A node is recorded when grad mode is on and some input requires grad; its
        output then points back at it (`out._ctx`), and it at the inputs.
        """
        arrays, wants_grad = [], []  # one loop, not comprehensions: in Python 3.11 each costs ~10% of a small op
        for x in inputs:
            if not isinstance(x, _Tensor):  # numbers, arrays: constants
                return cls.apply(*[x if isinstance(x, _Tensor) else _Tensor(x) for x in inputs], **kwargs)
            arrays.append(x.data)
            wants_grad.append(x.requires_grad)
        record = _grad_enabled and True in wants_grad
        ctx = _new(cls)  # no __init__: a subclass may define one for its own use, as in PyTorch
        ctx.needs_input_grad = tuple(wants_grad) if record else (False,) * len(inputs)
        ctx.saved_tensors = ()
        n = len(arrays)  # forward(ctx, *arrays, **kwargs) written out for one or two inputs: each star costs ~0.15 µs
        data = (cls.forward(ctx, arrays[0]) if n == 1 and not kwargs else cls.forward(ctx, arrays[0], arrays[1])
                if n == 2 and not kwargs else cls.forward(ctx, *arrays, **kwargs))
        data = data if type(data) is np.ndarray else np.asarray(data)
        out = _new(_Tensor)  # Tensor._wrap, written out: this line runs for every op of every pass
        out.data, out.requires_grad = data, False
        out.grad = out._ctx = out.name = out._hooks = None
        if record and data.dtype.kind == "f":  # integer and boolean results carry no gradient
            out.requires_grad, out._ctx = True, ctx
            ctx.inputs, ctx.scope, ctx.clock = inputs, _scope, _clock
            ctx.output = out if cls.keep_output else None
        if _dual_level_open and data.dtype.kind == "f" and any(tangent_of(x) is not None for x in inputs):
            _forward_tangent(ctx, inputs, kwargs, out)
        return out

    def save_for_backward(self, *values: Any) -> None:
        """Keep arrays or Tensors for backward; they are dropped after it runs."""
        self.saved_tensors = values

    def forward(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    def backward(self, grad: Tensor) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define backward")

    def jvp(self, *tangents: Tensor | None) -> Tensor:
        """Forward mode's rule: the output's tangent J·t from the inputs' tangents (Tensor ops, like backward)."""
        raise RuntimeError(f"{type(self).__name__} has no forward-mode rule: define jvp(ctx, *tangents) to use it "
                           "under forward_ad.dual_level() (it works as before outside one)")

    def __repr__(self) -> str:
        return f"<{op_name(self)}>"

    def name(self) -> str:
        return op_name(self)

    @property
    def next_functions(self) -> tuple:
        """PyTorch's view of the edges: (node that made each input, 0); a leaf wanting a gradient: AccumulateGrad."""
        return tuple((x._ctx if x._ctx is not None else AccumulateGrad(x) if x.requires_grad else None, 0)
                     for x in self.inputs)


class AccumulateGrad:
    """Where a leaf's gradient ends up (its `.grad`), as PyTorch names it in `next_functions`."""

    next_functions = ()

    def __init__(self, variable: Tensor):
        self.variable = variable

    def name(self) -> str:
        return "AccumulateGrad"


def op_name(node: Function) -> str:
    """The operation's name as people say it: the class name without its `Fn` suffix (`MulFn` → "Mul").

    The suffix keeps a primitive's name apart from a module's (`Conv2dFn`, `nn.Conv2d`).
    """
    name = type(node).__name__
    return name[:-2] if name.endswith("Fn") and len(name) > 2 else name


# ---------------------------------------------------------------------------
# The backward engine.
# ---------------------------------------------------------------------------
def _topological_order(roots: Sequence[Tensor]) -> list[Tensor]:
    """Every tensor reachable from `roots` that needs a gradient, inputs first.

    An explicit stack, not recursion (a chain of 100,000 ops is fine); a None pushed above a
    tensor says, when popped, that its inputs are done. (Tensors hash by identity: `object.__hash__`.)
    """
    order: list[Tensor] = []
    visited: set[Tensor] = set()
    stack: list[Tensor | None] = list(roots)
    while stack:
        t = stack.pop()
        if t is None:
            order.append(stack.pop())
        elif t not in visited:
            visited.add(t)
            stack += (t, None)
            if t._ctx is not None:
                for x in t._ctx.inputs:
                    if x.requires_grad and x not in visited:
                        stack.append(x)
    return order


def run_backward(roots: Sequence[Tensor], root_grads: Sequence[Tensor], retain_graph: bool, create_graph: bool,
                 on_gradient: Callable[[Tensor, Tensor], None]) -> list[Tensor]:
    """The chain rule over the recorded graph, from `roots` back to the leaves: the whole engine.

    A tensor's gradient is complete once every op that used it has passed its
    share back, and visiting in reverse topological order guarantees that. Each
    complete gradient goes to its hooks, then to `on_gradient(tensor, grad)`
    (`.grad` accumulation for `backward`, collection for `grad`), then through
    the tensor's node to its inputs. Returns the tensors visited, inputs first.
    """
    order = _topological_order(roots)
    grads: dict[Tensor, Tensor] = {}
    for root, g in zip(roots, root_grads):
        grads[root] = grads[root] + g if root in grads else g
    recording = create_graph or _dual_level_open  # the backward's own ops make nodes (or tangents)
    with enable_grad() if create_graph else no_grad():  # backward's own ops are recorded only for create_graph
        for t in reversed(order):
            g = grads.pop(t, None)
            if g is None:  # every path from the roots to t carried no gradient
                continue
            if t._hooks:
                g = _run_hooks(t, g)
            on_gradient(t, g)
            ctx = t._ctx
            if ctx is None:
                continue
            sent = _run_node(ctx, g, retain_graph)  # the share of each input (None: it gets none)
            for i, x in enumerate(ctx.inputs):  # (by index: a three-way zip cost ~0.2 µs more per node)
                if (gx := sent[i]) is None or not ctx.needs_input_grad[i]:
                    continue
                if type(gx) is not _Tensor or (ctx.shape_checked and gx.data.shape != x.data.shape):
                    _check_gradient(ctx, x, gx)
                if x in grads:  # used twice: the sum (chain rule), a node only if recorded (asarray: 0-d sums)
                    gx = grads[x] + gx if recording else _Tensor._wrap(np.asarray(grads[x].data + gx.data))
                grads[x] = gx
            for observer in _observers:  # the (input, share) pairs, checked above
                observer(t, g, [(x, gx) for x, gx, needed in zip(ctx.inputs, sent, ctx.needs_input_grad)
                                if needed and gx is not None])
    return order


def _run_node(ctx: Function, grad: Tensor, retain_graph: bool) -> tuple:
    """One node's backward: the gradient it sends each input (None: none); frees what forward saved."""
    if ctx.saved_tensors is None:  # freed by an earlier backward
        raise RuntimeError(f"Trying to backward through the graph a second time (through {op_name(ctx)}): its saved "
                           "values were freed by the first backward. Pass retain_graph=True to the first backward if "
                           "you need a second one.")
    if ctx.clock != _clock:  # something was written in place since this node was made
        _check_unmodified(ctx)
    result = type(ctx).backward(ctx, grad)
    result = result if type(result) is tuple else (result,)
    if len(result) != len(ctx.inputs):
        raise ValueError(f"{op_name(ctx)}.backward returned {len(result)} gradients for {len(ctx.inputs)} inputs")
    if not retain_graph:  # drop what forward saved, keep the graph's edges
        ctx.saved_tensors = ctx.output = None
    return result


def _check_gradient(ctx: Function, x: Tensor, gx: Any) -> None:
    """A backward must return a Tensor of its input's shape (for users' own ops: `Function.shape_checked`)."""
    index = next(i for i, y in enumerate(ctx.inputs) if y is x)
    if not isinstance(gx, _Tensor):
        raise TypeError(f"{op_name(ctx)}.backward returned {type(gx).__name__} for input {index}; expected a Tensor")
    if gx.data.shape != x.data.shape:
        raise ValueError(f"{op_name(ctx)}.backward returned a gradient of shape {gx.data.shape} for input {index} "
                         f"of shape {x.data.shape}")


def _run_hooks(t: Tensor, g: Tensor) -> Tensor:
    for hook in list(t._hooks.values()):
        replaced = hook(g)
        if replaced is not None:
            if not isinstance(replaced, _Tensor) or replaced.shape != t.shape:
                raise ValueError(f"a hook must return None or a Tensor of shape {t.shape}, got {replaced!r}")
            g = replaced
    return g


def _accumulate(t: Tensor, g: Tensor, create_graph: bool) -> None:
    """Add `g` into the leaf's `t.grad`: across backward calls, until the user zeroes it."""
    if not create_graph:
        data = g.data
        if t.grad is None:
            own = gradient_array(t)  # an array of its own: Add sends one array to both sides (backend/flat.py)
            np.copyto(own, data)
            data = own
        g = _Tensor._wrap(data)
    t.grad = g if t.grad is None else t.grad + g


def grad(outputs: Tensor | Sequence[Tensor], inputs: Tensor | Sequence[Tensor],
         grad_outputs: Tensor | Sequence[Tensor | None] | None = None, retain_graph: bool | None = None,
         create_graph: bool = False, allow_unused: bool = False) -> tuple[Tensor, ...]:
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
    wanted = {id(x) for x in inputs}  # an input may be listed twice, as in torch
    found: dict[int, Tensor] = {}

    def collect(t: Tensor, g: Tensor) -> None:
        if id(t) in wanted:
            found[id(t)] = g

    retain_graph = create_graph if retain_graph is None else retain_graph
    reached = {id(t) for t in run_backward(outputs, root_grads, retain_graph, create_graph, collect)}
    return tuple(_returned_gradient(i, x, found.get(id(x)), id(x) in reached, create_graph, allow_unused)
                 for i, x in enumerate(inputs))


def _returned_gradient(index: int, x: Tensor, g: Tensor | None, reached: bool, create_graph: bool,
                       allow_unused: bool) -> Tensor | None:
    """What `grad` returns for input `index`: its gradient, zeros, or None (or an error) if never reached."""
    if g is None and reached:  # reached, but every derivative on the way was zero (relu's mask)
        return _Tensor._wrap(np.zeros_like(x.data))
    if g is None:
        if not allow_unused:
            raise RuntimeError(f"grad: input {index} (shape {x.shape}) was not used to compute the outputs; "
                               "pass allow_unused=True to get None for it")
        return None
    return g if create_graph else g.detach()


def _default_root_grad(output: Tensor, gradient: Any, caller: str) -> Tensor:
    """The gradient that starts a backward: ones for a one-element output."""
    if not output.requires_grad:
        raise RuntimeError(f"{caller}: the tensor does not require grad and has no grad_fn "
                           "(was it computed from tensors with requires_grad=True, outside no_grad?)")
    if gradient is None:
        if output.data.size != 1:
            raise RuntimeError(f"{caller}: grad can be implicitly created only for one-element outputs, "
                               f"this one has shape {output.shape}; pass gradient= with that shape")
        return _Tensor._wrap(np.ones_like(output.data))
    if not isinstance(gradient, _Tensor):
        gradient = _Tensor(np.asarray(gradient, dtype=output.data.dtype))
    if gradient.shape != output.shape:
        raise ValueError(f"{caller}: gradient has shape {gradient.shape} but the output has shape {output.shape}")
    return gradient


def backward(tensor: Tensor, gradient: Any = None, retain_graph: bool | None = None,
             create_graph: bool = False) -> None:
    """`tensor.backward()`: accumulate d tensor / d leaf into every leaf's `.grad`."""
    root_grad = _default_root_grad(tensor, gradient, "backward")

    def accumulate_into_leaves(t: Tensor, g: Tensor) -> None:
        if t._ctx is None:
            _accumulate(t, g, create_graph)

    retain_graph = create_graph if retain_graph is None else retain_graph
    run_backward([tensor], [root_grad], retain_graph, create_graph, accumulate_into_leaves)

