"""The convolution's numbers: forward as im2col + one GEMM, and its three gradients in one pass.

conv/fast.py wraps these in primitives (`Conv2dFn` and its gradient
primitives); conv/reference.py builds the same function from `UnfoldFn` and a
matmul, and the tests check one against the other. Every kernel splits its
batch over the threads (threads.py): each slice builds its own patches and
runs its own GEMMs into disjoint rows of one output.

Index patterns (einsum style), with P the patch matrix of x:
    forward        out[n,p,q,o]  = Σ_{i,j,c} P[n,p,q,i,j,c] · w[o,c,i,j] + b[o]
    weight grad    dw[o,c,i,j]   = Σ_{n,p,q} P[n,p,q,i,j,c] · g[n,o,p,q]
    bias grad      db[o]         = Σ_{n,p,q} g[n,o,p,q]
    input grad     dx[n,c,y,x]   = Σ_{o,i,j} g[n,o,p,q] · w[o,c,i,j]  where y = p·sh + i·dh − ph, x = q·sw + j·dw − pw
"""

from __future__ import annotations

import numpy as np

from . import blas, threads
from .im2col import Patches, add_shifted
from .layout import Geometry, Pair, channels_last
from .reduce import column_sums


def rows_of(g: np.ndarray, images: slice = slice(None)) -> np.ndarray:
    """Images `images` of g (N, C, H, W) as a (rows, C) matrix: a view if g is channels-last, else a copy."""
    part = g[images].transpose(0, 2, 3, 1)
    return np.ascontiguousarray(part).reshape(-1, part.shape[3])


def _filters_as_rows(w: np.ndarray) -> np.ndarray:
    """(C_out, C, kh, kw) → (C_out, kh·kw·C), the patch order of im2col (a small copy)."""
    return w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1)


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geometry: Geometry) -> tuple:
    """(conv(x, w) + b as a channels-last (N, C_out, H_out, W_out) array, the `Patches` of x for the weight gradient).

    #nhwijc,ijco -> nhwo: each slice of the batch fills its patches and runs one
    GEMM that adds onto the bias already written in its rows of the output.
    """
    n, c = x.shape[:2]
    (kh, kw), c_out = geometry.kernel, w.shape[0]
    ho, wo = geometry.output_hw(*x.shape[2:])
    filters = _filters_as_rows(w).T  # (kh·kw·C, C_out)
    patches = Patches(x.shape, x.dtype, geometry)
    out = np.empty((n, ho, wo, c_out), np.result_type(x.dtype, w.dtype))

    def piece(s: slice) -> None:
        cols = patches.fill(x, s)
        rows = out[s].reshape(-1, c_out)
        if b is not None:  # the bias first, then C += A @ B: with β = 0 OpenBLAS would zero C in a pass of its own
            rows[...] = b
        blas.matmul_into(cols, filters, rows, accumulate=b is not None)

    threads.split(piece, n, ho * wo * (kh * kw * c + c_out))
    return out.transpose(0, 3, 1, 2), patches


def conv2d_gradients(g: np.ndarray, geometry: Geometry, input_shape: tuple, weight_shape: tuple, need: tuple,
                     x: np.ndarray | None = None, w: np.ndarray | None = None,
                     patches: Patches | None = None) -> tuple:
    """(d x, d w, d b) of conv(x, w) + b for the output gradient g, each only if `need` says so (else None).

    d x needs w, d w needs x (or `patches`, the forward's im2col of x, if it kept
    them). One pass over slices of the batch, one thread each: a slice's g is
    turned into (rows, C_out) once (free if it is channels-last) and used by all three.
    """
    need_x, need_w, need_b = need
    n, c_out, ho, wo = g.shape
    (kh, kw), c = geometry.kernel, weight_shape[1]
    grad_x = filters = None
    if need_x:
        dtype = np.result_type(g.dtype, w.dtype)
        grad_x = channels_last(input_shape, dtype, fill=None)
        filters = np.ascontiguousarray(w.transpose(2, 3, 0, 1), dtype=dtype)  # filters[i, j]: (C_out, C)

    def piece(s: slice) -> tuple:
        rows = rows_of(g, s)
        if need_x:
            _input_grad_into(grad_x[s].transpose(0, 2, 3, 1), rows, filters, geometry, (ho, wo))
        part_w = part_b = None
        if need_w:
            if patches is None:  # the weight gradient on its own: this slice's patches, made here
                cols = Patches(x[s].shape, x.dtype, geometry).fill(x[s], slice(None))
            else:
                cols = patches.rows(s)
            # colsᵀ @ g, not gᵀ @ cols: the same numbers, but OpenBLAS runs this orientation ~10% faster here
            part_w = cols.T @ rows
        if need_b:
            part_b = column_sums(rows)
        return part_w, part_b

    parts = threads.split(piece, n, ho * wo * kh * kw * (c + c_out))
    grad_w = sum(p[0] for p in parts).reshape(kh, kw, c, c_out).transpose(3, 2, 0, 1).copy() if need_w else None
    grad_b = sum(p[1] for p in parts) if need_b else None
    return grad_x, grad_w, grad_b


def _input_grad_into(out: np.ndarray, rows: np.ndarray, filters: np.ndarray, geometry: Geometry,
                     out_hw: Pair) -> None:
    """out (m, H, W, C) ← the input gradient of m images whose output gradient is `rows` (m·H_out·W_out, C_out).

    `filters[i, j]` is w[:, :, i, j], (C_out, C). Stride 1 with several input
    channels takes `shifted_gemms_into`. Otherwise one GEMM gives every kernel
    offset's share of every patch gradient (one contiguous block per offset; with
    one input channel, one strided column per offset of a pixel-major product),
    and col2im adds each onto the input, shifted by its offset.
    """
    m, h, w_in, c = out.shape
    (kh, kw), c_out, (ho, wo) = geometry.kernel, rows.shape[1], out_hw
    if out.size == 0:  # an empty batch: nothing to write (and no grid to lay out)
        return
    if geometry.stride == (1, 1) and c > 1:
        shifted_gemms_into(out, rows, filters, geometry, out_hw)
        return
    if c == 1:  # one GEMM g @ (C_out, kh·kw): per offset it would be a matrix-vector product
        # pixel-major (rows, kh·kw), each offset a strided column: 0.60 ms against 0.70 for the
        # offset-major gᵀ product, whose output is contiguous per offset but whose GEMM is slower
        by_pixel = rows @ filters.reshape(kh * kw, c_out).T
        per_offset = by_pixel.reshape(m, ho, wo, kh, kw, 1).transpose(3, 4, 0, 1, 2, 5)
    else:  # (kh·kw, rows, C): one GEMM per offset
        per_offset = np.matmul(rows, filters.reshape(kh * kw, c_out, c)).reshape(kh, kw, m, ho, wo, c)
    summed = add_shifted(per_offset, (m, c, h, w_in), geometry)
    out[...] = summed.transpose(0, 2, 3, 1)


def shifted_gemms_into(out: np.ndarray, rows: np.ndarray, filters: np.ndarray, geometry: Geometry,
                        out_hw: Pair) -> None:
    """The input gradient for stride 1: one GEMM per kernel row, added straight into a shifted block.

    Offset (i, j) adds (g row p) @ w_ij onto the input pixel p + (i·dh, j·dw)
    for every output p. Lay the input out as one flat (pixels, C) matrix with a
    row stride of `row` pixels, and that pixel is a fixed number of rows further
    on, i·dh·row + j·dw, for every p at once. So g is laid out on the same grid
    (zeros where no output exists), and kernel row i is one GEMM, g @ [w_i0 … w_i(kw-1)],
    whose kw blocks of C columns are added (β = 1 in blas.matmul_into) into a
    `wide` matrix, row p + i·dh·row: no patch matrix, no col2im. Last, each
    input pixel q sums its kw taps, wide[q - j·dw, block j]:

        flat g (rows × C_out) ── @ [w_i0 w_i1 w_i2] ──▶ += rows [shift, shift + used) of wide (rows × kw·C),
                                                           shift = i·dh·row
        input gradient[q] = wide[q, block 0] + wide[q - dw, block 1] + wide[q - 2·dw, block 2]

    Why not one GEMM per offset, straight into the flat input (no taps to sum)?
    Those GEMMs have only C = 32 columns, and OpenBLAS runs such thin products at
    ~100 GFLOP/s; with kw·C = 96 columns, ~135 (docs/im2col.md).

    Windows that hang over an image's edge write into the gaps between rows
    and between images, which are thrown away. One gap serves both neighbours,
    so a gap only needs to be as wide as the padding (wider only if the padding
    is larger than the kernel's reach): for 3×3 with padding 1 on 14×14 the grid
    is 15×15 per image, 15% more rows than outputs (16×16 padded images: 31%).
    """
    m, h, w_in, c = out.shape
    (kh, kw), (ph, pw), (dh, dw) = geometry.kernel, geometry.padding, geometry.dilation
    (ho, wo), c_out = out_hw, rows.shape[1]
    gap_h, gap_w = max(ph, 2 * ph - (kh - 1) * dh), max(pw, 2 * pw - (kw - 1) * dw)  # ho ≤ h + gap_h, wo ≤ row
    row, image = w_in + gap_w, (h + gap_h) * (w_in + gap_w)
    front = ph * row + pw  # input pixel (0, 0) of image 0 sits this many rows into the flat input
    lead = (kw - 1) * dw  # zero rows before it all, so that every tap q - j·dw is a row of wide
    g_flat = np.empty((m * image, c_out), rows.dtype)
    g_grid = g_flat.reshape(m, h + gap_h, row, c_out)
    g_grid[:, :ho, :wo], g_grid[:, :ho, wo:], g_grid[:, ho:] = rows.reshape(m, ho, wo, c_out), 0, 0
    used = (m - 1) * image + (ho - 1) * row + wo  # g's rows up to its last output; the rest are zeros
    wide = np.empty((lead + front + m * image, kw, c), out.dtype)
    flat = wide.reshape(-1, kw * c)
    flat[:lead], flat[lead + used:] = 0, 0  # the first GEMM (kernel row 0) overwrites the rows between
    by_row = np.ascontiguousarray(filters.transpose(0, 2, 1, 3)).reshape(kh, c_out, kw * c)  # [w_i0 … w_i(kw-1)]
    for i in range(kh):
        shift = lead + i * dh * row
        blas.matmul_into(g_flat[:used], by_row[i], flat[shift:shift + used], accumulate=i > 0)

    def tap(j: int) -> np.ndarray:  # wide[q - j·dw, block j] for the input pixels q, as (m, h, w, C)
        start = lead + front - j * dw
        return wide[start:start + m * image, j].reshape(m, h + gap_h, row, c)[:, :h, :w_in]

    np.add(tap(0), tap(1), out=out) if kw > 1 else np.copyto(out, tap(0))
    for j in range(2, kw):
        out += tap(j)
