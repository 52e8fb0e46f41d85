"""Adaptive pooling and nearest-neighbour upsampling: layers whose windows follow from the sizes asked for.

Adaptive pooling gives output cell i along an axis of `size` pixels the window
[⌊i·size/out⌋, ⌈(i+1)·size/out⌉), PyTorch's rule: the windows cover the axis,
neighbours overlap by at most one pixel, and their lengths differ by at most one::

    size 5, out 3:   [a b] c d e        0: [0, 2)
                      a [b c d] e       1: [1, 4)
                      a b c [d e]       2: [3, 5)

Average pooling is linear and acts on each axis apart, so it is two matrix
products, y = A_h · x · A_wᵀ, with A the (out × size) matrix whose row i holds
1/length over window i: exact, and differentiable twice with no code of its own.
Max pooling is max_pool2d where the output sizes divide the input's (the windows
then sit side by side); otherwise it gathers every window (one integer-array
index, padded with -inf where a window is shorter than the longest) and takes
the max over each. Either way a window's gradient is split evenly among its
maxima, where PyTorch gives all of it to one.

Upsampling ('nearest') is one integer-array index per spatial axis: output
position j reads input position ⌊j · in/out⌋; its backward adds each output
gradient onto the pixel it was read from (`GatherFn`'s scatter-add).

Everything here is a composite of Tensor operations; nothing new to differentiate.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend.pool import lowest_value
from ..tensor import Tensor
from .module import Module


# ---------------------------------------------------------------------------- adaptive pooling
def adaptive_windows(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the `out` windows over an axis of `size`: ⌊i·size/out⌋ and ⌈(i+1)·size/out⌉."""
    i = np.arange(out)
    return (i * size) // out, -(-(i + 1) * size // out)


def averaging_matrix(size: int, out: int, dtype: Any) -> np.ndarray:
    """A (out × size): row i averages window i, so A @ v is adaptive average pooling of the vector v."""
    starts, ends = adaptive_windows(size, out)
    j = np.arange(size)
    inside = (j >= starts[:, None]) & (j < ends[:, None])
    return (inside / (ends - starts)[:, None]).astype(dtype)


def _output_sizes(output_size: Any, input_sizes: tuple, op: str) -> tuple[int, ...]:
    """PyTorch's output_size: an int for every axis, or one entry per axis, None keeping the input's size."""
    dims = len(input_sizes)
    sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * dims
    if len(sizes) != dims or not all(s is None or (isinstance(s, (int, np.integer)) and not isinstance(s, bool))
                                     for s in sizes):
        what = "an int" if dims == 1 else f"an int or a tuple of {dims} ints (or None)"
        raise TypeError(f"{op}: output_size must be {what}, got {output_size!r}")
    sizes = tuple(n if s is None else int(s) for s, n in zip(sizes, input_sizes))
    if min(sizes) < 0:
        raise ValueError(f"{op}: output_size must not be negative, got {output_size!r}")
    return sizes


def _check_input(x: Tensor, dims: int, op: str) -> None:
    """Batched or not: (N, C, *spatial) or (C, *spatial), with no empty spatial axis (PyTorch's rule)."""
    if x.ndim not in (dims + 1, dims + 2):
        layout = "(N, C, L) or (C, L)" if dims == 1 else "(N, C, H, W) or (C, H, W)"
        raise ValueError(f"{op}: expected a {dims + 1}-D or {dims + 2}-D input {layout}, got shape {x.shape}")
    if min(x.shape[-dims:]) < 1:
        raise ValueError(f"{op}: expected an input with non-empty spatial axes, got shape {x.shape}")


def _adaptive_avg(x: Tensor, sizes: tuple[int, ...]) -> Tensor:
    """Average over the last len(sizes) axes: one matrix product per axis, A_h @ x, then (that) @ A_wᵀ.

    A global average (every output size 1) is `mean`, which measured 4-6x faster
    than the two products on (64, 512, 7, 7); otherwise the products are as fast as
    avg_pool2d where that applies (14 → 7: 1.5-2.0 ms against 1.7-1.8 forward and
    backward, 28 → 7: 2.0-3.4 against 3.7-4.8), so they serve every size.
    Multiplying by H first measured faster than by W first (1.5 against 1.9 ms).
    """
    if x.dtype.kind != "f":
        x = x.astype(np.float32)  # a mean of integers is a float, as in avg_pool2d
    axes = tuple(range(x.ndim - len(sizes), x.ndim))
    if all(s == 1 for s in sizes):
        return x.mean(axis=axes, keepdims=True)
    if len(sizes) == 2:
        x = averaging_matrix(x.shape[-2], sizes[0], x.dtype) @ x  # #ph,...hw -> ...pw
    return x @ averaging_matrix(x.shape[-1], sizes[-1], x.dtype).T  # #...pw,wq -> ...pq


def _as_4d(x: Tensor, dims: int) -> Tensor:
    """x (N, C, *spatial) or (C, *spatial) as the (N, C, H, W) max_pool2d takes: a view with axes of size 1 added."""
    if x.ndim == dims + 1:
        x = x.unsqueeze(0)
    return x.unsqueeze(2) if dims == 1 else x


def _adaptive_max(x: Tensor, sizes: tuple[int, ...], return_indices: bool) -> Tensor | tuple[Tensor, Tensor]:
    """Max over each window of the last len(sizes) axes.

    Where every output size divides its input size, the windows sit side by side
    with one length, k = size / out: that is max_pool2d with kernel = stride = k
    (2-8 ms forward and backward on (64, 64, 14, 14) → 7 and (64, 32, 28, 28) → 7,
    where the gather below took 11-40 ms: its backward adds with `np.add.at`).
    Otherwise all windows are gathered at once along the flattened spatial axes
    (one integer-array index), and one max is taken over each. A window shorter
    than the longest is padded with an index past the end, where one element of
    the lowest value was appended: it never wins, so in both cases the gradient
    of a window is split evenly among its true maxima.
    """
    dims, spatial = len(sizes), x.shape[-len(sizes):]
    lead, out_shape = x.shape[:-dims], (*x.shape[:-dims], *sizes)
    if min(sizes) > 0 and all(n % s == 0 for n, s in zip(spatial, sizes)):
        kernel = tuple(n // s for n, s in zip(spatial, sizes))
        result = _as_4d(x, dims).max_pool2d(kernel if dims == 2 else (1, *kernel), return_indices=return_indices)
        if not return_indices:
            return result.reshape(out_shape)  # type: ignore[union-attr]
        return result[0].reshape(out_shape), result[1].reshape(out_shape)
    per_axis = []
    for size, out in zip(spatial, sizes):
        starts, ends = adaptive_windows(size, out)
        positions = starts[:, None] + np.arange(int((ends - starts).max(initial=1)))
        per_axis.append((positions, positions < ends[:, None]))  # (out, longest) and which of them are inside
    flat, inside = per_axis[0]
    if dims == 2:  # row-major, h·W + w: windows (out_h, out_w, longest_h · longest_w)
        (rows, rows_inside), (columns, columns_inside) = per_axis
        longest = rows.shape[1] * columns.shape[1]
        flat = (rows[:, None, :, None] * spatial[1] + columns[None, :, None, :]).reshape(*sizes, longest)
        inside = (rows_inside[:, None, :, None] & columns_inside[None, :, None, :]).reshape(*sizes, longest)
    count = math.prod(spatial)
    values = x.reshape(*lead, count)
    if not inside.all():
        values = values.pad([(0, 0)] * len(lead) + [(0, 1)], value=lowest_value(x.dtype))
    windows = values[..., np.where(inside, flat, count)]  # (..., *sizes, longest window): one gather
    out = windows.max(axis=-1)
    if not return_indices:
        return out
    return out, Tensor(_argmax_indices(windows.data, flat))


def _argmax_indices(windows: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """Where each window's maximum is, as an int64 index into the flattened spatial axes, as PyTorch picks it:
    the first maximum in row-major order, or the last NaN if the window holds one."""
    pick = np.argmax(windows, axis=-1)
    nan = np.isnan(windows) if windows.dtype.kind == "f" else None
    if nan is not None and nan.any():
        last_nan = windows.shape[-1] - 1 - np.argmax(nan[..., ::-1], axis=-1)
        pick = np.where(nan.any(axis=-1), last_nan, pick)
    return np.take_along_axis(np.broadcast_to(flat, windows.shape), pick[..., None], axis=-1)[..., 0].astype(np.int64)


def adaptive_avg_pool2d(input: Tensor, output_size: Any) -> Tensor:
    """`torch.nn.functional.adaptive_avg_pool2d` on (N, C, H, W) or (C, H, W): output (…, out_h, out_w).

    output_size is an int or a pair whose None entries keep the input's size.
    Windows as the module docstring draws them; two matrix products.
    """
    op = "adaptive_avg_pool2d"
    _check_input(input, 2, op)
    return _adaptive_avg(input, _output_sizes(output_size, input.shape[-2:], op))


def adaptive_max_pool2d(input: Tensor, output_size: Any,
                        return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """`torch.nn.functional.adaptive_max_pool2d`: the max of each adaptive window, (N, C, H, W) or (C, H, W).

    Ties: the gradient of a window is split evenly among all its maxima (this
    library's rule for every max), where PyTorch gives all of it to one of them;
    both are valid subgradients. With return_indices, also where each maximum is,
    as an int64 index into the flattened H·W input: the first one, as PyTorch.
    """
    op = "adaptive_max_pool2d"
    _check_input(input, 2, op)
    return _adaptive_max(input, _output_sizes(output_size, input.shape[-2:], op), return_indices)


def adaptive_avg_pool1d(input: Tensor, output_size: Any) -> Tensor:
    """`torch.nn.functional.adaptive_avg_pool1d` on (N, C, L) or (C, L): one matrix product, x @ Aᵀ."""
    op = "adaptive_avg_pool1d"
    _check_input(input, 1, op)
    return _adaptive_avg(input, _output_sizes(output_size, input.shape[-1:], op))


def adaptive_max_pool1d(input: Tensor, output_size: Any,
                        return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """`torch.nn.functional.adaptive_max_pool1d` on (N, C, L) or (C, L); ties split evenly (see adaptive_max_pool2d)."""
    op = "adaptive_max_pool1d"
    _check_input(input, 1, op)
    return _adaptive_max(input, _output_sizes(output_size, input.shape[-1:], op), return_indices)


class _AdaptiveAvgPoolNd(Module):
    """What the adaptive average pooling layers share (PyTorch's _AdaptiveAvgPoolNd): the output size, the repr."""

    def __init__(self, output_size: Any):
        super().__init__()
        self.output_size = output_size

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class _AdaptiveMaxPoolNd(_AdaptiveAvgPoolNd):
    """What the adaptive max pooling layers share: the output size, return_indices, the repr."""

    def __init__(self, output_size: Any, return_indices: bool = False):
        super().__init__(output_size)
        self.return_indices = return_indices


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """Average pooling to a given output size, whatever the input's (`adaptive_avg_pool2d`)."""

    def forward(self, x: Tensor) -> Tensor:
        return adaptive_avg_pool2d(x, self.output_size)


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """Average pooling of (N, C, L) to a given length (`adaptive_avg_pool1d`)."""

    def forward(self, x: Tensor) -> Tensor:
        return adaptive_avg_pool1d(x, self.output_size)


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """Max pooling to a given output size (`adaptive_max_pool2d`); ties split the gradient evenly."""

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        return adaptive_max_pool2d(x, self.output_size, self.return_indices)


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """Max pooling of (N, C, L) to a given length (`adaptive_max_pool1d`); ties split the gradient evenly."""

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        return adaptive_max_pool1d(x, self.output_size, self.return_indices)


# ---------------------------------------------------------------------------- upsampling
MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")


def nearest_source(size: int, out: int, scale: float | None, shortcuts: bool = False) -> np.ndarray:
    """Which input position each of the `out` output positions copies, PyTorch's 'nearest' rule.

    src = ⌊dst · in/out⌋, or ⌊dst / scale_factor⌋ when the scale was given, computed
    in float32 as PyTorch's kernels do (so the rare rounding at a boundary agrees),
    and never past the last pixel. With `shortcuts` (PyTorch 2.13 takes them for 2-D
    input only, not for 1-D or 3-D), equal sizes copy and double sizes halve, whatever
    the scale: a scale_factor of 1.1 on 2 pixels (output 2) copies, where the rule
    would read pixel 0 twice.
    """
    dst = np.arange(out)
    if shortcuts and out == size:
        return dst
    if shortcuts and out == 2 * size:
        return dst // 2
    step = np.float32(1.0 / scale) if scale is not None and scale > 0 else np.float32(size) / np.float32(out)
    return np.minimum(np.floor(dst.astype(np.float32) * step).astype(np.int64), size - 1)


def _per_axis(value: Any, dims: int, name: str, kind: type, x: Tensor) -> tuple:
    """size / scale_factor as one entry per spatial axis (an int or float stands for all of them)."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims
    if len(values) != dims:
        raise ValueError(f"interpolate: input of shape {x.shape} has {dims} spatial axes, but {name} is {value!r}")
    allowed = (int, np.integer) if kind is int else (int, float, np.integer, np.floating)
    if not all(isinstance(v, allowed) and not isinstance(v, bool) for v in values):
        raise TypeError(f"interpolate: {name} must be {'ints' if kind is int else 'numbers'}, got {value!r}")
    return tuple(kind(v) for v in values)


def interpolate(input: Tensor, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Tensor:
    """`torch.nn.functional.interpolate` for mode='nearest' on (N, C, L), (N, C, H, W) or (N, C, D, H, W).

    Give `size` (an int or one per spatial axis) or `scale_factor` (likewise; the
    output is ⌊in · scale⌋). Each output pixel copies the input pixel
    ⌊dst · in/out⌋ (⌊dst / scale_factor⌋ when the scale is given, unless
    recompute_scale_factor=True), as `nearest_source` computes: one integer-array
    index per axis, so the backward adds every copy's gradient back onto its source.
    The other modes of PyTorch raise NotImplementedError.
    """
    if mode not in MODES:
        raise NotImplementedError(f"interpolate: unknown mode {mode!r}; PyTorch's are {MODES}")
    if mode != "nearest":
        raise NotImplementedError(f"interpolate: mode={mode!r} is not implemented here, only 'nearest'")
    if align_corners is not None:
        raise ValueError("interpolate: align_corners can only be set with the interpolating modes "
                         "(linear, bilinear, bicubic, trilinear), not 'nearest'")
    if antialias:
        raise ValueError("interpolate: antialias applies to the bilinear and bicubic modes only, not 'nearest'")
    if input.ndim not in (3, 4, 5):
        raise ValueError(f"interpolate: expected a 3-D, 4-D or 5-D input (N, C, d1[, d2[, d3]]), "
                         f"got shape {input.shape}")
    spatial = input.shape[2:]
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor, got "
                         f"{'both' if size is not None else 'neither'}")
    if size is not None:
        out, scales = _per_axis(size, len(spatial), "size", int, input), (None,) * len(spatial)
    else:
        scales = _per_axis(scale_factor, len(spatial), "scale_factor", float, input)
        out = tuple(math.floor(n * s) for n, s in zip(spatial, scales))
        if recompute_scale_factor:  # the output size comes from the scale, the copying rule from the sizes
            scales = (None,) * len(spatial)
    if min(out) < 1:
        raise ValueError(f"interpolate: input of shape {input.shape} gives an output of {out}; "
                         "every output size must be at least 1")
    index = []
    for axis, (n, m, s) in enumerate(zip(spatial, out, scales)):
        shape = [1] * len(spatial)
        shape[axis] = m
        index.append(nearest_source(n, m, s, shortcuts=len(spatial) == 2).reshape(shape))
    return input[(slice(None), slice(None), *index)]


class Upsample(Module):
    """Upsampling to a `size` or by a `scale_factor` (`interpolate`), PyTorch's arguments and repr.

    Only mode='nearest' runs here; a module made with another mode raises
    NotImplementedError when it is called, naming the mode.
    """

    def __init__(self, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                 align_corners: bool | None = None, recompute_scale_factor: bool | None = None):
        super().__init__()
        self.size = size
        if isinstance(scale_factor, (tuple, list)):
            self.scale_factor: Any = tuple(float(factor) for factor in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, x: Tensor) -> Tensor:
        return interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners,
                           recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self) -> str:
        info = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None else f"size={self.size!r}"
        return f"{info}, mode={self.mode!r}"
