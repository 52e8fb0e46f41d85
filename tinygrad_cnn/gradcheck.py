"""Numerical gradient checks: is the backward we wrote the derivative of the forward?

The check compares two Jacobians of ``fn(*inputs)``::

    analytic:   J[i, j] from reverse mode, one backward per output element j
    numerical:  J[i, j] ≈ (f(x + eps·e_i) - f(x - eps·e_i))[j] / (2·eps)    (central difference)

Central differences are accurate to O(eps²), so in float64 with eps = 1e-6 the
two agree to about 1e-9 unless the backward is wrong. `fast_mode=True` checks
one random projection instead, ⟨v, J u⟩ (HIPS/autograd's trick): two forward
calls and one backward per input, so Hypothesis can try many big shapes.

`gradgradcheck` runs the same check on the function x, v ↦ vᵀ ∂f/∂x, whose
backward is the backward of the backward: the second derivatives.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import autograd
from .autograd import enable_grad, no_grad, op_name
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree (the message says where)."""


def _as_tuple(x: Any) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _float_outputs(result: Any) -> list[Tensor]:
    return [t for t in _as_tuple(result) if isinstance(t, Tensor) and t.dtype.kind == "f"]


def _op_name(t: Tensor) -> str:
    return op_name(t.grad_fn) if t.grad_fn is not None else "no recorded op"


def _fail(message: str, raise_exception: bool) -> bool:
    if raise_exception:
        raise GradcheckError(message)
    return False


def _prepare(inputs: Any, caller: str) -> tuple[tuple, list[int]]:
    inputs = _as_tuple(inputs)
    diff = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not diff:
        raise ValueError(f"{caller}: no input has requires_grad=True")
    for i in diff:
        if inputs[i].dtype != np.float64:
            warnings.warn(f"{caller}: input {i} is {inputs[i].dtype}; central differences need float64 "
                          "to be accurate", stacklevel=3)
        if not inputs[i].data.flags.writeable or not inputs[i].data.flags.c_contiguous:
            inputs[i].data = np.array(inputs[i].data, order="C")  # we perturb it in place, through a flat view
    return inputs, diff


def _evaluate(fn: Callable, inputs: tuple, expected: int) -> list[np.ndarray]:
    with no_grad():
        outputs = [t.data.copy() for t in _float_outputs(fn(*inputs))]
    if len(outputs) != expected:
        raise ValueError(f"gradcheck: fn returned {len(outputs)} float outputs under no_grad but {expected} with grad")
    return outputs


def _numerical_column(
    fn: Callable, inputs: tuple, x: Tensor, flat_index: int, eps: float, expected: int
) -> list[np.ndarray]:
    """d outputs / d x[flat_index] by a central difference."""
    flat = x.data.reshape(-1)
    original = flat[flat_index]
    flat[flat_index] = original + eps
    plus = _evaluate(fn, inputs, expected)
    flat[flat_index] = original - eps
    minus = _evaluate(fn, inputs, expected)
    flat[flat_index] = original
    return [((p - m) / (2 * eps)).reshape(-1) for p, m in zip(plus, minus)]


def gradcheck(
    fn: Callable[..., Any],
    inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    fast_mode: bool = False,
) -> bool:
    """Check the gradients of ``fn(*inputs)`` against central differences.

    Returns True when every analytic derivative matches; otherwise raises
    `GradcheckError` (or returns False with ``raise_exception=False``) naming the
    output, the op that made it, the input, the element and both values.
    """
    inputs, diff = _prepare(inputs, "gradcheck")
    outputs = _float_outputs(fn(*inputs))
    if fast_mode:
        return _check_projection(fn, inputs, diff, outputs, eps, atol, rtol, raise_exception)
    for i in diff:
        x = inputs[i]
        analytic = [_analytic_jacobian(out, x) for out in outputs]
        for k in range(x.numel()):
            for o, (out, numerical) in enumerate(zip(outputs, _numerical_column(fn, inputs, x, k, eps, len(outputs)))):
                bad = np.abs(analytic[o][k] - numerical) > atol + rtol * np.abs(numerical)
                if bad.any():
                    j = int(np.argmax(bad))
                    where = [int(w) for w in np.unravel_index(k, x.shape)]
                    out_where = [int(w) for w in np.unravel_index(j, out.shape)]
                    return _fail(
                        f"gradcheck: Jacobian mismatch for output {o} (made by {_op_name(out)}, shape {out.shape}) "
                        f"with respect to input {i} (shape {x.shape}): d output{out_where} / d input{where} "
                        f"is {float(analytic[o][k][j])!r} from backward but {float(numerical[j])!r} "
                        f"from central differences (atol={atol}, rtol={rtol})",
                        raise_exception,
                    )
    return True


def _analytic_jacobian(out: Tensor, x: Tensor) -> np.ndarray:
    """J[k, j] = d out[j] / d x[k], one backward per output element."""
    jac = np.zeros((x.numel(), out.numel()))
    if not out.requires_grad:
        return jac
    for j in range(out.numel()):
        onehot = np.zeros(out.numel(), dtype=out.dtype)
        onehot[j] = 1
        (g,) = autograd.grad(out, x, Tensor(onehot.reshape(out.shape)), retain_graph=True, allow_unused=True)
        if g is not None:
            jac[:, j] = g.data.reshape(-1)
    return jac


def _check_projection(
    fn: Callable, inputs: tuple, diff: list[int], outputs: list[Tensor],
    eps: float, atol: float, rtol: float, raise_exception: bool,
) -> bool:
    """⟨v, J u⟩ from reverse mode against (⟨v, f(x + eps·u)⟩ - ⟨v, f(x - eps·u)⟩) / 2eps, per input."""
    rng = np.random.default_rng(0)
    vs = [rng.standard_normal(out.shape) for out in outputs]
    grad_outputs = [Tensor(v.astype(out.dtype)) for v, out in zip(vs, outputs)]
    graded = [(out, g) for out, g in zip(outputs, grad_outputs) if out.requires_grad]
    for i in diff:
        x = inputs[i]
        u = rng.standard_normal(x.shape)
        analytic = 0.0
        if graded:
            (g,) = autograd.grad([o for o, _ in graded], x, [g for _, g in graded], retain_graph=True,
                                 allow_unused=True)
            if g is not None:
                analytic = float(np.sum(g.data * u))
        original = x.data.copy()
        x.data[...] = original + eps * u
        plus = _evaluate(fn, inputs, len(outputs))
        x.data[...] = original - eps * u
        minus = _evaluate(fn, inputs, len(outputs))
        x.data[...] = original
        numerical = sum(float(np.sum(v * (p - m))) for v, p, m in zip(vs, plus, minus)) / (2 * eps)
        if abs(analytic - numerical) > atol + rtol * abs(numerical):
            if x.numel() <= 64:  # small enough to find the element with the full check
                gradcheck(fn, inputs, eps, atol, rtol, raise_exception, fast_mode=False)
            return _fail(
                f"gradcheck (fast mode): for input {i} (shape {x.shape}) the projection <v, J u> is "
                f"{analytic!r} from backward but {numerical!r} from central differences "
                f"(outputs made by {', '.join(_op_name(o) for o in outputs)}; atol={atol}, rtol={rtol})",
                raise_exception,
            )
    return True


def gradgradcheck(
    fn: Callable[..., Any],
    inputs: Any,
    grad_outputs: Sequence[Tensor] | None = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    fast_mode: bool = False,
) -> bool:
    """Check second derivatives: `gradcheck` of (x, v) ↦ vᵀ ∂fn/∂x, computed with create_graph=True.

    `grad_outputs` (the v) are random float64 tensors unless given; they are
    inputs of the checked function too, as in PyTorch.
    """
    inputs, diff = _prepare(inputs, "gradgradcheck")
    outputs = _float_outputs(fn(*inputs))
    if grad_outputs is None:
        rng = np.random.default_rng(1)
        grad_outputs = [Tensor(rng.standard_normal(o.shape).astype(o.dtype), requires_grad=True) for o in outputs]
    else:
        grad_outputs = [Tensor(g.data, requires_grad=True) for g in _as_tuple(grad_outputs)]
    n = len(inputs)

    def first_derivative(*args: Any) -> tuple[Tensor, ...]:
        xs, vs = args[:n], args[n:]
        with enable_grad():  # the central differences run us under no_grad: we still need a graph
            outs = _float_outputs(fn(*xs))
            pairs = [(o, v) for o, v in zip(outs, vs) if o.requires_grad]
            if not pairs:
                return tuple(Tensor.zeros_like(xs[i]) for i in diff)
            grads = autograd.grad([o for o, _ in pairs], [xs[i] for i in diff], [v for _, v in pairs],
                                  create_graph=True, allow_unused=True)
        return tuple(Tensor.zeros_like(xs[i]) if g is None else g for i, g in zip(diff, grads))

    return gradcheck(first_derivative, tuple(inputs) + tuple(grad_outputs), eps, atol, rtol, raise_exception,
                     fast_mode)
