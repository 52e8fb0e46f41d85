"""Instructions per step, counted by valgrind: an A/B measure that machine noise cannot move.

On a shared 2-core VM, wall-clock ratios between two identical runs ranged from
0.5 to 1.5 (2026-12-02), too wide to see a 5% change. The number of
instructions a step executes does not depend on the neighbours: under
cachegrind, with BLAS on one thread (OpenBLAS's idle workers spin, and their
spinning is counted), a fixed hash seed and no address randomisation, two runs
agree to about 5k instructions. Each figure is (count of n2 steps − count of n1
steps) / (n2 − n1), so the import and the warm-up cancel.

It measures work, not time: a GEMM runs more instructions per ns than the
interpreter does, and PyTorch ran the 200-op chain in 8.7M instructions against
our 14.4M when the wall-clock ratio was 1.30. Use it to compare two versions of
this library (`--repo` another checkout, e.g. a `git worktree` of the base),
and time the result with `tinygrad-cnn bench`.

    python benchmarks/bench_instructions.py [chain] [mlp] [cnn] [--repo PATH]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

STEP = {
    "chain": ("x = Tensor(np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32), requires_grad=True)",
              "chain(x).backward()"),
    "mlp": ("run = training_step('mlp')", "run()"),
    "cnn": ("run = training_step('cnn')", "run()"),
}

SCRIPT = """
import sys
import numpy as np
from tinygrad_cnn import Tensor, models, optim
from tinygrad_cnn.bench import _batches, chain
from tinygrad_cnn.nn import functional

def training_step(name):
    Tensor.manual_seed(0)
    model = models.build(name)
    optimizer = optim.Adam(list(model.parameters()), lr=1e-3)
    batches = [(Tensor(x), Tensor(y)) for x, y in _batches(64)]
    count = [0]
    def run():
        x, y = batches[count[0] % len(batches)]
        count[0] += 1
        loss = functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return run

{setup}
for _ in range(int(sys.argv[1])):
    {step}
"""


def instructions(script: Path, steps: int, repo: Path) -> int:
    """Instructions of one run of `script` doing `steps` steps, as cachegrind counts them."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", PYTHONHASHSEED="0",
               PYTHONPATH=str(repo))
    command = ["setarch", "-R", "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
               sys.executable, str(script), str(steps)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tempfile.gettempdir())
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"valgrind failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("steps", nargs="*", default=["chain", "mlp"], choices=sorted(STEP))
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the checkout to measure (default: this one)")
    parser.add_argument("--n1", type=int, default=3)
    parser.add_argument("--n2", type=int, default=13)
    args = parser.parse_args()
    if not shutil.which("valgrind") or not shutil.which("setarch"):
        sys.exit("bench_instructions: needs valgrind and setarch (Debian: apt-get install valgrind util-linux)")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.steps:
            setup, step = STEP[name]
            script = Path(folder) / f"{name}.py"
            script.write_text(SCRIPT.format(setup=setup, step=step), encoding="utf-8")
            first, second = (instructions(script, n, args.repo.resolve()) for n in (args.n1, args.n2))
            print(f"{name:6s} {(second - first) / (args.n2 - args.n1) / 1e6:8.3f}M instructions per step "
                  f"({args.repo})", flush=True)


if __name__ == "__main__":
    main()
