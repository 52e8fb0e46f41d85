"""LocallyConnected2d: a convolution's connectivity without its weight sharing.

A convolution slides *one* filter over every position. A locally connected
layer has the same receptive fields (kernel, stride, padding) but a separate
filter at each output position::

    Conv2d:             weight (C_out, C_in, kh, kw)                  shared by all H_out·W_out positions
    LocallyConnected2d: weight (H_out, W_out, C_out, C_in, kh, kw)    one filter per position

So it separates the two ideas people credit CNNs with: local connectivity
(kept) and shared weights (dropped). `tinygrad-cnn compare` trains it next to
the CNN and the MLP to measure each idea on its own.

Computation: im2col gives every position's patch; then one batched GEMM,
batched over positions: (L, N, K) @ (L, K, C_out), with L = H_out·W_out and
K = kh·kw·C_in.
"""

from __future__ import annotations

import math
from typing import Any

from ..conv import Geometry, UnfoldFn, output_size, pair
from ..tensor import Tensor
from . import init
from .module import Module


class LocallyConnected2d(Module):
    """Like Conv2d(in_channels, out_channels, kernel_size, stride, padding) on inputs of `input_size`,
    but with an independent filter (and bias) at each output position.

    Weight and bias start as U(±1/√fan_in), fan_in = in_channels · kh · kw, like Conv2d.
    """

    def __init__(self, in_channels: int, out_channels: int, input_size: Any, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, bias: bool = True):
        super().__init__()
        op = "LocallyConnected2d"
        self.in_channels, self.out_channels = in_channels, out_channels
        self.input_size = pair(input_size, "input_size", op, 1)
        self.geometry = Geometry(pair(kernel_size, "kernel_size", op, 1), pair(stride, "stride", op, 1),
                                 pair(padding, "padding", op, 0), (1, 1))
        self.kernel_size, self.stride, self.padding = self.geometry[:3]
        self.output_size = tuple(output_size(s, k, st, p, 1) for s, k, st, p in zip(
            self.input_size, self.kernel_size, self.stride, self.padding))
        if min(self.output_size) < 1:
            raise ValueError(f"{op}: kernel {self.kernel_size} does not fit input size {self.input_size} "
                             f"with padding {self.padding}")
        out_h, out_w = self.output_size
        self.weight = init.empty_parameter(out_h, out_w, out_channels, in_channels, *self.kernel_size)
        if bias:
            self.bias = init.empty_parameter(out_channels, out_h, out_w)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.in_channels * self.kernel_size[0] * self.kernel_size[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        expected = (self.in_channels, *self.input_size)
        if x.ndim != 4 or x.shape[1:] != expected:
            raise ValueError(f"LocallyConnected2d: expected input (N, {', '.join(map(str, expected))}), "
                             f"got shape {x.shape}")
        n = x.shape[0]
        (out_h, out_w), (kh, kw), c = self.output_size, self.kernel_size, self.in_channels
        positions, k = out_h * out_w, kh * kw * c
        patches = UnfoldFn.apply(x, geometry=self.geometry)  # (N, H_out, W_out, kh, kw, C)
        cols = patches.reshape(n, positions, k).permute(1, 0, 2)  # (L, N, K)
        w = self.weight.reshape(positions, self.out_channels, c, kh, kw).permute(0, 3, 4, 2, 1).reshape(
            positions, k, self.out_channels)  # (L, K, C_out), the patch order of im2col
        out = cols @ w  # (L, N, C_out), stored (N, L, C_out): backend's matmul keeps the rows' order of cols
        if self.bias is not None:  # added in that layout: one contiguous pass (as (N, C, H, W), ~10x slower)
            out = out + self.bias.reshape(self.out_channels, positions).permute(1, 0).reshape(
                positions, 1, self.out_channels)
        # (N, H_out, W_out, C_out) memory seen as NCHW: channels-last, like Conv2d's output, at no cost
        return out.permute(1, 0, 2).reshape(n, out_h, out_w, self.out_channels).permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, input_size={self.input_size}, "
             f"kernel_size={self.kernel_size}, stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        return s + (", bias=False" if self.bias is None else "")
