"""The figures of the `tinygrad-cnn compare` report, one PNG each (matplotlib, Agg backend).

Each function takes plain numbers or arrays and a path, so the report can be
redrawn from saved results and the figures read on their own. Numbers measured
over seeds come as (mean, half-width of the 95% interval) and are drawn with
error bars; a half-width of inf (one seed) draws none.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..training import SPLIT_STYLES, epoch_axis

COLORS = {"mlp": "tab:blue", "cnn": "tab:orange", "lcn": "tab:green", "cnn-gap": "tab:red",
          "mlp+shift": "tab:cyan", "cnn+shift": "tab:brown"}
LABELS = {"mlp": "MLP", "cnn": "CNN", "lcn": "LCN (local, unshared)", "cnn-gap": "CNN-GAP (global average pool)",
          "mlp+shift": "MLP, shift-augmented", "cnn+shift": "CNN, shift-augmented"}
STYLES = {"mlp+shift": "--", "cnn+shift": "--"}  # augmented runs dashed, in their own colour


def bars(half_widths: Sequence[float]) -> Any:
    """Error-bar lengths for matplotlib: the interval half-widths, None where there is no interval (one seed)."""
    finite = [h if np.isfinite(h) else 0.0 for h in half_widths]
    return finite if any(np.isfinite(h) for h in half_widths) else None


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, path: Path, tight: bool = True) -> Path:
    """Write a PNG with at most 256 colours (weight images are noisy: full colour makes them half a megabyte).

    `tight=False` for figures laid out by matplotlib's constrained layout (those with a colour bar).
    """
    from PIL import Image

    if tight:
        fig.tight_layout()
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    Image.fromarray(rgba[..., :3]).quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    pyplot().close(fig)
    return path


def tile(maps: np.ndarray, cols: int, pad: int = 1, symmetric: bool = False, shared: bool = False) -> np.ndarray:
    """Lay (K, H, W) maps out in a grid, each scaled on its own (to [0, 1], or to [-1, 1] if `symmetric`).

    With `shared` (and `symmetric`) one scale serves all maps: the largest |value| of any of them, so
    small maps stay pale instead of being blown up. Cells are separated by `pad` pixels of NaN,
    which matplotlib leaves blank.
    """
    k, h, w = maps.shape
    rows = -(-k // cols)
    grid = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), np.nan)
    common = max(np.abs(maps).max(), 1e-12) if maps.size else 1.0
    for i, m in enumerate(maps.astype(np.float64)):
        if symmetric:
            m = m / (common if shared else max(np.abs(m).max(), 1e-12))
        else:
            m = (m - m.min()) / max(m.max() - m.min(), 1e-12)
        r, c = divmod(i, cols)
        grid[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = m
    return grid


def learning_curves(histories: dict[str, list[dict[str, float]]], train_sizes: dict[str, int], path: Path) -> Path:
    """Accuracy and loss per epoch for each model: test solid, train (evaluated after the epoch) dotted.

    Colour is the model, line style the split; both legends sit below the plots, off the data.
    """
    from matplotlib.lines import Line2D

    plt = pyplot()
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4.6))
    epochs: list[int] = []
    for name, history in histories.items():
        epochs = [r["epoch"] for r in history] or epochs
        for split, key in (("test", "test"), ("train", "train_eval")):
            for ax, metric in ((ax_acc, "acc"), (ax_loss, "loss")):
                ax.plot([r["epoch"] for r in history], [r[f"{key}_{metric}"] for r in history], color=COLORS[name],
                        **SPLIT_STYLES[split])
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        epoch_axis(ax, epochs)
    models = [Line2D([], [], color=COLORS[n], marker="o", label=f"{LABELS[n]}, {train_sizes[n]:,} images")
              for n in histories]
    splits = [Line2D([], [], color="gray", label=f"{split} set", **SPLIT_STYLES[split]) for split in SPLIT_STYLES]
    ax_acc.legend(handles=models, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1, fontsize=8, frameon=False)
    ax_loss.legend(handles=splits, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8,
                   frameon=False)
    return save_png(fig, path)


def sample_efficiency_figure(results: dict[str, list[dict[str, float]]], path: Path) -> Path:
    """Test accuracy and train–test gap against the training-set size (log scale), mean over seeds ± 95%.

    Rows: {"n", "test_acc", "test_err", "gap", "gap_err"} (the gap in accuracy, not points).
    """
    plt = pyplot()
    fig, (ax_acc, ax_gap) = plt.subplots(1, 2, figsize=(11, 4))
    for name, rows in results.items():
        n = [r["n"] for r in rows]
        ax_acc.errorbar(n, [r["test_acc"] for r in rows], yerr=bars([r["test_err"] for r in rows]), marker="o",
                        color=COLORS[name], label=LABELS[name], capsize=3)
        ax_gap.errorbar(n, [100 * r["gap"] for r in rows], yerr=bars([100 * r["gap_err"] for r in rows]),
                        marker="o", color=COLORS[name], label=LABELS[name], capsize=3)
    ax_acc.set(xscale="log", xlabel="training images", ylabel="test accuracy", title="test accuracy")
    ax_gap.set(xscale="log", xlabel="training images", ylabel="train − test accuracy (points)",
               title="overfitting: train–test gap")
    for ax in (ax_acc, ax_gap):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return save_png(fig, path)


def translation(curves: dict[str, tuple[list[float], list[float]]], examples: Sequence[np.ndarray], path: Path,
                augment_shift: int | None = None) -> Path:
    """Test accuracy against shift (averaged over directions; mean, half-width), with one image at each shift.

    `augment_shift`: the largest shift the augmented runs were trained with, shaded on the axis.
    """
    plt = pyplot()
    fig = plt.figure(figsize=(12, 4.8))
    ax = fig.add_subplot(1, 2, 1)
    for j, (name, (accs, errs)) in enumerate(curves.items()):
        dodge = 0.05 * (j - (len(curves) - 1) / 2)  # side by side, so that the error bars do not hide each other
        ax.errorbar(np.arange(len(accs)) + dodge, accs, yerr=bars(errs), marker="o", color=COLORS[name],
                    label=LABELS[name], linestyle=STYLES.get(name, "-"), capsize=3)
    if augment_shift:
        ax.axvspan(-0.3, augment_shift, color="0.92", zorder=0,
                   label=f"shifts seen in augmented training (±{augment_shift} px)")
    ax.set(xlabel="shift (pixels, zero filled)", ylabel="test accuracy", title="accuracy on shifted test images")
    ax.set_xticks(range(len(next(iter(curves.values()))[0])))
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="center", bbox_to_anchor=(0.75, 0.3), fontsize=9, ncol=2, frameon=False)
    for i, image in enumerate(examples):
        sub = fig.add_subplot(2, 2 * len(examples), len(examples) + i + 1)
        sub.imshow(image, cmap="gray", vmin=0, vmax=255)
        sub.set_title(f"{i} px ↘", fontsize=8)
        sub.axis("off")
    return save_png(fig, path)


def _weight_scale(fig: Any, image: Any, axes: Any, label: str = "weight ÷ the filter's largest |weight|") -> None:
    """The colour scale of a grid of weights: blue negative, red positive."""
    bar = fig.colorbar(image, ax=axes, shrink=0.8, pad=0.02)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)


def filters(initial: np.ndarray, trained: np.ndarray, path: Path, title: str) -> Path:
    """First-layer 3×3 filters before and after training, blue negative, red positive, each filter on its own scale."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.2), layout="constrained")
    for ax, weights, when in ((axes[0], initial, "at initialisation"), (axes[1], trained, "after training")):
        image = ax.imshow(tile(weights.reshape(-1, *weights.shape[-2:]), 8, symmetric=True), cmap="RdBu_r",
                          vmin=-1, vmax=1)
        ax.set_title(f"{title} {when}", fontsize=10)
        ax.axis("off")
    _weight_scale(fig, image, axes)
    return save_png(fig, path, tight=False)


def feature_map_figure(image: np.ndarray, maps: Sequence[np.ndarray], path: Path) -> Path:
    """One test image and the CNN's activations after each conv block's ReLU (each map scaled on its own)."""
    plt = pyplot()
    widths = [1] + [2] * len(maps)
    fig, axes = plt.subplots(1, 1 + len(maps), figsize=(12, 4.5), gridspec_kw={"width_ratios": widths})
    axes[0].imshow(image, cmap="gray")
    axes[0].set_title("input", fontsize=10)
    for i, (ax, m) in enumerate(zip(axes[1:], maps), start=1):
        ax.imshow(tile(m, 8), cmap="viridis")
        ax.set_title(f"after conv{i} + ReLU: {m.shape[0]} maps of {m.shape[1]}×{m.shape[2]}", fontsize=10)
    for ax in axes:
        ax.axis("off")
    return save_png(fig, path)


def mlp_weights(initial: np.ndarray, trained: np.ndarray, path: Path, units: int = 32) -> Path:
    """The MLP's first-layer weights of `units` hidden units as 28×28 images: as trained, and the change.

    The weights are each scaled on their own (their pattern is what matters); the change is drawn on one
    scale for all units, so a unit that training barely moved (one whose ReLU was rarely active) stays
    pale instead of being blown up into a saturated blob of noise.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 3.6), layout="constrained")
    change = trained - initial
    panels = ((axes[0], trained, False, "weights after training (each unit on its own scale)"),
              (axes[1], change, True, "change during training (one scale: pale = barely moved)"))
    for ax, weights, shared, what in panels:
        grid = tile(weights[:units].reshape(-1, 28, 28), 8, symmetric=True, shared=shared)
        image = ax.imshow(grid, cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_title(f"MLP first layer, {units} units: {what}", fontsize=9)
        ax.axis("off")
        _weight_scale(fig, image, ax, "÷ the unit's largest |weight|" if not shared else
                      f"÷ the largest change, {np.abs(change[:units]).max():.2g}")
    return save_png(fig, path, tight=False)


def lcn_filters(weight: np.ndarray, positions: Sequence[tuple[int, int]], path: Path, channels: int = 8) -> Path:
    """The LCN's first-layer filters 0..channels-1 (rows) at a few output positions (columns)."""
    plt = pyplot()
    picked = np.stack([weight[i, j, :channels, 0] for i, j in positions], axis=1)  # (channels, positions, kh, kw)
    kh, kw = picked.shape[-2:]
    fig, ax = plt.subplots(figsize=(2.6 + 0.6 * len(positions), 1.2 + 0.9 * channels / 2), layout="constrained")
    image = ax.imshow(tile(picked.reshape(-1, kh, kw), len(positions), symmetric=True), cmap="RdBu_r", vmin=-1,
                      vmax=1)
    ax.set_title("LCN first layer: one filter per output position (no sharing)", fontsize=9)
    ax.set_xticks([c * (kw + 1) + (kw - 1) / 2 for c in range(len(positions))],
                  [f"({i}, {j})" for i, j in positions], fontsize=8)
    ax.set_yticks([r * (kh + 1) + (kh - 1) / 2 for r in range(channels)], [f"filter {r}" for r in range(channels)],
                  fontsize=8)
    ax.set_xlabel("output position (row, column)", fontsize=8)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    _weight_scale(fig, image, ax)
    return save_png(fig, path, tight=False)


def parameter_bars(tables: dict[str, list[Any]], path: Path) -> Path:
    """Parameters per layer, log scale, one group of bars per model: where the parameters are."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(14, 4.6))
    x, ticks, labels = 0, [], []
    for name, rows in tables.items():
        for row in (r for r in rows if r.params):
            ax.bar(x, row.params, color=COLORS[name])
            ax.text(x, row.params, f"{row.params:,}", ha="center", va="bottom", fontsize=7)
            ticks.append(x)
            # the module's path in the model, as its repr and state_dict name it, and what it maps
            unit = " ch" if len(row.in_shape) == 3 else ""  # channels of an image, or features of a vector
            labels.append(f"{name}\n{row.name}\n{row.kind.replace('LocallyConnected2d', 'LC2d')}\n"
                          f"{row.in_shape[0]} → {row.out_shape[0]}{unit}")
            x += 1
        x += 0.7
    ax.set_xticks(ticks, labels, fontsize=7)
    ax.set(yscale="log", ylabel="parameters", title="parameters per layer (log scale)")
    ax.grid(alpha=0.3, axis="y")
    return save_png(fig, path)
