"""Second derivatives from `create_graph=True`: a Hessian-vector product and Newton's method.

Why: every primitive's backward is written with Tensor operations, so a
backward pass run with `create_graph=True` is recorded like any forward pass and
can be differentiated again. This script shows the two classic uses:

1. The Hessian-vector product H·v of a small MLP's loss (written with Tensor ops
   only), in two backward passes, without ever forming H; checked against a
   central difference of gradients, (∇L(θ + εv) − ∇L(θ − εv)) / 2ε.
2. Newton's method on f(x) = eˣ − 2x, using f'' from a gradient of the gradient:
   xₖ₊₁ = xₖ − f'(xₖ) / f''(xₖ), which converges quadratically to x = ln 2.

    python examples/second_derivatives.py
"""

from __future__ import annotations

import math

import numpy as np

from tinygrad_cnn import Tensor
from tinygrad_cnn.autograd import grad

rng = np.random.default_rng(0)
X = Tensor(rng.standard_normal((16, 3)))  # float64 data: central differences need it
Y = Tensor(rng.standard_normal((16, 1)))


def mlp_loss(params: list[Tensor]) -> Tensor:
    """Mean squared error of a 3 → 8 → 1 tanh MLP."""
    w1, b1, w2, b2 = params
    hidden = (X @ w1 + b1).tanh()
    err = hidden @ w2 + b2 - Y
    return (err * err).mean()


def hessian_vector_product() -> None:
    shapes = [(3, 8), (8,), (8, 1), (1,)]
    params = [Tensor(rng.standard_normal(s) * 0.5, requires_grad=True) for s in shapes]
    vs = [Tensor(rng.standard_normal(s)) for s in shapes]

    # H·v = ∇(∇L · v): the first gradient keeps its graph, the second differentiates through it.
    grads = grad(mlp_loss(params), params, create_graph=True)
    g_dot_v = sum((g * v).sum() for g, v in zip(grads, vs))
    hv = grad(g_dot_v, params)

    eps = 1e-5

    def gradient_at(sign: float) -> list[np.ndarray]:
        moved = [Tensor(p.data + sign * eps * v.data, requires_grad=True) for p, v in zip(params, vs)]
        return [g.data for g in grad(mlp_loss(moved), moved)]

    plus, minus = gradient_at(+1), gradient_at(-1)
    print(f"Hessian-vector product of an MLP loss ({sum(p.numel() for p in params)} parameters):")
    for name, h, p, m in zip(("w1", "b1", "w2", "b2"), hv, plus, minus):
        numerical = (p - m) / (2 * eps)
        err = float(np.max(np.abs(h.data - numerical)))
        print(f"  (Hv)[{name}] shape {h.shape!s:8}  max |reverse-over-reverse − finite difference| = {err:.2e}")
        assert np.allclose(h.data, numerical, rtol=1e-5, atol=1e-7), name


def newton() -> None:
    print("Newton's method on f(x) = exp(x) - 2x (minimum at x = ln 2):")
    x = Tensor(np.float64(2.0), requires_grad=True)
    for k in range(8):
        f = x.exp() - 2 * x
        (df,) = grad(f, x, create_graph=True)  # f'(x) = eˣ − 2, with its own graph
        (d2f,) = grad(df, x)  # f''(x) = eˣ
        print(f"  step {k}: x = {x.item():.12f}  f = {f.item():.12f}  f' = {df.item():+.3e}  f'' = {d2f.item():.6f}")
        assert math.isclose(d2f.item(), math.exp(x.item()), rel_tol=1e-12)
        if abs(df.item()) < 1e-12:
            break
        x = Tensor(x.data - df.data / d2f.data, requires_grad=True)
    print(f"  converged to {x.item():.12f}; ln 2 = {math.log(2):.12f}")
    assert abs(x.item() - math.log(2)) < 1e-10


if __name__ == "__main__":
    hessian_vector_product()
    newton()
