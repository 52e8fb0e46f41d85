"""`nn.Parameter`: a leaf Tensor that requires grad, whose `.data` has PyTorch's in-place methods.

A layer's weights are Parameters. `.data` stays the numpy array (it is an
ndarray), but of a subclass that also answers `p.data.sub_(lr * p.grad.data)`,
`p.data.zero_()`, `p.data.normal_(0, 0.01)`: the lines with which PyTorch
tutorials update weights by hand. Writing through `.data` bypasses autograd's
bookkeeping in PyTorch too: that is what `.data` is for.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor, default_generator

_SLOT = Tensor.__dict__["data"]  # the slot that holds every Tensor's array


def _array(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


class DataArray(np.ndarray):
    """A parameter's array with PyTorch's in-place methods; each writes into the array and returns it."""

    def add_(self, other: Any, alpha: float = 1) -> DataArray:
        self += alpha * _array(other) if alpha != 1 else _array(other)
        return self

    def sub_(self, other: Any, alpha: float = 1) -> DataArray:
        self -= alpha * _array(other) if alpha != 1 else _array(other)
        return self

    def mul_(self, other: Any) -> DataArray:
        self *= _array(other)
        return self

    def div_(self, other: Any) -> DataArray:
        self /= _array(other)
        return self

    def zero_(self) -> DataArray:
        self[...] = 0
        return self

    def fill_(self, value: Any) -> DataArray:
        self[...] = _array(value)
        return self

    def copy_(self, src: Any) -> DataArray:
        self[...] = _array(src)
        return self

    def clamp_(self, min: float | None = None, max: float | None = None) -> DataArray:
        np.clip(self, min, max, out=self)
        return self

    def uniform_(self, a: float = 0.0, b: float = 1.0) -> DataArray:
        self[...] = default_generator().uniform(a, b, self.shape)
        return self

    def normal_(self, mean: float = 0.0, std: float = 1.0) -> DataArray:
        self[...] = default_generator().normal(mean, std, self.shape)
        return self


class Parameter(Tensor):
    """A Tensor that a Module registers as a parameter (`requires_grad=True` unless asked otherwise)."""

    def __init__(self, data: Any = None, requires_grad: bool = True):
        super().__init__(np.empty(0, dtype=np.float32) if data is None else data, requires_grad=requires_grad)

    @property
    def data(self) -> np.ndarray:
        return _SLOT.__get__(self, Parameter)

    @data.setter
    def data(self, value: Any) -> None:
        array = np.asarray(value.data if isinstance(value, Tensor) else value)
        _SLOT.__set__(self, array if type(array) is DataArray else array.view(DataArray))

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol: Any) -> Any:
        return Parameter, (np.asarray(self.data), self.requires_grad)
