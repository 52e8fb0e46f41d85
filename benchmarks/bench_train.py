"""Seconds per Fashion-MNIST epoch of `mlp()`, `cnn()` and `cnn_bn()` against the same models in PyTorch CPU.

    python benchmarks/bench_train.py [--batch-size 64] [--steps 30] [--rounds 5]

`tinygrad-cnn bench` with more rounds: same batch size, thread count and
optimizer on both sides, each measurement in a fresh process (so each side's
peak memory is its own), the two sides alternating. The time per epoch is the
median step time × 60,000 / batch size (data loading is not included: our
DataLoader needs ~25 µs per batch).
"""

from __future__ import annotations

import argparse

from tinygrad_cnn.bench import ROWS, run_bench


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    run_bench(args.batch_size, args.steps, args.rounds, rows=tuple(row for row in ROWS if row[0] != "chain"))


if __name__ == "__main__":
    main()
