"""`tinygrad-cnn bench`: time training steps of `mlp()`, `cnn()` and `cnn_bn()`, ours against PyTorch CPU.

The same architecture, batch size, optimizer (Adam), thread count and input
batches on both sides; the median time of a full step (forward, cross-entropy,
zero_grad, backward, optimizer step), converted to seconds per Fashion-MNIST
epoch (60,000 images). The machine may be shared: medians, and ratios measured
in the same process, are what to quote. `benchmarks/bench_train.py` runs this
in separate processes to also report each side's peak memory.
"""

from __future__ import annotations

import statistics
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


ROWS = (("mlp", "adam"), ("cnn", "adam"), ("cnn-bn", "adam"), ("mlp", "sgd"))


def run_bench(batch_size: int = 64, steps: int = 20, rows: tuple[tuple[str, str], ...] = ROWS) -> int:
    """One line per (model, optimizer): ours, PyTorch's (when installed) and the ratio; sgd is SGD momentum 0.9."""
    torch = import_torch()
    per_epoch = EPOCH_IMAGES / batch_size
    print(f"training step, batch {batch_size}, median of {steps}; seconds per 60,000-image epoch")
    for name, optimizer_name in rows:
        ours = time_ours(name, batch_size, steps, optimizer_name)
        line = f"{name:6s} {optimizer_name:4s} ours {ours * 1e3:7.2f} ms/step = {ours * per_epoch:6.1f} s/epoch"
        if torch is not None:
            theirs = time_torch(torch, name, batch_size, steps, optimizer_name)
            line += (f" | torch {theirs * 1e3:7.2f} ms/step = {theirs * per_epoch:6.1f} s/epoch"
                     f" | ratio {ours / theirs:.2f}")
        print(line, flush=True)
    if torch is None:
        print("(PyTorch not installed: no ratio)")
    return 0
