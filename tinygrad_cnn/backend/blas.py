"""Two things we need from BLAS that numpy does not expose, from the OpenBLAS numpy already loaded.

1. **How many threads BLAS may use.** numpy's OpenBLAS splits every matrix
   multiply over all cores, and between calls its worker threads keep
   spinning for a while, holding those cores. Our own threads (threads.py)
   could then not run the im2col copies and strided adds beside it: measured
   on conv2, a two-way split took 8.7 ms with one BLAS thread and 19.8 ms
   right after a two-thread BLAS call. So once our threads start (the first
   operation that splits work, or `configure()`), BLAS is held to one thread
   (`hold_to_one_thread`), through threadpoolctl. Why not only while a primitive
   splits? That scope costs ~10 µs to enter and leave, but the products too small
   to split then ran on two BLAS threads, which kept spinning into the next split:
   a CNN training step took 18.8 ms scoped against 18.2 held (medians of five runs).
2. **C += A @ B in one call** (GEMM with β = 1). `np.matmul(..., out=C)`
   can only overwrite C; adding needs a temporary and a second pass over it.
   The input gradient of a convolution is kh such products (one per kernel
   row) added into shifted windows of one array, and the forward adds its
   product onto the bias (backend/conv.py): each saves a pass. Re-measured
   when the GEMM was found through threadpoolctl (2026-12-02, medians of
   three runs): conv2 forward + backward 7.1 ms against 7.8 with numpy's
   fallback, a CNN training step 18.4 ms against 20.4.

The library is numpy's, as threadpoolctl reports it. Anywhere it is not
OpenBLAS (macOS's Accelerate, MKL), `matmul_into` falls back to numpy: slower,
same numbers; and where threadpoolctl cannot set BLAS's threads, our threads
do not split at all (threads.py).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_blas: Any = None  # threadpoolctl's controller of the BLAS libraries loaded, found on first use
_gemm: dict[np.dtype, tuple[Any, type]] | None = None
_held: Any = None  # threadpoolctl's limiter while BLAS is held to one thread
_workers = 1  # the thread count `threaded` gives BLAS back for one product


def _controller() -> Any:
    """threadpoolctl's controller of numpy's BLAS (of every BLAS loaded, if none is numpy's own)."""
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController  # scanning the loaded libraries takes ~10 ms: once

        loaded = ThreadpoolController().select(user_api="blas")
        numpys = [library.filepath for library in loaded.lib_controllers if "numpy" in library.filepath]
        _blas = loaded.select(filepath=numpys) if numpys else loaded  # scipy's or torch's BLAS is not ours to set
    return _blas


def can_limit_threads() -> bool:
    """Whether BLAS's thread count can be set (threadpoolctl found the BLAS numpy uses)."""
    return not os.environ.get("TINYGRAD_CNN_NO_BLAS_CALLS") and bool(_controller().lib_controllers)


def gemm_available(dtype: np.dtype) -> bool:
    """Whether `matmul_into` calls BLAS's GEMM itself for this dtype (else it falls back to numpy)."""
    return _gemms().get(np.dtype(dtype)) is not None


def _gemms() -> dict[np.dtype, tuple[Any, type]]:
    global _gemm
    if _gemm is None:
        _gemm = _load_gemm()
    return _gemm


def hold_to_one_thread(hold: bool, workers: int = 1) -> None:
    """Hold BLAS to one thread from now on (our threads split the work), or give it back the count it had.

    `workers` is how many threads `threaded` lets BLAS use for a product nobody else splits.
    """
    global _held, _workers
    _workers = workers
    if hold and _held is None:
        _held = _controller().limit(limits=1)
    elif not hold and _held is not None:
        _held.restore_original_limits()
        _held = None


def threaded(work: Callable[[], T]) -> T:
    """work() with BLAS allowed our thread count, while BLAS is held to one thread: for a GEMM nobody splits.

    A product too small for our threads to split (each would pack the whole other
    operand) still halves on two BLAS threads: x @ W.T of an MLP's first layer,
    (64, 784) @ (784, 256), took 340 µs on one and 185-210 on two. Setting the count
    is one call into OpenBLAS (~1 µs each way), so it is done per product.

    Only for products our threads do not split, and only in a program whose
    threads have not split anything for a while (linalg.matmul checks both): after
    the call, OpenBLAS's worker keeps spinning on the other core for a while, and
    a split that comes next (a convolution's) runs beside it at half speed.
    Measured: letting BLAS thread the CNN's fully connected products too, instead
    of splitting them over ours (each faster on its own: 0.39 ms against 0.46),
    took the training step from 22.7 to 37.6 ms; a small CNN whose 784 → 256 layer
    is too small for our split took 14.8 ms with it threaded, 10.8 without.
    """
    if _held is None:  # BLAS is not held: it threads by itself already
        return work()
    libraries = _controller().lib_controllers
    for library in libraries:
        library.set_num_threads(_workers)
    try:
        return work()
    finally:
        for library in libraries:
            library.set_num_threads(1)


def _load_gemm() -> dict[np.dtype, tuple[Any, type]]:
    """sgemm and dgemm from the OpenBLAS numpy uses, by the names its builds export (64-bit ints: a `64_` suffix)."""
    found: dict[np.dtype, tuple[Any, type]] = {}
    if os.environ.get("TINYGRAD_CNN_NO_BLAS_CALLS"):  # tests act out "no OpenBLAS found" with this
        return found
    for library in _controller().lib_controllers:
        if library.internal_api != "openblas":
            continue
        try:
            lib = ctypes.CDLL(library.filepath)
        except OSError:
            continue
        for dtype, letter, real in ((np.float32, "s", ctypes.c_float), (np.float64, "d", ctypes.c_double)):
            for name in (f"scipy_cblas_{letter}gemm64_", f"cblas_{letter}gemm64_", f"cblas_{letter}gemm"):
                function = getattr(lib, name, None)
                if function is not None:
                    index = ctypes.c_int64 if name.endswith("64_") else ctypes.c_int
                    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, index, index, index, real,
                                         ctypes.c_void_p, index, ctypes.c_void_p, index, real, ctypes.c_void_p,
                                         index]
                    function.restype = None
                    found[np.dtype(dtype)] = (function, real)
                    break
        if found:
            break
    return found


def _operand(a: np.ndarray) -> tuple[int, int] | None:
    """(transpose flag, leading dimension) describing a 2-D array to BLAS without a copy, or None."""
    item = a.itemsize
    rows, cols = a.shape
    if a.strides[1] == item and a.strides[0] % item == 0 and a.strides[0] // item >= max(1, cols):
        return _NO_TRANS, a.strides[0] // item
    if a.strides[0] == item and a.strides[1] % item == 0 and a.strides[1] // item >= max(1, rows):
        return _TRANS, a.strides[1] // item
    return None


def matmul_into(a: np.ndarray, b: np.ndarray, out: np.ndarray, accumulate: bool = False) -> np.ndarray:
    """out = a @ b, or out += a @ b when `accumulate`: one GEMM call, no temporary.

    a (M, K), b (K, N) and out (M, N) are 2-D arrays of one float dtype; a and b
    may be transposed views, out must have contiguous rows (any row stride) and
    must not overlap a or b. Anything else takes numpy's way.
    """
    if a.ndim != 2 or b.ndim != 2 or out.shape != (a.shape[0], b.shape[1]) or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul_into: shapes {a.shape} @ {b.shape} do not give out's {out.shape}")
    function, real = _gemms().get(out.dtype, (None, None))
    left, right, target = _operand(a), _operand(b), _operand(out)
    fast = (function is not None and a.dtype == b.dtype == out.dtype and None not in (left, right, target)
            and target[0] == _NO_TRANS and min(out.shape) > 0)
    if not fast:
        if accumulate:
            out += a @ b
        else:
            np.matmul(a, b, out=out)
        return out
    (m, k), n = a.shape, b.shape[1]
    function(_ROW_MAJOR, left[0], right[0], m, n, k, real(1.0), a.ctypes.data, left[1], b.ctypes.data, right[1],
             real(1.0 if accumulate else 0.0), out.ctypes.data, target[1])
    return out
