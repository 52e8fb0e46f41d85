"""Convolution, pooling, Unfold and Fold layers: thin holders of settings around the Tensor methods.

As in PyTorch, Conv2d stores its sizes as pairs (``kernel_size=(3, 3)``) while
the pooling layers keep them as given (``MaxPool2d(2).kernel_size == 2``); the
reprs match PyTorch's character for character.
"""

from __future__ import annotations

from typing import Any

from ..conv import check_padding_string, pair, same_padding
from ..tensor import Tensor
from . import functional, init
from .module import Module

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class Conv2d(Module):
    """2-D cross-correlation over NCHW input: weight (out_channels, in_channels/groups, kh, kw).

    Weight and bias start as U(±1/√fan_in) with fan_in = in_channels/groups · kh · kw,
    PyTorch's default. `padding` is an int, a pair, or 'same' / 'valid' (kept as given).
    `padding_mode` other than 'zeros' pads the input with `functional.pad` first (mirrored,
    repeated or wrapped edges), then convolves with no padding, as PyTorch does.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros"):
        super().__init__()
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"Conv2d: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        self.padding_mode = padding_mode
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: in_channels ({in_channels}) and out_channels ({out_channels}) must both be "
                             f"divisible by groups ({groups})")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = pair(kernel_size, "kernel_size", "Conv2d", 1)
        self.stride = pair(stride, "stride", "Conv2d", 1)
        if isinstance(padding, str):  # 'same' or 'valid', kept as given (PyTorch's repr shows padding=same)
            check_padding_string(padding, self.stride, "Conv2d")
            self.padding: tuple[int, int] | str = padding
        else:
            self.padding = pair(padding, "padding", "Conv2d", 0)
        self.dilation = pair(dilation, "dilation", "Conv2d", 1)
        self.groups = groups
        self.weight = init.empty_parameter(out_channels, in_channels // groups, *self.kernel_size)
        if bias:
            self.bias = init.empty_parameter(out_channels)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.default_weight_and_bias(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        padding = self.padding
        if self.padding_mode != "zeros" and padding != "valid":  # pad by copying the input, then convolve unpadded
            x, padding = functional.pad(x, self._pad_amounts(), mode=self.padding_mode), 0
        return x.conv2d(self.weight, self.bias, stride=self.stride, padding=padding, dilation=self.dilation,
                        groups=self.groups)

    def _pad_amounts(self) -> tuple[int, int, int, int]:
        """(left, right, top, bottom), functional.pad's order; 'same' puts an odd pixel after, as conv2d does."""
        if self.padding == "same":
            (top, bottom), (left, right) = same_padding(self.kernel_size, self.dilation)
        else:
            (top, left), (bottom, right) = self.padding, self.padding
        return left, right, top, bottom

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


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
