"""Elementwise passes over big arrays, split along the first axis over our threads.

These passes are limited by memory bandwidth, which one core nearly
saturates, so only big arrays gain (~10-25%); anything under
MIN_ELEMENTWISE_SIZE elements, or made only of broadcast operands, is one
plain numpy call. The named kernels at the bottom are what ops.py calls.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import threads

MIN_ELEMENTWISE_SIZE = 1 << 19


def elementwise(ufunc: Callable[..., np.ndarray], *operands: np.ndarray | float) -> np.ndarray:
    """ufunc(*operands), broadcasting as numpy does, the output split along its first axis.

    `ufunc` is a numpy ufunc, or any elementwise function of arrays that takes
    numpy's `out=` (`relu_grad`). The output takes the memory layout of the first
    operand that has the full output shape, as numpy's own choice would (a
    channels-last activation stays channels-last).
    """
    for op in operands:  # a plain loop: most calls are small arrays and must stay as cheap as ufunc(*operands)
        if type(op) is np.ndarray and op.size >= MIN_ELEMENTWISE_SIZE and threads.count() > 1:
            return _split_elementwise(ufunc, operands)
    return ufunc(*operands)


def _split_elementwise(ufunc: Callable[..., np.ndarray], operands: tuple) -> np.ndarray:
    arrays = [op for op in operands if isinstance(op, np.ndarray)]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    full = next((a for a in arrays if a.shape == shape), None)
    if full is None or full.ndim == 0:
        return ufunc(*operands)
    # the result dtype, with numpy's rules for Python scalars: computed on one element
    dtype = ufunc(*(op[(slice(0, 1),) * op.ndim] if isinstance(op, np.ndarray) else op for op in operands)).dtype
    out = np.empty_like(full, dtype=dtype)
    ndim = len(shape)
    aligned = [op.reshape((1,) * (ndim - op.ndim) + op.shape) if isinstance(op, np.ndarray) else op
               for op in operands]

    def piece(s: slice) -> None:
        ufunc(*(op[s] if isinstance(op, np.ndarray) and op.shape[0] == shape[0] else op for op in aligned),
              out=out[s])

    threads.split(piece, shape[0], full.size // shape[0])
    return out


class _Constant(dict):
    """One value as a read-only 0-d array per dtype, made on first use: `ZERO[a.dtype]`.

    numpy converts a Python scalar operand on every call (`np.maximum(a, 0)`), which
    costs ~0.8 µs, as much as the rest of a small ufunc call; an array of the operand's
    own dtype it takes as it is. The result keeps the operand's dtype, as with the
    scalar, except for bool: relu of a bool array stays bool (with 0, numpy made int64).
    """

    def __init__(self, value: int) -> None:
        super().__init__()
        self.value = value

    def __missing__(self, dtype: np.dtype) -> np.ndarray:
        constant = self[dtype] = np.full((), self.value, dtype)
        constant.flags.writeable = False
        return constant


ZERO, ONE = _Constant(0), _Constant(1)


# The kernels below are what a (4, 4) tensor's ops run too: they test "both small" inline and call
# the ufunc directly. Going through `elementwise` (two calls and its loop) cost ~0.37 µs per op,
# 15% of a small multiply's whole forward (2.4 µs) and ~9% of the 200-op chain.
def multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a · b"""
    if a.size < MIN_ELEMENTWISE_SIZE > b.size:
        return np.multiply(a, b)
    return elementwise(np.multiply, a, b)


def relu(a: np.ndarray) -> np.ndarray:
    """max(a, 0)"""
    if a.size < MIN_ELEMENTWISE_SIZE:
        return np.maximum(a, ZERO[a.dtype])
    return elementwise(np.maximum, a, ZERO[a.dtype])


def _where_positive(g: np.ndarray, a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.multiply(g, a > ZERO[a.dtype], out=out)


def relu_grad(g: np.ndarray, a: np.ndarray) -> np.ndarray:
    """g · [a > 0] in one pass per thread: each makes the mask of its own block, which stays in cache.

    0.61 ms instead of 0.86 on conv1's (64, 32, 28, 28) activation (a mask, then a multiply).
    """
    if g.size < MIN_ELEMENTWISE_SIZE > a.size:  # the mask as g's dtype first: a float · bool multiply
        return g * (a > ZERO[a.dtype]).astype(g.dtype)  # resolves its types slowly (3.4 µs, not 2.9, at (4, 4))
    return elementwise(_where_positive, g, a)


def tanh_grad(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """g · (1 - y²), tanh's derivative from its output"""
    return g * (ONE[y.dtype] - y * y)


def sigmoid_grad(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """g · y · (1 - y), the sigmoid's derivative from its output"""
    return g * (y * (ONE[y.dtype] - y))
