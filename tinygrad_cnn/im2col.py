"""The arrays under every convolution: window geometry, the channels-last layout, im2col and col2im.

Plain numpy, no autograd: conv.py turns these into primitives and tells the
story (how a convolution becomes one matrix multiply), conv_fused.py and pool.py
build the fast primitives on them.

Memory layout (docs/im2col.md has the measurements): activations are logically
NCHW, as in PyTorch, but stored NHWC. A patch then holds runs of kw·C
contiguous floats, the im2col copy is fast, and the GEMM's (N·H·W, C_out)
result *is* the NHWC output, so no transpose is ever copied.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

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



# ------------------------------------------------------------------ memory layout
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


def im2col_by_offset(x: np.ndarray, g: Geometry, out: np.ndarray | None = None) -> np.ndarray:
    """x (N, C, H, W) → patches (kh, kw, C, N, H_out, W_out): im2col's numbers, one copy per kernel offset.

    The transposed order of `im2col`. Each (i, j) block is the padded input
    shifted by (i·dh, j·dw), so every copied run is a row of W_out pixels, where
    `im2col`'s runs are kw·C floats: 3 for one input channel, which numpy copies
    one short run at a time (conv1, half the batch: 0.05 ms against 0.38).
    """
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = g.kernel, g.stride, g.padding, g.dilation
    ho, wo = g.output_hw(h, w)
    src = x
    if ph or pw:
        src = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
        src[:, :, ph:ph + h, pw:pw + w] = x
    if out is None:
        out = np.empty((kh, kw, c, n, ho, wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            shifted = src[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw]
            out[i, j] = shifted.transpose(1, 0, 2, 3)
    return out


class Patches:
    """The im2col patches of a batch, in whichever order copies faster, as one (rows, kh·kw·C) matrix per slice.

    Patch-major (`im2col`) copies runs of kw·C floats, offset-major
    (`im2col_by_offset`) runs of W_out floats; the longer runs win. Either way
    `rows(images)` is the same matrix, a view BLAS takes without a copy (offset-
    major gives it transposed): conv_fused.py's forward GEMM and weight gradient.
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
    """patches (N, H_out, W_out, kh, kw, C) → x (N, C, H, W), overlapping windows summed."""
    return _add_shifted(patches.transpose(3, 4, 0, 1, 2, 5), input_shape, g)


def _add_shifted(per_offset: np.ndarray, input_shape: tuple, g: Geometry) -> np.ndarray:
    """col2im from offset-major patches (kh, kw, N, H_out, W_out, C): one strided add per kernel offset.

    Never `np.add.at`. When each per_offset[i, j] is contiguous (the transposed
    convolution builds it so for several channels), every add runs over long
    contiguous rows; from the patch-major layout numpy has to buffer each add
    (measured 1.6x slower). With one channel the blocks are strided columns of a
    pixel-major product: the adds are slower, but its GEMM is faster by more.
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


def _is_channels_last(a: np.ndarray) -> bool:
    return a.ndim == 4 and a.strides[1] < a.strides[3]


def _like(a: np.ndarray, dtype: Any = None, shape: tuple | None = None) -> np.ndarray:
    """An empty array in a's memory layout (NCHW or channels-last), of a's shape and dtype or the ones given."""
    dtype = a.dtype if dtype is None else np.dtype(dtype)
    shape = a.shape if shape is None else shape
    return _channels_last(shape, dtype, fill=None) if _is_channels_last(a) else np.empty(shape, dtype)
