"""Where the numbers of a convolution sit: window geometry, the channels-last layout, window views, padding.

Plain numpy on shapes and strides, shared by every kernel in backend/ and by
the engine's conv/ package (one definition of each).

Memory layout (docs/im2col.md has the measurements): activations are logically
NCHW, as in PyTorch, but stored NHWC. A patch then holds runs of kw·C
contiguous floats, the im2col copy is fast, and the GEMM's (N·H·W, C_out)
result *is* the NHWC output, so no transpose is ever copied.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

Pair = tuple[int, int]
SMALL_PAD = 1 << 16  # elements: below this, `pad` takes zeros from calloc instead of filling the border


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
        """How many windows fit along H and along W of an (unpadded) h × w input."""
        return (output_size(h, self.kernel[0], self.stride[0], self.padding[0], self.dilation[0]),
                output_size(w, self.kernel[1], self.stride[1], self.padding[1], self.dilation[1]))


def window_view(x: np.ndarray, offset: Pair, out_hw: Pair, stride: Pair, dilation: Pair,
                h_axis: int = 2) -> np.ndarray:
    """The view of x that holds pixel `offset` = (i, j) of every window: x[..., i·dh : … : sh, j·dw : … : sw].

    Along H (axis `h_axis`) and W (the next axis) it starts at the offset
    (dilated) and steps by the stride, once per output position. Pooling reads
    and scatters through these views; im2col copies them; col2im adds into them.
    No copy is made::

        x (one row):  0 1 2 3 4 5 6      kernel 3, stride 2, 3 windows
        offset 0:     0   2   4          window starts
        offset 1:       1   3   5
        offset 2:         2   4   6
    """
    (i, j), (ho, wo), (sh, sw), (dh, dw) = offset, out_hw, stride, dilation
    rows = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)
    columns = slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)
    return x[(slice(None),) * h_axis + (rows, columns)]


def window_views(x: np.ndarray, kernel: Pair, out_hw: Pair, stride: Pair, dilation: Pair,
                 h_axis: int = 2) -> list[np.ndarray]:
    """`window_view` for every kernel offset (i, j), in row-major order: kh·kw views."""
    return [window_view(x, (i, j), out_hw, stride, dilation, h_axis)
            for i in range(kernel[0]) for j in range(kernel[1])]


def pad(a: np.ndarray, pad_width: Sequence[tuple[int, int]], value: Any = 0, keep_layout: bool = True) -> np.ndarray:
    """a surrounded by `value`, (before, after) elements per axis: the border is filled, then a is copied in.

    With `keep_layout` the result has a's axis order in memory (a channels-last
    activation stays channels-last: the transposing copy into NCHW took 2.2 ms
    on (64, 32, 28, 28)); otherwise it is C-contiguous. A big result gets only
    its border filled (filling it all would be one more pass over it); a small
    C-ordered one padded with zeros comes from calloc in one call (conv1's padded
    batch, 58k floats: 9 µs instead of 41 for the border).
    """
    shape = tuple(before + size + after for (before, after), size in zip(pad_width, a.shape))
    if value == 0 and math.prod(shape) < SMALL_PAD and (a.flags.c_contiguous or not keep_layout):
        out = np.zeros(shape, a.dtype)
    else:
        out = np.empty_like(a, shape=shape, order="K" if keep_layout else "C")
        for axis, ((before, after), size) in enumerate(zip(pad_width, a.shape)):
            if before:
                out[(slice(None),) * axis + (slice(0, before),)] = value
            if after:
                out[(slice(None),) * axis + (slice(before + size, None),)] = value
    out[middle(pad_width, a.shape)] = a
    return out


def middle(pad_width: Sequence[tuple[int, int]], shape: tuple) -> tuple[slice, ...]:
    """The index of the unpadded array inside the padded one (what `pad`'s adjoint slices out)."""
    return tuple(slice(before, before + size) for (before, _), size in zip(pad_width, shape))


def channels_last(shape: tuple, dtype: Any, fill: float | None = 0.0) -> np.ndarray:
    """A logical (N, C, H, W) array stored as (N, H, W, C): the layout every conv op here keeps."""
    n, c, h, w = shape
    buffer = np.empty((n, h, w, c), dtype=dtype) if fill is None else np.full((n, h, w, c), fill, dtype=dtype)
    return buffer.transpose(0, 3, 1, 2)


def rows_of_axis(a: np.ndarray, kept: int) -> np.ndarray | None:
    """a as a (values, a.shape[kept]) matrix if that is a view (the kept axis innermost in memory), else None.

    For axis 1 of a channels-last activation, each row is one pixel's C channels.
    """
    moved = a.transpose((*range(kept), *range(kept + 1, a.ndim), kept))  # np.moveaxis(a, kept, -1), 1/5 of its cost
    return moved.reshape(-1, a.shape[kept]) if moved.flags.c_contiguous else None


def is_channels_last(a: np.ndarray) -> bool:
    """Whether a 4-D (N, C, H, W) array is stored with C innermost."""
    return a.ndim == 4 and a.strides[1] < a.strides[3]


def empty_like_layout(a: np.ndarray, dtype: Any = None, shape: tuple | None = None) -> np.ndarray:
    """An empty array in a's memory layout (NCHW or channels-last), of a's shape and dtype or the ones given."""
    dtype = a.dtype if dtype is None else np.dtype(dtype)
    shape = a.shape if shape is None else shape
    return channels_last(shape, dtype, fill=None) if is_channels_last(a) else np.empty(shape, dtype)
