"""Pooling as primitives over strided views (backend/pool.py), each one's backward made of the others.

    MaxPoolFn      ⇒ MaxPoolGradFn           (the gradient goes to each window's maxima)
    MaxPoolGradFn  ⇒ WindowSumFn             (linear in g, with the masks kept from its forward)
    WindowSumFn    ⇒ WindowScatterFn         (average pooling is a WindowSum with scale 1/(kh·kw))
    WindowScatterFn ⇒ WindowSumFn            (the two are each other's adjoint)

conv/reference.py's `max_pool2d_reference` is the same function as unfold then max.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..backend.layout import is_channels_last
from ..backend.pool import max_pool, max_pool_grad, window_scatter, window_sum


class WindowSumFn(Function):
    """y[window] = scale · Σ over the window's kh·kw offsets k of mask_k · x[k].

    `weights` is (masks, scale): masks a tuple of kh·kw boolean arrays of y's shape (or
    None: all ones), scale a number or an array of y's shape. With (None, 1/(kh·kw))
    this is average pooling; with max pooling's masks it is the adjoint of max
    pooling's backward. ⇒ d x = WindowScatterFn(g) (the weights are constants).
    """

    def forward(ctx, x, kernel, weights, stride=None, dilation=None):
        ctx.kernel, ctx.stride, ctx.dilation = kernel, stride, dilation
        ctx.weights, ctx.input_shape = weights, x.shape
        return window_sum(x, kernel, weights, stride, dilation)

    def backward(ctx, grad):
        return WindowScatterFn.apply(grad, kernel=ctx.kernel, weights=ctx.weights, input_shape=ctx.input_shape,
                                     channels_last=is_channels_last(grad.data), stride=ctx.stride,
                                     dilation=ctx.dilation)

    def jvp(ctx, tx):
        return WindowSumFn.apply(tx, **ctx.kwargs)



class WindowScatterFn(Function):
    """x[k] += scale · mask_k · y[window] over the windows holding pixel k: each window's value spread over its pixels.

    The adjoint of WindowSumFn (pixels outside every window get 0); the result is
    laid out channels-last or not as asked. ⇒ d y = WindowSumFn(g).
    """

    def forward(ctx, grad, kernel, weights, input_shape, channels_last, stride=None, dilation=None):
        ctx.kernel, ctx.stride, ctx.dilation, ctx.weights = kernel, stride, dilation, weights
        return window_scatter(grad, kernel, weights, input_shape, channels_last, stride, dilation)

    def backward(ctx, grad):
        return WindowSumFn.apply(grad, kernel=ctx.kernel, weights=ctx.weights, stride=ctx.stride,
                                 dilation=ctx.dilation)

    def jvp(ctx, tg):
        return WindowScatterFn.apply(tg, **ctx.kwargs)



class MaxPoolFn(Function):
    """y[window] = max over the window (no padding: conv/functional.py pads first): the max of kh·kw strided views.

    ⇒ d x = MaxPoolGradFn(g): each pixel that holds its window's max gets an equal
    share of the window's gradient (ties split evenly, as the contract says; after
    a ReLU, all-zero windows are common).
    """

    def forward(ctx, x, kernel, stride=None, dilation=None):
        ctx.kernel, ctx.stride, ctx.dilation = kernel, stride, dilation
        out = max_pool(x, kernel, stride, dilation)
        ctx.save_for_backward(out)
        return out

    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return MaxPoolGradFn.apply(grad, kernel=ctx.kernel, x=ctx.inputs[0].data, out=out, stride=ctx.stride,
                                   dilation=ctx.dilation)

    def jvp(ctx, tx):  # each window moves with its maxima (shared evenly among ties)
        x, (out,) = ctx.inputs[0].data, ctx.saved_tensors
        _, weights = max_pool_grad(np.zeros_like(out), ctx.kernel, x, out, ctx.stride, ctx.dilation)
        return WindowSumFn.apply(tx, kernel=ctx.kernel, weights=weights, stride=ctx.stride, dilation=ctx.dilation)



class MaxPoolGradFn(Function):
    """dx = each window's g shared evenly among the pixels that hold its max: max pooling's backward, one pass.

    z is linear in g with constant weights (max pooling is piecewise linear), so
    ⇒ d g = WindowSumFn(gz, (masks, 1/count)), the weights kept from the forward.
    """

    def forward(ctx, grad, kernel, x, out, stride=None, dilation=None):
        ctx.kernel, ctx.stride, ctx.dilation = kernel, stride, dilation
        dx, ctx.weights = max_pool_grad(grad, kernel, x, out, stride, dilation)
        return dx

    def backward(ctx, grad):
        return WindowSumFn.apply(grad, kernel=ctx.kernel, weights=ctx.weights, stride=ctx.stride,
                                 dilation=ctx.dilation)

    def jvp(ctx, tg):  # linear in g, with the weights its forward found
        x = ctx.kwargs["x"]
        return WindowScatterFn.apply(tg, kernel=ctx.kernel, weights=ctx.weights, input_shape=x.shape,
                                     channels_last=is_channels_last(x), stride=ctx.stride, dilation=ctx.dilation)
