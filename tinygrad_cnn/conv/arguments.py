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


def single(value: Any, name: str, op: str, minimum: int) -> int:
    """An int or a one-element tuple or list of ints: what PyTorch accepts for every size argument of a 1-D op."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{op}: {name} must be an int or a one-element tuple of ints, got {value!r}")
    if value < minimum:
        raise ValueError(f"{op}: {name} must be at least {minimum}, got {value}")
    return int(value)


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


# what each rank's input and weight look like, for the messages: spatial dims → (input, kernel axes)
LAYOUTS = {1: ("(N, C, L)", "k"), 2: ("(N, C, H, W)", "kh, kw")}


def check_operands(x: Tensor, weight: Tensor, groups: int, op: str, spatial: int, transposed: bool = False) -> None:
    """Ranks, dtypes and the groups argument of a convolution over `spatial` axes (1 or 2).

    A convolution's weight is (C_out, C_in/groups, k...), a transposed
    convolution's (C_in, C_out/groups, k...): its input channels come first.
    """
    shape, kernel = LAYOUTS[spatial]
    if x.ndim != spatial + 2:
        raise ValueError(f"{op}: expected a {spatial + 2}-D input {shape}, got shape {x.shape}")
    if weight.ndim != spatial + 2:
        channels = "C_in, C_out/groups" if transposed else "C_out, C_in/groups"
        raise ValueError(f"{op}: weight must be {spatial + 2}-D ({channels}, {kernel}), got shape {weight.shape}")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool):
        raise TypeError(f"{op}: groups must be an int, got {groups!r}")
    if x.dtype != weight.dtype:
        raise TypeError(f"{op}: input is {x.dtype} but weight is {weight.dtype}; cast one with .astype()")


def check_bias(bias: Tensor | None, c_out: int, weight: Tensor, op: str) -> None:
    if bias is not None and bias.shape != (c_out,):
        raise ValueError(f"{op}: bias must have shape ({c_out},) for weight of shape {weight.shape}, got {bias.shape}")


def check_channels(x: Tensor, weight: Tensor, bias: Tensor | None, groups: int, op: str) -> None:
    """A convolution's channels: groups divide C_in and C_out, the weight reads C_in/groups per group, bias (C_out,)."""
    c, (c_out, c_group) = x.shape[1], weight.shape[:2]
    if groups < 1 or c % groups or c_out % groups:
        raise ValueError(f"{op}: groups={groups} must divide both the input channels ({c}) and the output "
                         f"channels ({c_out}); input shape {x.shape}, weight shape {weight.shape}")
    if c_group * groups != c:
        raise ValueError(f"{op}: input of shape {x.shape} has {c} channels, but weight of shape {weight.shape} "
                         f"expects {c_group * groups} (= {c_group} per group × {groups} groups)")
    check_bias(bias, c_out, weight, op)


def conv_geometry(x: Tensor, weight: Tensor, bias: Tensor | None, stride: Any, padding: Any, dilation: Any,
                  groups: int) -> Geometry:
    """The windows of conv2d(x, weight, bias, ...), after checking that the shapes, dtypes and groups agree."""
    op = "conv2d"
    check_operands(x, weight, groups, op, 2)
    check_channels(x, weight, bias, groups, op)
    return window_geometry(x, op, weight.shape[2:], stride, padding, dilation)


def conv1d_sizes(x: Tensor, weight: Tensor, bias: Tensor | None, stride: Any, padding: Any, dilation: Any,
                 groups: int) -> tuple[int, int | str, int]:
    """conv1d's (stride, padding, dilation) as ints (padding may stay 'same' / 'valid'), every argument checked."""
    op = "conv1d"
    check_operands(x, weight, groups, op, 1)
    check_channels(x, weight, bias, groups, op)
    stride, dilation = single(stride, "stride", op, 1), single(dilation, "dilation", op, 1)
    if isinstance(padding, str):
        check_padding_string(padding, stride, op)
        return stride, padding, dilation
    padding, kernel, length = single(padding, "padding", op, 0), weight.shape[2], x.shape[2]
    if dilation * (kernel - 1) + 1 > length + 2 * padding:
        raise ValueError(f"{op}: kernel {kernel} (dilation {dilation}) is larger than the padded input "
                         f"({length + 2 * padding}) for input shape {x.shape}")
    return stride, padding, dilation


def transposed_geometry(x: Tensor, weight: Tensor, bias: Tensor | None, stride: Any, padding: Any,
                        output_padding: Any, groups: int, dilation: Any) -> tuple[Geometry, Pair, Pair]:
    """conv_transpose2d's windows, output padding and output size (H_out, W_out), every argument checked.

    The windows are those of the convolution whose input gradient this is, over
    the output: H_out = (H − 1)·stride − 2·padding + dilation·(k − 1) + output_padding + 1.
    output_padding picks one of the `stride` output sizes that this convolution
    maps to H, so it must be smaller than the stride (or the dilation), as in PyTorch.
    """
    op = "conv_transpose2d"
    check_operands(x, weight, groups, op, 2, transposed=True)
    c, (c_in, c_group_out) = x.shape[1], weight.shape[:2]
    if groups < 1 or c_in % groups:
        raise ValueError(f"{op}: groups={groups} must divide the input channels ({c_in}); input shape {x.shape}, "
                         f"weight shape {weight.shape} (C_in, C_out/groups, kh, kw)")
    if c != c_in:
        raise ValueError(f"{op}: input of shape {x.shape} has {c} channels, but weight of shape {weight.shape} "
                         f"(C_in, C_out/groups, kh, kw) expects {c_in}")
    check_bias(bias, c_group_out * groups, weight, op)
    g = sizes(op, weight.shape[2:], stride, padding, dilation)
    extra = pair(output_padding, "output_padding", op, 0)
    if any(e >= max(s, d) for e, s, d in zip(extra, g.stride, g.dilation)):
        raise ValueError(f"{op}: output_padding {extra} must be smaller than either the stride {g.stride} or the "
                         f"dilation {g.dilation}, along each axis")
    out = tuple((size - 1) * s - 2 * p + d * (k - 1) + e + 1
                for size, k, s, p, d, e in zip(x.shape[2:], g.kernel, g.stride, g.padding, g.dilation, extra))
    if min(out) < 1:
        raise ValueError(f"{op}: input of shape {x.shape} with kernel {g.kernel}, stride {g.stride}, padding "
                         f"{g.padding} and dilation {g.dilation} gives an output of {out[0]}×{out[1]}: too small")
    return g, extra, out  # type: ignore[return-value]


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


def pool1d_sizes(x: Tensor, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool,
                 op: str) -> tuple[int, int, int, int]:
    """A 1-D pooling op's (kernel, stride, padding, dilation) as ints, checked as `pool_geometry` checks 2-D ones."""
    if x.ndim != 3:
        raise ValueError(f"{op}: expected a 3-D input (N, C, L), got shape {x.shape}")
    kernel = single(kernel_size, "kernel_size", op, 1)
    stride = kernel if stride is None else single(stride, "stride", op, 1)
    padding, dilation = single(padding, "padding", op, 0), single(dilation, "dilation", op, 1)
    if padding > kernel // 2:
        raise ValueError(f"{op}: padding {padding} must be at most half the kernel size {kernel}")
    length = x.shape[2] + 2 * padding + (ceil_mode_extra(x.shape[2], kernel, stride, padding, dilation)
                                          if ceil_mode else 0)
    if dilation * (kernel - 1) + 1 > length:
        raise ValueError(f"{op}: kernel {kernel} (dilation {dilation}) is larger than the padded input ({length}) "
                         f"for input shape {x.shape}")
    return kernel, stride, padding, dilation


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
