"""Shared timing helpers for the benchmarks: medians of repeated runs, and PyTorch if installed.

Timings on a shared machine are noisy; medians and ratios against PyTorch
measured in the same process, with the same thread count, are what we quote.
"""

from __future__ import annotations

from collections.abc import Callable

from tinygrad_cnn import parallel
from tinygrad_cnn.bench import import_torch, median_seconds

THREADS = parallel.threads()


def median_ms(fn: Callable[[], object], repeats: int = 15, warmup: int = 2) -> float:
    """Median wall time of `fn()` in milliseconds."""
    return median_seconds(fn, repeats, warmup) * 1e3


def torch_or_none():
    """PyTorch with the same thread count as ours, or None when it is not installed."""
    return import_torch()


def report(name: str, ours_ms: float, theirs_ms: float | None, extra: str = "") -> None:
    ratio = f"{ours_ms / theirs_ms:5.2f}" if theirs_ms else "  n/a"
    theirs = f"{theirs_ms:8.2f}" if theirs_ms else "     n/a"
    print(f"{name:<46s} ours {ours_ms:8.2f} ms   torch {theirs} ms   ratio {ratio}  {extra}")
