"""Convolution and pooling speed against PyTorch CPU (float32, same thread count, medians).

    python benchmarks/bench_conv.py

Cases (forward + backward, gradients of input, weight and bias), each with our input
and output gradient given as NCHW-contiguous arrays (what a user passes) and as
channels-last arrays (what our layers hand each other; docs/im2col.md):
  conv1: (64, 1, 28, 28) → 32 channels, 3×3, padding 1   (the CNN's first layer)
  conv2: (64, 32, 14, 14) → 64 channels, 3×3, padding 1  (where the work is)
  pool:  max_pool2d 2×2 on (64, 32, 28, 28)
For the convolutions it also prints the GFLOP/s reached (3 GEMM-sized passes:
forward, input gradient, weight gradient), to compare with the square-GEMM
ceiling printed first, and the share of the time the same three GEMMs take
on their own.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).parent))
from common import THREADS, median_ms, paired_ms, report, torch_or_none

from tinygrad_cnn import Tensor

CONVS = {
    "conv1 (64,1,28,28)->32, 3x3 pad 1": (64, 1, 28, 28, 32),
    "conv2 (64,32,14,14)->64, 3x3 pad 1": (64, 32, 14, 14, 64),
}


def _channels_last(a: np.ndarray) -> np.ndarray:
    """The same logical NCHW array, stored NHWC: the layout our layers hand each other."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def conv_case(shape: tuple, torch, channels_last: bool = False):
    n, c, h, w, c_out = shape
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((n, c, h, w)).astype(np.float32)
    w_np = (rng.standard_normal((c_out, c, 3, 3)) * 0.1).astype(np.float32)
    b_np = np.zeros(c_out, np.float32)
    ones = np.ones((n, c_out, h, w), np.float32)
    if channels_last:
        x_np, ones = _channels_last(x_np), _channels_last(ones)
    x, wt, b = (Tensor(a, requires_grad=True) for a in (x_np, w_np, b_np))

    def ours():
        x.grad = wt.grad = b.grad = None
        x.conv2d(wt, b, padding=1).backward(ones)

    theirs = None
    if torch:  # PyTorch gets contiguous NCHW, its native layout, in both cases
        tx, tw, tb = (torch.tensor(np.ascontiguousarray(a), requires_grad=True) for a in (x_np, w_np, b_np))
        t_ones = torch.ones(n, c_out, h, w)

        def theirs():
            tx.grad = tw.grad = tb.grad = None
            torch.nn.functional.conv2d(tx, tw, tb, padding=1).backward(t_ones)

    ours_ms, theirs_ms = paired_ms(ours, theirs)
    flops = 3 * 2 * n * h * w * c_out * c * 9
    gemm_ms = _gemm_ms(n * h * w, c * 9, c_out)
    extra = f"{flops / ours_ms / 1e6:6.1f} GFLOP/s, GEMMs {100 * gemm_ms / ours_ms:3.0f}% of the time"
    return ours_ms, theirs_ms, extra


def _gemm_ms(m: int, k: int, n: int) -> float:
    """Time of the three GEMMs alone (forward, weight gradient, input gradient), OpenBLAS on THREADS threads."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    g = rng.standard_normal((m, n)).astype(np.float32)
    with threadpool_limits(THREADS, user_api="blas"):  # our conv splits the batch; a reference GEMM lets BLAS split
        return median_ms(lambda: (a @ b, a.T @ g, g @ b.T))


def pool_case(torch, channels_last: bool):
    rng = np.random.default_rng(0)
    data = rng.standard_normal((64, 32, 28, 28)).astype(np.float32)
    if channels_last:  # the layout our conv2d produces
        data = np.ascontiguousarray(data.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    x = Tensor(data, requires_grad=True)
    ones = np.ones((64, 32, 14, 14), np.float32)

    def ours():
        x.grad = None
        x.max_pool2d(2).backward(ones)

    theirs = None
    if torch:
        tx = torch.tensor(np.ascontiguousarray(data), requires_grad=True)
        if channels_last:
            tx = tx.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
        t_ones = torch.ones(64, 32, 14, 14)

        def theirs():
            tx.grad = None
            torch.nn.functional.max_pool2d(tx, 2).backward(t_ones)

    return (*paired_ms(ours, theirs), "")


def _peak_gflops() -> float:
    """This CPU's float32 speed on a square 2048² GEMM, OpenBLAS on THREADS threads: the ceiling to compare with."""
    a = np.random.default_rng(2).standard_normal((2048, 2048)).astype(np.float32)
    with threadpool_limits(THREADS, user_api="blas"):
        return 2 * 2048**3 / median_ms(lambda: a @ a, repeats=5) / 1e6


def main() -> None:
    torch = torch_or_none()
    print(f"float32, {THREADS} threads, forward + backward, median of 5 alternating rounds of 7 runs per side")
    print(f"this CPU's float32 ceiling: a 2048x2048 GEMM runs at {_peak_gflops():.0f} GFLOP/s on {THREADS} threads")
    for name, shape in CONVS.items():
        report(name + " NCHW", *conv_case(shape, torch))
        report(name + " channels-last", *conv_case(shape, torch, channels_last=True))
    report("max_pool2d 2x2 (64,32,28,28) NCHW", *pool_case(torch, channels_last=False))
    report("max_pool2d 2x2 (64,32,28,28) channels-last", *pool_case(torch, channels_last=True))


if __name__ == "__main__":
    main()
