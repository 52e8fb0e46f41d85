"""Function transforms with `torch.func`'s signatures: grad, vjp, jvp, jacrev, jacfwd, hessian, hvp.

The two modes of AD, as transforms of a function f: Rⁿ → Rᵐ at a point x::

    vjp(f, x) → (f(x), v ↦ vᵀJ)     reverse mode: one backward pass per v, any n
    jvp(f, (x,), (u,)) → (f(x), J u)  forward mode: one forward pass per u, any m

A whole Jacobian is m vjps (`jacrev`, one per output element) or n jvps
(`jacfwd`, one per input element): reverse wins for few outputs (a loss: m = 1,
which is why training uses it), forward for few inputs. `hessian` is
`jacfwd(jacrev(f))`: forward mode over the reverse pass, possible because every
primitive's `backward` is Tensor ops that carry tangents, like any other ops.

`f` takes and returns Tensors; its inputs need not require grad. Without
`vmap`, jacrev's m passes and jacfwd's n passes run one after the other; a
batching transform would run each set as one pass over a batch of v (or u).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import autograd, forward_ad
from .tensor import Tensor

Argnums = int | tuple[int, ...]


def vjp(f: Callable[..., Any], *primals: Tensor, has_aux: bool = False) -> tuple:
    """(f(*primals), vjp_fn[, aux]) where vjp_fn(v) is the tuple vᵀ·∂f/∂primalᵢ, one per primal."""
    inputs = [_fresh_input(p, "vjp") for p in primals]
    # Inside another transform (an input that requires grad or carries a tangent) the results stay
    # differentiable; at the outermost level they are plain tensors, as torch.func's, holding no graph.
    nested = any(p.requires_grad or autograd.tangent_of(p) is not None for p in primals)
    with autograd.enable_grad():
        out, aux = _split_aux(f(*inputs), has_aux, "vjp")
    if not isinstance(out, Tensor):
        raise TypeError(f"vjp: f must return a Tensor, got {type(out).__name__}")

    def vjp_fn(cotangent: Any) -> tuple[Tensor, ...]:
        v = cotangent if isinstance(cotangent, Tensor) else Tensor(np.asarray(cotangent, dtype=out.dtype))
        if v.shape != out.shape:
            raise ValueError(f"vjp: the cotangent has shape {v.shape}, the output {out.shape}")
        if not out.requires_grad:  # f does not depend on its inputs
            return tuple(Tensor(np.zeros_like(x.data)) for x in inputs)
        with autograd.enable_grad():  # nested: recorded, so that grad(grad(f)) and jacfwd(jacrev(f)) compose
            grads = autograd.grad([out], inputs, [v], retain_graph=True, create_graph=nested, allow_unused=True)
        grads = [g if g is not None else Tensor(np.zeros_like(x.data)) for g, x in zip(grads, inputs)]
        return tuple(g if nested else g.detach() for g in grads)

    out_value = out if nested else out.detach()
    return (out_value, vjp_fn, aux) if has_aux else (out_value, vjp_fn)


def jvp(f: Callable[..., Any], primals: Sequence[Tensor], tangents: Sequence[Any], has_aux: bool = False) -> tuple:
    """(f(*primals), J·tangents[, aux]): one forward pass that carries the tangents along.

    f returns a Tensor or a tuple of Tensors; the tangent out has the same structure.
    """
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    with forward_ad.dual_level():
        duals = [forward_ad.make_dual(_as_tensor(p, "jvp"), _like(t, p)) for p, t in zip(primals, tangents)]
        out, aux = _split_aux(f(*duals), has_aux, "jvp")
        outs = out if isinstance(out, tuple) else (out,)
        if not all(isinstance(o, Tensor) for o in outs):
            raise TypeError(f"jvp: f must return a Tensor or a tuple of Tensors, got {type(out).__name__}")
        moved = tuple(forward_ad.unpack_dual(o).tangent for o in outs)
    moved = tuple(t if t is not None else Tensor(np.zeros_like(o.data)) for t, o in zip(moved, outs))
    if not any(p.requires_grad for p in primals):  # outermost: plain tensors, no graph kept (as torch.func)
        out = tuple(o.detach() for o in outs) if isinstance(out, tuple) else out.detach()
        moved = tuple(t.detach() for t in moved)
    tangent = moved if isinstance(out, tuple) else moved[0]
    return (out, tangent, aux) if has_aux else (out, tangent)


def grad_and_value(f: Callable[..., Any], argnums: Argnums = 0, has_aux: bool = False) -> Callable[..., tuple]:
    """A function returning (∂f/∂args[argnums], f(*args)) for a scalar f (and aux with the value if has_aux)."""

    def wrapped(*args: Any) -> tuple:
        indices = _argnums(argnums, len(args), "grad")
        args = list(args)

        def f_of_chosen(*chosen: Tensor) -> Any:
            for i, x in zip(indices, chosen):
                args[i] = x
            return f(*args)

        out, vjp_fn, *aux = vjp(f_of_chosen, *[args[i] for i in indices], has_aux=has_aux)
        if out.numel() != 1:
            raise RuntimeError(f"grad: f must return a one-element tensor, got shape {out.shape}")
        grads = vjp_fn(Tensor(np.ones_like(out.data)))
        g = grads[0] if isinstance(argnums, int) else grads
        return (g, (out, aux[0])) if has_aux else (g, out)

    return wrapped


def grad(f: Callable[..., Any], argnums: Argnums = 0, has_aux: bool = False) -> Callable[..., Any]:
    """A function returning ∂f/∂args[argnums] for a scalar-valued f (a tuple for a tuple of argnums)."""

    def wrapped(*args: Any) -> Any:
        g, value = grad_and_value(f, argnums, has_aux)(*args)
        return (g, value[1]) if has_aux else g

    return wrapped


def jacrev(f: Callable[..., Any], argnums: Argnums = 0) -> Callable[..., Any]:
    """The Jacobian by reverse mode: one vjp per output element. Shape out.shape + input.shape."""

    def wrapped(*args: Any) -> Any:
        indices = _argnums(argnums, len(args), "jacrev")
        out, vjp_fn = vjp(_of_chosen(f, args, indices), *[args[i] for i in indices])
        rows = [vjp_fn(_one_hot(out, k)) for k in range(out.numel())]  # row k: ∂out_k/∂x
        jacobians = tuple(_assemble([row[j] for row in rows], out.shape, args[i].shape, rows_first=True)
                          for j, i in enumerate(indices))
        return jacobians[0] if isinstance(argnums, int) else jacobians

    return wrapped


def jacfwd(f: Callable[..., Any], argnums: Argnums = 0) -> Callable[..., Any]:
    """The Jacobian by forward mode: one jvp per input element. Shape out.shape + input.shape.

    A tuple of argnums gives a tuple, one Jacobian per input; an f that returns a
    tuple (`jacrev(f, argnums=(0, 1))`, inside `hessian`) gives a tuple of those.
    """

    def wrapped(*args: Any) -> Any:
        indices = _argnums(argnums, len(args), "jacfwd")
        chosen = [_as_tensor(args[i], "jacfwd") for i in indices]
        g = _of_chosen(f, args, indices)
        out = g(*chosen)
        outs = out if isinstance(out, tuple) else (out,)
        columns = []  # columns[j][k]: ∂out/∂(element k of input j), one entry per output
        for j, x in enumerate(chosen):
            one_hots = ([_one_hot(y, k) if m == j else Tensor(np.zeros_like(y.data)) for m, y in enumerate(chosen)]
                        for k in range(x.numel()))
            columns.append([_as_tuple(jvp(g, chosen, tangents)[1]) for tangents in one_hots])
        per_output = []
        for o, y in enumerate(outs):
            jacobians = tuple(_assemble([c[o] for c in columns[j]], y.shape, x.shape, rows_first=False)
                              for j, x in enumerate(chosen))
            per_output.append(jacobians[0] if isinstance(argnums, int) else jacobians)
        return tuple(per_output) if isinstance(out, tuple) else per_output[0]

    return wrapped


def hessian(f: Callable[..., Any], argnums: Argnums = 0) -> Callable[..., Any]:
    """The matrix of second derivatives, as jacfwd(jacrev(f)): forward mode over reverse mode."""
    return jacfwd(jacrev(f, argnums), argnums)


def hvp(f: Callable[..., Any], primals: Any, tangents: Any) -> tuple[Tensor, Any]:
    """(f(primals), H·tangents) for a scalar f, as `torch.autograd.functional.hvp` (tuples in, tuples out).

    Forward over reverse: the jvp of the gradient, one backward and one forward
    pass instead of the n passes of a whole Hessian.
    """
    is_tuple = isinstance(primals, (tuple, list))
    primals = tuple(primals) if is_tuple else (primals,)
    tangents = tuple(tangents) if isinstance(tangents, (tuple, list)) else (tangents,)
    value = f(*primals)
    if not isinstance(value, Tensor) or value.numel() != 1:
        raise RuntimeError("hvp: f must return a one-element tensor")
    gradient = grad(f, argnums=tuple(range(len(primals))))
    _, products = jvp(lambda *xs: _cat_flat(gradient(*xs)), primals, tangents)
    pieces, start = [], 0
    for p in primals:
        pieces.append(products[start:start + p.numel()].reshape(p.shape).detach())
        start += p.numel()
    return value.detach(), tuple(pieces) if is_tuple else pieces[0]


# ---------------------------------------------------------------------------- helpers
def _fresh_input(x: Any, caller: str) -> Tensor:
    """An input to differentiate with respect to, that keeps x's place in any outer graph and its tangent."""
    x = _as_tensor(x, caller)
    with autograd.enable_grad():
        if x.requires_grad:
            return x.reshape(x.shape)  # a new node on top of x: outer transforms still see through it
        leaf = Tensor(x.data, requires_grad=True)
    tangent = autograd.tangent_of(x)
    if tangent is not None:  # inside jacfwd: the new leaf moves with x
        autograd.set_tangent(leaf, tangent)
    return leaf


def _as_tensor(x: Any, caller: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{caller}: inputs must be Tensors, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{caller}: inputs must be floating point, got {x.dtype}")
    return x


def _like(t: Any, p: Tensor) -> Tensor:
    return t if isinstance(t, Tensor) else Tensor(np.asarray(t, dtype=p.dtype))


def _split_aux(result: Any, has_aux: bool, caller: str) -> tuple[Any, Any]:
    if not has_aux:
        return result, None
    if not isinstance(result, tuple) or len(result) != 2:
        raise TypeError(f"{caller}: with has_aux=True, f must return a pair (output, aux)")
    return result


def _argnums(argnums: Argnums, n: int, caller: str) -> tuple[int, ...]:
    indices = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for i in indices:
        if not -n <= i < n:
            raise ValueError(f"{caller}: argnums {i} is out of range for a function called with {n} arguments")
    return tuple(i % n for i in indices)


def _of_chosen(f: Callable[..., Any], args: Sequence[Any], indices: tuple[int, ...]) -> Callable[..., Any]:
    """f as a function of the arguments at `indices` only, the others held fixed."""

    def g(*chosen: Tensor) -> Any:
        full = list(args)
        for i, x in zip(indices, chosen):
            full[i] = x
        return f(*full)

    return g


def _one_hot(like: Tensor, k: int) -> Tensor:
    e = np.zeros(like.shape, dtype=like.dtype)
    e.flat[k] = 1
    return Tensor(e)


def _assemble(pieces: list[Tensor], out_shape: tuple, in_shape: tuple, rows_first: bool) -> Tensor:
    """Stack per-element derivatives into a Jacobian of shape out_shape + in_shape."""
    if not pieces:
        return Tensor(np.zeros(out_shape + in_shape))
    stacked = Tensor.stack([p.reshape(-1) for p in pieces])  # (m, n) for rows, (n, m) for columns
    matrix = stacked if rows_first else stacked.transpose(0, 1)
    return matrix.reshape(*out_shape, *in_shape)


def _as_tuple(x: Any) -> tuple:
    return x if isinstance(x, tuple) else (x,)


def _cat_flat(tensors: Any) -> Tensor:
    tensors = tensors if isinstance(tensors, tuple) else (tensors,)
    return Tensor.cat([t.reshape(-1) for t in tensors])
