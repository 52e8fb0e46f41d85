"""Shared timing helpers for the benchmarks: medians of repeated runs, and PyTorch if installed.

Timings on a shared machine are noisy; medians and ratios against PyTorch
measured in the same process, with the same thread count, are what we quote.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

THREADS = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))


def median_ms(fn: Callable[[], object], repeats: int = 15, warmup: int = 2) -> float:
    """Median wall time of `fn()` in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def torch_or_none():
    """PyTorch with the same thread count as numpy's BLAS, or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(THREADS)
    return torch


def report(name: str, ours_ms: float, theirs_ms: float | None, extra: str = "") -> None:
    ratio = f"{ours_ms / theirs_ms:5.2f}" if theirs_ms else "  n/a"
    theirs = f"{theirs_ms:8.2f}" if theirs_ms else "     n/a"
    print(f"{name:<46s} ours {ours_ms:8.2f} ms   torch {theirs} ms   ratio {ratio}  {extra}")
