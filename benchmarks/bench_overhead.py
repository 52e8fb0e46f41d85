"""Per-op overhead: a chain of 200 elementwise ops on a (4, 4) tensor, then backward.

At this size the arithmetic is free, so the time is pure framework overhead:
building Tensors, recording nodes and walking the graph. Prints the median time
per op (forward + backward) and the ratio against PyTorch CPU when installed.

    python benchmarks/bench_overhead.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from tinygrad_cnn import Tensor

OPS = 200  # 40 rounds of 5 ops


def chain(x):
    y = x
    for _ in range(OPS // 5):
        y = y * 1.01
        y = y + 0.1
        y = y.relu()
        y = y.tanh()
        y = y - x
    return y.sum()


def median_seconds(fn, repeats: int = 30) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    data = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
    x = Tensor(data, requires_grad=True)
    ours = median_seconds(lambda: chain(x).backward())
    print(f"tinygrad_cnn: {ours * 1e6 / OPS:6.2f} us per op (forward + backward), {ours * 1e3:.2f} ms in all")
    try:
        import torch
    except ImportError:
        print("PyTorch not installed: no ratio")
        return
    torch.set_num_threads(1)
    tx = torch.tensor(data, requires_grad=True)
    theirs = median_seconds(lambda: chain(tx).backward())
    print(f"PyTorch:      {theirs * 1e6 / OPS:6.2f} us per op (forward + backward), {theirs * 1e3:.2f} ms in all")
    print(f"ratio ours / PyTorch: {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
