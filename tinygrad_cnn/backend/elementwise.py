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
from .layout import rows_of_axis

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
        return np.maximum(a, 0)
    return elementwise(np.maximum, a, 0)


def _where_positive(g: np.ndarray, a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.multiply(g, a > 0, out=out)


def relu_grad(g: np.ndarray, a: np.ndarray) -> np.ndarray:
    """g · [a > 0] in one pass per thread: each makes the mask of its own block, which stays in cache.

    0.61 ms instead of 0.86 on conv1's (64, 32, 28, 28) activation (a mask, then a multiply).
    """
    if g.size < MIN_ELEMENTWISE_SIZE > a.size:
        return _where_positive(g, a)
    return elementwise(_where_positive, g, a)


TILE = 8192  # about this many elements per row when a per-channel vector is tiled (`per_channel`)


def per_channel(ufunc: Callable[..., np.ndarray], a: np.ndarray, v: np.ndarray,
                out: np.ndarray | None = None) -> np.ndarray:
    """ufunc(a, v[c]) for each element of channel c (axis 1 of a), into `out` (may be a), split over the threads.

    A scale or shift per channel of a channels-last activation: numpy would
    broadcast v along the innermost axis, C = 32 values per inner loop, and run
    at ~40% of copying speed (x̂ · γ over conv1's 1.6M values: 420 µs, a copy
    160). Seen in memory order, the array is rows of k·C values, channels
    cycling, so v tiled k times is one long row that every row of the array
    meets element by element: one long inner loop. Other layouts broadcast as numpy does.

        memory   c0 c1 … c31 c0 c1 … c31 …  (k pixels)   ← one row of k·C values
        tiled v  v0 v1 … v31 v0 v1 … v31 …               ← the same for every row
    """
    v = np.asarray(v).reshape(-1)
    if out is None:
        out = np.empty_like(a, dtype=np.result_type(a, v))
    shape = (1, a.shape[1]) + (1,) * (a.ndim - 2)

    def piece(s: slice) -> None:
        _along_channels(ufunc, a[s], v, shape, out[s])

    if a.size >= MIN_ELEMENTWISE_SIZE:
        threads.split(piece, a.shape[0], a[0].size)
    else:
        piece(slice(None))
    return out


def _along_channels(ufunc: Callable[..., np.ndarray], a: np.ndarray, v: np.ndarray, shape: tuple,
                    out: np.ndarray) -> None:
    """`per_channel` on one slice of the batch: the tiled row where channels are innermost, else broadcasting."""
    c = v.size
    rows_a, rows_out = (rows_of_axis(a, 1), rows_of_axis(out, 1)) if a.size >= TILE else (None, None)
    if rows_a is None or rows_out is None or a.dtype != out.dtype:  # channels not innermost: numpy broadcasts
        ufunc(a, v.reshape(shape), out=out)
        return
    flat_a, flat_out = rows_a.reshape(-1), rows_out.reshape(-1)  # both pixel by pixel, channels cycling
    width = max(1, TILE // c) * c
    whole = a.size - a.size % width
    ufunc(flat_a[:whole].reshape(-1, width), np.tile(v, width // c), out=flat_out[:whole].reshape(-1, width))
    ufunc(flat_a[whole:].reshape(-1, c), v, out=flat_out[whole:].reshape(-1, c))
