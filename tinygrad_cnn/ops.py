"""The primitives: one small class each, numpy forward and Tensor-op backward side by side.

Read each class as one line of calculus. `forward` computes y = f(x) with
numpy; `backward` receives dL/dy (`grad`) and returns dL/dx for each input,
written with Tensor operations so that the backward pass can be recorded and
differentiated again (`create_graph=True`).

Two rules keep the backward formulas this short:
- An input that needs a gradient always has the output's shape: `Tensor`'s
  binary operators `expand` such inputs before calling us (broadcasting lives in
  one place). So `MulFn.backward` is just ``grad * b``; no "unbroadcast" here.
- Whatever backward needs from forward is either an input (``ctx.inputs``),
  the output (``keep_output``), a small setting stored on ``ctx``, or an array
  passed to ``save_for_backward`` (dropped after backward runs).

Everything else (softmax, var, conv2d_reference, ...) is a composite of these,
written in tensor.py and conv/, and needs no backward at all. Where speed needs
a kernel, a forward calls one from backend/ by a name that says what it
computes (`multiply(a, b)`, `relu_grad(g, a)`); the threads and BLAS calls
behind those names never show here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .autograd import Function
from .backend.elementwise import multiply, relu, relu_grad
from .backend.layout import middle, pad
from .backend.linalg import matmul
from .backend.reduce import sum_axes

if TYPE_CHECKING:
    from .tensor import Tensor


# ------------------------------------------------------------- arithmetic
class AddFn(Function):
    """y = a + b  ⇒  da = g, db = g"""

    def forward(ctx, a, b):
        return a + b

    def backward(ctx, grad):
        return grad, grad


class SubFn(Function):
    """y = a - b  ⇒  da = g, db = -g"""

    def forward(ctx, a, b):
        return a - b

    def backward(ctx, grad):
        return grad, (-grad if ctx.needs_input_grad[1] else None)


class NegFn(Function):
    """y = -a  ⇒  da = -g"""

    def forward(ctx, a):
        return -a

    def backward(ctx, grad):
        return -grad


class MulFn(Function):
    """y = a · b  ⇒  da = g · b, db = g · a"""

    def forward(ctx, a, b):
        return multiply(a, b)

    def backward(ctx, grad):
        a, b = ctx.inputs
        need_a, need_b = ctx.needs_input_grad
        return (grad * b if need_a else None), (grad * a if need_b else None)


class DivFn(Function):
    """y = a / b  ⇒  da = g / b, db = -g · a / b² = -(g / b) · y"""

    keep_output = True

    def forward(ctx, a, b):
        return a / b

    def backward(ctx, grad):
        _, b = ctx.inputs
        grad_a = grad / b
        grad_b = -(grad_a * ctx.output) if ctx.needs_input_grad[1] else None
        return (grad_a if ctx.needs_input_grad[0] else None), grad_b


class PowFn(Function):
    """y = a ** b  ⇒  da = g · b · a ** (b - 1), db = g · y · ln a"""

    keep_output = True

    def forward(ctx, a, b):
        return np.power(a, b)

    def backward(ctx, grad):
        a, b = ctx.inputs
        need_a, need_b = ctx.needs_input_grad
        grad_a = grad_b = None
        if need_a:
            exponent = b - 1
            zero_zero = (b.data == 0) & (a.data == 0)
            if zero_zero.any():  # a⁰ is flat: da = 0 even at a = 0, not 0 · 0⁻¹ = nan (as PyTorch)
                exponent = WhereFn.apply(zero_zero, np.ones((), dtype=exponent.data.dtype), exponent)
            grad_a = grad * b * a**exponent
        if need_b:
            a_zero = (a.data == 0) & (b.data >= 0)
            if a_zero.any():  # 0ᵇ is flat for b ≥ 0: db = 0 there, not 0 · ln 0 = nan (as PyTorch)
                a = WhereFn.apply(a_zero, np.ones((), dtype=a.data.dtype), a)
            grad_b = grad * ctx.output * a.log()
        return grad_a, grad_b


class MaximumFn(Function):
    """y = max(a, b) elementwise  ⇒  the gradient goes to the larger; ties split it in half."""

    def forward(ctx, a, b):
        return np.maximum(a, b)

    def backward(ctx, grad):
        a, b = ctx.inputs
        share_a = (a.data > b.data) + 0.5 * (a.data == b.data)
        return _split(ctx, grad, share_a.astype(grad.data.dtype, copy=False))


class MinimumFn(Function):
    """y = min(a, b) elementwise  ⇒  the gradient goes to the smaller; ties split it in half."""

    def forward(ctx, a, b):
        return np.minimum(a, b)

    def backward(ctx, grad):
        a, b = ctx.inputs
        share_a = (a.data < b.data) + 0.5 * (a.data == b.data)
        return _split(ctx, grad, share_a.astype(grad.data.dtype, copy=False))


def _split(ctx: Function, grad: Tensor, share_a: np.ndarray) -> tuple:
    need_a, need_b = ctx.needs_input_grad
    return (grad * share_a if need_a else None), (grad * (1 - share_a) if need_b else None)


# ------------------------------------------------------------- elementwise functions
class ExpFn(Function):
    """y = eᵃ  ⇒  da = g · y"""

    keep_output = True

    def forward(ctx, a):
        return np.exp(a)

    def backward(ctx, grad):
        return grad * ctx.output


class LogFn(Function):
    """y = ln a  ⇒  da = g / a"""

    def forward(ctx, a):
        return np.log(a)

    def backward(ctx, grad):
        return grad / ctx.inputs[0]


class ReluFn(Function):
    """y = max(a, 0)  ⇒  da = ReluGrad(g, a) = g · [a > 0]   (the mask is a constant: relu'' = 0)"""

    def forward(ctx, a):
        return relu(a)

    def backward(ctx, grad):
        return ReluGradFn.apply(grad, ctx.inputs[0])


class ReluGradFn(Function):
    """z = g · [a > 0]: relu's backward as one pass (not a mask, then a multiply), still differentiable.

    dz/dg = [a > 0],  dz/da = 0 (almost everywhere). One pass that makes the
    mask block by block, while it is in cache: 0.61 ms instead of 0.86 on conv1's
    (64, 32, 28, 28) activation.

    dz/da is returned as None (nothing to add). `autograd.grad` still answers zeros,
    as PyTorch does, for an input that the graph reaches only through such a
    derivative (the input Hessian of a ReLU network), not "x was not used".
    """

    def forward(ctx, g, a):
        return relu_grad(g, a)

    def backward(ctx, grad):
        return (ReluGradFn.apply(grad, ctx.inputs[1]) if ctx.needs_input_grad[0] else None), None


class SigmoidFn(Function):
    """y = 1 / (1 + e⁻ᵃ)  ⇒  da = g · y · (1 - y)"""

    keep_output = True

    def forward(ctx, a):
        e = np.exp(-np.abs(a))  # never overflows: the exponent is ≤ 0
        r = 1 / (1 + e)
        return np.where(a >= 0, r, e * r)

    def backward(ctx, grad):
        return SigmoidGradFn.apply(grad, ctx.output)


class SigmoidGradFn(Function):
    """z = g · y · (1 - y): sigmoid's backward fused into one op (not three), still differentiable.

    dz/dg = y · (1 - y),  dz/dy = g · (1 - 2y)
    """

    def forward(ctx, g, y):
        return g * (y * (1 - y))

    def backward(ctx, grad):
        g, y = ctx.inputs
        need_g, need_y = ctx.needs_input_grad
        return (grad * y * (1 - y) if need_g else None), (grad * g * (1 - 2 * y) if need_y else None)


class TanhFn(Function):
    """y = tanh a  ⇒  da = g · (1 - y²)"""

    keep_output = True

    def forward(ctx, a):
        return np.tanh(a)

    def backward(ctx, grad):
        return TanhGradFn.apply(grad, ctx.output)


class TanhGradFn(Function):
    """z = g · (1 - y²): tanh's backward fused into one op (not three), still differentiable.

    dz/dg = 1 - y²,  dz/dy = -2 · g · y
    """

    def forward(ctx, g, y):
        return g * (1 - y * y)

    def backward(ctx, grad):
        g, y = ctx.inputs
        need_g, need_y = ctx.needs_input_grad
        return (grad * (1 - y * y) if need_g else None), (grad * g * y * -2.0 if need_y else None)


class AbsFn(Function):
    """y = |a|  ⇒  da = g · sign(a)   (0 at a = 0, as in PyTorch)"""

    def forward(ctx, a):
        return np.abs(a)

    def backward(ctx, grad):
        return grad * np.sign(ctx.inputs[0].data)


class ClipFn(Function):
    """y = min(max(a, low), high)  ⇒  da = g where low ≤ a ≤ high, else 0 (PyTorch's clamp)."""

    def forward(ctx, a, low, high):
        ctx.low, ctx.high = low, high
        return np.clip(a, low, high)

    def backward(ctx, grad):
        a = ctx.inputs[0].data
        inside = np.ones(a.shape, dtype=bool)
        if ctx.low is not None:
            inside &= a >= ctx.low
        if ctx.high is not None:
            inside &= a <= ctx.high
        return grad * inside


class WhereFn(Function):
    """y = a where cond else b  ⇒  da = g where cond, db = g elsewhere (cond gets none)."""

    def forward(ctx, cond, a, b):
        return np.where(cond, a, b)

    def backward(ctx, grad):
        cond = ctx.inputs[0]
        _, need_a, need_b = ctx.needs_input_grad
        zero = np.zeros((), dtype=grad.data.dtype)
        grad_a = WhereFn.apply(cond, grad, zero) if need_a else None
        grad_b = WhereFn.apply(cond, zero, grad) if need_b else None
        return None, grad_a, grad_b


class CastFn(Function):
    """y = a as another dtype  ⇒  da = g cast back (a gradient always has its tensor's dtype)."""

    def forward(ctx, a, dtype):
        ctx.input_dtype = a.dtype
        return a.astype(dtype)

    def backward(ctx, grad):
        return CastFn.apply(grad, dtype=ctx.input_dtype)


# ------------------------------------------------------------- reductions
class SumFn(Function):
    """y = Σ over `axis` of a  ⇒  da = g expanded back over the summed axes."""

    def forward(ctx, a, axis, keepdims):
        ctx.input_shape = a.shape
        ctx.kept_shape = tuple(1 if i in axis else s for i, s in enumerate(a.shape))
        ctx.axis, ctx.keepdims = axis, keepdims
        return sum_axes(a, axis, keepdims)

    def backward(ctx, grad):
        return grad.reshape(ctx.kept_shape).expand(ctx.input_shape)


class MaxFn(Function):
    """y = max over `axis` of a  ⇒  da = g shared evenly among the positions that hold the max."""

    reduce = staticmethod(np.max)

    def forward(ctx, a, axis, keepdims):
        ctx.axis, ctx.keepdims = axis, keepdims
        out = type(ctx).reduce(a, axis=axis, keepdims=True)
        ctx.save_for_backward(out)
        return out if keepdims else out.reshape([s for i, s in enumerate(out.shape) if i not in axis])

    def backward(ctx, grad):
        a = ctx.inputs[0]
        (out,) = ctx.saved_tensors
        is_max = a.data == out
        share = is_max / is_max.sum(axis=ctx.axis, keepdims=True)
        return grad.reshape(out.shape).expand(a.shape) * share.astype(a.data.dtype, copy=False)


class MinFn(MaxFn):
    """y = min over `axis` of a  ⇒  da = g shared evenly among the positions that hold the min."""

    reduce = staticmethod(np.min)


# ------------------------------------------------------------- movement (no arithmetic)
class ReshapeFn(Function):
    """y = a viewed with another shape  ⇒  da = g viewed with a's shape."""

    def forward(ctx, a, shape):
        ctx.input_shape = a.shape
        return a.reshape(shape)

    def backward(ctx, grad):
        return grad.reshape(ctx.input_shape)


class PermuteFn(Function):
    """y = a with its axes reordered  ⇒  da = g with the inverse order."""

    def forward(ctx, a, dims):
        ctx.dims = dims
        return a.transpose(dims)

    def backward(ctx, grad):
        inverse = [0] * len(ctx.dims)
        for i, d in enumerate(ctx.dims):
            inverse[d] = i
        return grad.permute(*inverse)


class ExpandFn(Function):
    """y = a broadcast to `shape` (a view, no copy)  ⇒  da = g summed over the broadcast axes.

    This is the only place where a gradient is summed back to a smaller shape::

        a: (3, 1)  ──expand──▶  y: (2, 3, 4)        da = g.sum(axis=(0, 2))
    """

    def forward(ctx, a, shape):
        ctx.input_shape = a.shape
        return np.broadcast_to(a, shape)

    def backward(ctx, grad):
        lead = grad.ndim - len(ctx.input_shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, s in enumerate(ctx.input_shape) if s == 1 and grad.shape[lead + i] != 1
        )
        summed = grad.sum(axis=axes, keepdims=True) if axes else grad
        return summed.reshape(ctx.input_shape) if lead else summed


class PadFn(Function):
    """y = a surrounded by `value`  ⇒  da = the middle of g (a slice).

    y keeps a's memory layout (a channels-last activation stays channels-last:
    the transposing copy into NCHW took 2.2 ms on (64, 32, 28, 28)), and only
    its border is filled before the middle is copied in.
    """

    def forward(ctx, a, pad_width, value):
        ctx.middle = middle(pad_width, a.shape)
        return pad(a, pad_width, value)

    def backward(ctx, grad):
        return SliceFn.apply(grad, key=ctx.middle)


class SliceFn(Function):
    """y = a[key] for basic indexing (ints, slices, None, ...)  ⇒  da = g placed into zeros."""

    def forward(ctx, a, key):
        ctx.key, ctx.input_shape = key, a.shape
        return a[key]

    def backward(ctx, grad):
        return UnsliceFn.apply(grad, key=ctx.key, shape=ctx.input_shape)


class UnsliceFn(Function):
    """y = zeros(shape) with y[key] = a: the adjoint of Slice  ⇒  da = g[key]."""

    def forward(ctx, a, key, shape):
        ctx.key = key
        out = np.zeros(shape, dtype=a.dtype)
        out[key] = a
        return out

    def backward(ctx, grad):
        return SliceFn.apply(grad, key=ctx.key)


class GatherFn(Function):
    """y = a[index] for integer-array indexing  ⇒  da = g scatter-added (repeats accumulate)."""

    def forward(ctx, a, key):
        ctx.key, ctx.input_shape = key, a.shape
        return a[key]

    def backward(ctx, grad):
        return ScatterAddFn.apply(grad, key=ctx.key, shape=ctx.input_shape)


class ScatterAddFn(Function):
    """y = zeros(shape) with a added at `key` (repeats accumulate): the adjoint of Gather."""

    def forward(ctx, a, key, shape):
        ctx.key = key
        out = np.zeros(shape, dtype=a.dtype)
        np.add.at(out, key, a)
        return out

    def backward(ctx, grad):
        return GatherFn.apply(grad, key=ctx.key)


class CatFn(Function):
    """y = the inputs joined along `axis`  ⇒  each input gets its own slice of g."""

    def forward(ctx, *arrays, axis):
        ctx.axis = axis
        ctx.sizes = [x.shape[axis] for x in arrays]
        return np.concatenate(arrays, axis=axis)

    def backward(ctx, grad):
        grads, start = [], 0
        lead = (slice(None),) * ctx.axis
        for size, needed in zip(ctx.sizes, ctx.needs_input_grad):
            grads.append(SliceFn.apply(grad, key=(*lead, slice(start, start + size))) if needed else None)
            start += size
        return tuple(grads)


# ------------------------------------------------------------- linear algebra
class MatmulFn(Function):
    """Y = A @ B (batched, same batch shape)  ⇒  dA = G @ Bᵀ, dB = Aᵀ @ G

    tensor.py turns 1-D operands, broadcasting and (batch, M, K) @ (K, N) into
    this one case before calling us.
    """

    def forward(ctx, a, b):
        return matmul(a, b)

    def backward(ctx, grad):
        a, b = ctx.inputs
        need_a, need_b = ctx.needs_input_grad
        grad_a = grad @ b.transpose(-1, -2) if need_a else None
        grad_b = a.transpose(-1, -2) @ grad if need_b else None
        return grad_a, grad_b
