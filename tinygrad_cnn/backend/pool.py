"""Pooling over strided views, not im2col: one view per offset in the window.

For kernel offset (i, j) the view x[:, :, i·dh::sh, j·dw::sw] holds that offset's
pixel of every window (cut to the output size, `layout.window_view`); max or sum
over the kh·kw views is the pooled map, with no copy of the input.
Non-overlapping windows (stride = kernel, the common 2×2) scatter their gradient
by plain assignment; overlapping ones (a 3×3 window with stride 2) add it, offset
by offset, as col2im does. conv/pool.py wraps these kernels in primitives. At
the end: the window arithmetic of PyTorch's pooling options (ceil_mode,
count_include_pad, return_indices), plain numpy on sizes.

`stride=None` means the kernel (windows side by side), `dilation=None` means 1.
Inputs are already padded (conv/functional.py pads first).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from . import threads
from .layout import Geometry, Pair, channels_last, empty_like_layout, is_channels_last, output_size, window_views

Weights = tuple  # (masks: tuple of kh·kw boolean arrays of the output's shape, or None; scale: number or array)


def _steps(kernel: Pair, stride: Pair | None, dilation: Pair | None) -> tuple[Pair, Pair]:
    return stride or kernel, dilation or (1, 1)


def _views(x: np.ndarray, kernel: Pair, out_hw: Pair, stride: Pair | None, dilation: Pair | None) -> list:
    return window_views(x, kernel, out_hw, *_steps(kernel, stride, dilation))


def windows_hw(shape: tuple, kernel: Pair, stride: Pair | None, dilation: Pair | None) -> Pair:
    """How many windows fit along H and W of an (already padded) input of `shape`."""
    (sh, sw), (dh, dw) = _steps(kernel, stride, dilation)
    return output_size(shape[2], kernel[0], sh, 0, dh), output_size(shape[3], kernel[1], sw, 0, dw)


def _overlapping(kernel: Pair, stride: Pair | None, dilation: Pair | None) -> bool:
    """Whether a pixel may lie in two windows (then scatters must add, not assign); erring towards yes."""
    (sh, sw), (dh, dw) = _steps(kernel, stride, dilation)
    return not (dh == dw == 1 and sh >= kernel[0] and sw >= kernel[1])


def _split_batch(work: Callable[[slice], None], shape: tuple) -> None:
    """Run work(slice) over the batch, split over the threads (cost: the elements of one image)."""
    threads.split(work, shape[0], math.prod(shape[1:]))


def _part(scale: float | np.ndarray, s: slice) -> float | np.ndarray:
    return scale[s] if isinstance(scale, np.ndarray) and scale.ndim else scale


def max_pool(x: np.ndarray, kernel: Pair, stride: Pair | None = None, dilation: Pair | None = None) -> np.ndarray:
    """y[window] = max over the window: the running maximum of kh·kw strided views, in x's layout."""
    out_hw = windows_hw(x.shape, kernel, stride, dilation)
    out = empty_like_layout(x, shape=(*x.shape[:2], *out_hw))

    def piece(s: slice) -> None:
        views, part = _views(x[s], kernel, out_hw, stride, dilation), out[s]
        np.maximum(views[0], views[1], out=part) if len(views) > 1 else np.copyto(part, views[0])
        for view in views[2:]:
            np.maximum(part, view, out=part)

    _split_batch(piece, x.shape)
    return out


def window_sum(x: np.ndarray, kernel: Pair, weights: Weights, stride: Pair | None = None,
               dilation: Pair | None = None) -> np.ndarray:
    """y[window] = scale · Σ over the window's kh·kw offsets k of mask_k · x[k] (average pooling: no masks)."""
    masks, scale = weights
    out_hw = windows_hw(x.shape, kernel, stride, dilation)
    out = empty_like_layout(x, shape=(*x.shape[:2], *out_hw))

    def piece(s: slice) -> None:
        views, part = _views(x[s], kernel, out_hw, stride, dilation), out[s]
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

    _split_batch(piece, x.shape)
    return out


def window_scatter(grad: np.ndarray, kernel: Pair, weights: Weights, input_shape: tuple, in_channels_last: bool,
                   stride: Pair | None = None, dilation: Pair | None = None) -> np.ndarray:
    """x[k] += scale · mask_k · y[window] over the windows holding pixel k: `window_sum`'s adjoint."""
    masks, scale = weights
    out = _scatter_target(input_shape, kernel, grad.dtype, in_channels_last, stride, dilation)

    def piece(s: slice) -> None:
        _spread(grad[s], _part(scale, s), None if masks is None else [m[s] for m in masks], kernel, out[s],
                stride, dilation)

    _split_batch(piece, input_shape)
    return out


def max_pool_grad(grad: np.ndarray, kernel: Pair, x: np.ndarray, out: np.ndarray, stride: Pair | None = None,
                  dilation: Pair | None = None) -> tuple[np.ndarray, Weights]:
    """(dx, weights): each window's g shared evenly among the pixels that hold its max, in one pass per thread.

    Each thread, for its slice of the batch, finds the maxima (mask_k = view_k == max),
    counts them per window and spreads g / count through the masks, all while the
    slice is in cache (pool1 of our CNN: 1.4 ms instead of 1.6–1.8 as two passes).
    The weights (masks, 1 / count) are returned too: dx is linear in g with them.
    Windows that tile a channels-last input exactly (the 2×2 pooling of a CNN)
    take `_tiled_max_pool_grad` instead.
    """
    if _tiles_exactly(x.shape, kernel, stride, dilation) and x.transpose(0, 2, 3, 1).flags.c_contiguous:
        return _tiled_max_pool_grad(grad, kernel, x, out)
    masks = tuple(empty_like_layout(out, bool) for _ in range(kernel[0] * kernel[1]))
    scale = empty_like_layout(out)  # 1 / the number of maxima in each window
    dx = _scatter_target(x.shape, kernel, grad.dtype, is_channels_last(x), stride, dilation)
    counter = np.uint8 if len(masks) < 256 else np.int32  # bools add as uint8 views, no cast

    def piece(s: slice) -> None:
        mine = [mask[s] for mask in masks]
        for view, mask in zip(_views(x[s], kernel, out.shape[2:], stride, dilation), mine):
            np.equal(view, out[s], out=mask)
        count = mine[0].astype(counter)
        for mask in mine[1:]:
            count += mask.view(np.uint8) if counter is np.uint8 else mask
        np.divide(scale.dtype.type(1), count, out=scale[s])
        _spread(grad[s], scale[s], mine, kernel, dx[s], stride, dilation)

    _split_batch(piece, x.shape)
    return dx, (masks, scale)


def _tiles_exactly(input_shape: tuple, kernel: Pair, stride: Pair | None, dilation: Pair | None) -> bool:
    """Whether the windows sit side by side and cover every pixel exactly once."""
    return (stride in (None, kernel) and dilation in (None, (1, 1))
            and input_shape[2] % kernel[0] == 0 and input_shape[3] % kernel[1] == 0)


def _tiled_max_pool_grad(grad: np.ndarray, kernel: Pair, x: np.ndarray, out: np.ndarray) -> tuple:
    """`max_pool_grad` for windows that tile a channels-last input: whole-array passes in memory order.

    The memory (N, H, W, C) seen as (N, H_out, kh, W_out, kw, C) holds window (p, q)'s
    offset (i, j) at [:, p, i, q, j]. One comparison with the pooled max, broadcast
    over i and j, gives every mask at once, in x's own layout; one multiply by
    g / count, broadcast the same way, writes dx in one sequential pass. The
    per-offset strided views write dx in kh·kw interleaved passes instead: pool1
    of our CNN, 1.71 ms that way, 1.36 this way; pool2 0.55 against 0.44.
    """
    (kh, kw), (n, c, h, w) = kernel, x.shape
    ho, wo = h // kh, w // kw
    x6 = x.transpose(0, 2, 3, 1).reshape(n, ho, kh, wo, kw, c)
    top = out.transpose(0, 2, 3, 1)[:, :, None, :, None, :]
    g = grad.transpose(0, 2, 3, 1)
    dx = channels_last(x.shape, grad.dtype, fill=None)  # every pixel is written
    dx6 = dx.transpose(0, 2, 3, 1).reshape(n, ho, kh, wo, kw, c)
    is_max = np.empty(x6.shape, bool)
    scale = empty_like_layout(out).transpose(0, 2, 3, 1)  # 1 / the number of maxima in each window
    counter = np.uint8 if kh * kw < 256 else np.int32

    def piece(s: slice) -> None:
        np.equal(x6[s], top[s], out=is_max[s])
        ones = is_max[s].view(np.uint8)
        count = ones[:, :, 0, :, 0].astype(counter)
        for i in range(kh):
            for j in range(kw):
                if i or j:
                    count += ones[:, :, i, :, j]
        np.divide(scale.dtype.type(1), count, out=scale[s])
        scaled = np.multiply(g[s], scale[s])
        np.multiply(is_max[s], scaled[:, :, None, :, None, :], out=dx6[s])

    _split_batch(piece, x.shape)
    masks = tuple(is_max[:, :, i, :, j].transpose(0, 3, 1, 2) for i in range(kh) for j in range(kw))
    return dx, (masks, scale.transpose(0, 3, 1, 2))


def _scatter_target(input_shape: tuple, kernel: Pair, dtype: np.dtype, in_channels_last: bool,
                    stride: Pair | None = None, dilation: Pair | None = None) -> np.ndarray:
    """The array a backward scatters into: zeros unless windows side by side cover every pixel exactly once."""
    covered = (stride is None and dilation in (None, (1, 1))  # every pixel is written once
               and input_shape[2] % kernel[0] == 0 and input_shape[3] % kernel[1] == 0)
    if in_channels_last:
        return channels_last(input_shape, dtype, fill=None if covered else 0.0)
    return np.empty(input_shape, dtype) if covered else np.zeros(input_shape, dtype)


def _spread(grad: np.ndarray, scale: float | np.ndarray, masks: list[np.ndarray] | None, kernel: Pair,
            out: np.ndarray, stride: Pair | None = None, dilation: Pair | None = None) -> None:
    """out[window offset k] (+)= scale · mask_k · grad, through the kh·kw strided views of out (a slice of a batch).

    Where windows overlap, a pixel collects from several (window, offset) pairs:
    then each offset's share is added (out starts at zero), one offset at a time,
    as col2im adds; side by side, each pixel is written once and assignment does.
    """
    scaled = empty_like_layout(out, grad.dtype, grad.shape)
    np.multiply(grad, scale, out=scaled)  # one pass that also puts g in out's layout
    add = _overlapping(kernel, stride, dilation)
    share = empty_like_layout(scaled) if add and masks is not None else None
    for k, view in enumerate(_views(out, kernel, grad.shape[2:], stride, dilation)):
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

    `padded` is the input max pooling read: padded by g.padding (and ceil_mode's
    extra rows) with `lowest_value`; `width` is the unpadded W.
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
    ho, wo = windows_hw(x.shape, g.kernel, g.stride, g.dilation)
    views = window_views(x, g.kernel, (ho, wo), g.stride, g.dilation)
    best = empty_like_layout(views[0])
    np.copyto(best, views[0])  # offset 0 first: padding there holds `lowest`, which is where PyTorch starts
    offset = empty_like_layout(best, np.uint8 if kh * kw < 256 else np.int32)  # which kernel offset holds the max
    offset[...] = 0
    better, step = empty_like_layout(best, bool), empty_like_layout(offset)
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
