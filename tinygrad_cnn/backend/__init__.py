"""How the engine's numbers are computed fast: numpy kernels, our threads, BLAS and malloc.

The engine (autograd.py, tensor.py, ops.py, conv/) says *what* is computed;
a primitive's forward calls a function from here where speed needs one, by a
name that says what it computes (`elementwise.relu_grad`, `conv.conv2d_forward`).
This package imports nothing else of tinygrad_cnn (no Tensor, no Function):
it is the one place that knows about threads, BLAS and malloc, and the one
a GPU array module would replace.

    layout.py       Geometry, output size, channels-last, window views, padding
    im2col.py       im2col / col2im, `Patches`
    conv.py         the convolution's forward and its three gradients
    pool.py         pooling over strided views, PyTorch's pooling options
    elementwise.py  big elementwise passes, split over the threads
    linalg.py       matrix products, split over the threads
    reduce.py       sums over all axes but one, as BLAS products
    normalize.py    batch norm's passes, each fused over blocks in cache
    threads.py      the thread pool and the batch split
    blas.py         BLAS's thread count (threadpoolctl) and GEMM with β = 1
    memory.py       glibc malloc thresholds

Importing changes nothing in the process. `configure()` makes the
process-wide settings, and the first operation that splits work calls it if
nobody did before.
"""

from __future__ import annotations

from . import memory
from .threads import count, environment_count, start

_malloc_tuned: bool | None = None


def configure(threads: int | None = None) -> int:
    """Apply the process-wide settings: malloc's thresholds, and how many threads big operations split over.

    `threads=None` reads ``TINYGRAD_CNN_THREADS``, else ``OPENBLAS_NUM_THREADS`` or
    ``OMP_NUM_THREADS`` (a user who limited BLAS meant it), else the cores this
    process may run on. With 1 nothing is split and BLAS threads itself, as numpy
    does on its own; with more, BLAS is held to one thread (blas.py says why).
    ``TINYGRAD_CNN_KEEP_MALLOC=1`` leaves malloc alone. Returns the thread count in effect.
    Safe to call again, with another count.
    """
    global _malloc_tuned
    if threads is not None and threads < 1:
        raise ValueError(f"configure: need at least 1 thread, got {threads}")
    if _malloc_tuned is None:
        _malloc_tuned = memory.tune_malloc()
    return start(environment_count() if threads is None else threads)


def thread_count() -> int:
    """How many threads the big primitives split their work over (configuring on first use)."""
    return count()


def malloc_tuned() -> bool:
    """Whether `configure()` changed glibc's malloc thresholds (False before it ran)."""
    return bool(_malloc_tuned)

