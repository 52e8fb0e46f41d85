"""Two things we need from BLAS that numpy does not expose, taken from the OpenBLAS numpy already loaded.

1. **How many threads BLAS may use.** numpy's OpenBLAS splits every matrix
   multiply over all cores, and between calls its worker threads keep
   spinning for a while, holding those cores. Our own threads (parallel.py)
   could then not run the im2col copies and strided adds beside it: measured
   on conv2, a two-way split took 8.7 ms with one BLAS thread and 19.8 ms
   right after a two-thread BLAS call. So parallel.py sets BLAS to one thread
   and splits the work itself, the way PyTorch runs its own thread pool.
2. **C += A @ B in one call** (GEMM with β = 1). `np.matmul(..., out=C)`
   can only overwrite C; adding needs a temporary and a second pass over it.
   The input gradient of a convolution is kh such products (one per kernel
   row) added into shifted windows of one array, and the forward adds its
   product onto the bias (conv_fused.py): each saves a pass.

The library is found by name among the shared objects this process has
mapped (/proc/self/maps, Linux). Anywhere it is not found (macOS, MKL, a
numpy without OpenBLAS), `AVAILABLE` is False, `set_threads` does nothing and
`matmul_into` falls back to numpy: slower, same numbers.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _find_openblas() -> ctypes.CDLL | None:
    if os.environ.get("TINYGRAD_CNN_NO_BLAS_CALLS"):  # tests force the numpy fallback with this
        return None
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line}
    except OSError:
        return None
    # numpy's own copy first: scipy, if imported, may have mapped an OpenBLAS of its own
    for path in sorted(paths, key=lambda path: ("numpy" not in path, path)):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def _symbol(lib: ctypes.CDLL | None, names: tuple[str, ...]) -> tuple[ctypes._CFuncPtr | None, bool]:
    """The first of `names` the library exports, and whether it takes 64-bit integers (a `64_` suffix)."""
    for name in names:
        function = getattr(lib, name, None) if lib is not None else None
        if function is not None:
            return function, name.endswith("64_")
    return None, False


def _gemm(names: tuple[str, ...], real: type) -> ctypes._CFuncPtr | None:
    function, wide = _symbol(_LIB, names)
    if function is not None:
        index = ctypes.c_int64 if wide else ctypes.c_int
        function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, index, index, index, real,
                             ctypes.c_void_p, index, ctypes.c_void_p, index, real, ctypes.c_void_p, index]
        function.restype = None
    return function


_LIB = _find_openblas()
_SET_THREADS, _ = _symbol(_LIB, ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_",
                                 "openblas_set_num_threads"))
_GEMM = {np.dtype(np.float32): (_gemm(("scipy_cblas_sgemm64_", "cblas_sgemm64_", "cblas_sgemm"), ctypes.c_float),
                                ctypes.c_float),
         np.dtype(np.float64): (_gemm(("scipy_cblas_dgemm64_", "cblas_dgemm64_", "cblas_dgemm"), ctypes.c_double),
                                ctypes.c_double)}
AVAILABLE = _SET_THREADS is not None and all(function is not None for function, _ in _GEMM.values())


def set_threads(count: int) -> bool:
    """Let BLAS use `count` threads (process-wide). Returns whether BLAS could be told."""
    if not AVAILABLE:
        return False
    _SET_THREADS(ctypes.c_int(int(count)))
    return True


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
    function, real = _GEMM.get(out.dtype, (None, None))
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
