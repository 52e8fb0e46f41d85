"""Convolution as three fused primitives, each the others' backward: what `conv2d` runs.

`Conv2d` (forward), `Conv2dInputGrad` (the transposed convolution) and
`Conv2dWeightGrad` are each one primitive with numpy inside, and the backward
of each is made of the other two and itself, so second derivatives work with
no extra code. conv.py's `conv2d_reference` builds the same function from
`Unfold` and `matmul`; the tests check one against the other. Every primitive
splits its batch over the threads (parallel.py).
"""

from __future__ import annotations

import numpy as np

from . import blas, parallel
from .autograd import Function
from .im2col import (
    Geometry,
    Pair,
    _add_shifted,
    _channels_last,
    _copy_channels_last,
    _is_channels_last,
    _to_channels_last,
    im2col,
)


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
