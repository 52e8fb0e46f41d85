"""Our own threads: the big primitives split their batch over the cores, and BLAS runs single-threaded.

Why not let BLAS thread itself, as numpy does by default? A convolution is
GEMMs *and* memory-bound numpy work between them (the im2col copy, strided
adds, masks), and numpy runs that work on one core. Splitting the whole
primitive (copies and GEMMs alike) into one contiguous slice of the batch per
core keeps every core busy for all of it. On conv2 of the benchmark that took
forward + backward from 12.3 ms to 8.7 ms on 2 cores. It only works if BLAS
stays out of the way: its idle worker threads spin on the cores ours need
(blas.py), so importing this module sets BLAS to one thread.

    batch of 64 ──split──▶ rows 0‥31  → thread 0 (the caller): im2col, GEMM, …
                           rows 32‥63 → thread 1 (a pool worker): im2col, GEMM, …
                           both write disjoint slices of one output array

numpy releases the GIL inside ufuncs, copies and matmul, so two Python
threads do run at once. The split is per primitive and the engine itself stays
single-threaded: a primitive is still a function of its inputs.

How many threads: ``TINYGRAD_CNN_THREADS`` if set, else ``OPENBLAS_NUM_THREADS``
or ``OMP_NUM_THREADS`` (a user who limited BLAS meant it), else the cores this
process may run on. With one thread nothing is split and BLAS threads itself,
as numpy does on its own (``TINYGRAD_CNN_THREADS=1``); ``OPENBLAS_NUM_THREADS=1``
makes everything single-threaded. Where BLAS cannot be told (blas.py), there is
one thread. ``set_threads(n)`` changes the count at run time.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from . import blas

T = TypeVar("T")

MIN_PIECE_COST = 1 << 18
MIN_ELEMENTWISE_SIZE = 1 << 19
_PREFIX = "tinygrad_cnn-pool"
_pool: ThreadPoolExecutor | None = None
_threads = 1


def _default_threads(names: tuple[str, ...] = ("TINYGRAD_CNN_THREADS", "OPENBLAS_NUM_THREADS",
                                                "OMP_NUM_THREADS")) -> int:
    """The first of these environment variables that holds a positive count, else the usable cores."""
    for name in names:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads() -> int:
    """How many threads the big primitives split their work over."""
    return _threads


def set_threads(count: int) -> int:
    """Use `count` threads from now on (1: no splitting, BLAS threads itself). Returns the count in effect."""
    global _pool, _threads
    if count < 1:
        raise ValueError(f"set_threads: need at least 1 thread, got {count}")
    if count > 1 and not blas.AVAILABLE:  # BLAS would spin on our cores: let it do the threading instead
        count = 1
    if _pool is not None:
        _pool.shutdown()
        _pool = None
    _threads = count
    if count > 1:
        blas.set_threads(1)
        _pool = ThreadPoolExecutor(max_workers=count - 1, thread_name_prefix=_PREFIX)
    else:  # what numpy would do on its own: BLAS as its environment says, else one thread per core
        blas.set_threads(_default_threads(("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")))
    return count


def chunks(size: int, cost_per_item: int = 1) -> list[slice]:
    """Split range(size) into at most threads() contiguous, nearly equal slices, each worth waking a thread for.

    `cost_per_item` is in array elements read or written (a GEMM's multiply-adds
    count about 1/32 each). Handing a piece to a pool thread and getting it back
    took ~90 µs on our VMs, so a piece must be worth MIN_PIECE_COST elements
    (~0.2 ms of copying); tests set it to 1 to split even tiny arrays.
    """
    parts = max(1, min(_threads, size, size * cost_per_item // max(1, MIN_PIECE_COST)))
    bounds = [size * k // parts for k in range(parts + 1)]
    return [slice(start, stop) for start, stop in itertools.pairwise(bounds)]


def run(work: Callable[[slice], T], pieces: Sequence[slice]) -> list[T]:
    """[work(piece) for piece in pieces], the first in this thread and the others on the pool, at once.

    Every call's result is waited for, so an exception in any piece is raised here.
    Called from inside a piece on a pool thread, it runs its pieces in that thread
    (waiting there for the pool could wait for itself).
    """
    if len(pieces) == 1 or _pool is None or threading.current_thread().name.startswith(_PREFIX):
        return [work(piece) for piece in pieces]
    futures = [_pool.submit(work, piece) for piece in pieces[1:]]
    try:
        first = work(pieces[0])
    finally:
        rest = [future.result() for future in futures]
    return [first, *rest]


def _after_fork_in_child() -> None:
    """A forked child has none of the parent's pool threads: give it a pool of its own."""
    global _pool
    _pool = None
    set_threads(_threads)


def elementwise(ufunc: Callable[..., np.ndarray], *operands: np.ndarray | float) -> np.ndarray:
    """ufunc(*operands), broadcasting as numpy does, the output split along its first axis.

    `ufunc` is a numpy ufunc, or any elementwise function of arrays that takes
    numpy's `out=` (ops.ReluGrad's fused pass).

    The output takes the memory layout of the first operand that has the full
    output shape, as numpy's own choice would (a channels-last activation stays
    channels-last). Arrays under MIN_ELEMENTWISE_SIZE elements, or operands that
    all broadcast, skip the split: these passes are limited by memory bandwidth,
    which one core nearly saturates, so only big arrays gain (~10-25%).
    """
    if _pool is not None:
        for op in operands:  # a plain loop: most calls are small arrays and must stay as cheap as ufunc(*operands)
            if type(op) is np.ndarray and op.size >= MIN_ELEMENTWISE_SIZE:
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

    run(piece, chunks(shape[0], full.size // shape[0]))
    return out


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
    axes (`_like_rows_of`). BLAS itself runs single-threaded (see above). A
    multiply-add counts as 1/32 of an element in the cost, as in `chunks`.
    """
    if a.ndim < 2 or a.ndim != b.ndim or (a.ndim > 2 and a.shape[0] != b.shape[0]):
        return np.matmul(a, b)
    batched = a.ndim > 2
    by_columns = not batched and b.shape[1] > a.shape[0]
    if by_columns:
        pieces = chunks(b.shape[1], a.shape[0] * a.shape[1] // 32)  # multiply-adds per column of b
    else:
        pieces = chunks(a.shape[0], int(np.prod(a.shape[1:])) * b.shape[-1] // 32)  # per row of a, or per product
    if len(pieces) == 1 and not batched:
        return np.matmul(a, b)
    shape = (*np.broadcast_shapes(a.shape[:-2], b.shape[:-2]), a.shape[-2], b.shape[-1])
    out = _like_rows_of(a, shape, np.result_type(a.dtype, b.dtype))
    if len(pieces) == 1:
        return np.matmul(a, b, out=out)
    if by_columns:
        run(lambda s: np.matmul(a, b[:, s], out=out[:, s]), pieces)
    else:
        run(lambda s: np.matmul(a[s], b[s] if batched else b, out=out[s]), pieces)
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


set_threads(_default_threads())
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
