"""Re-measure the decisions docs/im2col.md quotes: layouts, GEMMs, the input gradient, bias sums, pooling, malloc.

    python scripts/measure_im2col.py            # about a minute; prints medians in ms

Everything runs single-threaded (the script re-executes itself with
OPENBLAS_NUM_THREADS=1), on the shapes of our CNN's second layer: input
(64, 32, 14, 14), 64 filters of 3×3, padding 1. The malloc test runs in
subprocesses, once with one BLAS thread and once with the default. The load
average is printed at the start and the end: on a shared machine, compare
numbers only within one run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import as_strided

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tinygrad_cnn.backend.blas import matmul_into  # noqa: E402
from tinygrad_cnn.backend.conv import shifted_gemms_into  # noqa: E402
from tinygrad_cnn.backend.im2col import col2im, im2col  # noqa: E402
from tinygrad_cnn.backend.layout import Geometry  # noqa: E402
from tinygrad_cnn.bench import median_seconds  # noqa: E402  (after the sys.path line)

N, C, H, W, C_OUT, K = 64, 32, 14, 14, 64, 3
GEOMETRY = Geometry((K, K), (1, 1), (1, 1), (1, 1))


def median_ms(fn: Callable[[], object], repeats: int = 31, warmup: int = 3) -> float:
    return median_seconds(fn, repeats, warmup) * 1e3


def show(name: str, ms: float, extra: str = "") -> None:
    print(f"  {name:<58s} {ms:8.3f} ms  {extra}")


def channels_last(a: np.ndarray) -> np.ndarray:
    """The same logical NCHW array, stored NHWC (what our conv2d produces)."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


# ------------------------------------------------------------------ 1. im2col from NHWC vs NCHW memory
def im2col_nchw(x: np.ndarray, pad: int) -> np.ndarray:
    """The same (N, Ho, Wo, C, kh, kw)-ordered patch matrix, read from NCHW memory: runs of only kw floats."""
    n, c, h, w = x.shape
    src = np.zeros((n, c, h + 2 * pad, w + 2 * pad), x.dtype) if pad else x
    if pad:
        src[:, :, pad:pad + h, pad:pad + w] = x
    return patches_nchw(src)


def patches_nchw(src: np.ndarray) -> np.ndarray:
    n, c, hp, wp = src.shape
    ho, wo = hp - K + 1, wp - K + 1
    s_n, s_c, s_h, s_w = src.strides
    return np.ascontiguousarray(as_strided(src, (n, ho, wo, c, K, K), (s_n, s_h, s_w, s_c, s_h, s_w)))


def patches_unfold_order(src: np.ndarray) -> np.ndarray:
    """torch.nn.functional.unfold's order (N, C·kh·kw, Ho·Wo) from NCHW memory: runs of Wo floats."""
    n, c, hp, wp = src.shape
    ho, wo = hp - K + 1, wp - K + 1
    s_n, s_c, s_h, s_w = src.strides
    return np.ascontiguousarray(as_strided(src, (n, c, K, K, ho, wo), (s_n, s_c, s_h, s_w, s_h, s_w)))


def patches_nhwc(src: np.ndarray) -> np.ndarray:
    n, hp, wp, c = src.shape
    ho, wo = hp - K + 1, wp - K + 1
    s_n, s_h, s_w, s_c = src.strides
    return np.ascontiguousarray(as_strided(src, (n, ho, wo, K, K, c), (s_n, s_h, s_w, s_h, s_w, s_c)))


def measure_im2col(rng: np.random.Generator) -> None:
    print("1. im2col of (64, 32, 14, 14), 3×3, padding 1 → a (12544, 288) float32 patch matrix (14.5 MB)")
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    x_cl = channels_last(x)
    padded_nchw = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    padded_nhwc = np.ascontiguousarray(padded_nchw.transpose(0, 2, 3, 1))
    show("copy only (already padded), from NHWC memory", median_ms(lambda: patches_nhwc(padded_nhwc)))
    show("copy only (already padded), from NCHW memory", median_ms(lambda: patches_nchw(padded_nchw)))
    show("copy only, NCHW memory, unfold's (N, C·kh·kw, L) order", median_ms(lambda: patches_unfold_order(padded_nchw)))
    show("pad + copy: tinygrad_cnn.backend.im2col on channels-last x", median_ms(lambda: im2col(x_cl, GEOMETRY)))
    show("pad + copy: the same patch matrix from NCHW x", median_ms(lambda: im2col_nchw(x, 1)))
    ref = im2col(x_cl, GEOMETRY)
    assert np.array_equal(ref, im2col_nchw(x, 1).transpose(0, 1, 2, 4, 5, 3))


# ------------------------------------------------------------------ 2. the three GEMMs
def gflops(flop: float, ms: float) -> str:
    return f"{flop / ms / 1e6:6.1f} GFLOP/s"


def measure_gemms(rng: np.random.Generator) -> None:
    print("2. the convolution's three GEMMs (layer 2: M = 12544 rows, K = 288, 64 filters), single-threaded")
    m, k = N * H * W, C * K * K
    cols = rng.standard_normal((m, k)).astype(np.float32)
    w_rows = rng.standard_normal((C_OUT, k)).astype(np.float32)
    g = rng.standard_normal((m, C_OUT)).astype(np.float32)
    flop = 2 * m * k * C_OUT
    for name, fn in (("forward      cols @ Wᵀ   (12544×288)(288×64)", lambda: cols @ w_rows.T),
                     ("weight grad  gᵀ @ cols   (64×12544)(12544×288)", lambda: g.T @ cols),
                     ("input grad   g @ W       (12544×64)(64×288)", lambda: g @ w_rows)):
        ms = median_ms(fn)
        show(name, ms, gflops(flop, ms))
    cols_unfold = rng.standard_normal((N, k, H * W)).astype(np.float32)  # unfold's order, from NCHW memory
    ms = median_ms(lambda: w_rows @ cols_unfold)
    show("forward on unfold's order: 64 × (64×288)(288×196), batched", ms, gflops(flop, ms))
    m1 = N * 28 * 28
    cols1 = rng.standard_normal((m1, 9)).astype(np.float32)
    w1 = rng.standard_normal((32, 9)).astype(np.float32)
    ms = median_ms(lambda: cols1 @ w1.T)
    show("layer 1 forward cols @ Wᵀ (50176×9)(9×32), for contrast", ms, gflops(2 * m1 * 9 * 32, ms))
    a = rng.standard_normal((2000, 2000)).astype(np.float32)
    b = rng.standard_normal((2000, 2000)).astype(np.float32)
    ms = median_ms(lambda: a @ b, repeats=9)
    show("square GEMM 2000×2000 @ 2000×2000", ms, gflops(2 * 2000**3, ms))


# ------------------------------------------------------------------ 3. the input gradient, six ways
def measure_input_grad(rng: np.random.Generator) -> None:
    print("3. input gradient of layer 2 (a transposed convolution), six ways, single-threaded")
    w = (rng.standard_normal((C_OUT, C, K, K)) * 0.1).astype(np.float32)
    g = channels_last(rng.standard_normal((N, C_OUT, H, W)).astype(np.float32))
    g_rows = g.transpose(0, 2, 3, 1).reshape(-1, C_OUT)  # free: g is channels-last
    w_rows = w.transpose(0, 2, 3, 1).reshape(C_OUT, -1)  # (C_out, kh·kw·C), im2col's order
    w_offsets = [np.ascontiguousarray(w[:, :, i, j]) for i in range(K) for j in range(K)]  # kh·kw × (C_out, C)
    w_by_offset = np.ascontiguousarray(w.transpose(2, 3, 0, 1))  # [i, j]: (C_out, C)
    w_flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 2, 3, 0)).reshape(C, -1)  # (C, kh·kw·C_out)

    def gemm_then_col2im():
        patch_grads = (g_rows @ w_rows).reshape(N, H, W, K, K, C)
        return col2im(patch_grads, (N, C, H, W), GEOMETRY)

    def shifted_gemms():
        out = np.zeros((N, H + 2, W + 2, C), np.float32)
        for index, w_ij in enumerate(w_offsets):
            i, j = divmod(index, K)
            out[:, i:i + H, j:j + W] += (g_rows @ w_ij).reshape(N, H, W, C)
        return out[:, 1:1 + H, 1:1 + W].transpose(0, 3, 1, 2)

    def shifted_gemms_accumulating(gap: int):
        """The nine GEMMs, each adding (β = 1) into a block of the flat input shifted by i·row + j rows.

        gap 2: every image padded on its own, a 16×16 grid; gap 1: images and rows share their padding, 15×15.
        """
        hp, wp = H + gap, W + gap
        g_grid = np.zeros((N, hp, wp, C_OUT), np.float32)
        g_grid[:, :H, :W] = g.transpose(0, 2, 3, 1)
        flat_g, flat_x = g_grid.reshape(-1, C_OUT), np.zeros((wp + 1 + N * hp * wp, C), np.float32)
        used = (N - 1) * hp * wp + (H - 1) * wp + W  # up to g's last output
        for index, w_ij in enumerate(w_offsets):
            shift = (index // K) * wp + index % K
            matmul_into(flat_g[:used], w_ij, flat_x[shift:shift + used], accumulate=True)
        return flat_x[wp + 1:].reshape(N, hp, wp, C)[:, :H, :W].transpose(0, 3, 1, 2)

    def row_gemms():
        """One GEMM per kernel row (64 × 96), then each pixel sums its 3 taps: backend/conv.py's shifted_gemms_into."""
        out = np.empty((N, H, W, C), np.float32)
        shifted_gemms_into(out, g_rows, w_by_offset, GEOMETRY, (H, W))
        return out.transpose(0, 3, 1, 2)

    def conv_of_padded_grad():
        padded = np.zeros((N, H + 2, W + 2, C_OUT), np.float32)  # pad by kh − 1 − padding = 1
        padded[:, 1:1 + H, 1:1 + W] = g.transpose(0, 2, 3, 1)
        cols = patches_nhwc(padded).reshape(N * H * W, -1)
        return (cols @ w_flipped.T).reshape(N, H, W, C).transpose(0, 3, 1, 2)

    results = []
    for name, fn in (("one GEMM g @ W (12544×64)(64×288), then col2im", gemm_then_col2im),
                     ("kh·kw = 9 GEMMs (12544×64)(64×32), each added into a shifted slice", shifted_gemms),
                     ("pad g, im2col it, one GEMM with the flipped kernel", conv_of_padded_grad),
                     ("9 GEMMs adding (β = 1) into a flat 16×16-per-image grid", lambda: shifted_gemms_accumulating(2)),
                     ("the same on a 15×15 grid, padding shared", lambda: shifted_gemms_accumulating(1)),
                     ("3 GEMMs (64×96), one per kernel row, 15×15 grid, taps summed (Conv2dInputGrad)", row_gemms)):
        show(name, median_ms(fn))
        results.append(fn())
    assert all(np.allclose(results[0], r, atol=1e-4) for r in results[1:])


# ------------------------------------------------------------------ 4. bias gradient
def measure_bias_grad(rng: np.random.Generator) -> None:
    print("4. bias gradient: Σ of the output gradient over N, H, W (channels-last memory)")
    for c, hw in ((C_OUT, H), (32, 28)):
        g = channels_last(rng.standard_normal((N, c, hw, hw)).astype(np.float32))
        rows = g.transpose(0, 2, 3, 1).reshape(-1, c)
        ones = np.ones(rows.shape[0], np.float32)
        label = f"({N}, {c}, {hw}, {hw}) = rows ({rows.shape[0]}, {c}), {rows.nbytes / 1e6:.1f} MB"
        print(f"   {label}")
        show("  BLAS matrix-vector product ones @ rows", median_ms(lambda: ones @ rows))  # noqa: B023
        show("  numpy rows.sum(axis=0)", median_ms(lambda: rows.sum(axis=0)))  # noqa: B023
        show("  numpy g.sum(axis=(0, 2, 3)) on the NCHW view", median_ms(lambda: g.sum(axis=(0, 2, 3))))  # noqa: B023


# ------------------------------------------------------------------ 5. non-overlapping max pooling
def pool_views(x: np.ndarray) -> np.ndarray:
    views = [x[:, :, i::2, j::2] for i in range(2) for j in range(2)]
    out = np.maximum(views[0], views[1])
    np.maximum(out, views[2], out=out)
    np.maximum(out, views[3], out=out)
    return out


def pool_reshape(x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def measure_pooling(rng: np.random.Generator) -> None:
    print("5. max_pool2d 2×2 forward on (64, 32, 28, 28) after ReLU")
    x = np.maximum(rng.standard_normal((N, 32, 28, 28)).astype(np.float32), 0)
    for layout, data in (("channels-last", channels_last(x)), ("NCHW", x)):
        views_ms, reshape_ms = median_ms(lambda: pool_views(data)), median_ms(lambda: pool_reshape(data))  # noqa: B023
        show(f"{layout:<13s} max of 4 strided views", views_ms)
        show(f"{layout:<13s} reshape(n, c, 14, 2, 14, 2).max(axis=(3, 5))", reshape_ms,
             f"({reshape_ms / views_ms:.1f}× slower)")
        assert np.array_equal(pool_views(data), pool_reshape(data))


# ------------------------------------------------------------------ 6. malloc
MALLOC_CHILD = textwrap.dedent("""
    import statistics, sys, time
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    from tinygrad_cnn import backend
    backend.configure()
    rng = np.random.default_rng(0)
    a = rng.standard_normal((12544, 9)).astype(np.float32)
    b = rng.standard_normal((9, 32)).astype(np.float32)
    times = []
    for _ in range(40):
        start = time.perf_counter()
        live = [a @ b for _ in range(9)]   # nine 1.6 MB GEMM outputs alive together, as in a training step
        del live
        times.append(time.perf_counter() - start)
    print(backend.malloc_tuned(), statistics.median(times[3:]) * 1e3)
""")


def measure_malloc() -> None:
    print("6. nine live 1.6 MB GEMM outputs (12544×9)(9×32), allocated and freed per step (subprocesses)")
    for threads in ("1", str(os.cpu_count())):
        for keep in ("1", ""):
            # TINYGRAD_CNN_THREADS=1: the package leaves BLAS's thread count as OPENBLAS_NUM_THREADS says
            env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "TINYGRAD_CNN_KEEP_MALLOC": keep,
                   "TINYGRAD_CNN_THREADS": "1"}
            out = subprocess.run([sys.executable, "-c", MALLOC_CHILD, str(ROOT)], env=env, capture_output=True,
                                 text=True, check=True).stdout.split()
            setting = "tuned thresholds (backend/memory.py)" if out[0] == "True" else "default glibc malloc"
            show(f"{threads} BLAS thread(s), {setting}", float(out[1]))


def main() -> None:
    if os.environ.get("OPENBLAS_NUM_THREADS") != "1":
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    print(f"numpy {np.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start; "
          "medians of 31 runs (9 for the big GEMM)")
    rng = np.random.default_rng(0)
    measure_im2col(rng)
    measure_gemms(rng)
    measure_input_grad(rng)
    measure_bias_grad(rng)
    measure_pooling(rng)
    measure_malloc()
    print(f"load average {os.getloadavg()[0]:.2f} at the end (a shared machine: other jobs may run meanwhile)")


if __name__ == "__main__":
    main()
