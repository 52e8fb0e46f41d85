"""Shared timing helpers for the benchmarks: medians of repeated runs, and PyTorch if installed.

Timings on a shared machine are noisy; medians and ratios against PyTorch
measured in the same process, with the same thread count, are what we quote.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

from tinygrad_cnn.backend import thread_count
from tinygrad_cnn.bench import import_torch, median_seconds

THREADS = thread_count()


def median_ms(fn: Callable[[], object], repeats: int = 15, warmup: int = 2) -> float:
    """Median wall time of `fn()` in milliseconds."""
    return median_seconds(fn, repeats, warmup) * 1e3


def paired_ms(ours: Callable[[], object], theirs: Callable[[], object] | None, rounds: int = 5,
              repeats: int = 7, warmup: int = 3) -> tuple[float, float | None]:
    """Median times of `ours` and `theirs` in ms, measured in alternating rounds.

    The machine's speed drifts (other tenants, CPU frequency): timing all of one
    side and then all of the other lets the drift pick the winner. Alternating
    rounds of `repeats` runs of each exposes both to the same drift. Each round
    starts with `warmup` unmeasured runs: right after the other library (or any
    idle moment) the first run of either is slower, its threads and caches cold
    (measured: conv2 9-10 ms warm, 13-18 ms as the first run after 10-300 ms idle).
    """
    ours_all: list[float] = []
    theirs_all: list[float] = []
    for _ in range(rounds):
        ours_all.append(median_seconds(ours, repeats, warmup))
        if theirs is not None:
            theirs_all.append(median_seconds(theirs, repeats, warmup))
    return statistics.median(ours_all) * 1e3, (statistics.median(theirs_all) * 1e3 if theirs_all else None)


def torch_or_none():
    """PyTorch with the same thread count as ours, or None when it is not installed."""
    return import_torch()


def report(name: str, ours_ms: float, theirs_ms: float | None, extra: str = "") -> None:
    ratio = f"{ours_ms / theirs_ms:5.2f}" if theirs_ms else "  n/a"
    theirs = f"{theirs_ms:8.2f}" if theirs_ms else "     n/a"
    print(f"{name:<46s} ours {ours_ms:8.2f} ms   torch {theirs} ms   ratio {ratio}  {extra}")
