"""Forward mode and reverse mode side by side: a Jacobian both ways, a Hessian, and Newton's method.

Why: a Jacobian of f: Rⁿ → Rᵐ can be filled column by column (forward mode,
one J·u per input direction: n passes, `func.jacfwd`) or row by row (reverse
mode, one vᵀJ per output: m passes, `func.jacrev`). Both give the same matrix;
they differ in cost. A Hessian is the Jacobian of the gradient, computed here as
`jacfwd(jacrev(f))`: forward mode over the reverse pass. With it, Newton's method
x ← x − H⁻¹ ∇f finds the minimum of the Rosenbrock function in a few steps.

    python examples/forward_vs_reverse.py

docs/autodiff.md, section 10, derives both modes; scripts/plot_jacobian_modes.py
measures their cost as n/m varies.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from tinygrad_cnn import Function, Tensor, func

np.set_printoptions(precision=4, suppress=True)


class CountPasses(Function):
    """The identity, counting how often reverse mode (backward) and forward mode (jvp) go through it."""

    counts: ClassVar[dict[str, int]] = {"backward": 0, "jvp": 0}

    def forward(ctx, a):
        return a

    def backward(ctx, grad):
        CountPasses.counts["backward"] += 1
        return grad

    def jvp(ctx, tangent):
        CountPasses.counts["jvp"] += 1
        return tangent


def f(x: Tensor) -> Tensor:
    """f: R³ → R²,  f(x) = (x₀ x₁ x₂,  sin x₀ + x₁²)."""
    x = CountPasses.apply(x)
    x0, x1, x2 = x[0], x[1], x[2]
    return Tensor.stack([x0 * x1 * x2, x0.sin() + x1 * x1])


def jacobian_both_ways() -> None:
    x = Tensor(np.array([1.0, 2.0, 3.0]))
    print("1. The Jacobian of f(x) = (x0·x1·x2, sin x0 + x1²) at x = (1, 2, 3), f: R³ → R²")
    CountPasses.counts.update(backward=0, jvp=0)
    J_fwd = func.jacfwd(f)(x)
    fwd_counts = dict(CountPasses.counts)
    CountPasses.counts.update(backward=0, jvp=0)
    J_rev = func.jacrev(f)(x)
    rev_counts = dict(CountPasses.counts)
    print(f"   forward mode, jacfwd: one J·u per input, u = e0, e1, e2  ({fwd_counts['jvp']} forward passes)")
    print("  ", str(J_fwd.numpy()).replace("\n", "\n   "))
    print(f"   reverse mode, jacrev: one vᵀJ per output, v = e0, e1      ({rev_counts['backward']} backward passes)")
    print("  ", str(J_rev.numpy()).replace("\n", "\n   "))
    x0, x1, x2 = x.numpy()
    by_hand = np.array([[x1 * x2, x0 * x2, x0 * x1], [np.cos(x0), 2 * x1, 0.0]])
    assert fwd_counts == {"backward": 0, "jvp": 3} and rev_counts == {"backward": 2, "jvp": 0}
    assert np.allclose(J_fwd.numpy(), J_rev.numpy(), rtol=1e-15, atol=0)
    assert np.allclose(J_fwd.numpy(), by_hand, rtol=1e-15, atol=0)
    gap = float(np.max(np.abs(J_fwd.numpy() - J_rev.numpy())))
    print(f"   they agree (max difference {gap:.1e}), and match the derivatives by hand.")
    print("   Columns cost n passes, rows m: forward mode is cheaper for few inputs, reverse for few outputs.\n")


def rosenbrock(x: Tensor) -> Tensor:
    """f(x, y) = (1 − x)² + 100 (y − x²)²: a curved valley, minimum 0 at (1, 1)."""
    a, b = x[0], x[1]
    return (1 - a) ** 2 + 100 * (b - a * a) ** 2


def rosenbrock_hessian_by_hand(x: np.ndarray) -> np.ndarray:
    a, b = x
    return np.array([[2 - 400 * (b - 3 * a * a), -400 * a], [-400 * a, 200.0]])


def hessian_and_newton() -> None:
    x = Tensor(np.array([-1.2, 1.0]))  # the classic starting point
    print("2. The Hessian of the Rosenbrock function f(x, y) = (1 − x)² + 100 (y − x²)² at (−1.2, 1)")
    H = func.hessian(rosenbrock)(x)  # jacfwd(jacrev(f)): n = 2 forward passes over the backward pass
    print("   hessian(f) = jacfwd(jacrev(f)): the tangents ride through the backward pass's Tensor ops")
    print("  ", str(H.numpy()).replace("\n", "\n   "))
    assert np.allclose(H.numpy(), rosenbrock_hessian_by_hand(x.numpy()), rtol=1e-13)
    v = Tensor(np.array([1.0, -1.0]))
    _, Hv = func.hvp(rosenbrock, x, v)  # one backward and one forward pass: H·v without forming H
    print(f"   hvp(f, x, v = (1, −1)) = {Hv.numpy()}  (= H @ v, without forming H)")
    assert np.allclose(Hv.numpy(), H.numpy() @ v.numpy(), rtol=1e-13)
    print()

    print("3. Newton's method, x_new = x − H⁻¹ ∇f (np.linalg.solve on the Hessian's values)")
    for step in range(12):
        g = func.grad(rosenbrock)(x).numpy()
        H = func.hessian(rosenbrock)(x).numpy()
        dx = np.linalg.solve(H, g)
        value = rosenbrock(x).item()
        print(f"   step {step}: x = ({x.numpy()[0]:+.10f}, {x.numpy()[1]:+.10f})  f = {value:.3e}"
              f"  |∇f| = {np.linalg.norm(g):.3e}")
        if step == 0:
            print(f"           ∇f = {g},  H⁻¹∇f = {dx}: the first step, x ← x − H⁻¹∇f")
        if np.linalg.norm(g) < 1e-10:
            break
        x = Tensor(x.numpy() - dx)
    assert np.allclose(x.numpy(), [1.0, 1.0], atol=1e-10), x
    print(f"   converged to the minimum (1, 1) in {step} Newton steps. Not monotone: at step 2 f jumps up, where the")
    print("   quadratic model is far from f; near the minimum the error squares at each step (quadratic convergence).")
    curvatures = np.linalg.eigvalsh(func.hessian(rosenbrock)(x).numpy())
    print(f"   At (1, 1) the Hessian's eigenvalues are {curvatures[0]:.3f} and {curvatures[1]:.1f}: the valley is"
          f" {curvatures[1] / curvatures[0]:.0f} times")
    print("   more curved across than along, which makes gradient descent crawl; H⁻¹ rescales exactly that away.")
    assert curvatures[1] / curvatures[0] > 2000


if __name__ == "__main__":
    jacobian_both_ways()
    hessian_and_newton()
