"""im2col and col2im as plain numpy: the patch matrix under every convolution, and its adjoint.

conv/reference.py turns these into the primitives `UnfoldFn` and `FoldFn` and
tells the story (how a convolution becomes one matrix multiply); backend/conv.py
runs the fast convolution on `Patches`.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .layout import Geometry, pad, window_view


def _padded_nhwc(x: np.ndarray, padding: tuple[int, int], value: float) -> np.ndarray:
    """x (N, C, H, W) → its (N, H + 2ph, W + 2pw, C) channels-last view, padded with `value` (then C-contiguous)."""
    nhwc = x.transpose(0, 2, 3, 1)
    ph, pw = padding
    if not (ph or pw):
        return nhwc
    return pad(nhwc, ((0, 0), (ph, ph), (pw, pw), (0, 0)), value, keep_layout=False)


def im2col(x: np.ndarray, g: Geometry, value: float = 0.0, out: np.ndarray | None = None) -> np.ndarray:
    """x (N, C, H, W) → patches (N, H_out, W_out, kh, kw, C): one copy of a strided view (into `out` if given).

    Index pattern: patches[n, p, q, i, j, c] = x_padded[n, c, p·sh + i·dh, q·sw + j·dw].
    Read from channels-last memory, each (kw, C) row of a patch is one contiguous run.
    """
    src = _padded_nhwc(x, g.padding, value)
    n, c = x.shape[:2]
    (kh, kw), (sh, sw), (dh, dw) = g.kernel, g.stride, g.dilation
    ho, wo = g.output_hw(*x.shape[2:])
    s_n, s_h, s_w, s_c = src.strides
    windows = as_strided(src, (n, ho, wo, kh, kw, c), (s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c),
                         writeable=False)
    if out is None:
        return np.ascontiguousarray(windows)
    np.copyto(out, windows)
    return out


def im2col_by_offset(x: np.ndarray, g: Geometry, out: np.ndarray | None = None) -> np.ndarray:
    """x (N, C, H, W) → patches (kh, kw, C, N, H_out, W_out): im2col's numbers, one copy per kernel offset.

    The transposed order of `im2col`. Each (i, j) block is the padded input
    shifted by (i·dh, j·dw), so every copied run is a row of W_out pixels, where
    `im2col`'s runs are kw·C floats: 3 for one input channel, which numpy copies
    one short run at a time (conv1, half the batch: 0.05 ms against 0.38).
    """
    n, c, h, w = x.shape
    (kh, kw), (ph, pw) = g.kernel, g.padding
    out_hw = g.output_hw(h, w)
    src = pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    if out is None:
        out = np.empty((kh, kw, c, n, *out_hw), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            out[i, j] = window_view(src, (i, j), out_hw, g.stride, g.dilation).transpose(1, 0, 2, 3)
    return out


class Patches:
    """The im2col patches of a batch, in whichever order copies faster, as one (rows, kh·kw·C) matrix per slice.

    Patch-major (`im2col`) copies runs of kw·C floats, offset-major
    (`im2col_by_offset`) runs of W_out floats; the longer runs win. Either way
    `rows(images)` is the same matrix, a view BLAS takes without a copy (offset-
    major gives it transposed): the convolution's forward GEMM and weight gradient.
    """

    def __init__(self, shape: tuple, dtype: np.dtype, g: Geometry, by_offset: bool | None = None) -> None:
        n, c, h, w = shape
        (kh, kw), (ho, wo) = g.kernel, g.output_hw(h, w)
        self.geometry, self.width = g, kh * kw * c
        self.by_offset = kw * c < wo if by_offset is None else by_offset  # None: the order with longer runs
        self.data = np.empty((kh, kw, c, n, ho, wo) if self.by_offset else (n, ho, wo, kh, kw, c), dtype)

    @property
    def shape(self) -> tuple[int, int]:
        """The patch matrix's shape, (N·H_out·W_out, kh·kw·C): what docs and graph drawings show."""
        return self.data.size // self.width, self.width

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def nbytes(self) -> int:
        return self.data.nbytes

    def fill(self, x: np.ndarray, images: slice) -> np.ndarray:
        """Write the patches of x[images] (x is the whole batch) and return rows(images)."""
        if self.by_offset:
            im2col_by_offset(x[images], self.geometry, out=self.data[:, :, :, images])
        else:
            im2col(x[images], self.geometry, out=self.data[images])
        return self.rows(images)

    def rows(self, images: slice) -> np.ndarray:
        if self.by_offset:
            return self.data[:, :, :, images].reshape(self.width, -1).T
        return self.data[images].reshape(-1, self.width)


def col2im(patches: np.ndarray, input_shape: tuple, g: Geometry) -> np.ndarray:
    """patches (N, H_out, W_out, kh, kw, C) → x (N, C, H, W), overlapping windows summed: im2col's adjoint."""
    return add_shifted(patches.transpose(3, 4, 0, 1, 2, 5), input_shape, g)


def add_shifted(per_offset: np.ndarray, input_shape: tuple, g: Geometry) -> np.ndarray:
    """col2im from offset-major patches (kh, kw, N, H_out, W_out, C): one strided add per kernel offset.

    Never `np.add.at`. When each per_offset[i, j] is contiguous (the transposed
    convolution builds it so for several channels), every add runs over long
    contiguous rows; from the patch-major layout numpy has to buffer each add
    (measured 1.6x slower). With one channel the blocks are strided columns of a
    pixel-major product: the adds are slower, but its GEMM is faster by more.
    """
    n, c, h, w = input_shape
    kh, kw, _, ho, wo, _ = per_offset.shape
    ph, pw = g.padding
    out = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=per_offset.dtype)
    for i in range(kh):
        for j in range(kw):
            view = window_view(out, (i, j), (ho, wo), g.stride, g.dilation, h_axis=1)
            view += per_offset[i, j]
    return out[:, ph:ph + h, pw:pw + w].transpose(0, 3, 1, 2)
