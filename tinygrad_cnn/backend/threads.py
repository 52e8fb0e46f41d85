"""Our own threads: the big primitives split their batch over the cores, one contiguous slice each.

Why not let BLAS thread itself, as numpy does by default? A convolution is
GEMMs *and* memory-bound numpy work between them (the im2col copy, strided
adds, masks), and numpy runs that work on one core. Splitting the whole
primitive (copies and GEMMs alike) into one slice of the batch per core keeps
every core busy for all of it. On conv2 of the benchmark that took forward +
backward from 12.3 ms to 8.7 ms on 2 cores. It only works if BLAS stays out of
the way: its idle worker threads spin on the cores ours need, so BLAS runs one
thread while our threads work (blas.py).

    batch of 64 ──split──▶ rows 0‥31  → thread 0 (the caller): im2col, GEMM, …
                           rows 32‥63 → thread 1 (a pool worker): im2col, GEMM, …
                           both write disjoint slices of one output array

numpy releases the GIL inside ufuncs, copies and matmul, so two Python
threads do run at once. The split is per primitive and the engine itself stays
single-threaded: a primitive is still a function of its inputs.

Nothing starts at import: the pool is made by `configure()` (backend/__init__.py),
which the first split calls if nobody did before.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from . import blas

T = TypeVar("T")

MIN_PIECE_COST = 1 << 18
_PREFIX = "tinygrad_cnn-pool"
_pool: ThreadPoolExecutor | None = None
_count: int | None = None  # None until configured
_fork_hook_registered = False
_last_split = -math.inf  # when `run` last handed work to the pool (time.perf_counter)


def environment_count() -> int:
    """The first of these environment variables that holds a positive count, else the usable cores:
    TINYGRAD_CNN_THREADS, then OPENBLAS_NUM_THREADS or OMP_NUM_THREADS (a user who limited BLAS meant it)."""
    for name in ("TINYGRAD_CNN_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def count() -> int:
    """How many threads the big primitives split their work over (configuring on first use)."""
    if _count is None:
        from . import configure  # backend/__init__.py: the one place settings are made

        configure()
    return _count  # type: ignore[return-value]


def start(workers: int) -> int:
    """Split over `workers` threads from now on (1: no splitting). Called by `configure()`; returns the count."""
    global _pool, _count, _fork_hook_registered
    if workers > 1 and not blas.can_limit_threads():  # BLAS would spin on our cores: let it thread instead
        workers = 1
    if _pool is not None:
        _pool.shutdown()
        _pool = None
    _count = workers
    if workers > 1:
        _pool = ThreadPoolExecutor(max_workers=workers - 1, thread_name_prefix=_PREFIX)
    blas.hold_to_one_thread(workers > 1, workers)  # with one thread, BLAS threads itself, as numpy does on its own
    if not _fork_hook_registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_hook_registered = True
    return workers


def _after_fork_in_child() -> None:
    """A forked child has none of the parent's pool threads: give it a pool of its own."""
    global _pool
    _pool = None
    if _count is not None:
        start(_count)


def seconds_since_split() -> float:
    """How long ago our threads last split work (inf if never): linalg.matmul asks before letting BLAS thread."""
    return time.perf_counter() - _last_split


def chunks(size: int, cost_per_item: int = 1) -> list[slice]:
    """Split range(size) into at most count() contiguous, nearly equal slices, each worth waking a thread for.

    `cost_per_item` is in array elements read or written (a GEMM's multiply-adds
    count about 1/32 each). Handing a piece to a pool thread and getting it back
    took ~90 µs on our VMs, so a piece must be worth MIN_PIECE_COST elements
    (~0.2 ms of copying); tests set it to 1 to split even tiny arrays.
    """
    worth = size * cost_per_item // max(1, MIN_PIECE_COST)  # how many pieces the work would pay for
    parts = 1 if worth < 2 else max(1, min(count(), size, worth))  # small work never configures the threads
    bounds = [size * k // parts for k in range(parts + 1)]
    return [slice(start, stop) for start, stop in itertools.pairwise(bounds)]


def split(work: Callable[[slice], T], size: int, cost_per_item: int = 1) -> list[T]:
    """work(piece) for the `chunks` of range(size), run at once over the threads (`run`): the batch split."""
    return run(work, chunks(size, cost_per_item))


def run(work: Callable[[slice], T], pieces: Sequence[slice]) -> list[T]:
    """[work(piece) for piece in pieces], the first in this thread and the others on the pool, at once.

    Every call's result is waited for, so an exception in any piece is raised here.
    Called from inside a piece on a pool thread, it runs its pieces in that thread
    (waiting there for the pool could wait for itself).
    """
    global _last_split
    if len(pieces) == 1 or _pool is None or threading.current_thread().name.startswith(_PREFIX):
        return [work(piece) for piece in pieces]
    _last_split = time.perf_counter()
    futures = [_pool.submit(work, piece) for piece in pieces[1:]]
    try:
        first = work(pieces[0])
    finally:
        rest = [future.result() for future in futures]
    return [first, *rest]
