"""Convolution and pooling the textbook way: how a convolution layer becomes one matrix multiply.

im2col ("image to columns") copies every receptive field of the input into one
row of a patch matrix P. A convolution is then a single GEMM of P with the
filters laid out as columns. Each row holds its window in (kh, kw, C) order:
the kernel row, then the column, then the channel, so with C channels a row
reads (i=0, j=0, c=0..C-1), (i=0, j=1, c=0..C-1), ...  Here C = 1::

    input x (C = 1, 4×4)        3×3 windows, stride 1           patch matrix P (L × kh·kw·C)
    ┌────┬────┬────┬────┐       ┌──────────────┐                 row 0: a b c  e f g  i j k
    │ a  │ b  │ c  │ d  │       │ a b c        │ window 0        row 1: b c d  f g h  j k l
    ├────┼────┼────┼────┤       │ e f g  ...   │ window 1        row 2: e f g  i j k  m n o
    │ e  │ f  │ g  │ h  │  ──▶  │ i j k        │   ...     ──▶   row 3: f g h  j k l  n o p
    ├────┼────┼────┼────┤       └──────────────┘
    │ i  │ j  │ k  │ l  │                                       out (L × C_out) = P @ Wᵀ
    ├────┼────┼────┼────┤       W: (C_out, kh·kw·C), one filter per row: weight (C_out, C, kh, kw)
    │ m  │ n  │ o  │ p  │          permuted to (C_out, kh, kw, C), the order of P's rows, and flattened
    └────┴────┴────┴────┘       out reshaped to (N, H_out, W_out, C_out), viewed as (N, C_out, H_out, W_out)

In index form (einsum style): out[n,o,p,q] = Σ_{i,j,c} x_padded[n, c, p·sh + i·dh, q·sw + j·dw] · w[o,c,i,j].

col2im ("fold") is the adjoint of im2col: it adds every row of a patch-shaped
array back onto the pixels it came from (overlaps sum). That is exactly the
gradient of im2col, and im2col is the gradient of col2im; so `UnfoldFn` and
`FoldFn` below are each other's backward, and convolution built on them is
differentiable twice with no extra code.

This file is the reference: `conv2d_reference` and `max_pool2d_reference`
are built only from primitives tested on their own, and the tests check the
fast versions (conv/fast.py, conv/pool.py, what `conv2d` and `max_pool2d`
run) against them. The arrays themselves are numpy: backend/im2col.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..autograd import Function
from ..backend.im2col import col2im, im2col
from .arguments import conv_geometry, pool_geometry, string_padding

if TYPE_CHECKING:
    from ..tensor import Tensor


class UnfoldFn(Function):
    """im2col as a primitive: x (N, C, H, W) → patches (N, H_out, W_out, kh, kw, C).

    Padding is filled with `value` (0 for convolution, -inf for max pooling).
    ⇒ d x = FoldFn(g): every patch gradient is added back where it came from.
    """

    def forward(ctx, x, geometry, value=0.0):
        ctx.geometry, ctx.input_shape = geometry, x.shape
        return im2col(x, geometry, value)

    def backward(ctx, grad):
        return FoldFn.apply(grad, input_shape=ctx.input_shape, geometry=ctx.geometry)

    def jvp(ctx, tx):  # linear in x; the padding is a constant, so its tangent is 0 (even for -inf)
        return UnfoldFn.apply(tx, geometry=ctx.geometry)



class FoldFn(Function):
    """col2im as a primitive: patches (N, H_out, W_out, kh, kw, C) → x (N, C, H, W), overlaps summed.

    ⇒ d patches = UnfoldFn(g): the adjoint of a sum-scatter is a gather.
    """

    def forward(ctx, patches, input_shape, geometry):
        ctx.geometry = geometry
        return col2im(patches, input_shape, geometry)

    def backward(ctx, grad):
        return UnfoldFn.apply(grad, geometry=ctx.geometry)

    def jvp(ctx, tp):
        return FoldFn.apply(tp, **ctx.kwargs)



def conv2d_reference(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
                     dilation: Any = 1, groups: int = 1) -> Tensor:
    """conv2d as a composite: im2col (`UnfoldFn`), one (batched over groups) matmul, a reshape.

    Slower than the fused primitive, but built only from primitives tested on
    their own; the tests check `conv2d` against it.
    """
    x, padding = string_padding(x, weight, stride, padding, dilation)
    geometry = conv_geometry(x, weight, bias, stride, padding, dilation, groups)
    n, c = x.shape[:2]
    c_out, c_group, kh, kw = weight.shape
    patches = UnfoldFn.apply(x, geometry=geometry)  # (N, Ho, Wo, kh, kw, C)
    _, ho, wo = patches.shape[:3]
    rows = n * ho * wo
    if groups == 1:  # #lk,ok -> lo with k = (i, j, c): P @ Wᵀ
        out = patches.reshape(rows, kh * kw * c) @ weight.permute(0, 2, 3, 1).reshape(c_out, kh * kw * c).T
    else:  # one product per group: #glk,gko -> glo
        g, c_out_g = groups, c_out // groups
        cols = patches.reshape(rows, kh * kw, g, c_group).permute(2, 0, 1, 3).reshape(g, rows, kh * kw * c_group)
        w = weight.reshape(g, c_out_g, c_group, kh, kw).permute(0, 3, 4, 2, 1).reshape(g, kh * kw * c_group, c_out_g)
        out = (cols @ w).permute(1, 0, 2).reshape(rows, c_out)
    if bias is not None:
        out = out + bias
    return out.reshape(n, ho, wo, c_out).permute(0, 3, 1, 2)


def max_pool2d_reference(x: Tensor, kernel_size: Any = 2, stride: Any = None, padding: Any = 0,
                         dilation: Any = 1) -> Tensor:
    """max_pool2d as a composite: unfold (padding with -inf), then max over the window axis.

    The textbook form (floats only, no ceil_mode). `max_pool2d` runs
    strided-view primitives instead (conv/pool.py): no patch matrix, kh·kw
    times less memory; the tests check the two against each other.
    """
    g, _ = pool_geometry(x, kernel_size, stride, padding, dilation, False, "max_pool2d")
    patches = UnfoldFn.apply(x, geometry=g, value=-np.inf)
    n, ho, wo, kh, kw, c = patches.shape
    return patches.reshape(n, ho, wo, kh * kw, c).max(axis=3).permute(0, 3, 1, 2)
