"""The arguments of the public conv and pooling functions, checked and put in one form (a `Geometry`).

Every size argument is an int or a pair, as PyTorch accepts; a bad one is a
TypeError or ValueError that names the op and the shapes, raised at the call
that caused it, never a numpy error from deep inside a kernel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..backend.layout import Geometry, Pair
from ..backend.pool import ceil_mode_extra

if TYPE_CHECKING:
    from ..tensor import Tensor


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


def check_4d(x: Tensor, op: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W), got shape {x.shape}")


def check_fits(shape: tuple, g: Geometry, op: str, extra: Pair = (0, 0)) -> None:
    """One (dilated) window must fit in the padded input, `extra` rows and columns after it included (ceil_mode)."""
    h, w = shape[2] + 2 * g.padding[0] + extra[0], shape[3] + 2 * g.padding[1] + extra[1]
    if g.dilation[0] * (g.kernel[0] - 1) + 1 > h or g.dilation[1] * (g.kernel[1] - 1) + 1 > w:
        raise ValueError(f"{op}: kernel {g.kernel} (dilation {g.dilation}) is larger than the padded input "
                         f"({h}×{w}) for input shape {shape}")


def sizes(op: str, kernel: Any, stride: Any, padding: Any, dilation: Any) -> Geometry:
    """The four size arguments, each an int or a pair, checked and made pairs (TypeError / ValueError naming `op`)."""
    return Geometry(pair(kernel, "kernel_size", op, 1), pair(stride, "stride", op, 1),
                    pair(padding, "padding", op, 0), pair(dilation, "dilation", op, 1))


def window_geometry(x: Tensor, op: str, kernel: Any, stride: Any, padding: Any, dilation: Any) -> Geometry:
    """The windows of an unfold over the 4-D `x`, checked to fit."""
    check_4d(x, op)
    g = sizes(op, kernel, stride, padding, dilation)
    check_fits(x.shape, g, op)
    return g


def conv_geometry(x: Tensor, weight: Tensor, bias: Tensor | None, stride: Any, padding: Any, dilation: Any,
                  groups: int) -> Geometry:
    """The windows of conv2d(x, weight, bias, ...), after checking that the shapes, dtypes and groups agree."""
    op = "conv2d"
    check_4d(x, op)
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
    return window_geometry(x, op, weight.shape[2:], stride, padding, dilation)


def check_padding_string(padding: str, stride: Any, op: str) -> None:
    """'same' or 'valid', and 'same' only with stride 1: what PyTorch accepts (ValueError otherwise)."""
    if padding not in ("same", "valid"):
        raise ValueError(f"{op}: padding must be 'same', 'valid', an int or a pair of ints, got {padding!r}")
    if padding == "same" and pair(stride, "stride", op, 1) != (1, 1):
        raise ValueError(f"{op}: padding='same' needs stride 1, as in PyTorch (got stride={stride!r})")


def same_padding(kernel: Pair, dilation: Pair) -> tuple[Pair, Pair]:
    """((top, bottom), (left, right)) for padding='same': d·(k − 1) per axis, an odd pixel after, as PyTorch."""
    totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
    return (totals[0] // 2, totals[0] - totals[0] // 2), (totals[1] // 2, totals[1] - totals[1] // 2)


def string_padding(x: Tensor, weight: Tensor, stride: Any, padding: Any, dilation: Any) -> tuple[Tensor, Any]:
    """PyTorch's padding='valid' (none) and 'same' (output as big as the input): (x, padding in numbers).

    'same' pads dilation·(k − 1) in all along each axis, half before and half
    after; an odd pixel goes after (x is padded by one more row or column), as
    in PyTorch. It needs stride 1: with a stride no padding keeps the size.
    """
    if not isinstance(padding, str):
        return x, padding
    check_padding_string(padding, stride, "conv2d")
    if padding == "valid":
        return x, 0
    if weight.ndim != 4:
        raise ValueError(f"conv2d: weight must be 4-D (C_out, C_in/groups, kh, kw), got shape {weight.shape}")
    (top, bottom), (left, right) = same_padding(weight.shape[2:], pair(dilation, "dilation", "conv2d", 1))
    if bottom > top or right > left:
        check_4d(x, "conv2d")
        x = x.pad(((0, 0), (0, 0), (0, bottom - top), (0, right - left)))
    return x, (top, left)


def pool_geometry(x: Tensor, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool,
                  op: str) -> tuple[Geometry, Pair]:
    """The windows of a pooling op, and how many rows and columns ceil_mode adds after the input (below, right)."""
    check_4d(x, op)
    g = sizes(op, kernel_size, kernel_size if stride is None else stride, padding, dilation)
    if g.padding[0] > g.kernel[0] // 2 or g.padding[1] > g.kernel[1] // 2:
        raise ValueError(f"{op}: padding {g.padding} must be at most half the kernel size {g.kernel}")
    extra = (0, 0)
    if ceil_mode:
        extra = tuple(ceil_mode_extra(size, *args) for size, *args in  # type: ignore[assignment]
                      zip(x.shape[2:], g.kernel, g.stride, g.padding, g.dilation))
    check_fits(x.shape, g, op, extra)
    return g, extra
