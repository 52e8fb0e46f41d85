"""The report's pictures of *how* the networks compute: what a convolution is, and what each network looks at.

    convolution_picture   one 3×3 filter at two positions (same weights, two output pixels) beside a dense unit
    saliency_figure       |∂ true-class logit / ∂ pixel| of the MLP, the CNN and the CNN-GAP on the same images
    receptive_field_figure  the measured receptive field of one conv2 unit inside its theoretical box
    fgsm_figure           accuracy against the FGSM step ε, and one image attacked for the MLP and the CNN

Like figures.py, every function takes arrays and numbers and a path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .figures import COLORS, LABELS, STYLES, bars, pyplot, save_png


def correlate3(image: np.ndarray, kernel: np.ndarray, bias: float) -> np.ndarray:
    """What Conv2d(1, 1, 3, padding=1) computes: out[i, j] = b + Σ_{u,v} w[u, v] · x[i + u − 1, j + v − 1]."""
    padded = np.pad(image.astype(np.float64), 1)
    h, w = image.shape
    return bias + sum(kernel[u, v] * padded[u:u + h, v:v + w] for u in range(3) for v in range(3))


def _box(ax: Any, row: int, col: int, size: int, color: str, width: float = 2.0) -> None:
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((col - 0.5, row - 0.5), size, size, fill=False, edgecolor=color, linewidth=width))


def _arrow(fig: Any, a: Any, xy_a: tuple[float, float], b: Any, xy_b: tuple[float, float], color: str) -> None:
    from matplotlib.patches import ConnectionPatch

    arrow = ConnectionPatch(xy_a, xy_b, "data", "data", axesA=a, axesB=b, color=color, linewidth=1.5,
                            arrowstyle="-|>", mutation_scale=12)
    arrow.set_annotation_clip(False)  # its ends may lie just outside the axes (the constructor's flag is ignored)
    fig.add_artist(arrow)


def two_positions(out: np.ndarray) -> tuple[tuple[int, int], tuple[int, int]]:
    """The strongest response and, at least 10 px from it, the most negative one, both away from the border."""
    h, w = out.shape
    interior = np.full(out.shape, False)
    interior[1:-1, 1:-1] = True
    first = np.unravel_index(np.argmax(np.where(interior, out, -np.inf)), out.shape)
    far = interior & (np.add.outer((np.arange(h) - first[0]) ** 2, (np.arange(w) - first[1]) ** 2) >= 100)
    second = np.unravel_index(np.argmin(np.where(far, out, np.inf)), out.shape)
    return (int(first[0]), int(first[1])), (int(second[0]), int(second[1]))


def convolution_picture(image: np.ndarray, kernel: np.ndarray, bias: float, dense_weights: np.ndarray,
                        dense_bias: float, path: Path) -> Path:
    """Top: one 3×3 filter read at two positions, the same nine weights, two output pixels. Bottom: a dense unit.

    `image` is 28×28 in [0, 1]; `kernel` a trained conv1 filter; `dense_weights` one MLP unit's 784 weights.
    """
    plt = pyplot()
    out = correlate3(image, kernel, bias)
    h, w = image.shape
    first, second = two_positions(out)
    fig = plt.figure(figsize=(12, 6.8))
    grid = fig.add_gridspec(2, 3, width_ratios=[1, 0.8, 1], hspace=0.45, wspace=0.35, bottom=0.04, top=0.9)
    ax_in, ax_k, ax_out = (fig.add_subplot(grid[0, i]) for i in range(3))
    ax_in.imshow(image, cmap="gray", vmin=0, vmax=1)
    ax_in.set_title("input image, 28×28 pixels", fontsize=10)
    colors = ("tab:orange", "tab:green")
    for (r, c), color in zip((first, second), colors):
        _box(ax_in, r - 1, c - 1, 3, color)
        _box(ax_out, r, c, 1, color)
    limit = np.abs(kernel).max()
    ax_k.imshow(kernel, cmap="RdBu_r", vmin=-limit, vmax=limit)
    for (u, v), value in np.ndenumerate(kernel):
        ax_k.text(v, u, f"{value:+.2f}", ha="center", va="center", fontsize=9,
                  color="white" if abs(value) > 0.6 * limit else "black")
    ax_k.set_title(f"one 3×3 filter: 9 weights + bias {bias:+.2f},\nthe same at every position", fontsize=10)
    limit = np.abs(out).max()
    ax_out.imshow(out, cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax_out.set_title("output map, 28×28 (one pixel per position)", fontsize=10)
    for (r, c), color in zip((first, second), colors):
        _arrow(fig, ax_in, (c + 1.5, r), ax_k, (-0.6, 1), color)
        _arrow(fig, ax_k, (2.6, 1), ax_out, (c - 0.6, r), color)
        ax_out.annotate(f"{out[r, c]:+.2f}", (c, r), xytext=(c + 3, r - 3 if r > 5 else r + 4), color=color,
                        fontsize=10, fontweight="bold", arrowprops={"arrowstyle": "-", "color": color},
                        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
    from matplotlib.patches import ConnectionPatch

    ax_d_w, ax_d_in, ax_d_out = (fig.add_subplot(grid[1, i]) for i in range(3))
    weights = dense_weights.reshape(h, w)
    limit = np.abs(weights).max()
    ax_d_w.imshow(weights, cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax_d_w.set_title("a dense unit's 784 weights,\none per pixel, each used once", fontsize=10)
    ax_d_in.imshow(image, cmap="gray", vmin=0, vmax=1)
    ax_d_in.set_title("the same image: every pixel\nis wired to the unit", fontsize=10)
    unit = (0.12, 0.5)
    for r in range(1, h, 3):  # every third pixel drawn: all 784 lines would be a grey block
        for c in range(1, w, 3):  # the lines end at the unit's left edge, leaving its number readable
            fig.add_artist(ConnectionPatch((c, r), (unit[0] - 0.1, unit[1]), "data", "axes fraction", axesA=ax_d_in,
                                           axesB=ax_d_out, color="tab:blue", alpha=0.2, linewidth=0.6))
    value = float((weights * image).sum() + dense_bias)
    ax_d_out.axis("off")
    ax_d_out.add_patch(plt.Circle(unit, 0.1, color="tab:blue", transform=ax_d_out.transAxes, zorder=3))
    ax_d_out.text(*unit, f"{value:+.2f}", transform=ax_d_out.transAxes, ha="center", va="center", color="white",
                  fontsize=9, fontweight="bold", zorder=4)
    ax_d_out.text(0.27, 0.5, "one output number:\nthe sum over all 784 pixels\nof weight × pixel, + bias.\n"
                  "Another unit has 784 other\nweights: nothing is shared,\nnothing is local.",
                  transform=ax_d_out.transAxes, va="center", fontsize=9)
    for ax in (ax_in, ax_k, ax_out, ax_d_in, ax_d_w):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.text(0.01, 0.97, "convolution: local and shared", fontsize=12, fontweight="bold")
    fig.text(0.01, 0.49, "dense layer: global and unshared", fontsize=12, fontweight="bold")
    return save_png(fig, path, tight=False)


def saliency_figure(images: np.ndarray, labels: Sequence[int], maps: dict[str, np.ndarray],
                    predictions: dict[str, np.ndarray], classes: Sequence[str], path: Path) -> Path:
    """One column per image: the image, then each model's saliency map (each map on its own scale)."""
    plt = pyplot()
    rows = 1 + len(maps)
    fig, axes = plt.subplots(rows, len(images), figsize=(1.45 * len(images) + 1, 1.55 * rows + 0.3))
    for j, (image, label) in enumerate(zip(images, labels)):
        axes[0, j].imshow(image, cmap="gray")
        axes[0, j].set_title(classes[label], fontsize=8)
        for i, (name, m) in enumerate(maps.items(), start=1):
            axes[i, j].imshow(m[j], cmap="inferno", vmin=0, vmax=max(m[j].max(), 1e-12))
            if predictions[name][j] != label:
                axes[i, j].set_title(f"predicts {classes[predictions[name][j]]}", fontsize=7, color="tab:red")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("image", fontsize=9)
    for i, name in enumerate(maps, start=1):
        axes[i, 0].set_ylabel(LABELS[name].split(" (")[0], fontsize=9)
    fig.suptitle("saliency |∂ logit of the true class / ∂ pixel| (bright: the prediction is sensitive there)",
                 fontsize=10)
    return save_png(fig, path)


def receptive_field_figure(trained: dict[str, Any], initial: dict[str, Any], path: Path) -> Path:
    """The mean |∂ unit / ∂ pixel| of one conv2 unit, trained and at initialisation, with the theoretical box."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 5), layout="constrained")
    for ax, rf, when in ((axes[0], initial, "at initialisation"), (axes[1], trained, "after training")):
        image = ax.imshow(rf["map"] / max(rf["map"].max(), 1e-30), cmap="magma", vmin=0, vmax=1)
        rows, cols = rf["box"]
        _box(ax, rows.start, cols.start, rows.stop - rows.start, "tab:cyan", 2.0)
        th, tw = rf["theoretical"]
        ax.set_title(f"{when}: half the gradient in {rf['area50']} px, 90% in {rf['area90']} px\n"
                     f"(box: the theoretical receptive field, {th}×{tw} = {th * tw} px)", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    bar = fig.colorbar(image, ax=axes, shrink=0.8)
    bar.set_label("mean |∂ unit / ∂ pixel| over test images, ÷ its largest value", fontsize=8)
    channel, row, col = trained["unit"]
    fig.suptitle(f"CNN conv2, channel {channel}, at map position ({row}, {col}): which pixels move it", fontsize=10)
    return save_png(fig, path, tight=False)


def fgsm_figure(epsilons: Sequence[float], curves: dict[str, tuple[list[float], list[float]]],
                example: dict[str, Any], classes: Sequence[str], path: Path) -> Path:
    """Left: accuracy against ε for every run. Right: one image, its FGSM perturbation and result, MLP and CNN."""
    plt = pyplot()
    fig = plt.figure(figsize=(12.5, 4.8))
    grid = fig.add_gridspec(2, 5, width_ratios=[2.6, 0.15, 1, 1, 1], wspace=0.15, hspace=0.35)
    ax = fig.add_subplot(grid[:, 0])
    for j, (name, (accs, errs)) in enumerate(curves.items()):
        dodge = 0.0012 * (j - (len(curves) - 1) / 2)  # side by side, so that the error bars do not hide each other
        ax.errorbar(np.asarray(epsilons) + dodge, accs, yerr=bars(errs), marker="o", color=COLORS[name],
                    label=LABELS[name], linestyle=STYLES.get(name, "-"), capsize=3)
    ax.set(xlabel="ε (pixels in [0, 1]; each pixel moved by ±ε)", ylabel="test accuracy",
           title="accuracy under FGSM", xticks=list(epsilons), ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    eps = example["epsilon"]
    for i, (name, ex) in enumerate(example["models"].items()):
        panels = ((example["image"], "gray", 0, 1, f"clean: {classes[ex['clean_prediction']]}"),
                  (ex["perturbation"], "RdBu_r", -eps, eps, f"+ perturbation (±{eps:g})"),
                  (ex["adversarial"], "gray", 0, 1, f"= {classes[ex['adversarial_prediction']]}"))
        for j, (img, cmap, lo, hi, title) in enumerate(panels):
            sub = fig.add_subplot(grid[i, 2 + j])
            sub.imshow(img, cmap=cmap, vmin=lo, vmax=hi)
            wrong = j == 2 and ex["adversarial_prediction"] != example["label"]
            sub.set_title(title, fontsize=8, color="tab:red" if wrong else "black")
            sub.set_xticks([])
            sub.set_yticks([])
            if j == 0:
                sub.set_ylabel(LABELS[name], fontsize=9)
    return save_png(fig, path, tight=False)
