"""A convolution with hand-made filters: Sobel edge detectors applied to a Fashion-MNIST image with conv2d.

Why: before a network learns its filters, it helps to see what one filter does.
The Sobel x filter is a smoothed horizontal derivative: it answers where the
brightness changes from left to right (vertical edges); its transpose, Sobel y,
answers top to bottom. Stacked as two output channels, they form one
`conv2d` weight of shape (2, 1, 3, 3). The script checks one output pixel
against the sum it stands for, then saves the image, both maps and the
gradient magnitude side by side as a PNG.

    python examples/conv_by_hand.py [OUTPUT_DIR]      # default: a fresh temporary folder
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from tinygrad_cnn import Tensor
from tinygrad_cnn.data import FashionMNIST

SOBEL_X = np.array([[-1, 0, 1],
                    [-2, 0, 2],
                    [-1, 0, 1]], dtype=np.float32)  # fmt: skip


def main() -> None:
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="conv_by_hand_"))
    out_dir.mkdir(parents=True, exist_ok=True)

    test_set = FashionMNIST(train=False)
    index = int(np.flatnonzero(test_set.labels == test_set.classes.index("Sneaker"))[0])
    image, label = test_set[index]                      # (1, 28, 28) float32 in [0, 1]
    x = image.reshape(1, 1, 28, 28)                     # a batch of one: N, C, H, W

    weight = Tensor(np.stack([SOBEL_X, SOBEL_X.T])[:, None])   # (C_out=2, C_in=1, 3, 3)
    maps = x.conv2d(weight, padding=1)                  # (1, 2, 28, 28): same size, thanks to padding 1
    magnitude = (maps * maps).sum(axis=1).sqrt()[0]     # √(gx² + gy²) per pixel

    # conv2d is cross-correlation: output (i, j) = Σ window · kernel, the kernel not flipped.
    padded = np.pad(x.numpy()[0, 0], 1)
    i, j = 14, 10
    assert np.isclose(maps.numpy()[0, 0, i, j], (padded[i:i + 3, j:j + 3] * SOBEL_X).sum(), atol=1e-5)

    fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
    edge = float(np.abs(maps.numpy()).max())
    panels = [(x.numpy()[0, 0], f"input: {test_set.classes[label]}", "gray", 0.0, 1.0),
              (maps.numpy()[0, 0], "Sobel x (left → right change)", "RdBu_r", -edge, edge),
              (maps.numpy()[0, 1], "Sobel y (top → bottom change)", "RdBu_r", -edge, edge),
              (magnitude.numpy(), "gradient magnitude", "magma", 0.0, float(magnitude.numpy().max()))]
    for ax, (array, title, cmap, low, high) in zip(axes, panels):
        shown = ax.imshow(array, cmap=cmap, vmin=low, vmax=high)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle("conv2d with hand-made 3×3 filters, padding 1")
    fig.tight_layout()
    path = out_dir / "conv_by_hand.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
