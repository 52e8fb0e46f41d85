"""Per-op overhead: a chain of 200 elementwise ops on a (4, 4) tensor, then backward.

At this size the arithmetic is free, so the time is pure framework overhead:
building Tensors, recording nodes and walking the graph. The chain is
`tinygrad_cnn.bench.chain`, the same function `tinygrad-cnn bench` times, so the
two report the same thing: each side in a fresh process, on one thread,
alternating for a few rounds; prints µs per op (forward + backward) and the ratio.

    python benchmarks/bench_overhead.py [--rounds 5]
"""

from __future__ import annotations

import argparse

from tinygrad_cnn.bench import run_bench


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    run_bench(steps=args.steps, rounds=args.rounds, rows=(("chain", "-"),))


if __name__ == "__main__":
    main()
