"""Scalar expressions and their gradients, micrograd style, checked against hand-computed derivatives.

Why: before tensors, convolutions and training, the whole idea of reverse-mode
autodiff fits in a few scalar expressions. Each one below is built from
`Tensor` operations, `backward()` fills every input's `.grad`, and the script
compares those numbers with derivatives worked out by hand (and exits non-zero
if any of them disagree).

    python examples/autodiff_basics.py
"""

from __future__ import annotations

import math

import numpy as np

from tinygrad_cnn import Tensor


def scalar(value: float) -> Tensor:
    """A float64 leaf that wants a gradient (float64 so the checks can be tight)."""
    return Tensor(np.float64(value), requires_grad=True)


def check(name: str, got: float, expected: float) -> None:
    ok = math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12)
    print(f"  {name:<10} = {got + 0.0:12.6f}   by hand: {expected:12.6f}   {'ok' if ok else 'MISMATCH'}")
    if not ok:
        raise SystemExit(f"{name}: backward gave {got}, the hand-computed derivative is {expected}")


def product_plus() -> None:
    print("f = x*y + x   at x = 3, y = -2")
    x, y = scalar(3.0), scalar(-2.0)
    f = x * y + x  # x is used twice: its two gradient contributions add up
    f.backward()
    check("f", f.item(), -3.0)
    check("df/dx", x.grad.item(), -2.0 + 1.0)  # y + 1
    check("df/dy", y.grad.item(), 3.0)  # x


def neuron() -> None:
    print("o = tanh(w1*x1 + w2*x2 + b): one neuron")
    x1, x2, w1, w2, b = scalar(2.0), scalar(0.0), scalar(-3.0), scalar(1.0), scalar(6.8813735870195432)
    o = (w1 * x1 + w2 * x2 + b).tanh()
    o.backward()
    n = -3.0 * 2.0 + 1.0 * 0.0 + 6.8813735870195432
    do_dn = 1 - math.tanh(n) ** 2  # tanh' = 1 - tanh²
    check("o", o.item(), math.tanh(n))
    check("do/dw1", w1.grad.item(), do_dn * 2.0)  # ∂n/∂w1 = x1
    check("do/dx1", x1.grad.item(), do_dn * -3.0)  # ∂n/∂x1 = w1
    check("do/dw2", w2.grad.item(), do_dn * 0.0)
    check("do/db", b.grad.item(), do_dn)


def log_div_exp() -> None:
    print("L = log(x)/y + exp(x*y)   at x = 2, y = 0.5")
    x, y = scalar(2.0), scalar(0.5)
    L = x.log() / y + (x * y).exp()
    L.backward()
    check("L", L.item(), math.log(2.0) / 0.5 + math.exp(1.0))
    check("dL/dx", x.grad.item(), 1 / (2.0 * 0.5) + 0.5 * math.exp(1.0))  # 1/(xy) + y·e^(xy)
    check("dL/dy", y.grad.item(), -math.log(2.0) / 0.5**2 + 2.0 * math.exp(1.0))  # -log x / y² + x·e^(xy)


def relu_gate() -> None:
    print("r = relu(a*b + c)   at a = 2, b = -3, c = 10, then c = 5 (the ReLU closes)")
    for c_value, expected in ((10.0, (4.0, -3.0, 2.0, 1.0)), (5.0, (0.0, 0.0, 0.0, 0.0))):
        a, b, c = scalar(2.0), scalar(-3.0), scalar(c_value)
        r = (a * b + c).relu()
        r.backward()
        for name, got, want in zip(("r", "dr/da", "dr/db", "dr/dc"), (r, a.grad, b.grad, c.grad), expected):
            check(name, got.item(), want)


def micrograd_readme() -> None:
    """The expression from micrograd's README; its published values are g = 24.7041, 138.8338, 645.5773."""
    print("micrograd's README expression, a = -4, b = 2")
    a, b = scalar(-4.0), scalar(2.0)
    c = a + b
    d = a * b + b**3
    c = c + c + 1
    c = c + 1 + c + (-a)
    d = d + d * 2 + (b + a).relu()
    d = d + 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g = g + 10.0 / f
    g.backward()
    for name, got, want in (("g", g.item(), 24.7041), ("dg/da", a.grad.item(), 138.8338),
                            ("dg/db", b.grad.item(), 645.5773)):
        ok = abs(got - want) < 5e-5
        print(f"  {name:<10} = {got:12.4f}   micrograd: {want:12.4f}   {'ok' if ok else 'MISMATCH'}")
        if not ok:
            raise SystemExit(f"{name}: got {got}, micrograd's README says {want}")


def main() -> None:
    product_plus()
    neuron()
    log_div_exp()
    relu_gate()
    micrograd_readme()
    print("all gradients match")


if __name__ == "__main__":
    main()
