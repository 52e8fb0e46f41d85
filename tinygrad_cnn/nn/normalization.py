"""Batch normalisation: normalise each channel by its batch statistics, then scale and shift.

    training:  y = (x - mean_B) / √(var_B + eps) · γ + β       (biased batch variance)
               running_mean ← (1 - m) · running_mean + m · mean_B
               running_var  ← (1 - m) · running_var  + m · var_B · n / (n - 1)   (unbiased)
    eval:      y = (x - running_mean) / √(running_var + eps) · γ + β

Statistics are per channel (axis 1), over every other axis. The gradient flows
through mean_B and var_B too (that is what makes batch norm more than a fixed
rescaling); the running statistics are buffers, updated outside the graph.
`momentum=None` gives a cumulative average (factor 1 / batches seen), as in PyTorch.

Training mode runs as one primitive, `BatchNormFn`; `batch_norm_reference`
is the same formula as a composite of Tensor ops, which the tests compare it with.

Layer norm and group norm normalise each *sample* instead, so they behave the
same in training and evaluation and keep no running statistics::

    layer_norm:  statistics over the trailing `normalized_shape` axes of each sample
    group_norm:  (N, C, *) seen as (N, G, C/G · *): statistics per sample and group of channels

Both are composites (`_standardize`: mean, biased variance, normalise), so the
engine derives their first and second derivatives.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import autograd
from ..autograd import Function
from ..backend.normalize import batch_norm_input_grad, centered_dots, centered_square_sums, scale_shift
from ..backend.reduce import channel_sums
from ..tensor import Tensor
from . import init
from .module import Module
from .parameter import Parameter


def batch_norm_reference(x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> Tensor:
    """(x − mean_B) / √(var_B + eps) · weight + bias per channel (axis 1), as Tensor ops: the composite."""
    axes = (0, *range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    mean = x.mean(axes, keepdims=True)
    centered = x - mean
    var = (centered * centered).mean(axes, keepdims=True)
    return centered * ((var + eps) ** -0.5 * weight.reshape(shape)) + bias.reshape(shape)


class BatchNormFn(Function):
    """y = x̂ · γ + β with x̂ = (x − mean_B) / σ, σ = √(var_B + ε), per channel: batch norm's training mode.

    ⇒ with g the output gradient and M the values per channel:
      dβ = Σ g,   dγ = Σ g·x̂,   dx = γ/σ · (g − Σ g / M − x̂ · Σ(g·x̂) / M)
    (the last two terms are the paths through mean_B and var_B). As one primitive
    this takes three passes over the activation each way (a sum, a centered sum of
    products, one fused elementwise pass: backend/normalize.py) where the composite
    (`batch_norm_reference`) took about twenty, each with its own temporary.
    When the backward is itself being recorded (create_graph=True), it runs the
    composite's backward instead, through `autograd.grad`, so second derivatives work.
    `stats`, a dict, receives the batch's mean and biased variance (for the running statistics).
    """

    def forward(ctx, x, weight, bias, eps, stats=None):
        ctx.eps = eps
        count = x.size // x.shape[1]
        mean = channel_sums(x) / count
        var = centered_square_sums(x, mean) / count
        inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
        scale = inv_std * weight
        ctx.save_for_backward(mean, inv_std)  # x itself is ctx.inputs[0]: x − mean is never stored
        if stats is not None:
            stats.update(mean=mean, var=var)
        return scale_shift(x, scale, bias - mean * scale)  # x̂ · γ + β = x · γ/σ + (β − mean · γ/σ)

    def backward(ctx, grad):
        x, weight, bias = ctx.inputs
        if autograd.is_grad_enabled() or autograd.is_dual_level_open():  # differentiate the composite instead
            return _composite_gradients(ctx, grad)
        mean, inv_std = ctx.saved_tensors
        g = grad.data
        count = g.size // g.shape[1]
        sum_g = channel_sums(g)
        sum_g_x_hat = centered_dots(g, x.data, mean) * inv_std
        grad_x = None
        if ctx.needs_input_grad[0]:  # γ/σ · g − (x − mean) · γ/σ · Σ(g·x̂) / (σ·M) − γ/σ · Σ g / M
            scale = weight.data * inv_std
            grad_x = batch_norm_input_grad(g, x.data, mean, scale, scale * sum_g_x_hat * inv_std / count,
                                           scale * sum_g / count)
        wrap = Tensor._wrap
        return (wrap(grad_x) if grad_x is not None else None,
                wrap(sum_g_x_hat.astype(weight.dtype)) if ctx.needs_input_grad[1] else None,
                wrap(sum_g.astype(bias.dtype)) if ctx.needs_input_grad[2] else None)

    def jvp(ctx, tx, tw, tb):  # the composite's derivative: x̂ moves by (ẋ − mean ẋ − x̂·mean(ẋ·x̂)) / σ
        x, w, _ = ctx.inputs
        axes, shape = (0, *range(2, x.ndim)), (1, x.shape[1]) + (1,) * (x.ndim - 2)
        centered = x - x.mean(axes, keepdims=True)
        inv_std = ((centered * centered).mean(axes, keepdims=True) + ctx.eps) ** -0.5
        x_hat = centered * inv_std
        moved = (tx - tx.mean(axes, keepdims=True) - x_hat * (tx * x_hat).mean(axes, keepdims=True)) * inv_std
        return moved * w.reshape(shape) + x_hat * tw.reshape(shape) + tb.reshape(shape)



def _composite_gradients(ctx: Any, grad: Tensor) -> tuple:
    """The gradients of `batch_norm_reference` at ctx's inputs, as a graph of their own (for create_graph)."""
    inputs = ctx.inputs
    wanted = [t for t, need in zip(inputs, ctx.needs_input_grad) if need]
    recorded = autograd.is_grad_enabled()  # off for a plain backward that runs here under forward mode
    with autograd.enable_grad():
        found = iter(autograd.grad(batch_norm_reference(*inputs, ctx.eps), wanted, grad, create_graph=True))
    grads = [next(found) if need else None for need in ctx.needs_input_grad]
    return tuple(g if g is None or recorded else g.detach() for g in grads)


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
            self.weight = Parameter(np.ones(num_features, dtype=np.float32))
            if bias:
                self.bias = Parameter(np.zeros(num_features, dtype=np.float32))
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
        if self.training or self.running_mean is None:
            return self._normalise_with_batch_stats(x, axes)
        weight = self.weight.reshape(shape) if self.weight is not None else None
        bias = self.bias.reshape(shape) if self.bias is not None else None
        # eval: fixed statistics fold into one per-channel scale and shift (two full-size ops)
        inv_std = (1.0 / np.sqrt(self.running_var.data + self.eps)).astype(x.dtype).reshape(shape)
        mean = self.running_mean.data.astype(x.dtype).reshape(shape)
        scale = Tensor(inv_std) if weight is None else weight * inv_std
        shift = -mean * scale
        return x * scale + (shift if bias is None else shift + bias)

    def _normalise_with_batch_stats(self, x: Tensor, axes: tuple) -> Tensor:
        n = x.numel() // x.shape[1]
        if n <= 1:
            raise ValueError(f"{type(self).__name__}: expected more than 1 value per channel when training, "
                             f"got input of shape {x.shape}")
        channels, dtype = (x.shape[1],), (x.dtype if x.dtype.kind == "f" else np.float32)
        weight = Tensor(np.ones(channels, dtype)) if self.weight is None else self.weight  # constants: no gradient
        bias = Tensor(np.zeros(channels, dtype)) if self.bias is None else self.bias
        if x.dtype.kind != "f" or weight.dtype != x.dtype or bias.dtype != x.dtype:  # promotion: the composite's
            y = batch_norm_reference(x, weight, bias, self.eps)
            if self.training and self.running_mean is not None:
                mean = x.data.mean(axes, keepdims=True)
                self._update_running_stats(mean, ((x.data - mean) ** 2).mean(axes), n)
            return y
        stats: dict[str, np.ndarray] = {}
        y = BatchNormFn.apply(x, weight, bias, eps=self.eps, stats=stats)
        if self.training and self.running_mean is not None:
            self._update_running_stats(stats["mean"], stats["var"], n)
        return y

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


# ---------------------------------------------------------------------------- per-sample normalisation
def _standardize(x: Tensor, axes: tuple[int, ...], eps: float) -> Tensor:
    """(x − mean) / √(var + eps) over `axes`, with the biased variance: the shared core of layer and group norm.

    A composite of Tensor ops, so the gradient (which also flows through the
    mean and the variance) and its own derivative come from the engine.
    """
    mean = x.mean(axes, keepdims=True)
    centered = x - mean
    var = (centered * centered).mean(axes, keepdims=True)
    return centered * (var + eps) ** -0.5


def _floating_input(x: Tensor, fn: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}: input must be a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{fn}: input must be floating point, got {x.dtype}")


def _as_shape(normalized_shape: int | Sequence[int]) -> tuple[int, ...]:
    """An int n means (n,), as in PyTorch; a sequence becomes a tuple of ints."""
    if isinstance(normalized_shape, numbers.Integral):
        return (int(normalized_shape),)
    return tuple(int(s) for s in normalized_shape)


def layer_norm(input: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise each sample over its trailing `normalized_shape` axes, then scale by weight and add bias.

        y = (x − mean) / √(var + eps) · weight + bias      (biased variance; weight, bias of shape normalized_shape)

    Unlike batch norm, the statistics are per sample, so the result does not
    depend on the rest of the batch (the reason transformers use it).
    """
    _floating_input(input, "layer_norm")
    shape = _as_shape(normalized_shape)
    if not shape:
        raise ValueError("layer_norm: expected normalized_shape to be at least 1-dimensional, i.e., containing "
                         f"at least one element, but got normalized_shape = {list(shape)}")
    trailing = input.shape[input.ndim - len(shape):] if input.ndim >= len(shape) else None
    if trailing != shape:
        raise ValueError(f"layer_norm: given normalized_shape={list(shape)}, expected input with shape "
                         f"[*, {', '.join(map(str, shape))}], but got input of shape {input.shape}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != shape:
            raise ValueError(f"layer_norm: expected {name} to be of same shape as normalized_shape, but got "
                             f"{name} of shape {p.shape} and normalized_shape = {list(shape)}")
    y = _standardize(input, tuple(range(input.ndim - len(shape), input.ndim)), eps)
    if weight is not None:
        y = y * weight
    return y if bias is None else y + bias


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Split the C channels of (N, C, *) input into `num_groups` groups; normalise each sample's group.

        x viewed as (N, G, C/G · *)  →  standardised over the last axis  →  back to (N, C, *) · weight_c + bias_c

    One group is layer norm over (C, *); C groups is instance norm. The statistics
    never mix samples, so small batches are fine (where batch norm struggles).
    """
    _floating_input(input, "group_norm")
    if input.ndim < 2:
        raise ValueError(f"group_norm: expected at least 2 dimensions (N, C, *) for the input tensor, but got "
                         f"shape {input.shape}")
    n, channels = input.shape[:2]
    if isinstance(num_groups, bool) or not isinstance(num_groups, numbers.Integral) or num_groups < 1:
        raise ValueError(f"group_norm: num_groups must be a positive int, got {num_groups!r}")
    if channels % num_groups:
        raise ValueError(f"group_norm: expected number of channels in input to be divisible by num_groups, but "
                         f"got input of shape {input.shape} and num_groups={num_groups}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != (channels,):
            raise ValueError(f"group_norm: expected {name} to be a vector of size equal to the number of channels "
                             f"in input, but got {name} of shape {p.shape} and input of shape {input.shape}")
    per_group = channels // num_groups * math.prod(input.shape[2:])
    if n * per_group == 1:  # PyTorch's check (_verify_batch_size): one value per group has no variance
        raise ValueError(f"group_norm: expected more than 1 value per channel when training, got input of shape "
                         f"{input.shape}")
    y = _standardize(input.reshape(n, num_groups, per_group), (2,), eps).reshape(*input.shape)
    affine = (channels,) + (1,) * (input.ndim - 2)  # broadcasts over N in front and the spatial axes behind
    if weight is not None:
        y = y * weight.reshape(*affine)
    return y if bias is None else y + bias.reshape(*affine)


class LayerNorm(Module):
    """Layer normalisation over the trailing `normalized_shape` axes (`torch.nn.LayerNorm`).

    weight (ones) and bias (zeros) have shape `normalized_shape` and are applied
    elementwise; `elementwise_affine=False` drops both, `bias=False` the bias.
    """

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True):
        super().__init__()
        self.normalized_shape = _as_shape(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _affine_parameters(self, self.normalized_shape, elementwise_affine, bias)

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class GroupNorm(Module):
    """Group normalisation of (N, C, *) input (`torch.nn.GroupNorm`): C channels in `num_groups` groups.

    weight (ones) and bias (zeros) are per channel, as in batch norm; `affine=False`
    drops both, `bias=False` the bias.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, *,
                 bias: bool = True):
        super().__init__()
        if num_groups < 1 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups})")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        _affine_parameters(self, (num_channels,), affine, bias)

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim >= 2 and x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm: input of shape {x.shape} has {x.shape[1]} channels on axis 1, expected "
                             f"num_channels={self.num_channels}")
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


def _affine_parameters(module: Module, shape: tuple, affine: bool, bias: bool) -> None:
    """weight (ones) and bias (zeros) of `shape`, or None where switched off, in PyTorch's registration order."""
    module.register_parameter("weight", init.empty_parameter(*shape) if affine else None)
    module.register_parameter("bias", init.empty_parameter(*shape) if affine and bias else None)
    _reset_affine(module)


def _reset_affine(module: Module) -> None:
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)
