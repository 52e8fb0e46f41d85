"""Per-op overhead: a chain of 200 elementwise ops on a (4, 4) tensor, then backward.

At this size the arithmetic is free, so the time is pure framework overhead:
building Tensors, recording nodes and walking the graph. Prints the median time
per op (forward + backward) and the ratio against PyTorch CPU when installed.

    python benchmarks/bench_overhead.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import median_ms, torch_or_none

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


def main() -> None:
    data = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
    x = Tensor(data, requires_grad=True)
    ours = median_ms(lambda: chain(x).backward(), repeats=30)
    print(f"tinygrad_cnn: {ours * 1e3 / OPS:6.2f} us per op (forward + backward), {ours:.2f} ms in all")
    torch = torch_or_none()
    if torch is None:
        print("PyTorch not installed: no ratio")
        return
    torch.set_num_threads(1)  # a (4, 4) tensor: threads only add overhead
    tx = torch.tensor(data, requires_grad=True)
    theirs = median_ms(lambda: chain(tx).backward(), repeats=30)
    print(f"PyTorch:      {theirs * 1e3 / OPS:6.2f} us per op (forward + backward), {theirs:.2f} ms in all")
    print(f"ratio ours / PyTorch: {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
