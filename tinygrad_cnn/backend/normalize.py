"""Batch norm's passes over an activation, each fused: one read of memory per pass, not one per numpy op.

Batch norm's backward is g·a − (x − mean)·k − c per channel. As whole-array
numpy ops that is five passes over memory, each writing a full-size temporary
(x − mean, its product with k, ...). Here each thread walks its slice of the
batch in blocks of BLOCK values, small enough to stay in cache (a block of each
array: 1.5 MB for three, in this CPU's 8 MB L3), and runs all of the arithmetic
on a block before moving on:

    memory   x: [blk 0][blk 1][blk 2] …      g: [blk 0][blk 1][blk 2] …
                  │                              │
    cache         └── t = x − mean; t ·= k; out = g·a; out −= t; out −= c ──▶ out[blk 0]

Measured on conv1's (64, 32, 28, 28) channels-last activation, 2 threads,
medians of three runs: forward 3.1-3.3 ms against 3.9-4.2 as whole-array passes,
backward 4.3-4.5 against 5.1-5.6; conv2's (64, 64, 14, 14) 1.6-1.7 against
2.0-2.3 and 2.4-2.6 against 2.6-2.9. Blocks must not be too small: the Python
around each block (~15 µs of slicing and calls on this machine) holds the GIL,
which the other thread then waits for. `scale_shift` on conv1 took 9.4 ms with
blocks of 4k values, 2.9 with 16k, 1.4 with 64k and 1.3 with 256k.

The blocks are rows of k·C values in memory order, channels cycling, and each
per-channel vector is tiled k times to match. Why: numpy broadcasts a (C,)
vector along the innermost axis of a channels-last array C = 32 values at a
time, and runs at ~40% of copying speed (x̂ · γ over conv1's 1.6M values: 420
µs, a copy 160); against a tiled row it is one long inner loop.

    memory   c0 c1 … c31 c0 c1 … c31 …  (k pixels)   ← one row of k·C values
    tiled v  v0 v1 … v31 v0 v1 … v31 …               ← the same for every row

So the fast path needs the channels innermost in memory (channels-last conv
activations, (N, C) rows) and every array in the same layout. Other layouts run
the same formulas on the whole arrays, broadcasting as numpy does.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import threads
from .layout import rows_of_axis
from .reduce import channel_dots

BLOCK = 1 << 17  # values per block and array: a few such blocks stay in cache, and the Python per block is paid rarely
ROW = 2048  # about this many values per row of a block


def centered_square_sums(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Σ (x − mean)² per channel (axis 1), without storing x − mean: the batch variance's numerator."""
    return _reduce(lambda x, mean: _twice(x - mean), (x,), (mean,))


def centered_dots(g: np.ndarray, x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Σ g · (x − mean) per channel, without storing x − mean: batch norm's Σ g·x̂ · σ."""
    return _reduce(lambda g, x, mean: (g, x - mean), (g, x), (mean,))


def scale_shift(x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """x · scale + shift per channel, in one pass: batch norm's output."""
    def kernel(out: np.ndarray, x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> None:
        np.multiply(x, scale, out=out)
        out += shift

    return _map(kernel, (x,), (scale, shift))


def batch_norm_input_grad(g: np.ndarray, x: np.ndarray, mean: np.ndarray, a: np.ndarray, k: np.ndarray,
                          c: np.ndarray) -> np.ndarray:
    """g · a − (x − mean) · k − c per channel, in one pass: batch norm's dL/dx."""
    def kernel(out: np.ndarray, g: np.ndarray, x: np.ndarray, mean: np.ndarray, a: np.ndarray, k: np.ndarray,
               c: np.ndarray) -> None:
        t = x - mean
        t *= k
        np.multiply(g, a, out=out)
        out -= t
        out -= c

    return _map(kernel, (g, x), (mean, a, k, c))


# ---------------------------------------------------------------------------- the block walk
def _twice(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return t, t


def _rows(arrays: tuple[np.ndarray, ...]) -> list[np.ndarray] | None:
    """Each array's values in memory order, flat, if all have the channels innermost and one shape; else None."""
    flats = []
    for a in arrays:
        rows = rows_of_axis(a, 1) if a.shape == arrays[0].shape and a.ndim >= 2 else None
        if rows is None:
            return None
        flats.append(rows.reshape(-1))
    return flats


def _blocks(c: int) -> tuple[int, int]:
    """(row width, rows per block) for c channels: rows of k·c values."""
    width = max(1, ROW // c) * c
    return width, max(1, BLOCK // width)


def _walk(visit: Callable[[slice], object], rows: int, rows_per_block: int, passes: int, width: int) -> list:
    """visit(rows of a block) for every block, each thread its share of the rows: per thread, a list of results."""
    def piece(s: slice) -> list:
        return [visit(slice(r, min(r + rows_per_block, s.stop))) for r in range(s.start, s.stop, rows_per_block)]

    return threads.split(piece, rows, passes * width)


def _reduce(kernel: Callable[..., tuple[np.ndarray, np.ndarray]], arrays: tuple, vectors: tuple) -> np.ndarray:
    """Σ p·q per channel, (p, q) = kernel(*array blocks, *vectors), each block's product summed while in cache."""
    c = arrays[0].shape[1]
    flats = _rows(arrays)
    if flats is None:
        shape = (1, c) + (1,) * (arrays[0].ndim - 2)
        return channel_dots(*kernel(*arrays, *(v.reshape(shape) for v in vectors)))
    width, rows_per_block = _blocks(c)
    rows = flats[0].size // width
    tiled = [np.tile(v, width // c) for v in vectors]

    def visit(s: slice) -> np.ndarray:
        p, q = kernel(*(f[s.start * width:s.stop * width].reshape(-1, width) for f in flats), *tiled)
        return np.einsum("ij,ij->j", p, q)

    total = np.zeros(width, dtype=np.result_type(*arrays))
    for partials in _walk(visit, rows, rows_per_block, len(arrays), width):
        for partial in partials:
            total += partial
    total = total.reshape(-1, c).sum(axis=0)
    if rows * width < flats[0].size:  # the last values, fewer than a row
        p, q = kernel(*(f[rows * width:].reshape(-1, c) for f in flats), *vectors)
        total += np.einsum("ij,ij->j", p, q)
    return total


def _map(kernel: Callable[..., None], arrays: tuple, vectors: tuple) -> np.ndarray:
    """out = kernel(*array blocks, *vectors) block by block, into a new array in the first array's layout."""
    a = arrays[0]
    c = a.shape[1]
    out = np.empty_like(a, dtype=np.result_type(*arrays, *vectors))
    flats = _rows((*arrays, out))
    if flats is None:
        shape = (1, c) + (1,) * (a.ndim - 2)
        kernel(out, *arrays, *(v.reshape(shape) for v in vectors))
        return out
    *ins, flat_out = flats
    width, rows_per_block = _blocks(c)
    rows = a.size // width
    tiled = [np.tile(v, width // c) for v in vectors]

    def visit(s: slice) -> None:
        kernel(*(f[s.start * width:s.stop * width].reshape(-1, width) for f in (flat_out, *ins)), *tiled)

    _walk(visit, rows, rows_per_block, len(arrays) + 1, width)
    if rows * width < a.size:
        kernel(*(f[rows * width:].reshape(-1, c) for f in (flat_out, *ins)), *vectors)
    return out
