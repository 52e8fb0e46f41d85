"""Convolution and pooling: how a convolution layer becomes one matrix multiply.

im2col ("image to columns") copies every receptive field of the input into one
row of a patch matrix. A convolution is then a single GEMM of that matrix with
the filters laid out as columns::

    input x (C = 1, 4×4)        3×3 windows, stride 1           patch matrix P (L × kh·kw)
    ┌────┬────┬────┬────┐       ┌──────────────┐                 row 0: a b c  e f g  i j k
    │ a  │ b  │ c  │ d  │       │ a b c        │ window 0        row 1: b c d  f g h  j k l
    ├────┼────┼────┼────┤       │ e f g  ...   │ window 1        row 2: e f g  i j k  m n o
    │ e  │ f  │ g  │ h  │  ──▶  │ i j k        │   ...     ──▶   row 3: f g h  j k l  n o p
    ├────┼────┼────┼────┤       └──────────────┘
    │ i  │ j  │ k  │ l  │                                       out (L × C_out) = P @ Wᵀ
    ├────┼────┼────┼────┤       W: (C_out, C·kh·kw), one filter per row
    │ m  │ n  │ o  │ p  │       out reshaped to (N, C_out, H_out, W_out)
    └────┴────┴────┴────┘

col2im ("fold") is the adjoint of im2col: it adds every row of a patch-shaped
array back onto the pixels it came from (overlaps sum). That is exactly the
gradient of im2col, and im2col is the gradient of col2im; so `Unfold` and
`Fold` below are each other's backward, and convolution and pooling built on
them are differentiable twice with no extra code.

Memory layout (docs/im2col.md has the measurements): activations are logically
NCHW, as in PyTorch, but stored NHWC. A patch then holds runs of kw·C
contiguous floats, the im2col copy is fast, and the GEMM's (N·H·W, C_out)
result *is* the NHWC output, so no transpose is ever copied.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import blas, parallel
from .autograd import Function

if TYPE_CHECKING:
    from .tensor import Tensor

Pair = tuple[int, int]


# ------------------------------------------------------------------ geometry
def pair(value: Any, name: str, op: str, minimum: int) -> Pair:
    """An int or a pair of ints, as PyTorch accepts for every size argument."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value), int(value))
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if min(value) < minimum:
        raise ValueError(f"{op}: {name} must be at least {minimum}, got {tuple(value)}")
    return int(value[0]), int(value[1])


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """How many windows fit: ⌊(size + 2·padding − dilation·(kernel − 1) − 1) / stride⌋ + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


class Geometry(NamedTuple):
    """Where the windows are: kernel size, stride, padding and dilation, each (along H, along W)."""

    kernel: Pair
    stride: Pair
    padding: Pair
    dilation: Pair

    def output_hw(self, h: int, w: int) -> Pair:
        return tuple(output_size(s, *args) for s, *args in zip((h, w), self.kernel, self.stride, self.padding,
                                                                self.dilation))  # type: ignore[return-value]


def _check_4d(x: Tensor, op: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W), got shape {x.shape}")


def _check_fits(shape: tuple, g: Geometry, op: str) -> None:
    h, w = shape[2] + 2 * g.padding[0], shape[3] + 2 * g.padding[1]
    if g.dilation[0] * (g.kernel[0] - 1) + 1 > h or g.dilation[1] * (g.kernel[1] - 1) + 1 > w:
        raise ValueError(f"{op}: kernel {g.kernel} (dilation {g.dilation}) is larger than the padded input "
                         f"({h}×{w}) for input shape {shape}")


def _channels_last(shape: tuple, dtype: np.dtype, fill: float | None = 0.0) -> np.ndarray:
    """A logical (N, C, H, W) array stored as (N, H, W, C): the layout every op here keeps."""
    n, c, h, w = shape
    buffer = np.empty((n, h, w, c), dtype=dtype) if fill is None else np.full((n, h, w, c), fill, dtype=dtype)
    return buffer.transpose(0, 3, 1, 2)


def _padded_nhwc(x: np.ndarray, padding: Pair, value: float) -> np.ndarray:
    """x (N, C, H, W) → its (N, H + 2ph, W + 2pw, C) channels-last view, padded with `value`."""
    nhwc = x.transpose(0, 2, 3, 1)
    ph, pw = padding
    if not (ph or pw):
        return nhwc
    n, h, w, c = nhwc.shape
    out = np.empty((n, h + 2 * ph, w + 2 * pw, c), dtype=x.dtype)
    out[:, :ph], out[:, h + ph:], out[:, :, :pw], out[:, :, w + pw:] = value, value, value, value
    out[:, ph:h + ph, pw:w + pw] = nhwc
    return out


def im2col(x: np.ndarray, g: Geometry, value: float = 0.0, out: np.ndarray | None = None) -> np.ndarray:
    """x (N, C, H, W) → patches (N, H_out, W_out, kh, kw, C): one copy of a strided view (into `out` if given).

    Read from channels-last memory, each (kw, C) row of a patch is one contiguous run.
    """
    src = _padded_nhwc(x, g.padding, value)
    n, hp, wp, c = src.shape
    (kh, kw), (sh, sw), (dh, dw) = g.kernel, g.stride, g.dilation
    ho, wo = (hp - dh * (kh - 1) - 1) // sh + 1, (wp - dw * (kw - 1) - 1) // sw + 1
    s_n, s_h, s_w, s_c = src.strides
    windows = as_strided(src, (n, ho, wo, kh, kw, c), (s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c),
                         writeable=False)
    if out is None:
        return np.ascontiguousarray(windows)
    np.copyto(out, windows)
    return out


def col2im(patches: np.ndarray, input_shape: tuple, g: Geometry) -> np.ndarray:
    """patches (N, H_out, W_out, kh, kw, C) → x (N, C, H, W), overlapping windows summed."""
    return _add_shifted(patches.transpose(3, 4, 0, 1, 2, 5), input_shape, g)


def _add_shifted(per_offset: np.ndarray, input_shape: tuple, g: Geometry) -> np.ndarray:
    """col2im from offset-major patches (kh, kw, N, H_out, W_out, C): one strided add per kernel offset.

    Never `np.add.at`. When each per_offset[i, j] is contiguous (the transposed
    convolution builds it so), every add runs over long contiguous rows; from the
    patch-major layout numpy has to buffer each add (measured 1.6x slower).
    """
    n, c, h, w = input_shape
    kh, kw, _, ho, wo, _ = per_offset.shape
    (sh, sw), (ph, pw), (dh, dw) = g.stride, g.padding, g.dilation
    out = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=per_offset.dtype)
    for i in range(kh):
        rows = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)
        for j in range(kw):
            out[:, rows, j * dw:j * dw + sw * (wo - 1) + 1:sw] += per_offset[i, j]
    return out[:, ph:ph + h, pw:pw + w].transpose(0, 3, 1, 2)


# ------------------------------------------------------------------ im2col / col2im as primitives
class Unfold(Function):
    """im2col as a primitive: x (N, C, H, W) → patches (N, H_out, W_out, kh, kw, C).

    Padding is filled with `value` (0 for convolution, -inf for max pooling).
    ⇒ d x = Fold(g): every patch gradient is added back where it came from.
    """

    def forward(ctx, x, geometry, value=0.0):
        ctx.geometry, ctx.input_shape = geometry, x.shape
        return im2col(x, geometry, value)

    def backward(ctx, grad):
        return Fold.apply(grad, input_shape=ctx.input_shape, geometry=ctx.geometry)


class Fold(Function):
    """col2im as a primitive: patches (N, H_out, W_out, kh, kw, C) → x (N, C, H, W), overlaps summed.

    ⇒ d patches = Unfold(g): the adjoint of a sum-scatter is a gather.
    """

    def forward(ctx, patches, input_shape, geometry):
        ctx.geometry = geometry
        return col2im(patches, input_shape, geometry)

    def backward(ctx, grad):
        return Unfold.apply(grad, geometry=ctx.geometry)


# ------------------------------------------------------------------ convolution as three fused primitives
def _copy_channels_last(a: np.ndarray) -> np.ndarray:
    """a (N, C, H, W) copied into channels-last memory, the batch split over the threads."""
    out = _channels_last(a.shape, a.dtype, fill=None)
    parallel.run(lambda s: np.copyto(out[s], a[s]), parallel.chunks(a.shape[0], a[0].size))
    return out


def _to_channels_last(a: np.ndarray) -> np.ndarray:
    """a itself if its memory is already channels-last (always so with one channel), else a channels-last copy."""
    return a if _is_channels_last(a) or a.shape[1] == 1 else _copy_channels_last(a)


def _rows(g: np.ndarray) -> np.ndarray:
    """(N, C, H, W) → (N·H·W, C): free when g is channels-last in memory, one copy otherwise."""
    nhwc = _to_channels_last(g).transpose(0, 2, 3, 1)
    return nhwc.reshape(-1, nhwc.shape[3])


def _filters_as_rows(w: np.ndarray) -> np.ndarray:
    """(C_out, C, kh, kw) → (C_out, kh·kw·C), the patch order of im2col (a small copy)."""
    return w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1)


def _batch_chunks(n: int, out_hw: Pair, per_pixel: int) -> list[slice]:
    """The batch split for a conv primitive: per_pixel counts the elements copied or multiplied per output pixel."""
    return parallel.chunks(n, out_hw[0] * out_hw[1] * per_pixel)


class Conv2d(Function):
    """y = conv(x, w) + b: im2col, one GEMM, the bias added in place. The output is channels-last.

    ⇒ d x = Conv2dInputGrad(g, w)  (a transposed convolution)
      d w = Conv2dWeightGrad(x, g) (patchesᵀ @ g)
      d b = Σ g over N, H, W
    Each of those is a primitive whose backward is made of the other two and
    this one, so second derivatives work. `conv2d_reference` (unfold + matmul)
    is the composite version the tests compare against. Each slice of the batch
    (parallel.py) builds its own patches and runs its own GEMM.
    """

    def forward(ctx, x, w, b=None, geometry=None):
        ctx.geometry = geometry
        n, c = x.shape[:2]
        (kh, kw), c_out = geometry.kernel, w.shape[0]
        ho, wo = geometry.output_hw(*x.shape[2:])
        filters = _filters_as_rows(w).T  # (kh·kw·C, C_out)
        patches = np.empty((n, ho, wo, kh, kw, c), x.dtype)
        out = np.empty((n, ho, wo, c_out), np.result_type(x.dtype, w.dtype))

        def piece(s: slice) -> None:
            cols = im2col(x[s], geometry, out=patches[s]).reshape(-1, kh * kw * c)
            rows = blas.matmul_into(cols, filters, out[s].reshape(-1, c_out))
            if b is not None:
                rows += b

        parallel.run(piece, _batch_chunks(n, (ho, wo), kh * kw * c + c_out))
        ctx.save_for_backward(patches)
        return out.transpose(0, 3, 1, 2)

    def backward(ctx, grad):
        x, w = ctx.inputs[:2]
        need = ctx.needs_input_grad
        (patches,) = ctx.saved_tensors
        if not _is_channels_last(grad.data):  # both gradients read g as (rows, C_out): copy it once, not twice
            grad = ChannelsLast.apply(grad)
        grad_x = Conv2dInputGrad.apply(grad, w, geometry=ctx.geometry, input_shape=x.shape) if need[0] else None
        grad_w = Conv2dWeightGrad.apply(x, grad, geometry=ctx.geometry, weight_shape=w.shape,
                                        patches=patches) if need[1] else None
        if len(ctx.inputs) == 2:
            return grad_x, grad_w
        return grad_x, grad_w, (grad.sum(axis=(0, 2, 3)) if need[2] else None)


class ChannelsLast(Function):
    """y = x, copied into channels-last memory (the values do not change)  ⇒  dx = g."""

    def forward(ctx, x):
        return _copy_channels_last(x)

    def backward(ctx, grad):
        return grad


class Conv2dInputGrad(Function):
    """z = the gradient of conv(x, w) with respect to x, for an output gradient g (a transposed convolution).

    Each kernel offset (i, j) contributes g @ w[:, :, i, j] to the input pixels
    that offset touched. With stride 1 those pixels form one contiguous block
    of the *padded* input read as a flat (pixels, C) matrix, only shifted by
    i·W_padded + j rows. So g is laid out on the padded grid too (zeros where
    no output exists) and each offset is one GEMM that adds straight into its
    shifted block (blas.matmul_into, β = 1): no patch matrix, no extra pass.

        padded input, flat ─▶ row p + i·Wp + j  +=  (g row p) @ w_ij      for every p

    The rows that wrap past a row's end land in the padding, which is cut off.
    With a stride (or one input channel, where a GEMM per offset would be a
    matrix-vector product), the offsets' shares are computed as contiguous
    blocks and col2im adds them on.
    ⇒ d g = conv(gz, w),  d w = Conv2dWeightGrad(gz, g)   (z is linear in g and in w)
    """

    def forward(ctx, g, w, geometry, input_shape):
        ctx.geometry = geometry
        n, _, ho, wo = g.shape
        (kh, kw), (c_out, c) = geometry.kernel, w.shape[:2]
        rows = _rows(g)
        pieces = _batch_chunks(n, (ho, wo), kh * kw * (c + c_out))
        if geometry.stride == (1, 1) and c > 1:
            return _input_grad_shifted_gemms(rows.reshape(n, ho, wo, c_out), w, geometry, input_shape, pieces)
        per_sample = ho * wo
        if c == 1:  # one GEMM (kh·kw, C_out) @ gᵀ: per offset it would be a matrix-vector product
            filters = w.reshape(c_out, kh * kw).T
            share = lambda s: filters @ rows[s.start * per_sample:s.stop * per_sample].T  # noqa: E731
        else:  # (kh·kw, rows, C): one GEMM per offset
            filters = w.transpose(2, 3, 0, 1).reshape(kh * kw, c_out, c)
            share = lambda s: np.matmul(rows[s.start * per_sample:s.stop * per_sample], filters)  # noqa: E731
        out = _channels_last(input_shape, np.result_type(g.dtype, w.dtype), fill=None)

        def piece(s: slice) -> None:
            per_offset = share(s).reshape(kh, kw, s.stop - s.start, ho, wo, c)
            out[s] = _add_shifted(per_offset, out[s].shape, geometry)

        parallel.run(piece, pieces)
        return out

    def backward(ctx, grad):
        g, w = ctx.inputs
        need_g, need_w = ctx.needs_input_grad
        grad_g = Conv2d.apply(grad, w, geometry=ctx.geometry) if need_g else None
        grad_w = Conv2dWeightGrad.apply(grad, g, geometry=ctx.geometry, weight_shape=w.shape) if need_w else None
        return grad_g, grad_w


def _input_grad_shifted_gemms(g: np.ndarray, w: np.ndarray, geometry: Geometry, input_shape: tuple,
                              pieces: list[slice]) -> np.ndarray:
    """Conv2dInputGrad for stride 1: g (N, H_out, W_out, C_out) → the input gradient, channels-last."""
    n, c, h, w_in = input_shape
    (kh, kw), (ph, pw), (dh, dw) = geometry.kernel, geometry.padding, geometry.dilation
    _, ho, wo, c_out = g.shape
    hp, wp = h + 2 * ph, w_in + 2 * pw
    dtype = np.result_type(g.dtype, w.dtype)
    filters = np.ascontiguousarray(w.transpose(2, 3, 0, 1), dtype=dtype)  # filters[i, j]: (C_out, C)
    g_padded = np.empty((n, hp, wp, c_out), dtype)  # g where outputs exist, 0 elsewhere
    out = np.empty((n, hp, wp, c), dtype)
    last = (kh - 1) * dh * wp + (kw - 1) * dw  # the largest shift; rows past size - last are all zero in g

    def piece(s: slice) -> None:
        block = g_padded[s]
        block[:, :ho, :wo], block[:, :ho, wo:], block[:, ho:] = g[s], 0, 0
        flat_g, flat_out = block.reshape(-1, c_out), out[s].reshape(-1, c)
        flat_out[...] = 0
        used = flat_g.shape[0] - last
        for i in range(kh):
            for j in range(kw):
                shift = i * dh * wp + j * dw
                blas.matmul_into(flat_g[:used], filters[i, j], flat_out[shift:shift + used], accumulate=True)

    parallel.run(piece, pieces)
    return out[:, ph:ph + h, pw:pw + w_in].transpose(0, 3, 1, 2)


class Conv2dWeightGrad(Function):
    """z = the gradient of conv(x, w) with respect to w, for an output gradient g: gᵀ @ patches(x).

    ⇒ d x = Conv2dInputGrad(g, gz),  d g = conv(x, gz)   (z is linear in x and in g)
    `patches` passes those the forward convolution already built (an optimisation
    only). Each slice of the batch computes its own (kh·kw·C, C_out) product; they are summed.
    """

    def forward(ctx, x, g, geometry, weight_shape, patches=None):
        ctx.geometry = geometry
        c_out, c, kh, kw = weight_shape
        n, _, ho, wo = g.shape
        rows = _rows(g)

        def piece(s: slice) -> np.ndarray:
            block = im2col(x[s], geometry) if patches is None else patches[s]
            # colsᵀ @ g, not gᵀ @ cols: the same numbers, but OpenBLAS runs this orientation ~10% faster here
            return block.reshape(-1, kh * kw * c).T @ rows[s.start * ho * wo:s.stop * ho * wo]

        total = sum(parallel.run(piece, _batch_chunks(n, (ho, wo), kh * kw * c + c_out)))
        return total.reshape(kh, kw, c, c_out).transpose(3, 2, 0, 1).copy()

    def backward(ctx, grad):
        x, g = ctx.inputs
        need_x, need_g = ctx.needs_input_grad
        grad_x = Conv2dInputGrad.apply(g, grad, geometry=ctx.geometry, input_shape=x.shape) if need_x else None
        grad_g = Conv2d.apply(x, grad, geometry=ctx.geometry) if need_g else None
        return grad_x, grad_g


# ------------------------------------------------------------------ non-overlapping windows
def _window_views(x: np.ndarray, kernel: Pair, out_hw: Pair) -> list[np.ndarray]:
    """The kh·kw strided views x[:, :, i::kh, j::kw], one per offset in the window (no copy)."""
    (kh, kw), (ho, wo) = kernel, out_hw
    return [x[:, :, i:i + kh * ho:kh, j:j + kw * wo:kw] for i in range(kh) for j in range(kw)]


class WindowSum(Function):
    """y[window] = scale · Σ over the window's kh·kw offsets k of mask_k · x[k] (stride = kernel).

    `weights` is (masks, scale): masks a tuple of kh·kw boolean arrays of y's shape (or
    None: all ones), scale a number or an array of y's shape. With (None, 1/(kh·kw))
    this is average pooling; with max pooling's masks it is the adjoint of max
    pooling's backward. ⇒ d x = WindowScatter(g) (the weights are constants).
    """

    def forward(ctx, x, kernel, weights):
        ctx.kernel, ctx.weights, ctx.input_shape = kernel, weights, x.shape
        masks, scale = weights
        ho, wo = x.shape[2] // kernel[0], x.shape[3] // kernel[1]
        views = _window_views(x, kernel, (ho, wo))
        out = _like(views[0])
        if masks is None:
            np.add(views[0], views[1], out=out) if len(views) > 1 else np.copyto(out, views[0])
            for view in views[2:]:
                out += view
        else:
            np.multiply(views[0], masks[0], out=out)
            for view, mask in zip(views[1:], masks[1:]):
                out += view * mask
        out *= scale
        return out

    def backward(ctx, grad):
        return WindowScatter.apply(grad, kernel=ctx.kernel, weights=ctx.weights, input_shape=ctx.input_shape,
                                   channels_last=_is_channels_last(grad.data))


class WindowScatter(Function):
    """x[k] = scale · mask_k · y[window]: each window's value spread over its pixels.

    The adjoint of WindowSum (pixels outside every window get 0); the result is
    laid out channels-last or not as asked. ⇒ d y = WindowSum(g).
    """

    def forward(ctx, grad, kernel, weights, input_shape, channels_last):
        ctx.kernel, ctx.weights = kernel, weights
        masks, scale = weights
        covered = input_shape[2] % kernel[0] == 0 and input_shape[3] % kernel[1] == 0  # every pixel is written
        fill = None if covered else 0.0
        out = (_channels_last(input_shape, grad.dtype, fill) if channels_last else
               np.empty(input_shape, grad.dtype) if covered else np.zeros(input_shape, grad.dtype))
        views = _window_views(out, kernel, grad.shape[2:])
        scaled = _channels_last(grad.shape, grad.dtype, fill=None) if channels_last else np.empty_like(grad)
        np.multiply(grad, scale, out=scaled)  # one pass that also puts g in the output's layout
        for k, view in enumerate(views):
            if masks is None:
                view[...] = scaled
            else:
                np.multiply(scaled, masks[k], out=view)
        return out

    def backward(ctx, grad):
        return WindowSum.apply(grad, kernel=ctx.kernel, weights=ctx.weights)


class MaxPool(Function):
    """y[window] = max over the window (stride = kernel, no padding): the max of kh·kw strided views.

    ⇒ d x = WindowScatter(g, (masks, 1/count)): each pixel that holds its window's
    max gets an equal share of the window's gradient (ties split evenly, as the
    contract says; after a ReLU, all-zero windows are common).
    """

    def forward(ctx, x, kernel):
        ctx.kernel = kernel
        ho, wo = x.shape[2] // kernel[0], x.shape[3] // kernel[1]
        views = _window_views(x, kernel, (ho, wo))
        out = _like(views[0])
        np.maximum(views[0], views[1], out=out) if len(views) > 1 else np.copyto(out, views[0])
        for view in views[2:]:
            np.maximum(out, view, out=out)
        ctx.save_for_backward(out)
        return out

    def backward(ctx, grad):
        x = ctx.inputs[0].data
        (out,) = ctx.saved_tensors
        masks = tuple(view == out for view in _window_views(x, ctx.kernel, out.shape[2:]))
        count = masks[0].astype(x.dtype)
        for mask in masks[1:]:
            count += mask
        return WindowScatter.apply(grad, kernel=ctx.kernel, weights=(masks, np.reciprocal(count, out=count)),
                                   input_shape=x.shape, channels_last=_is_channels_last(x))


def _is_channels_last(a: np.ndarray) -> bool:
    return a.ndim == 4 and a.strides[1] < a.strides[3]


def _like(a: np.ndarray) -> np.ndarray:
    """An empty array with a's shape, in the same memory layout (NCHW or channels-last)."""
    return _channels_last(a.shape, a.dtype, fill=None) if _is_channels_last(a) else np.empty(a.shape, a.dtype)


# ------------------------------------------------------------------ the public functions
def _geometry(x: Tensor, op: str, kernel: Any, stride: Any, padding: Any, dilation: Any) -> Geometry:
    _check_4d(x, op)
    g = Geometry(pair(kernel, "kernel_size", op, 1), pair(stride, "stride", op, 1), pair(padding, "padding", op, 0),
                 pair(dilation, "dilation", op, 1))
    _check_fits(x.shape, g, op)
    return g


def unfold2d(x: Tensor, kernel_size: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1) -> Tensor:
    """(N, C, H, W) → (N, C·kh·kw, L) exactly like `torch.nn.functional.unfold`."""
    patches = Unfold.apply(x, geometry=_geometry(x, "unfold2d", kernel_size, stride, padding, dilation))
    n, ho, wo, kh, kw, c = patches.shape
    return patches.permute(0, 5, 3, 4, 1, 2).reshape(n, c * kh * kw, ho * wo)


def _conv_geometry(x: Tensor, weight: Tensor, bias: Tensor | None, stride: Any, padding: Any, dilation: Any,
                   groups: int) -> Geometry:
    op = "conv2d"
    _check_4d(x, op)
    if weight.ndim != 4:
        raise ValueError(f"{op}: weight must be 4-D (C_out, C_in/groups, kh, kw), got shape {weight.shape}")
    c, (c_out, c_group) = x.shape[1], weight.shape[:2]
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool):
        raise TypeError(f"{op}: groups must be an int, got {groups!r}")
    if x.dtype != weight.dtype:
        raise TypeError(f"{op}: input is {x.dtype} but weight is {weight.dtype}; cast one with .astype()")
    if groups < 1 or c % groups or c_out % groups:
        raise ValueError(f"{op}: groups={groups} must divide both the input channels ({c}) and the output "
                         f"channels ({c_out}); input shape {x.shape}, weight shape {weight.shape}")
    if c_group * groups != c:
        raise ValueError(f"{op}: input of shape {x.shape} has {c} channels, but weight of shape {weight.shape} "
                         f"expects {c_group * groups} (= {c_group} per group × {groups} groups)")
    if bias is not None and bias.shape != (c_out,):
        raise ValueError(f"{op}: bias must have shape ({c_out},) for weight of shape {weight.shape}, got {bias.shape}")
    return _geometry(x, op, weight.shape[2:], stride, padding, dilation)


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    """Cross-correlation of NCHW `x` with `weight` (C_out, C_in/groups, kh, kw), as `torch.nn.functional.conv2d`.

    groups = 1 takes the fused `Conv2d` primitive; grouped convolutions take the composite.
    """
    geometry = _conv_geometry(x, weight, bias, stride, padding, dilation, groups)
    if bias is not None:
        bias = bias.astype(weight.dtype)  # a float64 bias never turns a float32 network into float64
    if groups != 1:
        return conv2d_reference(x, weight, bias, stride, padding, dilation, int(groups))
    return Conv2d.apply(*((x, weight) if bias is None else (x, weight, bias)), geometry=geometry)


def conv2d_reference(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
                     dilation: Any = 1, groups: int = 1) -> Tensor:
    """conv2d as a composite: im2col (`Unfold`), one (batched over groups) matmul, a reshape.

    Slower than the fused primitive, but built only from primitives tested on
    their own; the tests check `conv2d` against it.
    """
    geometry = _conv_geometry(x, weight, bias, stride, padding, dilation, groups)
    n, c = x.shape[:2]
    c_out, c_group, kh, kw = weight.shape
    patches = Unfold.apply(x, geometry=geometry)  # (N, Ho, Wo, kh, kw, C)
    _, ho, wo = patches.shape[:3]
    rows = n * ho * wo
    if groups == 1:
        out = patches.reshape(rows, kh * kw * c) @ weight.permute(0, 2, 3, 1).reshape(c_out, kh * kw * c).T
    else:
        g, c_out_g = groups, c_out // groups
        cols = patches.reshape(rows, kh * kw, g, c_group).permute(2, 0, 1, 3).reshape(g, rows, kh * kw * c_group)
        w = weight.reshape(g, c_out_g, c_group, kh, kw).permute(0, 3, 4, 2, 1).reshape(g, kh * kw * c_group, c_out_g)
        out = (cols @ w).permute(1, 0, 2).reshape(rows, c_out)
    if bias is not None:
        out = out + bias
    return out.reshape(n, ho, wo, c_out).permute(0, 3, 1, 2)


def _pool_geometry(x: Tensor, kernel_size: Any, stride: Any, padding: Any, op: str) -> Geometry:
    kernel = pair(kernel_size, "kernel_size", op, 1)
    g = _geometry(x, op, kernel, kernel if stride is None else stride, padding, 1)
    if g.padding[0] > kernel[0] // 2 or g.padding[1] > kernel[1] // 2:
        raise ValueError(f"{op}: padding {g.padding} must be at most half the kernel size {kernel}")
    return g


def _pad_hw(x: Tensor, padding: Pair, value: float) -> Tensor:
    ph, pw = padding
    return x.pad(((0, 0), (0, 0), (ph, ph), (pw, pw)), value=value) if ph or pw else x


def max_pool2d(x: Tensor, kernel_size: Any = 2, stride: Any = None, padding: Any = 0) -> Tensor:
    """Max over each window (padding with -inf); the gradient is split evenly among tied maxima."""
    g = _pool_geometry(x, kernel_size, stride, padding, "max_pool2d")
    if g.stride == g.kernel:  # non-overlapping windows: the max of kh·kw strided views
        return MaxPool.apply(_pad_hw(x, g.padding, -np.inf), kernel=g.kernel)
    patches = Unfold.apply(x, geometry=g, value=-np.inf)
    n, ho, wo, kh, kw, c = patches.shape
    return patches.reshape(n, ho, wo, kh * kw, c).max(axis=3).permute(0, 3, 1, 2)


def avg_pool2d(x: Tensor, kernel_size: Any = 2, stride: Any = None, padding: Any = 0) -> Tensor:
    """Mean over each window; padded zeros count in the divisor (PyTorch's count_include_pad=True)."""
    g = _pool_geometry(x, kernel_size, stride, padding, "avg_pool2d")
    if x.dtype.kind != "f":
        x = x.astype(np.float32)  # a mean of integers is a float, as in Tensor.mean
    if g.stride == g.kernel:
        return WindowSum.apply(_pad_hw(x, g.padding, 0.0), kernel=g.kernel,
                               weights=(None, 1.0 / (g.kernel[0] * g.kernel[1])))
    patches = Unfold.apply(x, geometry=g)
    n, ho, wo, kh, kw, c = patches.shape
    return patches.reshape(n, ho, wo, kh * kw, c).mean(axis=3).permute(0, 3, 1, 2)
