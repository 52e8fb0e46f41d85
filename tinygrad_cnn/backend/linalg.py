"""Matrix products split over our threads when the work is worth it."""

from __future__ import annotations

import math

import numpy as np

from . import blas, threads

BLAS_THREADED_MACS = 1 << 22  # a product of this many multiply-adds that we do not split runs on BLAS's threads...
QUIET = 1.0  # ...unless our threads split work less than this many seconds ago (blas.threaded says why)


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b as numpy computes it, split over the threads when the work is worth it.

    A 2-D product is split along its longer side: by rows of a (each thread
    multiplies its block of rows by all of b) or, when b has more columns than a
    has rows, by columns of b. Each thread packs all of the operand it does not
    split, so splitting the short side would make both pack the big one: a
    (64 × 3136) @ (3136 × 128) product took 0.62 ms split by rows, 0.48 by
    columns and 0.58 on one thread. A batch of products (a and b with the same
    leading axis, as `LocallyConnected2d` runs one per output position) is split
    along that axis, and its result keeps the memory order of a's batch and row
    axes (`_like_rows_of`). A multiply-add counts as 1/32 of an element in the
    cost, as in `threads.chunks`.

    A 2-D product too small to split but with BLAS_THREADED_MACS multiply-adds (an
    MLP's 784 → 256 layer at batch 64) runs on BLAS's threads instead
    (blas.threaded), unless our threads split work less than QUIET seconds ago: a
    program that splits (a CNN) keeps BLAS on one thread (blas.threaded says why).
    """
    if a.ndim < 2 or a.ndim != b.ndim or (a.ndim > 2 and a.shape[0] != b.shape[0]):
        return np.matmul(a, b)
    macs = a.shape[0] * a.shape[1] * b.shape[1] if a.ndim == 2 else None
    if macs is not None and macs < 64 * threads.MIN_PIECE_COST:  # too little for chunks() to split
        if macs >= BLAS_THREADED_MACS and threads.seconds_since_split() > QUIET:
            return blas.threaded(lambda: np.matmul(a, b))
        return np.matmul(a, b)
    batched = a.ndim > 2
    by_columns = not batched and b.shape[1] > a.shape[0]
    if by_columns:
        pieces = threads.chunks(b.shape[1], a.shape[0] * a.shape[1] // 32)  # multiply-adds per column of b
    else:
        pieces = threads.chunks(a.shape[0], math.prod(a.shape[1:]) * b.shape[-1] // 32)  # per row, or product
    if len(pieces) == 1 and not batched:
        return np.matmul(a, b)
    shape = (*np.broadcast_shapes(a.shape[:-2], b.shape[:-2]), a.shape[-2], b.shape[-1])
    out = _like_rows_of(a, shape, np.result_type(a.dtype, b.dtype))
    if len(pieces) == 1:
        return np.matmul(a, b, out=out)
    if by_columns:
        threads.run(lambda s: np.matmul(a, b[:, s], out=out[:, s]), pieces)
    else:
        threads.run(lambda s: np.matmul(a[s], b[s] if batched else b, out=out[s]), pieces)
    return out


def _like_rows_of(a: np.ndarray, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """An empty result for a @ b whose batch and row axes keep a's memory order.

    numpy's matmul always returns C order. When a is a batch of products stored
    row-major across the batch, (M, B, K) memory seen as (B, M, K), as
    `LocallyConnected2d` builds it (one product per output position, rows = the
    images), the result stays (M, B, N) in memory: the layer's output is then
    channels-last with no copy (a separate copy took longer than the GEMMs).
    """
    if a.ndim == 3 and len(shape) == 3 and a.shape[0] > 1 and a.shape[1] > 1 and a.strides[0] < a.strides[1]:
        return np.empty((shape[1], shape[0], shape[2]), dtype).transpose(1, 0, 2)
    return np.empty(shape, dtype)
