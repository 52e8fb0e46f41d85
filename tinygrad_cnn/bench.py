"""`tinygrad-cnn bench`: time training steps of `mlp()`, `cnn()` and `cnn_bn()`, ours against PyTorch CPU.

The same architecture, batch size, optimizer (Adam, or SGD with momentum),
thread count and input batches on both sides; the median time of a full step
(forward, cross-entropy, zero_grad, backward, optimizer step), converted to
seconds per Fashion-MNIST epoch (60,000 images). A last row times the per-op
overhead: a chain of 200 elementwise ops on a (4, 4) tensor and its backward.

How it is measured, and why:

* Each measurement runs in a process of its own (`--child`), one side at a
  time. In one process, each library's idle worker threads (PyTorch's OpenMP
  pool, OpenBLAS's) keep spinning for a while after their last call, on the
  cores the other library then needs: whichever ran second lost up to 2x.
  A process of its own also gives each side its own peak memory (max RSS).
* The sides alternate, ours then PyTorch's, for `rounds` rounds. The machine's
  speed drifts (other tenants, CPU frequency), so each round's ratio compares
  runs made a few seconds apart; the table shows the median ratio and its range.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from . import models, optim
from .backend import thread_count
from .nn import functional
from .tensor import Tensor

EPOCH_IMAGES = 60_000


def median_seconds(step: Callable[[], None], steps: int, warmup: int = 3) -> float:
    """Median wall time of `step()` over `steps` runs, after `warmup` unmeasured ones."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _batches(batch_size: int, count: int = 8) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [(rng.random((batch_size, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, batch_size))
            for _ in range(count)]


def time_ours(model_name: str, batch_size: int, steps: int, optimizer_name: str = "adam") -> float:
    """Median seconds per training step of our model (Adam, or SGD with momentum 0.9)."""
    Tensor.manual_seed(0)
    model = models.build(model_name)
    params = list(model.parameters())
    optimizer = optim.Adam(params, lr=1e-3) if optimizer_name == "adam" else optim.SGD(params, lr=0.01, momentum=0.9)
    batches = [(Tensor(x), Tensor(y)) for x, y in _batches(batch_size)]
    state = {"i": 0}

    def step() -> None:
        x, y = batches[state["i"] % len(batches)]
        state["i"] += 1
        loss = functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return median_seconds(step, steps)


def torch_model(torch: Any, model_name: str) -> Any:
    """The same architectures in PyTorch (same layer names, so state_dicts match ours)."""
    tnn = torch.nn
    if model_name == "mlp":
        return tnn.Sequential(tnn.Flatten(), tnn.Linear(784, 256), tnn.ReLU(), tnn.Linear(256, 128), tnn.ReLU(),
                              tnn.Linear(128, 10))
    if model_name not in ("cnn", "cnn-bn"):
        raise ValueError(f"no PyTorch twin for {model_name!r}")
    bn = model_name == "cnn-bn"

    def block(c_in: int, c_out: int) -> list:
        return [tnn.Conv2d(c_in, c_out, 3, padding=1), *([tnn.BatchNorm2d(c_out)] if bn else []), tnn.ReLU(),
                tnn.MaxPool2d(2)]

    class ConvNet(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = tnn.Sequential(*block(1, 32), *block(32, 64))
            head = [tnn.BatchNorm1d(128), tnn.ReLU(), tnn.Dropout(0.5)] if bn else [tnn.ReLU()]
            self.classifier = tnn.Sequential(tnn.Flatten(), tnn.Linear(3136, 128), *head, tnn.Linear(128, 10))

        def forward(self, x: Any) -> Any:
            return self.classifier(self.features(x))

    return ConvNet()


def time_torch(torch: Any, model_name: str, batch_size: int, steps: int, optimizer_name: str = "adam") -> float:
    """Median seconds per training step of the PyTorch twin."""
    torch.manual_seed(0)
    model = torch_model(torch, model_name)
    optimizer = (torch.optim.Adam(model.parameters(), lr=1e-3) if optimizer_name == "adam"
                 else torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
    batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in _batches(batch_size)]
    state = {"i": 0}

    def step() -> None:
        x, y = batches[state["i"] % len(batches)]
        state["i"] += 1
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return median_seconds(step, steps)


def import_torch() -> Any:
    """PyTorch with as many threads as we use (backend/threads.py: all cores unless the environment says otherwise)."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(thread_count())
    return torch


CHAIN_OPS = 200  # 40 rounds of 5 ops


def chain(x: Any) -> Any:
    """200 elementwise ops and a sum, written once for both libraries: at (4, 4) the time is all per-op overhead."""
    y = x
    for _ in range(CHAIN_OPS // 5):
        y = y * 1.01
        y = y + 0.1
        y = y.relu()
        y = y.tanh()
        y = y - x
    return y.sum()


def time_chain(torch: Any = None, steps: int = 30) -> float:
    """Median seconds of chain(x).backward() for ours (torch=None) or PyTorch's, on one thread (no op is split)."""
    data = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
    if torch is None:
        x = Tensor(data, requires_grad=True)
    else:
        torch.set_num_threads(1)  # a (4, 4) tensor: threads only add overhead
        x = torch.tensor(data, requires_grad=True)
    return median_seconds(lambda: chain(x).backward(), steps, warmup=5)


ROWS = (("mlp", "adam"), ("cnn", "adam"), ("cnn-bn", "adam"), ("mlp", "sgd"), ("chain", "-"))


def measure(side: str, name: str, optimizer_name: str, batch_size: int, steps: int) -> dict | None:
    """{"seconds": median per step, "peak_mb": max RSS} from a fresh process; None if that side cannot run there."""
    command = [sys.executable, "-m", "tinygrad_cnn.bench", "--child", side, name, optimizer_name, str(batch_size),
               str(steps)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode == 3:  # the child found no PyTorch
        return None
    if done.returncode != 0:
        raise RuntimeError(f"bench: {' '.join(command[2:])} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child(side: str, name: str, optimizer_name: str, batch_size: int, steps: int) -> int:
    torch = import_torch() if side == "torch" else None
    if side == "torch" and torch is None:
        return 3
    if name == "chain":
        seconds = time_chain(torch, steps)
    elif torch is None:
        seconds = time_ours(name, batch_size, steps, optimizer_name)
    else:
        seconds = time_torch(torch, name, batch_size, steps, optimizer_name)
    try:
        import resource  # Unix only
    except ImportError:
        peak_mb = float("nan")
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb}))
    return 0


def run_bench(batch_size: int = 64, steps: int = 20, rounds: int = 3,
              rows: tuple[tuple[str, str], ...] = ROWS) -> int:
    """One line per (model, optimizer): ours, PyTorch's (when installed), the ratio and each side's peak memory."""
    per_epoch = EPOCH_IMAGES / batch_size
    print(f"median of {steps} steps (training steps: batch {batch_size}); each side in its own process, "
          f"alternating, {rounds} round{'s' * (rounds > 1)}; ratio = ours / PyTorch's, median (range)")
    torch_found = True
    for name, optimizer_name in rows:
        ours, theirs = [], []
        for _ in range(rounds):
            ours.append(measure("ours", name, optimizer_name, batch_size, steps))
            other = measure("torch", name, optimizer_name, batch_size, steps) if torch_found else None
            torch_found = other is not None
            if other is not None:
                theirs.append(other)
        mine = statistics.median(m["seconds"] for m in ours)
        if name == "chain":
            line = f"{'chain':6s} {CHAIN_OPS} ops ours {mine * 1e6 / CHAIN_OPS:5.2f} us/op"
        else:
            line = f"{name:6s} {optimizer_name:4s} ours {mine * 1e3:7.2f} ms/step = {mine * per_epoch:6.1f} s/epoch"
        line += f", {max(m['peak_mb'] for m in ours):4.0f} MB"
        if theirs:
            other_seconds = statistics.median(m["seconds"] for m in theirs)
            ratios = sorted(o["seconds"] / t["seconds"] for o, t in zip(ours, theirs))
            torch_time = (f"{other_seconds * 1e6 / CHAIN_OPS:5.2f} us/op" if name == "chain"
                          else f"{other_seconds * 1e3:7.2f} ms/step")
            line += (f" | torch {torch_time}, {max(m['peak_mb'] for m in theirs):4.0f} MB"
                     f" | ratio {statistics.median(ratios):.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f})")
        print(line, flush=True)
    if not torch_found:
        print("(PyTorch not installed: no ratio)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "--child":
        sys.exit(_child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])))
    sys.exit(run_bench())
