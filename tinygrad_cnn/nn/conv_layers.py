"""Convolution, pooling, Unfold and Fold layers: thin holders of settings around the functions of conv/.

As in PyTorch, the convolutions store their sizes as tuples (``kernel_size=(3, 3)``,
Conv1d's ``(3,)``) and AvgPool1d too, while MaxPool1d and the 2-D pooling layers
keep them as given (``MaxPool2d(2).kernel_size == 2``); the reprs match
PyTorch's character for character.
"""

from __future__ import annotations

from typing import Any

from ..conv import avg_pool1d, check_padding_string, conv1d, conv_transpose2d, max_pool1d, pair, same_padding, single
from ..tensor import Tensor
from . import functional, init
from .module import Module

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _sizes(value: Any, name: str, op: str, minimum: int, dims: int) -> tuple[int, ...]:
    """A size argument as a tuple of `dims` ints, as PyTorch's convolutions store it: (3,) or (3, 3)."""
    return (single(value, name, op, minimum),) if dims == 1 else pair(value, name, op, minimum)


class _ConvNd(Module):
    """What Conv1d, Conv2d and ConvTranspose2d share: their settings, parameters, init and repr (PyTorch's _ConvNd).

    The weight is (out_channels, in_channels/groups, *kernel_size), or for a
    transposed convolution (in_channels, out_channels/groups, *kernel_size);
    weight and bias start as U(±1/√fan_in) with fan_in = weight.shape[1] · kernel
    area, PyTorch's default for both.
    """

    dims = 2
    transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
                 groups: int, bias: bool, padding_mode: str, output_padding: Any = 0):
        super().__init__()
        op = type(self).__name__
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"{op}: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        if self.transposed and padding_mode != "zeros":
            raise ValueError(f"{op}: only padding_mode='zeros' is supported (as in PyTorch), got {padding_mode!r}")
        self.padding_mode = padding_mode
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(f"{op}: in_channels ({in_channels}) and out_channels ({out_channels}) must both be "
                             f"divisible by groups ({groups})")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _sizes(kernel_size, "kernel_size", op, 1, self.dims)
        self.stride = _sizes(stride, "stride", op, 1, self.dims)
        if isinstance(padding, str) and not self.transposed:  # 'same' / 'valid', kept as given (repr: padding=same)
            check_padding_string(padding, self.stride if self.dims == 2 else self.stride[0], op)
            self.padding: tuple[int, ...] | str = padding
        else:
            self.padding = _sizes(padding, "padding", op, 0, self.dims)
        self.dilation = _sizes(dilation, "dilation", op, 1, self.dims)
        if self.transposed:
            self.output_padding = _sizes(output_padding, "output_padding", op, 0, self.dims)
        self.groups = groups
        channels = (in_channels, out_channels // groups) if self.transposed else (out_channels, in_channels // groups)
        self.weight = init.empty_parameter(*channels, *self.kernel_size)
        if bias:
            self.bias = init.empty_parameter(out_channels)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.default_weight_and_bias(self.weight, self.bias)

    def _pad_input(self, x: Tensor) -> tuple[Tensor, Any]:
        """(x, padding) for the convolution: with padding_mode other than 'zeros', x padded by copying and 0.

        `functional.pad` mirrors, repeats or wraps the edges, then the convolution
        runs unpadded, as PyTorch does; 'same' puts an odd pixel after, as conv2d does.
        """
        if self.padding_mode == "zeros" or self.padding == "valid":
            return x, self.padding
        if self.padding == "same":
            amounts = same_padding(self.kernel_size if self.dims == 2 else (1, *self.kernel_size),
                                   self.dilation if self.dims == 2 else (1, *self.dilation))
        else:
            amounts = tuple((p, p) for p in self.padding)
        flat = [a for before_after in reversed(amounts[-self.dims:]) for a in before_after]  # last axis first
        return functional.pad(x, flat, mode=self.padding_mode), 0

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * self.dims:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self.dims:
            s += f", dilation={self.dilation}"
        if self.transposed and self.output_padding != (0,) * self.dims:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd):
    """1-D cross-correlation over (N, C, L) input: weight (out_channels, in_channels/groups, k).

    PyTorch's arguments, defaults, init and repr; runs as conv2d on an (N, C, 1, L)
    view (`conv.conv1d`). `padding` is an int or 'same' / 'valid'; `padding_mode`
    other than 'zeros' pads with `functional.pad` first, as in Conv2d.
    """

    dims = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros"):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode)

    def forward(self, x: Tensor) -> Tensor:
        x, padding = self._pad_input(x)
        return conv1d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class Conv2d(_ConvNd):
    """2-D cross-correlation over NCHW input: weight (out_channels, in_channels/groups, kh, kw).

    Weight and bias start as U(±1/√fan_in) with fan_in = in_channels/groups · kh · kw,
    PyTorch's default. `padding` is an int, a pair, or 'same' / 'valid' (kept as given).
    `padding_mode` other than 'zeros' pads the input with `functional.pad` first (mirrored,
    repeated or wrapped edges), then convolves with no padding, as PyTorch does.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros"):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode)

    def forward(self, x: Tensor) -> Tensor:
        x, padding = self._pad_input(x)
        return x.conv2d(self.weight, self.bias, stride=self.stride, padding=padding, dilation=self.dilation,
                        groups=self.groups)


class ConvTranspose2d(_ConvNd):
    """The transposed 2-D convolution (conv2d's input gradient as a layer): weight (in_channels, out_channels/groups,
    kh, kw), PyTorch's arguments in PyTorch's order (output_padding and groups before bias, dilation after).

    `forward(x, output_size=None)`: a strided convolution maps several input sizes
    onto one output size, so the inverse direction may be asked for any of them,
    as (H_out, W_out) or (N, C, H_out, W_out); that picks output_padding, as in PyTorch.
    """

    transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 output_padding: Any = 0, groups: int = 1, bias: bool = True, dilation: Any = 1,
                 padding_mode: str = "zeros"):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
                         output_padding)

    def forward(self, x: Tensor, output_size: Any = None) -> Tensor:
        output_padding = self.output_padding if output_size is None else self._output_padding(x, output_size)
        return conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, output_padding, self.groups,
                                self.dilation)

    def _output_padding(self, x: Tensor, output_size: Any) -> tuple[int, ...]:
        """The output_padding that gives `output_size`: each size must lie in [smallest, smallest + stride − 1]."""
        size = list(output_size)
        if len(size) == x.ndim:
            size = size[2:]
        if len(size) != 2:
            raise ValueError(f"ConvTranspose2d: for a {x.ndim}-D input, output_size must have 2 or 4 elements, "
                             f"got {output_size!r}")
        smallest = [(n - 1) * s - 2 * p + d * (k - 1) + 1 for n, k, s, p, d in
                    zip(x.shape[2:], self.kernel_size, self.stride, self.padding, self.dilation)]
        largest = [m + s - 1 for m, s in zip(smallest, self.stride)]
        if any(not lo <= n <= hi for n, lo, hi in zip(size, smallest, largest)):
            raise ValueError(f"ConvTranspose2d: requested an output size of {tuple(size)}, but valid sizes range "
                             f"from {tuple(smallest)} to {tuple(largest)} (for an input of {x.shape[2:]})")
        return tuple(n - lo for n, lo in zip(size, smallest))


class MaxPool2d(Module):
    """The maximum over each kernel_size window (stride defaults to kernel_size; padding counts as -inf).

    PyTorch's arguments in PyTorch's order; with return_indices the forward
    returns (output, indices), indices as in `functional.max_pool2d`.
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                 return_indices: bool = False, ceil_mode: bool = False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        return x.max_pool2d(self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                            self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """The mean over each window; padded zeros count in the divisor unless count_include_pad=False."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, x: Tensor) -> Tensor:
        return x.avg_pool2d(self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                            self.divisor_override)

    def extra_repr(self) -> str:  # what PyTorch shows
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool1d(MaxPool2d):
    """The maximum over each window of (N, C, L) input; PyTorch's arguments, kept as given, and repr.

    Runs max_pool2d on an (N, C, 1, L) view (`conv.max_pool1d`): ties share the gradient evenly.
    """

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        return max_pool1d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
                          self.return_indices)


class AvgPool1d(Module):
    """The mean over each window of (N, C, L) input; sizes stored as one-element tuples, as PyTorch does."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True):
        super().__init__()
        op = "AvgPool1d"
        self.kernel_size = (single(kernel_size, "kernel_size", op, 1),)
        self.stride = self.kernel_size if stride is None else (single(stride, "stride", op, 1),)
        self.padding = (single(padding, "padding", op, 0),)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, x: Tensor) -> Tensor:
        return avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)

    def extra_repr(self) -> str:  # what PyTorch shows
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class Unfold(Module):
    """im2col as a layer: (N, C, H, W) → (N, C·kh·kw, L), PyTorch's `nn.Unfold` (its arguments, in its order)."""

    def __init__(self, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1):
        super().__init__()
        self.kernel_size, self.dilation, self.padding, self.stride = kernel_size, dilation, padding, stride

    def forward(self, x: Tensor) -> Tensor:
        return x.unfold2d(self.kernel_size, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, dilation={self.dilation}, padding={self.padding}, stride={self.stride}"


class Fold(Module):
    """col2im as a layer: (N, C·kh·kw, L) → (N, C, H, W), overlaps summed, PyTorch's `nn.Fold`."""

    def __init__(self, output_size: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1):
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, x: Tensor) -> Tensor:
        return x.fold2d(self.output_size, self.kernel_size, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")
