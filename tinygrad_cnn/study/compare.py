"""`tinygrad-cnn compare`: measure what a convolutional network does differently from a plain MLP.

Three models, trained with the same seed, data order, optimizer and budget:

    mlp   every pixel wired to every hidden unit
    cnn   3×3 convolutions (local connectivity + shared weights) and 2×2 max pooling
    lcn   the CNN's exact geometry with LocallyConnected2d: local connectivity, no sharing

The LCN is what lets the report split "a CNN is better because it is local"
from "a CNN is better because it shares weights". Four experiments test the
four usual claims: (a) parameters per layer; (b) what the first layer learns;
(c) accuracy against training-set size and the train–test gap; (d) accuracy on
shifted test images and whether feature maps shift with the input. The report
(`report.md`, `report.html`, PNGs) states every number and how it was obtained.

Default mode targets ten minutes on two cores; `--quick` about one minute on
a 1,000-image subset, enough to produce every artifact.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__, data, models
from ..backend import thread_count
from ..training import TrainConfig
from .experiments import (
    MODEL_NAMES,
    Results,
    Run,
    Settings,
    epochs_for_size,
    equivariance_errors,
    feature_maps,
    shift_images,
    shifted_accuracy,
    train_epochs,
    train_main,
)
from .figures import (
    feature_map_figure,
    filters,
    lcn_filters,
    learning_curves,
    mlp_weights,
    parameter_bars,
    sample_efficiency,
    translation,
)
from .measure import first_layer, half_energy_area, layer_table, neighbour_similarity, ramp_fraction
from .report import write_report

__all__ = ["DEFAULT", "QUICK", "Settings", "run_compare", "run_experiments", "shift_images"]

BUILDERS = {name: models.MODELS[name] for name in MODEL_NAMES}

DEFAULT = Settings(label="default", train_size=None, test_size=None, epochs=2, sizes=(500, 2_000, 10_000),
                   min_images=40_000, train_eval_size=5_000, shift_test_size=2_000, lcn_train_size=20_000,
                   lcn_sizes=(500, 2_000))
QUICK = Settings(label="quick", train_size=1_000, test_size=1_000, epochs=2, sizes=(200, 500),
                 min_images=2_000, train_eval_size=1_000, shift_test_size=500)
LCN_POSITIONS = ((7, 7), (7, 20), (14, 14), (20, 7), (20, 20))
EQUIVARIANCE_IMAGES = 200


def run_compare(out: Path, quick: bool = False, seed: int = 0, data_root: str | None = None) -> int:
    """The command: run the experiments, write the report into `out`; returns the exit status."""
    try:
        results = run_experiments(QUICK if quick else DEFAULT, out, seed=seed, data_root=data_root)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    md, html = write_report(results, out)
    print(f"compare: wrote {md} and {html} in {results.environment['wall_seconds'] / 60:.1f} min")
    return 0


def _subset(dataset: Any, size: int | None, seed: int) -> Any:
    return dataset if size is None or size >= len(dataset) else dataset.balanced_subset(size, seed)


def _say(progress: bool, line: str) -> None:
    if progress:
        print(line, flush=True)


def run_experiments(settings: Settings, out: Path, seed: int = 0, data_root: str | None = None,
                    progress: bool = True) -> Results:
    """Train, measure and draw; the figures go into `out`, the numbers into the returned Results."""
    start, load_start = time.perf_counter(), os.getloadavg()
    train_full, test_full = data.FashionMNIST(data_root, train=True), data.FashionMNIST(data_root, train=False)
    out.mkdir(parents=True, exist_ok=True)  # after the data loaded: a failed start leaves no empty folder
    train_set, test_set = _subset(train_full, settings.train_size, seed), _subset(test_full, settings.test_size, seed)
    shift_set = _subset(test_set, settings.shift_test_size, seed + 2)
    config = TrainConfig(epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr,
                         optimizer=settings.optimizer, seed=seed)
    tables = {name: layer_table(build()) for name, build in BUILDERS.items()}
    _say(progress, f"compare ({settings.label}): {len(train_set):,} training and {len(test_set):,} test images "
                   f"from {_source(train_full)}; models mlp, cnn, lcn; seed {seed}")

    runs: dict[str, Run] = {}
    for name, build in BUILDERS.items():
        main_set = _subset(train_set, settings.lcn_train_size if name == "lcn" else None, seed)
        runs[name] = run = train_main(name, build, replace(config, model=name), main_set, test_set,
                                      _subset(main_set, settings.train_eval_size, seed + 1), progress)
        last = run.final
        _say(progress, f"[main] {name} on {len(main_set):,} images: test accuracy {last['test_acc']:.4f}, train "
                       f"{last['train_eval_acc']:.4f} (gap {100 * (last['train_eval_acc'] - last['test_acc']):+.1f} "
                       f"points), {np.mean([r['train_seconds'] for r in run.history]):.1f} s per epoch")
    sample = _sample_efficiency(settings, config, runs, train_set, test_set, seed, progress)

    shifts = {name: shifted_accuracy(run.model, shift_set.images, shift_set.labels, settings.max_shift)
              for name, run in runs.items()}
    equivariance = {name: equivariance_errors(runs[name].model.features, shift_set.images[:EQUIVARIANCE_IMAGES],
                                              (1, 2, 4)) for name in ("cnn", "lcn")}
    _say(progress, "[translation] accuracy at 0.." + str(settings.max_shift) + " px: " + "; ".join(
        f"{name} " + " ".join(f"{a:.3f}" for a in np.mean(list(curves.values()), axis=0))
        for name, curves in shifts.items()))

    results = Results(settings, seed, runs, tables, sample, shifts, equivariance, _learned(runs), {}, {})
    results.figures = _draw(results, shift_set.images, out)
    results.environment = {
        "version": __version__, "data": _source(train_full), "train_size": len(train_set),
        "test_size": len(test_set), "train_available": len(train_full), "test_available": len(test_full),
        "lcn_train_size": runs["lcn"].train_size, "train_eval_size": min(settings.train_eval_size, len(train_set)),
        "shift_test_size": len(shift_set), "equivariance_images": min(EQUIVARIANCE_IMAGES, len(shift_set)),
        "cpu_count": os.cpu_count(), "machine": f"{platform.machine()}, {platform.system()} {platform.release()}",
        "python": platform.python_version(), "numpy": np.__version__, "threads": _threads(),
        "load_start": load_start, "load_end": os.getloadavg(), "wall_seconds": time.perf_counter() - start,
        "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    return results


def _sample_efficiency(settings: Settings, config: TrainConfig, runs: dict[str, Run], train_set: Any, test_set: Any,
                       seed: int, progress: bool) -> dict[str, list[dict[str, float]]]:
    """Test accuracy per training-set size: the smaller balanced subsets, then each model's main run.

    A model is trained only on sizes below its main run's (the LCN's may be
    smaller, and `lcn_sizes` may leave some out); all models share each subset,
    its seed and its epoch budget.
    """
    sample: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
    for n in sorted(set(settings.sizes)):
        names = [name for name, run in runs.items() if n < run.train_size
                 and (name != "lcn" or settings.lcn_sizes is None or n in settings.lcn_sizes)]
        if not names:
            continue
        subset = train_set.balanced_subset(n, seed)
        train_eval = _subset(subset, settings.train_eval_size, seed + 1)
        epochs = epochs_for_size(n, settings.epochs, settings.min_images)
        for name in names:
            row = train_epochs(name, BUILDERS[name], replace(config, model=name, epochs=epochs), subset, test_set,
                               train_eval, progress)
            sample[name].append(row)
            _say(progress, f"[sample efficiency] {name} n={n:,} ({epochs} epochs, {row['steps']} steps): "
                           f"test accuracy {row['test_acc']:.4f}, train {row['train_acc']:.4f}, {row['seconds']:.1f} s")
    for name, run in runs.items():
        sample[name].append({"n": run.train_size, "epochs": settings.epochs,
                             "steps": settings.epochs * -(-run.train_size // settings.batch_size),
                             "train_acc": run.final["train_eval_acc"], "test_acc": run.final["test_acc"],
                             "seconds": sum(r["train_seconds"] for r in run.history)})
    return sample


def _threads() -> str:
    """How many threads the work was split over (backend.thread_count; it matters: see the cost section)."""
    set_ = [f"{var}={os.environ[var]}" for var in ("TINYGRAD_CNN_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
            if var in os.environ]
    return f"{thread_count()}" + (f" ({', '.join(set_)})" if set_ else "")


def _source(dataset: Any) -> str:
    return "the subset embedded in the package" if dataset.root is None else str(dataset.root)


def _learned(runs: dict[str, Run]) -> dict[str, float]:
    """Statistics of the first layers (see measure.py): do they hold edges, templates, shared filters?"""
    weights = {name: (run.initial_weight, first_layer(run.model).weight.data) for name, run in runs.items()}
    (cnn0, cnn1), (mlp0, mlp1), (lcn0, lcn1) = weights["cnn"], weights["mlp"], weights["lcn"]
    out = {
        "cnn_ramp_init": ramp_fraction(cnn0).mean(), "cnn_ramp_trained": ramp_fraction(cnn1).mean(),
        "cnn_edges_init": (ramp_fraction(cnn0) > 0.7).sum(), "cnn_edges_trained": (ramp_fraction(cnn1) > 0.7).sum(),
        "cnn_filters": len(cnn1), "lcn_ramp_trained": ramp_fraction(lcn1).mean(),
        "mlp_area_init": np.median(half_energy_area(mlp0)), "mlp_area_trained": np.median(half_energy_area(mlp1)),
        "mlp_area_change": np.median(half_energy_area(mlp1 - mlp0)),
        "lcn_similarity_init": neighbour_similarity(lcn0), "lcn_similarity_trained": neighbour_similarity(lcn1),
        "lcn_similarity_change": neighbour_similarity(lcn1 - lcn0),
    }
    for name, (w0, w1) in weights.items():
        out[f"{name}_relative_change"] = np.linalg.norm(w1 - w0) / np.linalg.norm(w0)
    return {k: float(v) for k, v in out.items()}


def _draw(results: Results, shift_images_u8: np.ndarray, out: Path) -> dict[str, Path]:
    """Every figure of the report, as PNGs in `out`."""
    runs, image = results.runs, shift_images_u8[0]
    cnn, mlp, lcn = runs["cnn"], runs["mlp"], runs["lcn"]
    examples = [shift_image for shift_image in
                (shift_images(image[None], s, s)[0] for s in range(results.settings.max_shift + 1))]
    return {
        "parameters": parameter_bars(results.tables, out / "parameters.png"),
        "learning_curves": learning_curves({n: r.history for n, r in runs.items()},
                                           {n: r.train_size for n, r in runs.items()}, out / "learning_curves.png"),
        "sample_efficiency": sample_efficiency(results.sample, out / "sample_efficiency.png"),
        "translation": translation({n: results.shift_curve(n) for n in runs}, examples, out / "translation.png"),
        "cnn_filters": filters(cnn.initial_weight, first_layer(cnn.model).weight.data, out / "cnn_filters.png",
                               "CNN conv1"),
        "cnn_feature_maps": feature_map_figure(image, feature_maps(cnn.model.features, image),
                                               out / "cnn_feature_maps.png"),
        "mlp_weights": mlp_weights(mlp.initial_weight, first_layer(mlp.model).weight.data, out / "mlp_weights.png"),
        "lcn_filters": lcn_filters(first_layer(lcn.model).weight.data, LCN_POSITIONS, out / "lcn_filters.png"),
    }
