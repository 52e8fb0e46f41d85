"""`tinygrad-cnn compare`: measure what a convolutional network does differently from a plain MLP.

Four architectures, trained with the same seeds, data order, optimizer and budget:

    mlp       every pixel wired to every hidden unit
    cnn       3×3 convolutions (local connectivity + shared weights) and 2×2 max pooling, then a dense head
    cnn-gap   the same conv blocks, then global average pooling and one linear layer (fully convolutional)
    lcn       the CNN's exact geometry with LocallyConnected2d: local connectivity, no sharing

and the MLP and the CNN a second time with shift augmentation (`mlp+shift`,
`cnn+shift`). The LCN splits "a CNN is better because it is local" from
"because it shares weights"; CNN-GAP and the augmented runs show where
translation invariance comes from. Every trained measurement is repeated over
seeds (default 3) and reported as a mean with a 95% interval; the report
(`report.md`, `report.html`, PNGs) and `results.json` hold every number.

The default run is sized to take at most 15 minutes on two cores (it prints an
estimate at the start, measured on this machine, and the total at the end);
`--quick` about a minute on a 1,000-image subset, enough for every artifact.
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
from ..data.datasets import to_float_images
from ..training import MAX_AUGMENT_SHIFT, TrainConfig
from .experiments import (
    AUGMENTED,
    MODEL_NAMES,
    Results,
    Run,
    SeedRun,
    Settings,
    architecture,
    equivariance_errors,
    feature_maps,
    run_name,
    shift_images,
    shifted_accuracy,
    train_main,
)
from .figures import (
    feature_map_figure,
    filters,
    lcn_filters,
    learning_curves,
    mlp_weights,
    parameter_bars,
    sample_efficiency_figure,
    translation,
)
from .figures_probes import convolution_picture, correlate3, fgsm_figure, receptive_field_figure, saliency_figure
from .looks import probe_pictures, probe_statistics
from .measure import first_layer, half_energy_area, layer_table, neighbour_similarity, ramp_fraction
from .plan import estimate_seconds, sample_efficiency
from .probes import FGSM_EPSILONS, fgsm_accuracy
from .report import write_report
from .results_json import write_results
from .summary import sample_table

__all__ = ["DEFAULT", "QUICK", "Settings", "run_compare", "run_experiments", "shift_images"]

BUILDERS = {name: models.MODELS[name] for name in MODEL_NAMES}

# Sizes chosen so that three seeds fit 15 minutes on a shared 2-core machine with room to spare (about 7 when it
# is quiet): the main runs use 12,000 of the 60,000 training images (the LCN, the slowest model, 6,000) and the
# test set 5,000 of the 10,000 images, the same for every seed; each epoch is evaluated on it.
DEFAULT = Settings(label="default", train_size=12_000, test_size=5_000, epochs=3, sizes=(500, 2_000),
                   min_images=12_000, train_eval_size=2_000, shift_test_size=1_000, lcn_train_size=6_000,
                   lcn_sizes=(500,), seeds=3, fgsm_size=1_000, probe_images=200)
QUICK = Settings(label="quick", train_size=1_000, test_size=1_000, epochs=2, sizes=(200,), min_images=1_000,
                 train_eval_size=500, shift_test_size=300, seeds=2, fgsm_size=300, probe_images=50)
EQUIVARIANCE_IMAGES = 200
LCN_POSITIONS = ((7, 7), (7, 20), (14, 14), (20, 7), (20, 20))


def run_compare(out: Path, quick: bool = False, seed: int = 0, data_root: str | None = None,
                seeds: int | None = None, augment: str = "shift") -> int:
    """The command: run the experiments, write the report into `out`; returns the exit status."""
    settings = QUICK if quick else DEFAULT
    settings = replace(settings, seeds=seeds or settings.seeds, augment=augment)
    try:
        results = run_experiments(settings, out, seed=seed, data_root=data_root)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    md, html = write_report(results, out)
    js = write_results(results, out / "results.json")
    wall = results.environment["wall_seconds"]
    print(f"compare: wrote {md}, {html} and {js.name}; total time {wall:.0f} s ({wall / 60:.1f} min, estimated "
          f"{results.environment['estimate_seconds'] / 60:.1f} min)")
    return 0


def _subset(dataset: Any, size: int | None, seed: int) -> Any:
    return dataset if size is None or size >= len(dataset) else dataset.balanced_subset(size, seed)


def _say(progress: bool, line: str) -> None:
    if progress:
        print(line, flush=True)


def _run_names(settings: Settings) -> list[str]:
    """The trained runs: every architecture, then the AUGMENTED ones with the augmentation (unless it is none)."""
    extra = [] if settings.augment == "none" else [run_name(a, settings.augment) for a in AUGMENTED]
    return [*MODEL_NAMES, *extra]


def run_experiments(settings: Settings, out: Path, seed: int = 0, data_root: str | None = None,
                    progress: bool = True) -> Results:
    """Train and measure over every seed, then draw; the figures go into `out`, the numbers into the Results."""
    start, load_start = time.perf_counter(), os.getloadavg()
    train_full, test_full = data.FashionMNIST(data_root, train=True), data.FashionMNIST(data_root, train=False)
    out.mkdir(parents=True, exist_ok=True)  # after the data loaded: a failed start leaves no empty folder
    # The test images are the same for every seed, so that differences between seeds are the training's alone.
    test_set = _subset(test_full, settings.test_size, seed)
    shift_set = _subset(test_set, settings.shift_test_size, seed + 2)
    fgsm_set = _subset(test_set, settings.fgsm_size, seed + 3)
    tables = {name: layer_table(build()) for name, build in BUILDERS.items()}
    names = _run_names(settings)
    estimate = estimate_seconds(settings, names, BUILDERS, len(train_full), len(test_set))
    seeds = list(range(seed, seed + settings.seeds))
    _say(progress, f"compare ({settings.label}): {_subset_size(train_full, settings.train_size):,} training and "
                   f"{len(test_set):,} test images from {_source(train_full)}; runs {', '.join(names)}; seeds "
                   f"{', '.join(map(str, seeds))}; estimated time {estimate / 60:.1f} min on this machine now")

    per_seed = []
    for s in seeds:
        per_seed.append(_one_seed(settings, names, s, train_full, test_set, shift_set, fgsm_set, progress))
        elapsed = time.perf_counter() - start
        _say(progress, f"[seed {s}] done; {elapsed / 60:.1f} min so far")

    results = Results(settings, seed, per_seed, tables, {}, {}, {})
    results.pictures = probe_pictures(results.first, BUILDERS, shift_set, fgsm_set, settings)
    results.environment = {
        "version": __version__, "data": _source(train_full), "train_size": _subset_size(train_full,
                                                                                        settings.train_size),
        "test_size": len(test_set), "train_available": len(train_full), "test_available": len(test_full),
        "lcn_train_size": per_seed[0].runs["lcn"].train_size,
        "train_eval_size": min(settings.train_eval_size, _subset_size(train_full, settings.train_size)),
        "shift_test_size": len(shift_set), "fgsm_size": len(fgsm_set),
        "equivariance_images": min(EQUIVARIANCE_IMAGES, len(shift_set)), "seeds": seeds,
        "cpu_count": os.cpu_count(), "machine": f"{platform.machine()}, {platform.system()} {platform.release()}",
        "python": platform.python_version(), "numpy": np.__version__, "threads": _threads(),
        "load_start": list(load_start), "load_end": list(os.getloadavg()), "estimate_seconds": estimate,
    }
    results.figures = draw_figures(results, shift_set.images, out)
    results.environment["wall_seconds"] = wall = time.perf_counter() - start
    results.environment["wall_minutes"], results.environment["estimate_minutes"] = wall / 60, estimate / 60
    results.environment["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return results


def _subset_size(dataset: Any, size: int | None) -> int:
    return len(dataset) if size is None else min(size, len(dataset))


def _one_seed(settings: Settings, names: list[str], seed: int, train_full: Any, test_set: Any, shift_set: Any,
              fgsm_set: Any, progress: bool) -> SeedRun:
    """Every trained measurement with one seed: main runs, sample efficiency, shifts, FGSM, probes."""
    train_set = _subset(train_full, settings.train_size, seed)
    config = TrainConfig(epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr,
                         optimizer=settings.optimizer, seed=seed)
    runs: dict[str, Run] = {}
    for name in names:
        arch = architecture(name)
        main_set = _subset(train_set, settings.lcn_train_size if arch == "lcn" else None, seed)
        augment = name.split("+")[1] if "+" in name else "none"
        runs[name] = run = train_main(arch, BUILDERS[arch], replace(config, model=name, augment=augment), main_set,
                                      test_set, _subset(main_set, settings.train_eval_size, seed + 1), progress)
        last = run.final
        _say(progress, f"[seed {seed}] {name} on {len(main_set):,} images: test accuracy {last['test_acc']:.4f}, "
                       f"train {last['train_eval_acc']:.4f} (gap "
                       f"{100 * (last['train_eval_acc'] - last['test_acc']):+.1f} points), "
                       f"{np.mean([r['train_seconds'] for r in run.history]):.1f} s per epoch")
    sample = sample_efficiency(settings, config, runs, train_set, test_set, seed, BUILDERS, progress)
    shifts = {name: shifted_accuracy(run.model, shift_set.images, shift_set.labels, settings.max_shift)
              for name, run in runs.items()}
    equivariance = {name: equivariance_errors(runs[name].model.features, shift_set.images[:EQUIVARIANCE_IMAGES],
                                              (1, 2, 4)) for name in ("cnn", "lcn")}
    fgsm = {name: fgsm_accuracy(run.model, fgsm_set.images, fgsm_set.labels) for name, run in runs.items()}
    _say(progress, f"[seed {seed}] accuracy at 0..{settings.max_shift} px: " + "; ".join(
        f"{name} " + " ".join(f"{a:.3f}" for a in np.mean(list(curves.values()), axis=0))
        for name, curves in shifts.items()))
    _say(progress, f"[seed {seed}] FGSM accuracy: " + "; ".join(
        f"{name} " + " ".join(f"{a:.3f}" for a in accs) for name, accs in fgsm.items()))
    seed_run = SeedRun(seed, runs, sample, shifts, equivariance, _learned(runs), fgsm)
    seed_run.probes = probe_statistics(seed_run, BUILDERS, shift_set, settings)
    return seed_run


def _threads() -> str:
    """How many threads the work was split over (backend.thread_count; it matters: see the cost section)."""
    set_ = [f"{var}={os.environ[var]}" for var in ("TINYGRAD_CNN_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
            if var in os.environ]
    return f"{thread_count()}" + (f" ({', '.join(set_)})" if set_ else "")


def _source(dataset: Any) -> str:
    return "the subset embedded in the package" if dataset.root is None else str(dataset.root)


def _learned(runs: dict[str, Run]) -> dict[str, float]:
    """Statistics of the first layers (see measure.py): do they hold edges, templates, shared filters?"""
    weights = {name: (runs[name].initial_weight, first_layer(runs[name].model).weight.data)
               for name in ("mlp", "cnn", "lcn")}
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


def _mean_history(r: Results, name: str) -> list[dict[str, float]]:
    """A run's per-epoch records averaged over seeds (for the learning curves)."""
    histories = [s.runs[name].history for s in r.seeds]
    return [{key: float(np.mean([h[e][key] for h in histories])) for key in histories[0][e]}
            for e in range(len(histories[0]))]


def _band(intervals: list[Any]) -> tuple[list[float], list[float]]:
    return [i.mean for i in intervals], [i.half_width for i in intervals]


def draw_figures(r: Results, shift_images_u8: np.ndarray, out: Path) -> dict[str, Path]:
    """Every figure of the report, as PNGs in `out`: numbers over seeds, pictures of the first seed's models."""
    runs, image, k = r.first.runs, shift_images_u8[0], r.settings.max_shift
    cnn, mlp, lcn = runs["cnn"], runs["mlp"], runs["lcn"]
    examples = [shift_images(image[None], j, j)[0] for j in range(k + 1)]
    sample = {name: [{"n": n, "test_acc": row["test"].mean, "test_err": row["test"].half_width,
                      "gap": row["gap"].mean, "gap_err": row["gap"].half_width} for n, row in rows.items()]
              for name, rows in sample_table(r).items()}
    pictures = r.pictures
    conv1 = first_layer(cnn.model).weight.data[:, 0]
    chosen = int(np.argmax(ramp_fraction(conv1)))  # the most edge-like filter: its responses are easy to read
    change = np.linalg.norm(first_layer(mlp.model).weight.data - mlp.initial_weight, axis=1)
    unit = int(np.argmax(change))  # the MLP unit that training shaped most: a visible template
    x = to_float_images(image[None])[0, 0]
    bias = float(first_layer(cnn.model).bias.data[chosen])
    pictures["convolution"] = {"filter": chosen, "unit": unit, "weights": conv1[chosen], "bias": bias,
                               "output_range": [float(correlate3(x, conv1[chosen], bias).min()),
                                                float(correlate3(x, conv1[chosen], bias).max())]}
    rf = pictures["receptive_field"]
    fgsm_curves = {name: _band([r.interval(lambda s, n=name, i=i: s.fgsm[n][i]) for i in range(len(FGSM_EPSILONS))])
                   for name in r.run_names}
    return {
        "convolution": convolution_picture(x, conv1[chosen], bias, first_layer(mlp.model).weight.data[unit],
                                           float(first_layer(mlp.model).bias.data[unit]), out / "convolution.png"),
        "parameters": parameter_bars(r.tables, out / "parameters.png"),
        "learning_curves": learning_curves({n: _mean_history(r, n) for n in r.run_names},
                                           {n: run.train_size for n, run in runs.items()}, out / "learning_curves.png"),
        "sample_efficiency": sample_efficiency_figure(sample, out / "sample_efficiency.png"),
        "translation": translation({n: _band(r.shift_curve(n)) for n in r.run_names}, examples, out / "translation.png",
                                   None if r.settings.augment == "none" else MAX_AUGMENT_SHIFT),
        "saliency": saliency_figure(pictures["saliency_images"], pictures["saliency_labels"], pictures["saliency"],
                                    pictures["saliency_predictions"], pictures["classes"], out / "saliency.png"),
        "receptive_field": receptive_field_figure(rf["trained"], rf["initial"], out / "receptive_field.png"),
        "fgsm": fgsm_figure(FGSM_EPSILONS, fgsm_curves, pictures["fgsm"], pictures["classes"], out / "fgsm.png"),
        "cnn_filters": filters(cnn.initial_weight, first_layer(cnn.model).weight.data, out / "cnn_filters.png",
                               "CNN conv1"),
        "cnn_feature_maps": feature_map_figure(image, feature_maps(cnn.model.features, image),
                                               out / "cnn_feature_maps.png"),
        "mlp_weights": mlp_weights(mlp.initial_weight, first_layer(mlp.model).weight.data, out / "mlp_weights.png"),
        "lcn_filters": lcn_filters(first_layer(lcn.model).weight.data, LCN_POSITIONS, out / "lcn_filters.png"),
    }
