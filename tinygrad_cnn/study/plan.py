"""How much a `compare` run trains: the sample-efficiency runs, and the time estimate printed at the start.

The estimate is not a constant in the code: it times a few training steps and
one evaluation batch of each architecture on this machine, now (a busy machine
gives a longer estimate), and multiplies by the number of images each part of
the run will push through the models.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..nn import functional
from ..tensor import Tensor
from ..training import TrainConfig, make_optimizer, seed_everything
from .experiments import SAMPLE_MODELS, Run, Settings, architecture, epochs_for_size, train_epochs
from .probes import FGSM_EPSILONS

FIGURES_SECONDS = 10.0  # probes on the first seed, the figures and the report: 6 to 8 s measured on 2 cores
CALIBRATION_BATCH = 64


def sample_efficiency(settings: Settings, config: TrainConfig, runs: dict[str, Run], train_set: Any, test_set: Any,
                      seed: int, builders: dict[str, Callable[[], nn.Module]], progress: bool
                      ) -> dict[str, list[dict[str, float]]]:
    """Test accuracy per training-set size for SAMPLE_MODELS: the smaller balanced subsets, then the main run.

    A model is trained only on sizes below its main run's (the LCN's may be
    smaller, and `lcn_sizes` may leave some out); all models share each subset,
    its seed and its epoch budget.
    """
    sample: dict[str, list[dict[str, float]]] = {name: [] for name in SAMPLE_MODELS}
    for n in sorted(set(settings.sizes)):
        names = [name for name in SAMPLE_MODELS if n in _sizes_of(settings, name, runs[name].train_size)]
        if not names:
            continue
        subset = train_set.balanced_subset(n, seed)
        train_eval = subset if n <= settings.train_eval_size else subset.balanced_subset(settings.train_eval_size,
                                                                                         seed + 1)
        epochs = epochs_for_size(n, settings.epochs, settings.min_images)
        for name in names:
            row = train_epochs(name, builders[name], replace(config, model=name, epochs=epochs), subset, test_set,
                               train_eval, progress)
            sample[name].append(row)
            if progress:
                print(f"[seed {seed}] [sample efficiency] {name} n={n:,} ({epochs} epochs, {row['steps']} steps): "
                      f"test accuracy {row['test_acc']:.4f}, train {row['train_acc']:.4f}, {row['seconds']:.1f} s",
                      flush=True)
    for name in SAMPLE_MODELS:
        run = runs[name]
        sample[name].append({"n": run.train_size, "epochs": settings.epochs,
                             "steps": settings.epochs * -(-run.train_size // settings.batch_size),
                             "train_acc": run.final["train_eval_acc"], "test_acc": run.final["test_acc"],
                             "seconds": sum(r["train_seconds"] for r in run.history)})
    return sample


def _sizes_of(settings: Settings, arch: str, main_size: int) -> list[int]:
    """The smaller training-set sizes an architecture is trained on."""
    allowed = settings.lcn_sizes if arch == "lcn" and settings.lcn_sizes is not None else settings.sizes
    return [n for n in settings.sizes if n < main_size and n in allowed]


def _costs(build: Callable[[], nn.Module]) -> tuple[float, float]:
    """Seconds per image of one training step and of one evaluation forward pass, timed here and now."""
    seed_everything(0)
    model = build()
    optimizer = make_optimizer(TrainConfig(), list(model.parameters()))
    x = Tensor(np.random.default_rng(0).random((CALIBRATION_BATCH, 1, 28, 28), dtype=np.float32))
    y = Tensor(np.arange(CALIBRATION_BATCH) % 10)
    steps = []
    for _ in range(3):  # the first step warms caches and the thread pool; the best of the rest is the cost
        start = time.perf_counter()
        loss = functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps.append(time.perf_counter() - start)
    model.eval()
    with no_grad():
        start = time.perf_counter()
        model(x)
        forward = time.perf_counter() - start
    return min(steps[1:]) / CALIBRATION_BATCH, forward / CALIBRATION_BATCH


def estimate_seconds(settings: Settings, names: list[str], builders: dict[str, Callable[[], nn.Module]],
                     train_available: int, test_size: int) -> float:
    """The run's expected wall time: images through each model (training, evaluation, probes) × measured costs."""
    costs = {arch: _costs(builders[arch]) for arch in {architecture(n) for n in names}}
    train_size = train_available if settings.train_size is None else min(settings.train_size, train_available)
    per_seed = 0.0
    for name in names:
        arch = architecture(name)
        step, forward = costs[arch]
        size = min(settings.lcn_train_size or train_size, train_size) if arch == "lcn" else train_size
        per_seed += step * size * settings.epochs
        per_seed += forward * settings.epochs * (test_size + min(settings.train_eval_size, size))
        per_seed += forward * settings.shift_test_size * (1 + 3 * settings.max_shift)
        attacks = len([e for e in FGSM_EPSILONS if e > 0])
        per_seed += settings.fgsm_size * (attacks * step + len(FGSM_EPSILONS) * forward)
        if name in SAMPLE_MODELS:
            for n in _sizes_of(settings, arch, size):
                per_seed += step * n * epochs_for_size(n, settings.epochs, settings.min_images)
                per_seed += forward * (test_size + min(n, settings.train_eval_size))
    return settings.seeds * per_seed + FIGURES_SECONDS
