"""The figures of the `tinygrad-cnn compare` report, one PNG each (matplotlib, Agg backend).

Each function takes plain numbers or arrays and a path, so the report can be
redrawn from saved results and the figures read on their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

COLORS = {"mlp": "tab:blue", "cnn": "tab:orange", "lcn": "tab:green"}
LABELS = {"mlp": "MLP", "cnn": "CNN", "lcn": "LCN (local, unshared)"}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    """Write a PNG with at most 256 colours (weight images are noisy: full colour makes them half a megabyte)."""
    from PIL import Image

    fig.tight_layout()
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    Image.fromarray(rgba[..., :3]).quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    _plt().close(fig)
    return path


def tile(maps: np.ndarray, cols: int, pad: int = 1, symmetric: bool = False) -> np.ndarray:
    """Lay (K, H, W) maps out in a grid, each scaled on its own (to [0, 1], or to [-1, 1] if `symmetric`).

    Cells are separated by `pad` pixels of NaN, which matplotlib leaves blank.
    """
    k, h, w = maps.shape
    rows = -(-k // cols)
    grid = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), np.nan)
    for i, m in enumerate(maps.astype(np.float64)):
        if symmetric:
            m = m / max(np.abs(m).max(), 1e-12)
        else:
            m = (m - m.min()) / max(m.max() - m.min(), 1e-12)
        r, c = divmod(i, cols)
        grid[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = m
    return grid


def learning_curves(histories: dict[str, list[dict[str, float]]], train_sizes: dict[str, int], path: Path) -> Path:
    """Accuracy and loss per epoch for each model: test solid, train (evaluated after the epoch) dashed."""
    plt = _plt()
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    for name, history in histories.items():
        epochs = [r["epoch"] for r in history]
        for split, style in (("test", "-"), ("train_eval", "--")):
            label = f"{LABELS[name]}, {train_sizes[name]:,} images, {'test' if split == 'test' else 'train'}"
            ax_acc.plot(epochs, [r[f"{split}_acc"] for r in history], style, marker="o", color=COLORS[name],
                        label=label)
            ax_loss.plot(epochs, [r[f"{split}_loss"] for r in history], style, marker="o", color=COLORS[name],
                         label=label)
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy (dashed: training set)")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss (dashed: training set)")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
    return _save(fig, path)


def sample_efficiency(results: dict[str, list[dict[str, float]]], path: Path) -> Path:
    """Test accuracy and train–test gap against the training-set size (log scale)."""
    plt = _plt()
    fig, (ax_acc, ax_gap) = plt.subplots(1, 2, figsize=(11, 4))
    for name, rows in results.items():
        n = [r["n"] for r in rows]
        ax_acc.plot(n, [r["test_acc"] for r in rows], marker="o", color=COLORS[name], label=LABELS[name])
        ax_gap.plot(n, [100 * (r["train_acc"] - r["test_acc"]) for r in rows], marker="o", color=COLORS[name],
                    label=LABELS[name])
    ax_acc.set(xscale="log", xlabel="training images", ylabel="test accuracy", title="test accuracy")
    ax_gap.set(xscale="log", xlabel="training images", ylabel="train − test accuracy (points)",
               title="overfitting: train–test gap")
    for ax in (ax_acc, ax_gap):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return _save(fig, path)


def translation(curves: dict[str, list[float]], examples: Sequence[np.ndarray], path: Path) -> Path:
    """Test accuracy against shift (averaged over directions), with one test image at each shift."""
    plt = _plt()
    fig = plt.figure(figsize=(11, 4))
    ax = fig.add_subplot(1, 2, 1)
    for name, accs in curves.items():
        ax.plot(range(len(accs)), accs, marker="o", color=COLORS[name], label=LABELS[name])
    ax.set(xlabel="shift (pixels, zero filled)", ylabel="test accuracy", title="accuracy on shifted test images")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    for i, image in enumerate(examples):
        sub = fig.add_subplot(2, 2 * len(examples), len(examples) + i + 1)
        sub.imshow(image, cmap="gray", vmin=0, vmax=255)
        sub.set_title(f"{i} px ↘", fontsize=8)
        sub.axis("off")
    return _save(fig, path)


def filters(initial: np.ndarray, trained: np.ndarray, path: Path, title: str) -> Path:
    """First-layer 3×3 filters before and after training, blue negative, red positive."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for ax, weights, when in ((axes[0], initial, "at initialisation"), (axes[1], trained, "after training")):
        ax.imshow(tile(weights.reshape(-1, *weights.shape[-2:]), 8, symmetric=True), cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_title(f"{title} {when}", fontsize=10)
        ax.axis("off")
    return _save(fig, path)


def feature_map_figure(image: np.ndarray, maps: Sequence[np.ndarray], path: Path) -> Path:
    """One test image and the CNN's activations after each conv block's ReLU (each map scaled on its own)."""
    plt = _plt()
    widths = [1] + [2] * len(maps)
    fig, axes = plt.subplots(1, 1 + len(maps), figsize=(12, 4.5), gridspec_kw={"width_ratios": widths})
    axes[0].imshow(image, cmap="gray")
    axes[0].set_title("input", fontsize=10)
    for i, (ax, m) in enumerate(zip(axes[1:], maps), start=1):
        ax.imshow(tile(m, 8), cmap="viridis")
        ax.set_title(f"after conv{i} + ReLU: {m.shape[0]} maps of {m.shape[1]}×{m.shape[2]}", fontsize=10)
    for ax in axes:
        ax.axis("off")
    return _save(fig, path)


def mlp_weights(initial: np.ndarray, trained: np.ndarray, path: Path, units: int = 32) -> Path:
    """The MLP's first-layer weights of `units` hidden units as 28×28 images: as trained, and the change."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
    for ax, weights, what in ((axes[0], trained, "weights after training"),
                              (axes[1], trained - initial, "change during training")):
        ax.imshow(tile(weights[:units].reshape(-1, 28, 28), 8, symmetric=True), cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_title(f"MLP first layer, {units} units: {what}", fontsize=10)
        ax.axis("off")
    return _save(fig, path)


def lcn_filters(weight: np.ndarray, positions: Sequence[tuple[int, int]], path: Path, channels: int = 8) -> Path:
    """The LCN's first-layer filters 0..channels-1 (rows) at a few output positions (columns)."""
    plt = _plt()
    picked = np.stack([weight[i, j, :channels, 0] for i, j in positions], axis=1)  # (channels, positions, kh, kw)
    fig, ax = plt.subplots(figsize=(3 + len(positions), 1 + 0.9 * channels / 2))
    ax.imshow(tile(picked.reshape(-1, *picked.shape[-2:]), len(positions), symmetric=True), cmap="RdBu_r",
              vmin=-1, vmax=1)
    ax.set_title("LCN filters: columns = positions " + ", ".join(f"({i},{j})" for i, j in positions), fontsize=9)
    ax.set_yticks([])
    ax.set_xticks([])
    return _save(fig, path)


def parameter_bars(tables: dict[str, list[Any]], path: Path) -> Path:
    """Parameters per layer, log scale, one group of bars per model: where the parameters are."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(11, 3.8))
    x, ticks, labels = 0, [], []
    for name, rows in tables.items():
        for row in (r for r in rows if r.params):
            ax.bar(x, row.params, color=COLORS[name])
            ax.text(x, row.params, f"{row.params:,}", ha="center", va="bottom", fontsize=7)
            ticks.append(x)
            labels.append(f"{name}\n{row.kind.replace('LocallyConnected2d', 'LC2d')}\n{row.name}")
            x += 1
        x += 0.7
    ax.set_xticks(ticks, labels, fontsize=7)
    ax.set(yscale="log", ylabel="parameters", title="parameters per layer (log scale)")
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)
