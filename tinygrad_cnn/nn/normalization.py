"""Batch normalisation: normalise each channel by its batch statistics, then scale and shift.

    training:  y = (x - mean_B) / √(var_B + eps) · γ + β       (biased batch variance)
               running_mean ← (1 - m) · running_mean + m · mean_B
               running_var  ← (1 - m) · running_var  + m · var_B · n / (n - 1)   (unbiased)
    eval:      y = (x - running_mean) / √(running_var + eps) · γ + β

Statistics are per channel (axis 1), over every other axis. The gradient flows
through mean_B and var_B too (that is what makes batch norm more than a fixed
rescaling); the running statistics are buffers, updated outside the graph.
`momentum=None` gives a cumulative average (factor 1 / batches seen), as in PyTorch.
"""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .module import Module


class _BatchNorm(Module):
    _input_dims: tuple[int, ...] = ()
    _expected = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, *, bias: bool = True):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = Tensor(np.ones(num_features, dtype=np.float32), requires_grad=True)
            if bias:
                self.bias = Tensor(np.zeros(num_features, dtype=np.float32), requires_grad=True)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(num_features, dtype=np.float32)))
            self.register_buffer("running_var", Tensor(np.ones(num_features, dtype=np.float32)))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in self._input_dims:
            raise ValueError(f"{type(self).__name__}: expected {self._expected} input, got shape {x.shape}")
        channels = x.shape[1]
        if channels != self.num_features:
            raise ValueError(f"{type(self).__name__}: input of shape {x.shape} has {channels} channels on axis 1, "
                             f"expected num_features={self.num_features}")
        axes = (0, *range(2, x.ndim))
        shape = (1, channels) + (1,) * (x.ndim - 2)
        weight = self.weight.reshape(shape) if self.weight is not None else None
        bias = self.bias.reshape(shape) if self.bias is not None else None
        if self.training or self.running_mean is None:
            return self._normalise_with_batch_stats(x, axes, weight, bias)
        # eval: fixed statistics fold into one per-channel scale and shift (two full-size ops)
        inv_std = (1.0 / np.sqrt(self.running_var.data + self.eps)).astype(x.dtype).reshape(shape)
        mean = self.running_mean.data.astype(x.dtype).reshape(shape)
        scale = Tensor(inv_std) if weight is None else weight * inv_std
        shift = -mean * scale
        return x * scale + (shift if bias is None else shift + bias)

    def _normalise_with_batch_stats(self, x: Tensor, axes: tuple, weight: Tensor | None,
                                    bias: Tensor | None) -> Tensor:
        n = x.size // x.shape[1]
        if n <= 1:
            raise ValueError(f"{type(self).__name__}: expected more than 1 value per channel when training, "
                             f"got input of shape {x.shape}")
        mean = x.mean(axes, keepdims=True)
        centered = x - mean
        var = (centered * centered).mean(axes, keepdims=True)
        inv_std = (var + self.eps) ** -0.5
        if self.training and self.running_mean is not None:
            self._update_running_stats(mean.data, var.data, n)
        y = centered * (inv_std if weight is None else inv_std * weight)
        return y if bias is None else y + bias

    def _update_running_stats(self, mean: np.ndarray, var: np.ndarray, n: int) -> None:
        self.num_batches_tracked.data += 1
        factor = self.momentum if self.momentum is not None else 1.0 / int(self.num_batches_tracked.data)
        running_mean, running_var = self.running_mean.data, self.running_var.data
        running_mean *= 1.0 - factor
        running_mean += factor * mean.reshape(-1)
        running_var *= 1.0 - factor
        running_var += (factor * n / (n - 1)) * var.reshape(-1)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) input: statistics per feature C."""

    _input_dims = (2, 3)
    _expected = "2-D (N, C) or 3-D (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch norm over NCHW input: statistics per channel, over N, H and W."""

    _input_dims = (4,)
    _expected = "4-D (N, C, H, W)"
