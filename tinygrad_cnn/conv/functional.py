"""The public CNN functions: conv2d, max_pool2d, avg_pool2d, unfold2d, fold2d, with PyTorch's arguments.

Each checks its arguments (conv/arguments.py), pads where it must, and calls
the fast primitives (conv/fast.py, conv/pool.py), or the reference composite
where no fast primitive exists (grouped convolutions).

The 1-D forms (conv1d, max_pool1d, avg_pool1d) are the 2-D ones on a view:
(N, C, L) is (N, C, 1, L), a kernel k is (1, k), so every window, stride and
padding of theirs acts along W alone. They check their arguments in 1-D terms
first, so that an error names the op and the shapes the caller passed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend.layout import Geometry
from ..backend.pool import avg_divisors, lowest_value, max_indices
from ..tensor import Tensor
from .arguments import (
    conv1d_sizes,
    conv_geometry,
    pair,
    pool1d_sizes,
    pool_geometry,
    sizes,
    string_padding,
    window_geometry,
)
from .fast import Conv2dFn
from .pool import MaxPoolFn, WindowSumFn
from .reference import FoldFn, UnfoldFn, conv2d_reference


def unfold2d(x: Tensor, kernel_size: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1) -> Tensor:
    """(N, C, H, W) → (N, C·kh·kw, L) exactly like `torch.nn.functional.unfold`."""
    patches = UnfoldFn.apply(x, geometry=window_geometry(x, "unfold2d", kernel_size, stride, padding, dilation))
    n, ho, wo, kh, kw, c = patches.shape
    return patches.permute(0, 5, 3, 4, 1, 2).reshape(n, c * kh * kw, ho * wo)


def fold2d(x: Tensor, output_size: Any, kernel_size: Any, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1) -> Tensor:
    """(N, C·kh·kw, L) → (N, C, H, W), overlapping values summed: col2im, exactly like `torch.nn.functional.fold`.

    The adjoint of `unfold2d` (not its inverse: a pixel read by k windows comes back k times).
    """
    op = "fold2d"
    if x.ndim != 3:
        raise ValueError(f"{op}: expected a 3-D input (N, C·kh·kw, L), got shape {x.shape}")
    h, w = pair(output_size, "output_size", op, 1)
    g = sizes(op, kernel_size, stride, padding, dilation)
    (kh, kw), (n, rows, blocks) = g.kernel, x.shape
    if rows % (kh * kw):
        raise ValueError(f"{op}: input of shape {x.shape} has {rows} rows, not a multiple of kh·kw = {kh * kw} "
                         f"for kernel_size {g.kernel}")
    ho, wo = g.output_hw(h, w)
    if ho < 1 or wo < 1 or ho * wo != blocks:
        raise ValueError(f"{op}: output_size {(h, w)} with kernel {g.kernel}, stride {g.stride}, padding "
                         f"{g.padding} and dilation {g.dilation} has {max(ho, 0)}×{max(wo, 0)} windows, but the input "
                         f"of shape {x.shape} holds L = {blocks}")
    c = rows // (kh * kw)
    patches = x.reshape(n, c, kh, kw, ho, wo).permute(0, 4, 5, 2, 3, 1)  # FoldFn's (N, H_out, W_out, kh, kw, C)
    return FoldFn.apply(patches, input_shape=(n, c, h, w), geometry=g)


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    """Cross-correlation of NCHW `x` with `weight` (C_out, C_in/groups, kh, kw), as `torch.nn.functional.conv2d`.

    groups = 1 takes the fused `Conv2dFn` primitive; grouped convolutions take the composite.
    `padding` is an int, a pair, or 'valid' / 'same' as in PyTorch.
    """
    x, padding = string_padding(x, weight, stride, padding, dilation)
    geometry = conv_geometry(x, weight, bias, stride, padding, dilation, groups)
    if bias is not None:
        bias = bias.astype(weight.dtype)  # a float64 bias never turns a float32 network into float64
    if groups != 1:
        return conv2d_reference(x, weight, bias, stride, padding, dilation, int(groups))
    return Conv2dFn.apply(*((x, weight) if bias is None else (x, weight, bias)), geometry=geometry)


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    """Cross-correlation of (N, C, L) `input` with `weight` (C_out, C_in/groups, k), as `torch.nn.functional.conv1d`.

    conv2d on the (N, C, 1, L) view with a (C_out, C_in/groups, 1, k) kernel:
    the same im2col and GEMM, one kernel row. `padding` may be 'valid' or 'same'.
    """
    stride, padding, dilation = conv1d_sizes(input, weight, bias, stride, padding, dilation, groups)
    padding = padding if isinstance(padding, str) else (0, padding)
    out = conv2d(input.unsqueeze(2), weight.unsqueeze(2), bias, (1, stride), padding, (1, dilation), groups)
    return out.squeeze(2)


def max_pool1d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Max over each window of (N, C, L) `input`, as `torch.nn.functional.max_pool1d` (its arguments, its order).

    max_pool2d on the (N, C, 1, L) view, so ties share the gradient evenly as
    there; with return_indices, also where each maximum is along L (int64).
    """
    k, s, p, d = pool1d_sizes(input, kernel_size, stride, padding, dilation, ceil_mode, "max_pool1d")
    result = max_pool2d(input.unsqueeze(2), (1, k), (1, s), (0, p), (1, d), ceil_mode, return_indices)
    if not return_indices:
        return result.squeeze(2)  # type: ignore[union-attr]
    out, indices = result  # an index into the flattened 1·L input is the index along L
    return out.squeeze(2), indices.squeeze(2)


def avg_pool1d(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """Mean over each window of (N, C, L) `input`, as `torch.nn.functional.avg_pool1d` (avg_pool2d on (N, C, 1, L))."""
    k, s, p, _ = pool1d_sizes(input, kernel_size, stride, padding, 1, ceil_mode, "avg_pool1d")
    return avg_pool2d(input.unsqueeze(2), (1, k), (1, s), (0, p), ceil_mode, count_include_pad).squeeze(2)


def _pad_hw(x: Tensor, padding: tuple[int, int], value: float, extra: tuple[int, int] = (0, 0)) -> Tensor:
    """x padded by `padding` on every side, plus `extra` rows below and columns to the right."""
    (ph, pw), (eh, ew) = padding, extra
    if not (ph or pw or eh or ew):
        return x
    return x.pad(((0, 0), (0, 0), (ph, ph + eh), (pw, pw + ew)), value=value)


def _view_steps(g: Geometry) -> dict:
    """The pooling primitives' window arguments: stride and dilation only where they are not the defaults."""
    return {"kernel": g.kernel, "stride": None if g.stride == g.kernel else g.stride,
            "dilation": None if g.dilation == (1, 1) else g.dilation}


def max_pool2d(x: Tensor, kernel_size: Any = 2, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Max over each window (padding with -inf); the gradient is split evenly among tied maxima.

    As `torch.nn.functional.max_pool2d`: `ceil_mode` keeps a last, partial window
    (if it starts inside the input or its left padding), and `return_indices`
    also returns where each maximum is, as an int64 index into the flattened H·W
    input (the first of tied maxima, the last NaN, as PyTorch's CPU kernel picks).
    """
    g, extra = pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
    padded = _pad_hw(x, g.padding, lowest_value(x.dtype), extra)  # padding holds a value that never wins
    out = MaxPoolFn.apply(padded, **_view_steps(g))  # the max of kh·kw strided views
    if not return_indices:
        return out
    return out, Tensor(max_indices(padded.data, g, x.shape[3]))


def avg_pool2d(x: Tensor, kernel_size: Any = 2, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """Mean over each window; padded zeros count in the divisor unless count_include_pad=False.

    As `torch.nn.functional.avg_pool2d`: `ceil_mode` keeps a last, partial window
    (with count_include_pad, its divisor counts only what lies inside the padded
    input); `divisor_override` divides every window's sum by one given number instead.
    """
    op = "avg_pool2d"
    g, extra = pool_geometry(x, kernel_size, stride, padding, 1, ceil_mode, op)
    if divisor_override is not None:
        if not isinstance(divisor_override, (int, np.integer)) or isinstance(divisor_override, bool):
            raise TypeError(f"{op}: divisor_override must be an int, got {divisor_override!r}")
        if divisor_override == 0:
            raise ValueError(f"{op}: divisor_override must not be zero")
    if x.dtype.kind != "f":
        x = x.astype(np.float32)  # a mean of integers is a float, as in Tensor.mean
    divisors = None  # one per window, (H_out, W_out), where windows differ; else one scale for all
    if divisor_override is not None:
        scale = 1.0 / divisor_override
    elif extra == (0, 0) and (count_include_pad or g.padding == (0, 0)):  # every window whole: kh·kw
        scale = 1.0 / (g.kernel[0] * g.kernel[1])
    else:
        out_hw = g.output_hw(x.shape[2] + extra[0], x.shape[3] + extra[1])
        divisors, scale = avg_divisors(x.shape[2:], g, out_hw, count_include_pad), 1.0
    out = WindowSumFn.apply(_pad_hw(x, g.padding, 0.0, extra), weights=(None, scale), **_view_steps(g))
    if divisors is None:
        return out
    return out * (1.0 / divisors).astype(x.dtype)  # windows cut by an edge: each its own divisor
