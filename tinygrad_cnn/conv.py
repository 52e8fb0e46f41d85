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
`Fold` below are each other's backward, and convolution built on them is
differentiable twice with no extra code (pooling's strided-view primitives in
pool.py follow the same pattern: each one's backward is made of the others).

Where the rest lives: im2col.py (the window geometry, the channels-last layout
our activations are stored in, im2col and col2im as plain numpy),
conv_fused.py (the fast primitives `conv2d` runs, which split the batch over
the cores), pool.py (pooling over strided views, one per window offset). This
file holds `Unfold`/`Fold`, the composites `conv2d_reference` and
`max_pool2d_reference` the tests trust, and the public functions with their
argument checks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .autograd import Function
from .conv_fused import Conv2d
from .im2col import Geometry, Pair, col2im, im2col, output_size, pair
from .pool import MaxPool, WindowSum, avg_divisors, ceil_mode_extra, lowest_value, max_indices

if TYPE_CHECKING:
    from .tensor import Tensor

__all__ = ["Fold", "Geometry", "Unfold", "avg_pool2d", "col2im", "conv2d", "conv2d_reference", "fold2d", "im2col",
           "max_pool2d", "max_pool2d_reference", "output_size", "pair", "unfold2d"]


def _check_4d(x: Tensor, op: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W), got shape {x.shape}")


def _check_fits(shape: tuple, g: Geometry, op: str, extra: Pair = (0, 0)) -> None:
    """One (dilated) window must fit in the padded input, `extra` rows and columns after it included (ceil_mode)."""
    h, w = shape[2] + 2 * g.padding[0] + extra[0], shape[3] + 2 * g.padding[1] + extra[1]
    if g.dilation[0] * (g.kernel[0] - 1) + 1 > h or g.dilation[1] * (g.kernel[1] - 1) + 1 > w:
        raise ValueError(f"{op}: kernel {g.kernel} (dilation {g.dilation}) is larger than the padded input "
                         f"({h}×{w}) for input shape {shape}")


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


# ------------------------------------------------------------------ the public functions
def _sizes(op: str, kernel: Any, stride: Any, padding: Any, dilation: Any) -> Geometry:
    """The four size arguments, each an int or a pair, checked and made pairs (TypeError / ValueError naming `op`)."""
    return Geometry(pair(kernel, "kernel_size", op, 1), pair(stride, "stride", op, 1),
                    pair(padding, "padding", op, 0), pair(dilation, "dilation", op, 1))


def _geometry(x: Tensor, op: str, kernel: Any, stride: Any, padding: Any, dilation: Any) -> Geometry:
    _check_4d(x, op)
    g = _sizes(op, kernel, stride, padding, dilation)
    _check_fits(x.shape, g, op)
    return g


def unfold2d(x: Tensor, kernel_size: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1) -> Tensor:
    """(N, C, H, W) → (N, C·kh·kw, L) exactly like `torch.nn.functional.unfold`."""
    patches = Unfold.apply(x, geometry=_geometry(x, "unfold2d", kernel_size, stride, padding, dilation))
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
    g = _sizes(op, kernel_size, stride, padding, dilation)
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
    patches = x.reshape(n, c, kh, kw, ho, wo).permute(0, 4, 5, 2, 3, 1)  # Fold's (N, H_out, W_out, kh, kw, C)
    return Fold.apply(patches, input_shape=(n, c, h, w), geometry=g)


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


def check_padding_string(padding: str, stride: Any, op: str) -> None:
    """'same' or 'valid', and 'same' only with stride 1: what PyTorch accepts (ValueError otherwise)."""
    if padding not in ("same", "valid"):
        raise ValueError(f"{op}: padding must be 'same', 'valid', an int or a pair of ints, got {padding!r}")
    if padding == "same" and pair(stride, "stride", op, 1) != (1, 1):
        raise ValueError(f"{op}: padding='same' needs stride 1, as in PyTorch (got stride={stride!r})")


def _string_padding(x: Tensor, weight: Tensor, stride: Any, padding: Any, dilation: Any) -> tuple[Tensor, Any]:
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
        _check_4d(x, "conv2d")
        x = x.pad(((0, 0), (0, 0), (0, bottom - top), (0, right - left)))
    return x, (top, left)


def same_padding(kernel: Pair, dilation: Pair) -> tuple[Pair, Pair]:
    """((top, bottom), (left, right)) for padding='same': d·(k − 1) per axis, an odd pixel after, as PyTorch."""
    totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
    return (totals[0] // 2, totals[0] - totals[0] // 2), (totals[1] // 2, totals[1] - totals[1] // 2)


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    """Cross-correlation of NCHW `x` with `weight` (C_out, C_in/groups, kh, kw), as `torch.nn.functional.conv2d`.

    groups = 1 takes the fused `Conv2d` primitive; grouped convolutions take the composite.
    `padding` is an int, a pair, or 'valid' / 'same' as in PyTorch.
    """
    x, padding = _string_padding(x, weight, stride, padding, dilation)
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
    x, padding = _string_padding(x, weight, stride, padding, dilation)
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


def _pool_geometry(x: Tensor, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool,
                   op: str) -> tuple[Geometry, Pair]:
    """The windows of a pooling op, and how many rows and columns ceil_mode adds after the input (below, right)."""
    _check_4d(x, op)
    g = _sizes(op, kernel_size, kernel_size if stride is None else stride, padding, dilation)
    if g.padding[0] > g.kernel[0] // 2 or g.padding[1] > g.kernel[1] // 2:
        raise ValueError(f"{op}: padding {g.padding} must be at most half the kernel size {g.kernel}")
    extra = (0, 0)
    if ceil_mode:
        extra = tuple(ceil_mode_extra(size, *args) for size, *args in  # type: ignore[assignment]
                      zip(x.shape[2:], g.kernel, g.stride, g.padding, g.dilation))
    _check_fits(x.shape, g, op, extra)
    return g, extra


def _pad_hw(x: Tensor, padding: Pair, value: float, extra: Pair = (0, 0)) -> Tensor:
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
    op = "max_pool2d"
    g, extra = _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, op)
    lowest = lowest_value(x.dtype)  # what padding holds: it never wins
    padded = _pad_hw(x, g.padding, lowest, extra)
    out = MaxPool.apply(padded, **_view_steps(g))  # the max of kh·kw strided views
    if not return_indices:
        return out
    from .tensor import Tensor  # conv.py is imported by tensor.py
    return out, Tensor(max_indices(padded.data, g, x.shape[3]))


def avg_pool2d(x: Tensor, kernel_size: Any = 2, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """Mean over each window; padded zeros count in the divisor unless count_include_pad=False.

    As `torch.nn.functional.avg_pool2d`: `ceil_mode` keeps a last, partial window
    (with count_include_pad, its divisor counts only what lies inside the padded
    input); `divisor_override` divides every window's sum by one given number instead.
    """
    op = "avg_pool2d"
    g, extra = _pool_geometry(x, kernel_size, stride, padding, 1, ceil_mode, op)
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
    out = WindowSum.apply(_pad_hw(x, g.padding, 0.0, extra), weights=(None, scale), **_view_steps(g))
    if divisors is None:
        return out
    return out * (1.0 / divisors).astype(x.dtype)  # windows cut by an edge: each its own divisor


def max_pool2d_reference(x: Tensor, kernel_size: Any = 2, stride: Any = None, padding: Any = 0,
                         dilation: Any = 1) -> Tensor:
    """max_pool2d as a composite: unfold (padding with -inf), then max over the window axis.

    The textbook form, built only from primitives tested on their own (floats
    only, no ceil_mode). `max_pool2d` runs strided-view primitives instead
    (pool.py): no patch matrix, kh·kw times less memory; the tests check the two
    against each other.
    """
    g, _ = _pool_geometry(x, kernel_size, stride, padding, dilation, False, "max_pool2d")
    patches = Unfold.apply(x, geometry=g, value=-np.inf)
    n, ho, wo, kh, kw, c = patches.shape
    return patches.reshape(n, ho, wo, kh * kw, c).max(axis=3).permute(0, 3, 1, 2)
