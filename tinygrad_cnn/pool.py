"""Pooling as primitives over strided views, not im2col: one view per offset in the window.

For kernel offset (i, j) the view x[:, :, i·dh::sh, j·dw::sw] holds that offset's
pixel of every window (cut to the output size); max or sum over the kh·kw views
is the pooled map, with no copy of the input. Non-overlapping windows (stride =
kernel, the common 2×2) scatter their gradient by plain assignment; overlapping
ones (a 3×3 window with stride 2) add it, offset by offset, as col2im does.
conv.py's `max_pool2d_reference` is the same function as unfold then max.
At the end: the window arithmetic of PyTorch's pooling options (ceil_mode,
count_include_pad, return_indices), plain numpy on sizes.
"""

from __future__ import annotations

import numpy as np

from . import parallel
from .autograd import Function
from .im2col import Geometry, Pair, _channels_last, _is_channels_last, _like


def _window_views(x: np.ndarray, kernel: Pair, out_hw: Pair, stride: Pair | None = None,
                  dilation: Pair | None = None) -> list[np.ndarray]:
    """The kh·kw strided views x[:, :, i·dh::sh, j·dw::sw] cut to out_hw, one per offset (i, j) (no copy).

    stride None means the kernel (windows side by side), dilation None means 1.
    """
    (kh, kw), (ho, wo) = kernel, out_hw
    (sh, sw), (dh, dw) = stride or kernel, dilation or (1, 1)
    return [x[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw]
            for i in range(kh) for j in range(kw)]


def _out_hw(shape: tuple, kernel: Pair, stride: Pair | None, dilation: Pair | None) -> Pair:
    """How many windows fit along H and W of an (already padded) input of `shape`."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride or kernel, dilation or (1, 1)
    return (shape[2] - dh * (kh - 1) - 1) // sh + 1, (shape[3] - dw * (kw - 1) - 1) // sw + 1


def _overlapping(kernel: Pair, stride: Pair | None, dilation: Pair | None) -> bool:
    """Whether a pixel may lie in two windows (then scatters must add, not assign); erring towards yes."""
    if stride is None and dilation in (None, (1, 1)):
        return False
    (sh, sw), (dh, dw) = stride or kernel, dilation or (1, 1)
    return not (dh == dw == 1 and sh >= kernel[0] and sw >= kernel[1])


def _batch_chunks(shape: tuple) -> list[slice]:
    """The split of a pooling primitive's batch over the threads (parallel.py)."""
    return parallel.chunks(shape[0], int(np.prod(shape[1:])))


def _part(scale: float | np.ndarray, s: slice) -> float | np.ndarray:
    return scale[s] if isinstance(scale, np.ndarray) and scale.ndim else scale


class WindowSum(Function):
    """y[window] = scale · Σ over the window's kh·kw offsets k of mask_k · x[k].

    `weights` is (masks, scale): masks a tuple of kh·kw boolean arrays of y's shape (or
    None: all ones), scale a number or an array of y's shape. With (None, 1/(kh·kw))
    this is average pooling; with max pooling's masks it is the adjoint of max
    pooling's backward. ⇒ d x = WindowScatter(g) (the weights are constants).
    """

    def forward(ctx, x, kernel, weights, stride=None, dilation=None):
        ctx.kernel, ctx.stride, ctx.dilation = kernel, stride, dilation
        ctx.weights, ctx.input_shape = weights, x.shape
        masks, scale = weights
        out_hw = _out_hw(x.shape, kernel, stride, dilation)
        out = _like(_window_views(x, kernel, out_hw, stride, dilation)[0])

        def piece(s: slice) -> None:
            views, part = _window_views(x[s], kernel, out_hw, stride, dilation), out[s]
            if masks is None:
                np.add(views[0], views[1], out=part) if len(views) > 1 else np.copyto(part, views[0])
                for view in views[2:]:
                    part += view
            else:
                np.multiply(views[0], masks[0][s], out=part)
                for view, mask in zip(views[1:], masks[1:]):
                    part += view * mask[s]
            if not (np.ndim(scale) == 0 and scale == 1.0):  # a plain sum (avg_pool2d's per-window divisors)
                part *= _part(scale, s)

        parallel.run(piece, _batch_chunks(x.shape))
        return out

    def backward(ctx, grad):
        return WindowScatter.apply(grad, kernel=ctx.kernel, weights=ctx.weights, input_shape=ctx.input_shape,
                                   channels_last=_is_channels_last(grad.data), stride=ctx.stride,
                                   dilation=ctx.dilation)


class WindowScatter(Function):
    """x[k] += scale · mask_k · y[window] over the windows holding pixel k: each window's value spread over its pixels.

    The adjoint of WindowSum (pixels outside every window get 0); the result is
    laid out channels-last or not as asked. ⇒ d y = WindowSum(g).
    """

    def forward(ctx, grad, kernel, weights, input_shape, channels_last, stride=None, dilation=None):
        ctx.kernel, ctx.stride, ctx.dilation, ctx.weights = kernel, stride, dilation, weights
        masks, scale = weights
        out = _scatter_target(input_shape, kernel, grad.dtype, channels_last, stride, dilation)

        def piece(s: slice) -> None:
            _spread(grad[s], _part(scale, s), None if masks is None else [m[s] for m in masks], kernel, out[s],
                    stride, dilation)

        parallel.run(piece, _batch_chunks(input_shape))
        return out

    def backward(ctx, grad):
        return WindowSum.apply(grad, kernel=ctx.kernel, weights=ctx.weights, stride=ctx.stride,
                               dilation=ctx.dilation)


class MaxPool(Function):
    """y[window] = max over the window (no padding: conv.py pads first): the max of kh·kw strided views.

    ⇒ d x = MaxPoolGrad(g): each pixel that holds its window's max gets an equal
    share of the window's gradient (ties split evenly, as the contract says; after
    a ReLU, all-zero windows are common).
    """

    def forward(ctx, x, kernel, stride=None, dilation=None):
        ctx.kernel, ctx.stride, ctx.dilation = kernel, stride, dilation
        out_hw = _out_hw(x.shape, kernel, stride, dilation)
        out = _like(_window_views(x, kernel, out_hw, stride, dilation)[0])

        def piece(s: slice) -> None:
            views, part = _window_views(x[s], kernel, out_hw, stride, dilation), out[s]
            np.maximum(views[0], views[1], out=part) if len(views) > 1 else np.copyto(part, views[0])
            for view in views[2:]:
                np.maximum(part, view, out=part)

        parallel.run(piece, _batch_chunks(x.shape))
        ctx.save_for_backward(out)
        return out

    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return MaxPoolGrad.apply(grad, kernel=ctx.kernel, x=ctx.inputs[0].data, out=out, stride=ctx.stride,
                                 dilation=ctx.dilation)


class MaxPoolGrad(Function):
    """dx = each window's g shared evenly among the pixels that hold its max: max pooling's backward, one pass.

    Each thread, for its slice of the batch, finds the maxima (mask_k = view_k == max),
    counts them per window and spreads g / count through the masks, all while the
    slice is in cache (pool1 of our CNN: 1.4 ms instead of 1.6–1.8 as two passes).
    z is linear in g with constant weights (max pooling is piecewise linear), so
    ⇒ d g = WindowSum(gz, (masks, 1/count)), the weights kept from the forward.
    """

    def forward(ctx, grad, kernel, x, out, stride=None, dilation=None):
        masks = tuple(_like(out, bool) for _ in range(kernel[0] * kernel[1]))
        scale = _like(out)  # 1 / the number of maxima in each window
        ctx.kernel, ctx.stride, ctx.dilation, ctx.weights = kernel, stride, dilation, (masks, scale)
        dx = _scatter_target(x.shape, kernel, grad.dtype, _is_channels_last(x), stride, dilation)
        counter = np.uint8 if len(masks) < 256 else np.int32  # bools add as uint8 views, no cast

        def piece(s: slice) -> None:
            mine = [mask[s] for mask in masks]
            for view, mask in zip(_window_views(x[s], kernel, out.shape[2:], stride, dilation), mine):
                np.equal(view, out[s], out=mask)
            count = mine[0].astype(counter)
            for mask in mine[1:]:
                count += mask.view(np.uint8) if counter is np.uint8 else mask
            np.divide(scale.dtype.type(1), count, out=scale[s])
            _spread(grad[s], scale[s], mine, kernel, dx[s], stride, dilation)

        parallel.run(piece, _batch_chunks(x.shape))
        return dx

    def backward(ctx, grad):
        return WindowSum.apply(grad, kernel=ctx.kernel, weights=ctx.weights, stride=ctx.stride,
                               dilation=ctx.dilation)


def _scatter_target(input_shape: tuple, kernel: Pair, dtype: np.dtype, channels_last: bool,
                    stride: Pair | None = None, dilation: Pair | None = None) -> np.ndarray:
    """The array a backward scatters into: zeros unless windows side by side cover every pixel exactly once."""
    covered = (stride is None and dilation in (None, (1, 1))  # every pixel is written once
               and input_shape[2] % kernel[0] == 0 and input_shape[3] % kernel[1] == 0)
    if channels_last:
        return _channels_last(input_shape, dtype, fill=None if covered else 0.0)
    return np.empty(input_shape, dtype) if covered else np.zeros(input_shape, dtype)


def _spread(grad: np.ndarray, scale: float | np.ndarray, masks: list[np.ndarray] | None, kernel: Pair,
            out: np.ndarray, stride: Pair | None = None, dilation: Pair | None = None) -> None:
    """out[window offset k] (+)= scale · mask_k · grad, through the kh·kw strided views of out (a slice of a batch).

    Where windows overlap, a pixel collects from several (window, offset) pairs:
    then each offset's share is added (out starts at zero), one offset at a time,
    as col2im adds; side by side, each pixel is written once and assignment does.
    """
    scaled = _like(out, grad.dtype, grad.shape)
    np.multiply(grad, scale, out=scaled)  # one pass that also puts g in out's layout
    add = _overlapping(kernel, stride, dilation)
    share = _like(scaled) if add and masks is not None else None
    for k, view in enumerate(_window_views(out, kernel, grad.shape[2:], stride, dilation)):
        if masks is None:
            if add:
                view += scaled
            else:
                view[...] = scaled
        elif add:
            np.multiply(scaled, masks[k], out=share)
            view += share
        else:
            np.multiply(scaled, masks[k], out=view)


# ------------------------------------------------------------------ PyTorch's pooling options
def ceil_mode_extra(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """How many rows (or columns) ceil_mode adds after the padded input so that its last window fits.

    ceil_mode rounds the number of windows up instead of down, so a last window
    may hang over the end; as in PyTorch, only if it starts inside the input or
    its left padding (otherwise it would see nothing but padding)::

        size 5, kernel 2, stride 2:   [x x][x x][x .]     3 windows, 1 extra
    """
    span = dilation * (kernel - 1) + 1
    windows = -(-(size + 2 * padding - span) // stride) + 1  # rounded up
    if (windows - 1) * stride >= size + padding:
        windows -= 1
    return max(0, (windows - 1) * stride + span - (size + 2 * padding))


def avg_divisors(input_hw: tuple, g: Geometry, out_hw: Pair, count_include_pad: bool) -> np.ndarray:
    """(H_out, W_out): what avg_pool2d divides each window's sum by, as PyTorch does.

    With count_include_pad the padding counts but ceil_mode's extra rows do not
    (a window is cut at the end of the padded input); without it, only input pixels count.
    """
    sides = []
    for size, k, s, p, n_out in zip(input_hw, g.kernel, g.stride, g.padding, out_hw):
        start = np.arange(n_out) * s - p
        end = np.minimum(start + k, size + p)
        sides.append(end - start if count_include_pad else np.minimum(end, size) - np.maximum(start, 0))
    return np.outer(*sides)


def lowest_value(dtype: np.dtype) -> float | int | bool:
    """What max pooling pads with: a value no element beats (-inf, the integer minimum, False)."""
    if dtype.kind == "f":
        return -np.inf
    return False if dtype.kind == "b" else np.iinfo(dtype).min


def max_indices(padded: np.ndarray, g: Geometry, width: int) -> np.ndarray:
    """(N, C, H_out, W_out) int64: where each window's maximum is, as an index into the flattened H·W input.

    `padded` is the input max pooling's `MaxPool` read: padded by g.padding (and
    ceil_mode's extra rows) with `lowest_value`; `width` is the unpadded W.
    PyTorch's CPU kernel, transcribed: start each window at -inf and its first
    position at or after (0, 0) on the window's (dilated) grid, then visit the
    window's pixels in row-major order and move on to one that is greater (or
    NaN). So ties keep the first maximum, NaN the last NaN, and a window with
    nothing above -inf keeps that first position. One strided view per kernel
    offset, a running maximum and the offset it came from (one byte), then one
    pass to turn offsets into indices; no patch matrix.
    """
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), w = g.kernel, g.stride, g.padding, g.dilation, width
    x, lowest = padded, lowest_value(padded.dtype)  # padding never beats the start value
    ho, wo = _out_hw(x.shape, g.kernel, g.stride, g.dilation)
    views = _window_views(x, g.kernel, (ho, wo), g.stride, g.dilation)
    best = _like(views[0])
    np.copyto(best, views[0])  # offset 0 first: padding there holds `lowest`, which is where PyTorch starts
    offset = _like(best, np.uint8 if kh * kw < 256 else np.int32)  # which kernel offset holds the maximum
    offset[...] = 0
    better, step = _like(best, bool), _like(offset)
    for k, view in enumerate(views[1:], start=1):
        np.greater(view, best, out=better)
        if x.dtype.kind == "f":
            better |= np.isnan(view)
        np.maximum(best, view, out=best)  # NaN wins here too
        # offset = k where better: as arithmetic (wrapping is fine), since a masked copy through a
        # half-true mask runs ~20x slower than three plain passes
        np.subtract(k, offset, out=step, casting="unsafe")
        step *= better
        offset += step
    top, left = np.arange(ho) * sh - ph, np.arange(wo) * sw - pw  # each window's first row and column
    shift = (np.arange(kh)[:, None] * dh * w + np.arange(kw) * dw).ravel()  # offset k → flat shift from (top, left)
    index = shift[offset]
    index += top[:, None] * w + left
    first_h = np.where(top < 0, top + -(top // dh) * dh, top)  # -(top // dh) = ⌈−top / dh⌉
    first_w = np.where(left < 0, left + -(left // dw) * dw, left)
    np.copyto(index, first_h[:, None] * w + first_w, where=best == lowest)  # nothing above the start value
    return index
