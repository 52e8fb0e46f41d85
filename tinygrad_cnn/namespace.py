"""PyTorch's top-level names, so that `import tinygrad_cnn as torch` runs a beginner's script.

Each is a thin wrapper over `Tensor` with PyTorch's arguments (`dim=`, `dtype=`,
`device=`, `requires_grad=`). dtypes are numpy's (`torch.float32 == np.float32`),
and the one device is the CPU: numpy computes there, and asking for CUDA or MPS
says so. docs/porting.md lists every name and its status.
"""

from __future__ import annotations

import builtins
import types
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .tensor import CPU, Device, Tensor, check_device

device = Device

# dtypes: numpy's, under PyTorch's names
float32 = float = np.dtype(np.float32)
float64 = double = np.dtype(np.float64)
float16 = half = np.dtype(np.float16)
int64 = long = np.dtype(np.int64)
int32 = int = np.dtype(np.int32)
int16 = short = np.dtype(np.int16)
int8 = np.dtype(np.int8)
uint8 = np.dtype(np.uint8)
bool = np.dtype(np.bool_)

# the devices this machine does not have
cuda = types.SimpleNamespace(is_available=lambda: False, device_count=lambda: 0)
backends = types.SimpleNamespace(mps=types.SimpleNamespace(is_available=lambda: False, is_built=lambda: False))
accelerator = types.SimpleNamespace(is_available=lambda: False, current_accelerator=lambda: None)


def _factory(array: np.ndarray, dtype: Any, device: Any, requires_grad: builtins.bool, op: str) -> Tensor:
    if device is not None:
        check_device(device, op)
    return Tensor(array if dtype is None else array.astype(np.dtype(dtype), copy=False), requires_grad=requires_grad)



def tensor(data: Any, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    """A new tensor holding a copy of `data` (Python floats become float32, ints int64, as in PyTorch)."""
    if device is not None:
        check_device(device, "tensor")
    source = data.data if isinstance(data, Tensor) else data
    t = Tensor(np.array(source) if isinstance(source, np.ndarray) else source, dtype=dtype)
    return t.requires_grad_(requires_grad) if requires_grad else t


def _shape(size: tuple) -> tuple:
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else size


def zeros(*size: Any, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    return _factory(np.zeros(_shape(size), np.float32), dtype, device, requires_grad, "zeros")


def ones(*size: Any, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    return _factory(np.ones(_shape(size), np.float32), dtype, device, requires_grad, "ones")


def rand(*size: Any, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    """Uniform on [0, 1), from the generator `manual_seed` seeds."""
    return _factory(Tensor.rand(*_shape(size), dtype=dtype or float32).data, None, device, requires_grad, "rand")


def randn(*size: Any, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    """Standard normal, from the generator `manual_seed` seeds."""
    return _factory(Tensor.randn(*_shape(size), dtype=dtype or float32).data, None, device, requires_grad, "randn")


def full(size: Any, fill_value: Any, dtype: Any = None, device: Any = None,
         requires_grad: builtins.bool = False) -> Tensor:
    return _factory(Tensor.full(size, fill_value, dtype=dtype).data, None, device, requires_grad, "full")


def arange(start: Any, end: Any = None, step: Any = 1, dtype: Any = None, device: Any = None,
           requires_grad: builtins.bool = False) -> Tensor:
    return _factory(Tensor.arange(start, end, step, dtype=dtype).data, None, device, requires_grad, "arange")


def eye(n: builtins.int, m: builtins.int | None = None, dtype: Any = None, device: Any = None,
        requires_grad: builtins.bool = False) -> Tensor:
    return _factory(np.eye(n, m, dtype=np.float32), dtype, device, requires_grad, "eye")



def _like(t: Tensor, array: np.ndarray, dtype: Any, device: Any, requires_grad: builtins.bool, op: str) -> Tensor:
    return _factory(array, dtype or t.dtype, device, requires_grad, op)


def zeros_like(input: Tensor, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    return _like(input, np.zeros(input.shape, input.dtype), dtype, device, requires_grad, "zeros_like")


def ones_like(input: Tensor, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    return _like(input, np.ones(input.shape, input.dtype), dtype, device, requires_grad, "ones_like")


def rand_like(input: Tensor, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    return rand(*input.shape, dtype=dtype or input.dtype, device=device, requires_grad=requires_grad)


def randn_like(input: Tensor, dtype: Any = None, device: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    return randn(*input.shape, dtype=dtype or input.dtype, device=device, requires_grad=requires_grad)


def manual_seed(seed: builtins.int) -> None:
    """Seed every random number this library draws: rand/randn, weight initialisation, dropout, shuffling."""
    Tensor.manual_seed(seed)


def cat(tensors: Sequence[Tensor], dim: builtins.int = 0) -> Tensor:
    return Tensor.cat(tensors, axis=dim)


concat = cat


def stack(tensors: Sequence[Tensor], dim: builtins.int = 0) -> Tensor:
    return Tensor.stack(tensors, axis=dim)


def matmul(input: Tensor, other: Tensor) -> Tensor:
    return _tensor(input, "matmul").matmul(other)


def flatten(input: Tensor, start_dim: builtins.int = 0, end_dim: builtins.int = -1) -> Tensor:
    return _tensor(input, "flatten").flatten(start_dim, end_dim)


def exp(input: Tensor) -> Tensor:
    return _tensor(input, "exp").exp()


def log(input: Tensor) -> Tensor:
    return _tensor(input, "log").log()


def sqrt(input: Tensor) -> Tensor:
    return _tensor(input, "sqrt").sqrt()


def abs(input: Tensor) -> Tensor:
    return _tensor(input, "abs").abs()


def relu(input: Tensor) -> Tensor:
    return _tensor(input, "relu").relu()


def sigmoid(input: Tensor) -> Tensor:
    return _tensor(input, "sigmoid").sigmoid()


def tanh(input: Tensor) -> Tensor:
    return _tensor(input, "tanh").tanh()


def softmax(input: Tensor, dim: builtins.int, dtype: Any = None) -> Tensor:
    return _tensor(input, "softmax").astype(dtype or input.dtype).softmax(dim)


def log_softmax(input: Tensor, dim: builtins.int, dtype: Any = None) -> Tensor:
    return _tensor(input, "log_softmax").astype(dtype or input.dtype).log_softmax(dim)


def sum(input: Tensor, dim: Any = None, keepdim: builtins.bool = False, dtype: Any = None) -> Tensor:
    out = _tensor(input, "sum").sum(dim, keepdim)
    return out if dtype is None else out.astype(dtype)


def mean(input: Tensor, dim: Any = None, keepdim: builtins.bool = False, dtype: Any = None) -> Tensor:
    return _tensor(input, "mean").astype(dtype or input.dtype).mean(dim, keepdim)


class MaxResult(NamedTuple):
    """`torch.max(x, dim)`: the values and where they are, as PyTorch's `torch.return_types.max`."""

    values: Tensor
    indices: Tensor


def max(input: Tensor, dim: Any = None, keepdim: builtins.bool = False) -> Any:
    """The largest value, or with `dim` a (values, indices) pair, as `torch.max`; `max(a, b)` is elementwise."""
    input = _tensor(input, "max")
    if isinstance(dim, Tensor):
        return input.maximum(dim)
    if dim is None:
        return input.max()
    return MaxResult(input.max(dim, keepdim), input.argmax(dim, keepdim))


def min(input: Tensor, dim: Any = None, keepdim: builtins.bool = False) -> Any:
    input = _tensor(input, "min")
    if isinstance(dim, Tensor):
        return input.minimum(dim)
    if dim is None:
        return input.min()
    return MaxResult(input.min(dim, keepdim), input.argmin(dim, keepdim))


def argmax(input: Tensor, dim: Any = None, keepdim: builtins.bool = False) -> Tensor:
    return _tensor(input, "argmax").argmax(dim, keepdim)


def argmin(input: Tensor, dim: Any = None, keepdim: builtins.bool = False) -> Tensor:
    return _tensor(input, "argmin").argmin(dim, keepdim)


def where(condition: Any, input: Any, other: Any) -> Tensor:
    return Tensor.where(condition, input, other)


def allclose(input: Tensor, other: Tensor, rtol: builtins.float = 1e-05, atol: builtins.float = 1e-08,
             equal_nan: builtins.bool = False) -> builtins.bool:
    return builtins.bool(np.allclose(np.asarray(input), np.asarray(other), rtol, atol, equal_nan))



def is_tensor(obj: Any) -> builtins.bool:
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> builtins.int:
    return input.numel()


def _tensor(x: Any, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    return x


__all__ = ["CPU", "MaxResult", "accelerator", "backends", "cuda", "device"]
