"""Weight initialisation, in place, with `torch.nn.init`'s names and formulas.

Why the scales: a layer with fan_in inputs of unit variance produces outputs of
variance fan_in · Var(w). Kaiming (He) picks Var(w) = gain² / fan_in so that
activations keep their scale through ReLU layers; Xavier (Glorot) picks
2 · gain² / (fan_in + fan_out) to balance the forward and backward passes.
A uniform U(-b, b) has variance b² / 3, hence the √3 in the bounds.

PyTorch's Linear and Conv2d use ``kaiming_uniform_(w, a=√5)``, which works out
to U(-1/√fan_in, 1/√fan_in). Every draw comes from `default_generator()`, so
`Tensor.manual_seed(s)` makes a model's initial weights reproducible.
"""

from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor, default_generator
from .parameter import Parameter

_LINEAR_LIKE = {"linear", "identity", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                "conv_transpose3d", "sigmoid"}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor by which `nonlinearity` shrinks the standard deviation, to be undone by the init."""
    if nonlinearity in _LINEAR_LIKE:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _fan_in_and_fan_out(t: Tensor) -> tuple[int, int]:
    """fan_in = in_features · kernel area, fan_out = out_features · kernel area (weight layout (out, in, ...))."""
    if t.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor of at least 2 dimensions, got shape {t.shape}")
    receptive = math.prod(t.shape[2:])
    return t.shape[1] * receptive, t.shape[0] * receptive


def _fan(t: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fan_in_and_fan_out(t)
    return fan_in if mode == "fan_in" else fan_out


def _fill(t: Tensor, values: np.ndarray | float) -> Tensor:
    """Write into t's own array (optimizers and views holding it see the change)."""
    if t.dtype.kind != "f":
        raise TypeError(f"init: expected a floating-point tensor, got {t.dtype}")
    if not t.data.flags.writeable:
        t.data = np.array(t.data)
    t.data[...] = values
    return t


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill with U(a, b)."""
    return _fill(t, default_generator().uniform(a, b, t.shape))


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill with N(mean, std²)."""
    return _fill(t, default_generator().normal(mean, std, t.shape))


def constant_(t: Tensor, value: float) -> Tensor:
    return _fill(t, value)


def zeros_(t: Tensor) -> Tensor:
    return _fill(t, 0.0)


def ones_(t: Tensor) -> Tensor:
    return _fill(t, 1.0)


def kaiming_uniform_(t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """U(-b, b) with b = gain · √(3 / fan): He initialisation (a is leaky_relu's negative slope)."""
    if t.numel() == 0:  # nothing to fill (and a zero fan would divide by zero)
        return t
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(t, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(t, -bound, bound)


def kaiming_normal_(t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """N(0, std²) with std = gain / √fan."""
    if t.numel() == 0:  # nothing to fill (and a zero fan would divide by zero)
        return t
    return normal_(t, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(_fan(t, mode)))


def xavier_uniform_(t: Tensor, gain: float = 1.0) -> Tensor:
    """U(-b, b) with b = gain · √(6 / (fan_in + fan_out)): Glorot initialisation."""
    if t.numel() == 0:  # nothing to fill (and a zero fan would divide by zero)
        return t
    fan_in, fan_out = _fan_in_and_fan_out(t)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -bound, bound)


def xavier_normal_(t: Tensor, gain: float = 1.0) -> Tensor:
    """N(0, std²) with std = gain · √(2 / (fan_in + fan_out))."""
    if t.numel() == 0:  # nothing to fill (and a zero fan would divide by zero)
        return t
    fan_in, fan_out = _fan_in_and_fan_out(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def default_weight_and_bias(weight: Tensor, bias: Tensor | None) -> None:
    """PyTorch's `reset_parameters` for Linear and Conv2d: weight and bias both U(±1/√fan_in)."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = _fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        uniform_(bias, -bound, bound)


def empty_parameter(*shape: int) -> Tensor:
    """Storage for a parameter that a layer's `reset_parameters` fills right after (float32, requires grad)."""
    return Parameter(np.empty(shape, dtype=np.float32))
