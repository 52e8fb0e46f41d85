"""Seconds per Fashion-MNIST epoch of `mlp()`, `cnn()` and `cnn_bn()` against the same models in PyTorch CPU.

    python benchmarks/bench_train.py [--batch-size 64] [--steps 30]

Same batch size, thread count and optimizer (Adam) on both sides. Each side
runs in its own process so that its peak memory (max RSS) is its own. The time
per epoch is the median step time × 60,000 / batch size (data loading is not
included: our DataLoader needs ~25 µs per batch). Goal: ratio ≤ 1.0 for the MLP,
≤ 1.5 for the CNN.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

from tinygrad_cnn.bench import EPOCH_IMAGES, import_torch, time_ours, time_torch


def child(framework: str, model: str, batch_size: int, steps: int) -> None:
    if framework == "ours":
        seconds = time_ours(model, batch_size, steps)
    else:
        seconds = time_torch(import_torch(), model, batch_size, steps)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb}))


def measure(framework: str, model: str, batch_size: int, steps: int) -> dict | None:
    cmd = [sys.executable, __file__, "--child", framework, model, "--batch-size", str(batch_size),
           "--steps", str(steps)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        if framework == "torch" and "ModuleNotFoundError" in done.stderr:
            return None
        raise RuntimeError(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--child", nargs=2, metavar=("FRAMEWORK", "MODEL"))
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.batch_size, args.steps)
        return
    per_epoch = EPOCH_IMAGES / args.batch_size
    print(f"batch {args.batch_size}, Adam, median of {args.steps} steps, each side in its own process")
    for model in ("mlp", "cnn", "cnn-bn"):
        ours = measure("ours", model, args.batch_size, args.steps)
        theirs = measure("torch", model, args.batch_size, args.steps)
        line = (f"{model:4s} ours  {ours['seconds'] * per_epoch:6.1f} s/epoch, peak {ours['peak_mb']:6.0f} MB")
        if theirs:
            line += (f" | torch {theirs['seconds'] * per_epoch:6.1f} s/epoch, peak {theirs['peak_mb']:6.0f} MB"
                     f" | time ratio {ours['seconds'] / theirs['seconds']:.2f}")
        print(line, flush=True)


if __name__ == "__main__":
    main()
