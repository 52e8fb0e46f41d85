"""The experiments behind `tinygrad-cnn compare`: train, shrink the training set, shift the test images.

Every model is built right after `seed_everything(seed)` and trained with a
loader seeded by the same `seed`, so the models start from reproducible
weights and see the same batches in the same order: what differs between them
is the architecture (and, for the augmented runs, the shifts) alone. The whole
set of measurements is repeated for each of `Settings.seeds` seeds; a
`SeedRun` holds one seed's, `Results` all of them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..data import DataLoader, TensorDataset
from ..nn import functional
from ..tensor import Tensor
from ..training import TrainConfig, Trainer, augment_batch, evaluate, make_optimizer, seed_everything
from .measure import first_layer
from .stats import Interval, mean_interval, paired_interval

# The fixed directions a test image is shifted in (dy, dx per pixel of shift); accuracies are averaged over them.
SHIFT_DIRECTIONS: dict[str, tuple[int, int]] = {"right": (0, 1), "down": (1, 0), "down-right": (1, 1)}
EVAL_BATCH = 1000
MODEL_NAMES = ("mlp", "cnn", "cnn-gap", "lcn")  # the architectures (models.py)
AUGMENTED = ("mlp", "cnn")  # trained a second time with augmentation: runs "mlp+shift", "cnn+shift"
SAMPLE_MODELS = ("mlp", "cnn", "lcn")  # the sample-efficiency study


def run_name(arch: str, augment: str) -> str:
    """The name of a trained run: the architecture, plus "+shift" when trained with shift augmentation."""
    return arch if augment == "none" else f"{arch}+{augment}"


def architecture(run: str) -> str:
    """The architecture a run name trains: "cnn+shift" → "cnn"."""
    return run.split("+")[0]


@dataclass(frozen=True)
class Settings:
    """The sizes and budgets of one `compare` run (DEFAULT, QUICK in compare.py; smaller ones in tests)."""

    label: str
    train_size: int | None  # images in the main run; None: the whole training set
    test_size: int | None  # None: the whole test set
    epochs: int  # of the main run
    sizes: tuple[int, ...]  # the smaller training sets of the sample-efficiency study (the main run is the largest)
    min_images: int  # sample-efficiency budget: each size sees at least this many images (and `epochs` epochs)
    train_eval_size: int  # training images evaluated after each epoch (and after sample-efficiency runs)
    shift_test_size: int  # test images the translation experiments use
    lcn_train_size: int | None = None  # the LCN's main run, if smaller (it is the slowest model)
    lcn_sizes: tuple[int, ...] | None = None  # the sample-efficiency sizes the LCN is trained on; None: all
    seeds: int = 3  # every trained measurement is repeated with seeds seed, seed + 1, ...
    fgsm_size: int = 1_000  # test images attacked with FGSM
    probe_images: int = 200  # test images the receptive field is averaged over
    augment: str = "shift"  # the augmentation of the AUGMENTED runs; "none": no augmented runs
    max_shift: int = 4
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3


def shift_images(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Images moved `dy` pixels down and `dx` right (negative: up, left); vacated pixels are 0.

    Works on the last two axes of any array (N×H×W uint8 pixels, N×C×H×W maps);
    pixels pushed past the border are lost, so a shift by the full size gives zeros.
    """
    if images.ndim < 2:
        raise ValueError(f"shift_images: expected at least 2 dimensions (…, H, W), got shape {images.shape}")
    dy, dx = int(dy), int(dx)
    h, w = images.shape[-2:]
    out = np.zeros_like(images)
    if abs(dy) >= h or abs(dx) >= w:
        return out
    src_y, dst_y = slice(max(-dy, 0), h - max(dy, 0)), slice(max(dy, 0), h - max(-dy, 0))
    src_x, dst_x = slice(max(-dx, 0), w - max(dx, 0)), slice(max(dx, 0), w - max(-dx, 0))
    out[..., dst_y, dst_x] = images[..., src_y, src_x]
    return out


@dataclass
class SeedRun:
    """Everything measured with one seed: the trained runs and what was measured on them."""

    seed: int
    runs: dict[str, Run]  # run name (mlp, cnn, cnn-gap, lcn, mlp+shift, cnn+shift) → the trained model
    sample: dict[str, list[dict[str, float]]]  # model → one row per training-set size, ascending (last: main run)
    shifts: dict[str, dict[str, list[float]]]  # run → direction → accuracy at shift 0..max_shift
    equivariance: dict[str, dict[str, float]]  # conv models → relative error per measurement
    learned: dict[str, float]  # filter statistics (measure.py)
    fgsm: dict[str, list[float]] = field(default_factory=dict)  # run → accuracy at each FGSM epsilon
    probes: dict[str, float] = field(default_factory=dict)  # saliency and receptive-field statistics (probes.py)

    def shift_curve(self, name: str) -> list[float]:
        """Accuracy at shift 0..max_shift, averaged over SHIFT_DIRECTIONS."""
        return [float(a) for a in np.mean(list(self.shifts[name].values()), axis=0)]


@dataclass
class Results:
    """Everything a run measured, over all seeds: the report and results.json are rendered from this alone."""

    settings: Settings
    seed: int  # the first seed; the others follow it
    seeds: list[SeedRun]
    tables: dict[str, list[Any]]  # architecture → [measure.Layer]
    pictures: dict[str, Any]  # arrays for the figures, from the first seed's models (saliency maps, ...)
    figures: dict[str, Any]  # figure key → PNG path
    environment: dict[str, Any]  # data source, sizes, machine, load, version, wall time

    @property
    def first(self) -> SeedRun:
        """The first seed's run: its models are the ones drawn in the figures."""
        return self.seeds[0]

    @property
    def run_names(self) -> list[str]:
        return list(self.first.runs)

    def values(self, measure: Callable[[SeedRun], float]) -> list[float]:
        """One number per seed."""
        return [float(measure(s)) for s in self.seeds]

    def interval(self, measure: Callable[[SeedRun], float]) -> Interval:
        """The mean of a measurement over seeds, with its 95% interval."""
        return mean_interval(self.values(measure))

    def paired(self, a: Callable[[SeedRun], float], b: Callable[[SeedRun], float]) -> Interval:
        """The paired interval of a − b over seeds."""
        return paired_interval(self.values(a), self.values(b))

    def final(self, name: str, key: str) -> Interval:
        """A number of the main run's last epoch (test_acc, train_eval_acc, ...) over seeds."""
        return self.interval(lambda s: s.runs[name].final[key])

    def shift_curve(self, name: str) -> list[Interval]:
        """Accuracy at shift 0..max_shift (averaged over directions), one interval per shift."""
        return [self.interval(lambda s, k=k: s.shift_curve(name)[k]) for k in range(self.settings.max_shift + 1)]


@dataclass
class Run:
    """One trained model and what was recorded while training it."""

    name: str
    model: nn.Module
    initial_weight: np.ndarray  # the first layer's weight before training
    history: list[dict[str, float]] = field(default_factory=list)  # per epoch
    train_size: int = 0

    @property
    def final(self) -> dict[str, float]:
        return self.history[-1]


def _build(name: str, build: Callable[[], nn.Module], seed: int) -> tuple[nn.Module, np.ndarray]:
    seed_everything(seed)
    model = build()
    return model, first_layer(model).weight.data.copy()


def train_main(name: str, build: Callable[[], nn.Module], config: TrainConfig, train_set: Any, test_set: Any,
               train_eval_set: Any, progress: bool) -> Run:
    """Train with the library's `Trainer` (the loop `tinygrad-cnn train` runs), evaluating the test set each epoch.

    After each epoch the model is also evaluated (eval mode, no updates) on
    `train_eval_set`, a fixed part of the training set: the running accuracy
    the loop reports mixes the weights of a whole epoch, so the train–test gap
    is taken from this evaluation instead.
    """
    model, initial = _build(name, build, config.seed)
    train_eval = DataLoader(train_eval_set, EVAL_BATCH)

    def on_epoch(record: dict[str, float]) -> None:
        record["train_eval_loss"], record["train_eval_acc"] = evaluate(model, train_eval)

    trainer = Trainer(config, model, train_set, test_set, out=None, progress=progress)
    history = trainer.fit(on_epoch=on_epoch)
    return Run(name, model, initial, history, len(train_set))


def train_epochs(name: str, build: Callable[[], nn.Module], config: TrainConfig, train_set: Any, test_set: Any,
                 train_eval_set: Any, progress: bool) -> dict[str, float]:
    """Train for `config.epochs` epochs without per-epoch evaluation, then evaluate on the train and test sets.

    For the sample-efficiency runs: a 500-image set is trained for dozens of
    epochs, and testing after each one (what `Trainer` does) would cost more
    than the training itself. The step is the same five lines as `Trainer`'s.
    `train_eval_set` is the part of `train_set` the training accuracy is measured on.
    """
    model, _ = _build(name, build, config.seed)
    optimizer = make_optimizer(config, list(model.parameters()))
    loader = DataLoader(train_set, config.batch_size, shuffle=True, seed=config.seed)
    bar = _bar(config.epochs * len(loader), f"{name} n={len(train_set):,} ({config.epochs} epochs)", progress)
    start = time.perf_counter()
    model.train()
    for _ in range(config.epochs):
        for images, labels in loader:
            loss = functional.cross_entropy(model(augment_batch(config, images)), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if bar is not None:
                bar.update()
    seconds = time.perf_counter() - start
    if bar is not None:
        bar.close()
    _, train_acc = evaluate(model, DataLoader(train_eval_set, EVAL_BATCH))
    _, test_acc = evaluate(model, DataLoader(test_set, EVAL_BATCH))
    return {"n": len(train_set), "epochs": config.epochs, "steps": config.epochs * len(loader),
            "train_acc": train_acc, "test_acc": test_acc, "seconds": seconds}


def epochs_for_size(n: int, min_epochs: int, min_images: int) -> int:
    """The sample-efficiency budget: at least `min_epochs` epochs and at least `min_images` images seen."""
    return max(min_epochs, math.ceil(min_images / n))


def _bar(total: int, desc: str, progress: bool) -> Any:
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="batch", dynamic_ncols=True)


# ---------------------------------------------------------------- translation
def shifted_accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray, max_shift: int
                     ) -> dict[str, list[float]]:
    """Test accuracy on images shifted 0..max_shift pixels in each of SHIFT_DIRECTIONS (zero fill)."""
    unshifted = _accuracy(model, images, labels)
    return {direction: [unshifted] + [_accuracy(model, shift_images(images, s * dy, s * dx), labels)
                                      for s in range(1, max_shift + 1)]
            for direction, (dy, dx) in SHIFT_DIRECTIONS.items()}


def _accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    return evaluate(model, DataLoader(TensorDataset(images, labels), EVAL_BATCH))[1]


def _interior_error(shifted_then_mapped: np.ndarray, mapped_then_shifted: np.ndarray, margin: int) -> float:
    """Relative L2 difference of two (N, C, H, W) maps away from the borders (where zero fill and padding differ)."""
    h, w = shifted_then_mapped.shape[-2:]
    crop = (..., slice(margin, h - margin), slice(margin, w - margin))
    a, b = shifted_then_mapped[crop].astype(np.float64), mapped_then_shifted[crop].astype(np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def equivariance_errors(features: nn.Module, images: np.ndarray, shifts: tuple[int, ...]) -> dict[str, float]:
    """How far "shift the input, then map" is from "map, then shift the map", for the conv part of a network.

    Measured on the first layer's output (same size as the input, so a shift of
    s pixels should shift the map by s) and on the output of the whole feature
    extractor (two 2×2 poolings: a shift of 4 pixels should move it by one cell).
    Keys: "first layer, s px" and "features, 4 px"; values: relative error,
    averaged over SHIFT_DIRECTIONS, borders excluded.
    """
    x = images.astype(np.float32)[:, None] / 255
    first = features[0]
    out: dict[str, float] = {}
    was_training = features.training
    features.eval()
    with no_grad():
        base_first, base_all = first(Tensor(x)).numpy(), features(Tensor(x)).numpy()
        for s in shifts:
            errs = [_interior_error(first(Tensor(shift_images(x, s * dy, s * dx))).numpy(),
                                    shift_images(base_first, s * dy, s * dx), s + 1)
                    for dy, dx in SHIFT_DIRECTIONS.values()]
            out[f"first layer, {s} px"] = float(np.mean(errs))
        step = x.shape[-1] // base_all.shape[-1]
        errs = [_interior_error(features(Tensor(shift_images(x, step * dy, step * dx))).numpy(),
                                shift_images(base_all, dy, dx), 2)
                for dy, dx in SHIFT_DIRECTIONS.values()]
        out[f"features, {step} px"] = float(np.mean(errs))
    features.train(was_training)
    return out


def feature_maps(features: nn.Module, image: np.ndarray) -> list[np.ndarray]:
    """The activations after each ReLU of the feature extractor for one uint8 H×W image: [(C, H, W), ...]."""
    x = Tensor(image.astype(np.float32)[None, None] / 255)
    maps = []
    was_training = features.training
    features.eval()
    with no_grad():
        for module in features:
            x = module(x)
            if isinstance(module, nn.ReLU):
                maps.append(x.numpy()[0])
    features.train(was_training)
    return maps
