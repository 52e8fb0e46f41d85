"""The training loop behind `tinygrad-cnn train` and `compare`: fit, evaluate, checkpoint, resume.

A step is the five lines every PyTorch tutorial has::

    logits = model(images)
    loss = functional.cross_entropy(logits, labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

With `augment="shift"` each training batch is first moved by a random
whole-pixel shift per image (up to ±2 px each way, zero fill): `shift_augment`.

Around it: a progress bar with the running loss and accuracy, a test-set
evaluation each epoch, `metrics.jsonl`, a checkpoint after every epoch (and on
Ctrl-C, between two steps, so the weights are never caught half-updated),
curves as a PNG, and `resume=True`, which continues exactly: the same batches,
dropout masks and optimizer moments as a run that was never interrupted.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import nn, optim
from .autograd import no_grad
from .checkpoint import load_checkpoint, save_checkpoint
from .data import DataLoader
from .nn import functional
from .tensor import Tensor, default_generator

DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "adamw": 1e-3}
CHECKPOINT = "checkpoint.safetensors"
AUGMENTATIONS = ("none", "shift")
MAX_AUGMENT_SHIFT = 2


@dataclass
class TrainConfig:
    """Everything that defines a run; saved in the checkpoint and checked on resume."""

    model: str = "cnn"
    epochs: int = 5
    batch_size: int = 64
    lr: float | None = None  # None: the optimizer's default in DEFAULT_LR
    optimizer: str = "adam"
    seed: int = 0
    momentum: float = 0.9  # for sgd
    weight_decay: float = 0.0
    schedule: str = "none"  # "cosine": the learning rate follows a half cosine to 0 over the epochs
    data: str | None = None  # the data folder the run reads (None: the default search), for a resume to find it
    augment: str = "none"  # "shift": each training image moved by up to ±MAX_AUGMENT_SHIFT px (shift_augment)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]


def make_optimizer(config: TrainConfig, params: list[Tensor]) -> optim.Optimizer:
    if config.optimizer == "sgd":
        return optim.SGD(params, lr=config.learning_rate, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return optim.Adam(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay or 0.01)
    raise ValueError(f"unknown optimizer {config.optimizer!r}; choose sgd, adam or adamw")


def make_schedule(config: TrainConfig, optimizer: optim.Optimizer) -> optim.LRScheduler | None:
    """Stepped once per epoch. Cosine annealing: the late, small steps settle into a better minimum."""
    if config.schedule == "none":
        return None
    if config.schedule == "cosine":
        return optim.CosineAnnealingLR(optimizer, T_max=config.epochs)
    raise ValueError(f"unknown schedule {config.schedule!r}; choose none or cosine")


def shift_augment(images: np.ndarray, rng: np.random.Generator, max_shift: int = MAX_AUGMENT_SHIFT) -> np.ndarray:
    """Each image of an (N, C, H, W) batch moved by its own random (dy, dx), each in [-max_shift, max_shift].

    Pixels pushed past the border are lost and vacated ones are 0 (the
    background of Fashion-MNIST), as in the study's shifted test images. Done
    with one gather from a zero-padded copy: output pixel (y, x) of image n is
    padded pixel (y − dy[n] + m, x − dx[n] + m).
    """
    n, c, h, w = images.shape
    m = max_shift
    dy, dx = rng.integers(-m, m + 1, size=(2, n))
    padded = np.pad(images, ((0, 0), (0, 0), (m, m), (m, m)))
    rows = np.arange(h)[None, :] - dy[:, None] + m  # (N, H)
    cols = np.arange(w)[None, :] - dx[:, None] + m  # (N, W)
    return padded[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None], rows[:, None, :, None],
                  cols[:, None, None, :]]


def augment_batch(config: TrainConfig, images: Tensor) -> Tensor:
    """The batch the step trains on: as loaded, or shifted (drawn from the default generator, so a resume
    that restores it replays the same shifts)."""
    if config.augment == "none":
        return images
    if config.augment == "shift":
        return Tensor(shift_augment(images.numpy(), default_generator()))
    raise ValueError(f"unknown augmentation {config.augment!r}; choose {' or '.join(AUGMENTATIONS)}")


def evaluate(model: nn.Module, loader: DataLoader) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over a loader, in eval mode, without recording a graph."""
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with no_grad():
        for images, labels in loader:
            logits = model(images)
            total_loss += functional.cross_entropy(logits, labels, reduction="sum").item()
            correct += int((logits.data.argmax(axis=1) == labels.data).sum())
            count += len(labels)
    model.train(was_training)
    return total_loss / max(count, 1), correct / max(count, 1)


@dataclass
class EpochStats:
    """Running sums over an epoch (kept in mid-epoch checkpoints so a resume continues them)."""

    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.seen, 1)

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.seen, 1)


class _StopRequest:
    """Ctrl-C sets a flag that the loop checks between steps; a second Ctrl-C stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _StopRequest:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not in the main thread: no handler, Ctrl-C behaves as usual
            self._previous = None
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


@dataclass
class Trainer:
    """Trains one model on (train, test) datasets and keeps its history; `fit()` runs the epochs."""

    config: TrainConfig
    model: nn.Module
    train_set: Any
    test_set: Any
    out: Path | None = None
    progress: bool = True
    history: list[dict[str, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.optimizer = make_optimizer(self.config, list(self.model.parameters()))
        self.schedule = make_schedule(self.config, self.optimizer)
        self.train_loader = DataLoader(self.train_set, self.config.batch_size, shuffle=True, seed=self.config.seed)
        self.test_loader = DataLoader(self.test_set, 1000)
        self.epoch = 0  # completed epochs
        self.running = EpochStats()
        self.interrupted = False

    # ---------------------------------------------------------------- the loop
    def fit(self, on_epoch: Callable[[dict[str, float]], None] | None = None) -> list[dict[str, float]]:
        """Train until `config.epochs` epochs are done (or Ctrl-C); returns the per-epoch history."""
        with _StopRequest() as stop:
            while self.epoch < self.config.epochs:
                if not self._train_epoch(stop):
                    self.interrupted = True
                    self.save()
                    break
                record = self._end_epoch()
                if on_epoch:
                    on_epoch(record)
        return self.history

    def _train_epoch(self, stop: _StopRequest) -> bool:
        model, optimizer, stats = self.model, self.optimizer, self.running
        model.train()
        batches = self._progress(iter(self.train_loader), done=self.train_loader.state_dict()["batch"])
        start = time.perf_counter()
        for step, (images, labels) in enumerate(batches):
            images = augment_batch(self.config, images)
            logits = model(images)
            loss = functional.cross_entropy(logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            n = len(labels)
            stats.loss_sum += loss.item() * n
            stats.correct += int((logits.data.argmax(axis=1) == labels.data).sum())
            stats.seen += n
            if self.progress and step % 10 == 0:
                batches.set_postfix(loss=f"{stats.loss:.4f}", acc=f"{stats.accuracy:.4f}", refresh=False)
            if stop.requested:
                stats.seconds += time.perf_counter() - start
                if self.progress:
                    batches.close()
                return False
        stats.seconds += time.perf_counter() - start
        if self.progress:
            batches.close()
        return True

    def _progress(self, batches: Iterator, done: int) -> Any:
        if not self.progress:
            return batches
        from tqdm import tqdm

        return tqdm(batches, total=len(self.train_loader), initial=done, unit="batch", dynamic_ncols=True,
                    desc=f"{self.config.model} epoch {self.epoch + 1}/{self.config.epochs}")

    def _end_epoch(self) -> dict[str, float]:
        start = time.perf_counter()
        test_loss, test_acc = evaluate(self.model, self.test_loader)
        record = {
            "epoch": self.epoch + 1,
            "train_loss": self.running.loss,
            "train_acc": self.running.accuracy,
            "test_loss": test_loss,
            "test_acc": test_acc,
            "train_seconds": self.running.seconds,
            "eval_seconds": time.perf_counter() - start,
            "lr": self.optimizer.param_groups[0]["lr"],
        }
        self.history.append(record)
        self.epoch += 1
        if self.schedule is not None:
            self.schedule.step()
        self.running = EpochStats()
        if self.progress:
            print(f"{self.config.model} epoch {record['epoch']}: train loss {record['train_loss']:.4f} "
                  f"acc {record['train_acc']:.4f} | test loss {test_loss:.4f} acc {test_acc:.4f} "
                  f"| {record['train_seconds']:.1f} s")
        self.save()
        return record

    # ---------------------------------------------------------------- outputs and checkpoints
    def save(self) -> None:
        """checkpoint.safetensors, model.safetensors (PyTorch-loadable), metrics.jsonl, curves.png."""
        if self.out is None:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        save_checkpoint(self.out / CHECKPOINT, {
            "config": asdict(self.config),
            "epoch": self.epoch,
            "running": asdict(self.running),
            "history": self.history,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict() if self.schedule is not None else {},
            "loader": self.train_loader.state_dict(),
            "global_rng": default_generator().bit_generator.state,
        })
        nn.save(self.model, self.out / "model.safetensors")
        with open(self.out / "metrics.jsonl", "w") as f:
            for record in self.history:
                f.write(json.dumps(record) + "\n")
        if self.history:
            plot_history(self.history, self.out / "curves.png", title=self.config.model)

    def resume(self) -> bool:
        """Load `out/checkpoint.safetensors` if it exists; returns whether it did."""
        if self.out is None or not (self.out / CHECKPOINT).exists():
            return False
        state = load_checkpoint(self.out / CHECKPOINT)
        saved = TrainConfig(**state["config"])
        if (saved.model, saved.optimizer, saved.batch_size, saved.seed, saved.schedule, saved.augment) != (
                self.config.model, self.config.optimizer, self.config.batch_size, self.config.seed,
                self.config.schedule, self.config.augment):
            raise ValueError(f"{self.out / CHECKPOINT}: it was written by a different run ({saved}); "
                             "use another --out folder or the same settings")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.schedule is not None:
            self.schedule.load_state_dict(state["schedule"])
        self.train_loader.load_state_dict(state["loader"])
        default_generator().bit_generator.state = state["global_rng"]
        self.epoch, self.history = state["epoch"], state["history"]
        self.running = EpochStats(**state["running"])
        return True


SPLIT_STYLES = {  # test: solid with filled markers; train: dotted with hollow ones (told apart without colour)
    "test": {"linestyle": "-", "marker": "o"},
    "train": {"linestyle": ":", "marker": "o", "markerfacecolor": "white"},
}


def epoch_axis(ax: Any, epochs: list[int]) -> None:
    """Whole-number epoch ticks, even for a single epoch (matplotlib would label 0.95 … 1.05)."""
    from matplotlib.ticker import MaxNLocator

    if len(epochs) <= 12:
        ax.set_xticks(sorted(set(epochs)))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(set(epochs)) == 1:
        ax.set_xlim(epochs[0] - 0.5, epochs[0] + 0.5)


def plot_history(history: list[dict[str, float]], path: Path, title: str = "") -> None:
    """Loss and accuracy per epoch, train and test, side by side; the legend below, off the data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4.3))
    for split in ("train", "test"):
        ax_loss.plot(epochs, [r[f"{split}_loss"] for r in history], color="tab:blue", label=split,
                     **SPLIT_STYLES[split])
        ax_acc.plot(epochs, [r[f"{split}_acc"] for r in history], color="tab:blue", label=split,
                    **SPLIT_STYLES[split])
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title=f"{title} loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title=f"{title} accuracy")
    for ax in (ax_loss, ax_acc):
        epoch_axis(ax, epochs)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def seed_everything(seed: int) -> None:
    """One seed for weight initialisation, dropout and (through the loaders' own seeds) data order."""
    Tensor.manual_seed(seed)
    np.random.seed(seed)
