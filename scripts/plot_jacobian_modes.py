"""Measure jacfwd against jacrev as the shape of f: Rⁿ → Rᵐ changes, and plot the crossover.

    python scripts/plot_jacobian_modes.py            # under 10 s; writes docs/images/jacobian_modes.png

The function is f(x) = tanh(W x) with W of shape (m, n), and n·m = 4096 stays
fixed while n/m goes from 1/1024 to 1024 (n = 2 … 2048). So every point
computes a Jacobian with the same 4096 entries, from the same amount of forward
arithmetic (one (m, n) matrix-vector product); what changes is only how many
passes each mode needs to fill it:

- `func.jacrev` runs f once and then one backward pass per *output*: m passes
  (each a vᵀJ with v a one-hot row selector);
- `func.jacfwd` runs one forward pass per *input*, each carrying one one-hot
  tangent: n passes (each a J·u).

Each time is the median of REPEATS runs after a warm-up one, single-threaded
BLAS (the script sets OPENBLAS_NUM_THREADS=1 before numpy loads), float64. The
absolute times depend on the machine; the shape of the plot (jacrev ∝ m,
jacfwd ∝ n, crossing near n = m) does not, which is what the title says.
At the end it also times the two ways of computing a Hessian that
docs/autodiff.md compares: jacfwd(jacrev(f)) and jacrev(jacrev(f)).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: one thread, steadier medians on a shared machine
os.environ.setdefault("TINYGRAD_CNN_THREADS", "1")

import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tinygrad_cnn import Tensor, func  # noqa: E402  (after the sys.path line)

PRODUCT = 4096  # n · m, fixed
NS = [2 ** k for k in range(1, 12)]  # n = 2 … 2048, so m = 2048 … 2
REPEATS = 7
OUT = ROOT / "docs" / "images" / "jacobian_modes.png"


def seconds(fn, repeats: int = REPEATS) -> list[float]:
    """Wall times of fn() over `repeats` runs, after one unmeasured warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def measure() -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for n in NS:
        m = PRODUCT // n
        W = Tensor(rng.standard_normal((m, n)) / np.sqrt(n))

        def f(x: Tensor, W: Tensor = W) -> Tensor:
            return (W @ x).tanh()

        x = Tensor(rng.standard_normal(n))
        forward_jacobian, reverse_jacobian = func.jacfwd(f)(x), func.jacrev(f)(x)
        assert forward_jacobian.shape == reverse_jacobian.shape == (m, n)
        assert np.allclose(forward_jacobian.data, reverse_jacobian.data, rtol=1e-12, atol=1e-14)
        fwd = seconds(lambda f=f, x=x: func.jacfwd(f)(x))
        rev = seconds(lambda f=f, x=x: func.jacrev(f)(x))
        rows.append({"n": n, "m": m, "fwd": fwd, "rev": rev})
        print(f"  n = {n:5d}  m = {m:5d}  n/m = {n / m:9.4g}   jacfwd {statistics.median(fwd) * 1e3:8.2f} ms"
              f"   jacrev {statistics.median(rev) * 1e3:8.2f} ms", flush=True)
    return rows


def crossover(rows: list[dict]) -> float:
    """n/m where the two median curves cross, interpolated on log-log axes."""
    ratios = np.log2([r["n"] / r["m"] for r in rows])
    gap = np.log([statistics.median(r["fwd"]) / statistics.median(r["rev"]) for r in rows])  # < 0: forward wins
    for i in range(len(rows) - 1):
        if gap[i] <= 0 < gap[i + 1]:
            t = -gap[i] / (gap[i + 1] - gap[i])
            return float(2 ** (ratios[i] + t * (ratios[i + 1] - ratios[i])))
    return float("nan")


def plot(rows: list[dict], cross: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ratio = np.array([r["n"] / r["m"] for r in rows])
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for key, label, colour, marker in (("rev", "jacrev: m backward passes", "tab:blue", "o"),
                                       ("fwd", "jacfwd: n forward passes", "tab:orange", "s")):
        ms = np.array([[t * 1e3 for t in r[key]] for r in rows])
        ax.fill_between(ratio, ms.min(axis=1), ms.max(axis=1), color=colour, alpha=0.2, linewidth=0)
        ax.plot(ratio, np.median(ms, axis=1), marker=marker, color=colour, label=f"{label} (median, min–max)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(ratio)
    ax.set_xticklabels([f"{r['n']}\n{r['m']}" for r in rows], fontsize=8)
    ax.set_xlabel(f"n inputs (top row) and m outputs (bottom row), n · m = {PRODUCT}: n/m from "
                  f"1/{rows[0]['m'] // rows[0]['n']} to {rows[-1]['n'] // rows[-1]['m']}, log scale")
    ax.set_ylabel("time for the whole m × n Jacobian (ms, this machine)")
    ax.axvline(1.0, color="grey", linestyle=":", linewidth=1)
    ax.text(1.0, ax.get_ylim()[0], " n = m", va="bottom", ha="left", color="grey", fontsize=9)
    if np.isfinite(cross):
        ax.axvline(cross, color="black", linestyle="--", linewidth=1,
                   label=f"measured crossover: n/m ≈ {cross:.2g}")
    ax.text(0.02, 0.5, "few inputs, many outputs:\nforward mode wins", transform=ax.transAxes, fontsize=9,
            va="center")
    ax.text(0.98, 0.5, "many inputs, few outputs\n(a loss): reverse mode wins", transform=ax.transAxes,
            fontsize=9, ha="right", va="center")
    ax.set_title("Jacobian of f(x) = tanh(Wx), f: Rⁿ → Rᵐ:\n"
                 "reverse mode costs m passes, forward mode n passes, so they cross near n = m")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper center", fontsize=9)
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT)
    print(f"wrote {OUT.relative_to(ROOT)}")


def hessian_orders() -> None:
    """Forward over reverse against reverse over reverse, for the Hessian of a small least-squares loss."""
    rng = np.random.default_rng(1)
    X, y = Tensor(rng.standard_normal((32, 8))), Tensor(rng.standard_normal(32))
    w = Tensor(rng.standard_normal(8))

    def loss(w: Tensor) -> Tensor:
        return (((X @ w).tanh() - y) ** 2).mean()

    print("Hessian of an 8-parameter least-squares loss, median of 15 (ms):")
    for name, hessian in (("jacfwd(jacrev(f))", func.jacfwd(func.jacrev(loss))),
                          ("jacrev(jacrev(f))", func.jacrev(func.jacrev(loss)))):
        print(f"  {name}  {statistics.median(seconds(lambda h=hessian: h(w), 15)) * 1e3:6.2f} ms")


def main() -> None:
    print(f"jacfwd vs jacrev for f(x) = tanh(W x), n · m = {PRODUCT}, median of {REPEATS} (ms):")
    start = time.perf_counter()
    rows = measure()
    cross = crossover(rows)
    print(f"crossover at n/m ≈ {cross:.3g}; measured in {time.perf_counter() - start:.0f} s")
    plot(rows, cross)
    hessian_orders()


if __name__ == "__main__":
    main()
