"""A PyTorch-style 1-D CNN, ported by changing the imports: Conv1d, LayerNorm, GELU, ModuleList, OneCycleLR.

    python examples/port_1d_cnn.py [--steps 150]

The task is synthetic, so it runs anywhere in seconds: tell four waveforms
(sine, square, triangle, sawtooth) apart, each with a random frequency, phase,
amplitude and noise. In PyTorch the model below reads the same, line for line,
after `import torch; from torch import nn; import torch.nn.functional as F`.
"""

import argparse

import numpy as np

import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Tensor, nn, no_grad, optim

WAVES = ("sine", "square", "triangle", "sawtooth")


def make_batch(rng: np.random.Generator, n: int, length: int = 64) -> tuple[Tensor, Tensor]:
    """n noisy waveforms of `length` samples, shape (n, 1, length), and their classes."""
    labels = rng.integers(0, len(WAVES), n)
    t = np.arange(length) / length
    cycles = rng.uniform(2, 6, (n, 1)) * t + rng.uniform(0, 1, (n, 1))  # frequency and phase
    phase = cycles % 1.0
    waves = np.stack([np.sin(2 * np.pi * cycles), np.sign(np.sin(2 * np.pi * cycles)),
                      4 * np.abs(phase - 0.5) - 1, 2 * phase - 1])  # (4, n, length)
    x = waves[labels, np.arange(n)] * rng.uniform(0.5, 2, (n, 1)) + rng.normal(0, 0.3, (n, length))
    return Tensor(x[:, None, :].astype(np.float32)), Tensor(labels)


class Block(nn.Module):
    """Conv1d → LayerNorm over the channels → GELU, with a residual connection when the widths agree."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 5):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel_size, padding="same")
        self.norm = nn.LayerNorm(c_out)
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        y = self.norm(y.transpose(1, 2)).transpose(1, 2)  # LayerNorm normalises the last axis: put C there
        y = self.act(y)
        return y + x if y.shape == x.shape else y


class WaveNet(nn.Module):
    def __init__(self, width: int = 16, depth: int = 3, classes: int = len(WAVES)):
        super().__init__()
        self.blocks = nn.ModuleList([Block(1, width)] + [Block(width, width) for _ in range(depth - 1)])
        self.pool = nn.MaxPool1d(2)
        self.head = nn.Sequential(nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Dropout(0.1), nn.Linear(width, classes))

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = self.pool(block(x))
        return self.head(x)


def main() -> None:
    parser = argparse.ArgumentParser(description="Train a small 1-D CNN on synthetic waveforms.")
    parser.add_argument("--steps", type=int, default=150)
    args = parser.parse_args()

    Tensor.manual_seed(0)
    rng = np.random.default_rng(0)
    model = WaveNet()
    optimizer = optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
    schedule = optim.OneCycleLR(optimizer, max_lr=1e-2, total_steps=args.steps)
    print(model)
    print(f"{model.num_parameters():,} parameters")

    losses = []
    for step in range(1, args.steps + 1):
        x, y = make_batch(rng, 64)
        loss = F.cross_entropy(model(x), y, label_smoothing=0.05)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if step % 25 == 0 or step == 1:
            print(f"step {step:4d}  loss {np.mean(losses[-25:]):.3f}  lr {schedule.get_last_lr()[0]:.2e}")

    model.eval()
    x, y = make_batch(np.random.default_rng(1), 1000)
    with no_grad():
        accuracy = (model(x).argmax(1) == y).astype(np.float32).mean().item()
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    print(f"loss {first:.3f} → {last:.3f}; accuracy on 1,000 new waveforms: {accuracy:.1%}")


if __name__ == "__main__":
    main()
