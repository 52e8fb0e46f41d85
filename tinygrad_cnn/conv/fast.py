"""Convolution as fused primitives, each one's backward made of the others: what `conv2d` runs.

`Conv2dFn` (forward), `Conv2dInputGradFn` (the transposed convolution),
`Conv2dWeightGradFn` and `Conv2dBiasGradFn` are each one primitive whose
numbers come from backend/conv.py; the backward of each is made of these
primitives, so second derivatives work with no extra code. conv/reference.py's
`conv2d_reference` builds the same function from `UnfoldFn` and `matmul`; the
tests check one against the other.
"""

from __future__ import annotations

from ..autograd import Function, is_dual_level_open, is_grad_enabled
from ..backend.conv import conv2d_forward, conv2d_gradients
from ..backend.reduce import channel_sums
from ..tensor import Tensor


class Conv2dFn(Function):
    """y = conv(x, w) + b: im2col, one GEMM adding onto the bias. The output is channels-last.

    ⇒ d x = Conv2dInputGradFn(g, w)  (a transposed convolution)
      d w = Conv2dWeightGradFn(x, g) (patchesᵀ @ g)
      d b = Conv2dBiasGradFn(g)      (Σ g over N, H, W)
    Each of those is a primitive whose backward is made of the others and this
    one, so second derivatives work. When the backward is not recorded (no
    create_graph), all three come from one pass over the batch instead
    (`conv2d_gradients`): each thread reads its slice of g once, while it is in
    cache, for all three, and the weight gradient reuses the forward's patches.
    """

    def forward(ctx, x, w, b=None, geometry=None):
        ctx.geometry = geometry
        out, patches = conv2d_forward(x, w, b, geometry)
        ctx.save_for_backward(patches)
        return out

    def backward(ctx, grad):
        x, w = ctx.inputs[:2]
        need = (*ctx.needs_input_grad, False)[:3]
        if is_grad_enabled() or is_dual_level_open():  # create_graph or forward mode: Tensor ops all the way
            grads = (Conv2dInputGradFn.apply(grad, w, geometry=ctx.geometry, input_shape=x.shape) if need[0] else None,
                     Conv2dWeightGradFn.apply(x, grad, geometry=ctx.geometry, weight_shape=w.shape)
                     if need[1] else None,
                     Conv2dBiasGradFn.apply(grad) if need[2] else None)
        else:
            (patches,) = ctx.saved_tensors
            arrays = conv2d_gradients(grad.data, ctx.geometry, x.shape, w.shape, need, x=x.data, w=w.data,
                                      patches=patches)
            grads = tuple(None if a is None else Tensor(a) for a in arrays)
        return grads[:len(ctx.inputs)]

    def jvp(ctx, tx, tw, tb=None):  # bilinear in (x, w), plus b: ẏ = conv(ẋ, w) + conv(x, ẇ) + ḃ
        x, w = ctx.inputs[:2]
        moved_x = Conv2dFn.apply(tx, w, *([tb] if tb is not None else []), geometry=ctx.geometry)
        return moved_x + Conv2dFn.apply(x, tw, geometry=ctx.geometry)



class Conv2dInputGradFn(Function):
    """z = the gradient of conv(x, w) with respect to x, for an output gradient g (a transposed convolution).

    ⇒ d g = conv(gz, w),  d w = Conv2dWeightGradFn(gz, g)   (z is linear in g and in w)
    """

    def forward(ctx, g, w, geometry, input_shape):
        ctx.geometry = geometry
        return conv2d_gradients(g, geometry, input_shape, w.shape, (True, False, False), w=w)[0]

    def backward(ctx, grad):
        g, w = ctx.inputs
        need_g, need_w = ctx.needs_input_grad
        grad_g = Conv2dFn.apply(grad, w, geometry=ctx.geometry) if need_g else None
        grad_w = Conv2dWeightGradFn.apply(grad, g, geometry=ctx.geometry, weight_shape=w.shape) if need_w else None
        return grad_g, grad_w

    def jvp(ctx, tg, tw):
        g, w = ctx.inputs
        return Conv2dInputGradFn.apply(tg, w, **ctx.kwargs) + Conv2dInputGradFn.apply(g, tw, **ctx.kwargs)



class Conv2dWeightGradFn(Function):
    """z = the gradient of conv(x, w) with respect to w, for an output gradient g: gᵀ @ patches(x).

    ⇒ d x = Conv2dInputGradFn(g, gz),  d g = conv(x, gz)   (z is linear in x and in g)
    """

    def forward(ctx, x, g, geometry, weight_shape):
        ctx.geometry = geometry
        return conv2d_gradients(g, geometry, x.shape, weight_shape, (False, True, False), x=x)[1]

    def backward(ctx, grad):
        x, g = ctx.inputs
        need_x, need_g = ctx.needs_input_grad
        grad_x = Conv2dInputGradFn.apply(g, grad, geometry=ctx.geometry, input_shape=x.shape) if need_x else None
        grad_g = Conv2dFn.apply(x, grad, geometry=ctx.geometry) if need_g else None
        return grad_x, grad_g

    def jvp(ctx, tx, tg):
        x, g = ctx.inputs
        return Conv2dWeightGradFn.apply(tx, g, **ctx.kwargs) + Conv2dWeightGradFn.apply(x, tg, **ctx.kwargs)



class Conv2dBiasGradFn(Function):
    """z = Σ g over N, H, W: the gradient of conv(x, w) + b with respect to b  ⇒  d g = gz broadcast back."""

    def forward(ctx, g):
        ctx.input_shape = g.shape
        return channel_sums(g)

    def backward(ctx, grad):
        return grad.reshape(1, -1, 1, 1).expand(ctx.input_shape)

    def jvp(ctx, tg):
        return Conv2dBiasGradFn.apply(tg)
