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


def _is_channels_last(a: np.ndarray) -> bool:
    return a.ndim == 4 and a.strides[1] < a.strides[3]


def _like(a: np.ndarray, dtype: Any = None) -> np.ndarray:
    """An empty array with a's shape, in the same memory layout (NCHW or channels-last), of a's dtype or `dtype`."""
    dtype = a.dtype if dtype is None else np.dtype(dtype)
    return _channels_last(a.shape, dtype, fill=None) if _is_channels_last(a) else np.empty(a.shape, dtype)
