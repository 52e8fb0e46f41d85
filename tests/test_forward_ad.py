"""Forward mode: every primitive's `jvp` rule, the dual-tensor API and the `func` transforms.

For each operation (which between them run every primitive) and Hypothesis-drawn
inputs, in float64:
- the JVP equals central differences, (f(x + εu) − f(x − εu)) / 2ε;
- the dot-product identity ⟨v, J u⟩ (forward) = ⟨Jᵀ v, u⟩ (reverse) holds;
- forward over reverse: the JVP of the gradient equals central differences of the
  gradient. That runs the gradient primitives' rules (ReluGradFn, Conv2dInputGradFn,
  MaxPoolGradFn, ...), which is how `hessian` and `hvp` work.
Where torch is installed, the transforms are compared with torch.func.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn
import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Function, Tensor, forward_ad, func
from tinygrad_cnn.testing import arrays, conv2d_cases, examples, pool2d_cases, shapes

EPS = 1e-6
SMALL = shapes(min_dims=1, max_dims=3, max_side=3)


def away(x, points=(0.0,), margin=0.05):
    x = np.array(x, dtype=np.float64)
    for p in points:
        x[np.abs(x - p) < margin] = p + 2 * margin
    return x


def distinct(shape, rng):
    """Values at least 0.1 apart, so no max, min or tie moves under a small step."""
    n = math.prod(shape)
    return ((rng.permutation(n) - n / 2) * 0.1 + rng.uniform(-0.02, 0.02)).reshape(shape)


def central(fn, xs, us):
    plus = fn(*[Tensor(x + EPS * u) for x, u in zip(xs, us)]).data
    minus = fn(*[Tensor(x - EPS * u) for x, u in zip(xs, us)]).data
    return (plus - minus) / (2 * EPS)


def check_jvp(fn, *xs, seed=0):
    """JVP against central differences, and ⟨v, J u⟩ = ⟨Jᵀ v, u⟩ against the reverse mode."""
    rng = np.random.default_rng(seed)
    xs = [np.asarray(x, dtype=np.float64) for x in xs]
    us = [rng.standard_normal(x.shape) for x in xs]
    out, ju = func.jvp(fn, [Tensor(x) for x in xs], [Tensor(u) for u in us])
    np.testing.assert_allclose(out.data, fn(*[Tensor(x) for x in xs]).data, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(ju.data, central(fn, xs, us), rtol=1e-5, atol=1e-6)
    v = rng.standard_normal(out.shape)
    _, vjp_fn = func.vjp(fn, *[Tensor(x) for x in xs])
    jtv = vjp_fn(Tensor(v))
    assert np.sum(v * ju.data) == pytest.approx(sum(np.sum(g.data * u) for g, u in zip(jtv, us)), rel=1e-9, abs=1e-10)


def check_forward_over_reverse(fn, *xs, seed=1):
    """The JVP of x ↦ ∇ₓ⟨w, fn(x)⟩ against central differences of that gradient."""
    rng = np.random.default_rng(seed)
    xs = [np.asarray(x, dtype=np.float64) for x in xs]
    w = rng.standard_normal(fn(*[Tensor(x) for x in xs]).shape)
    gradient = func.grad(lambda *ts: (fn(*ts) * w).sum(), argnums=tuple(range(len(xs))))

    def flat_gradient(*ts):
        return Tensor.cat([g.reshape(-1) for g in gradient(*ts)])

    check_jvp(flat_gradient, *xs, seed=seed)


# ============================================================================ every primitive
UNARY = {
    "neg": (lambda a: -a, -3, 3, ()), "exp": (lambda a: a.exp(), -3, 3, ()), "log": (lambda a: a.log(), 0.2, 3, ()),
    "log1p": (lambda a: a.log1p(), -0.5, 3, ()), "expm1": (lambda a: a.expm1(), -3, 3, ()),
    "sin": (lambda a: a.sin(), -3, 3, ()), "cos": (lambda a: a.cos(), -3, 3, ()), "erf": (lambda a: a.erf(), -2, 2, ()),
    "sqrt": (lambda a: a.sqrt(), 0.2, 3, ()), "relu": (lambda a: a.relu(), -3, 3, (0.0,)),
    "sigmoid": (lambda a: a.sigmoid(), -5, 5, ()), "tanh": (lambda a: a.tanh(), -3, 3, ()),
    "abs": (lambda a: a.abs(), -3, 3, (0.0,)), "clip": (lambda a: a.clip(-1.0, 1.5), -3, 3, (-1.0, 1.5)),
    "sign": (lambda a: a.sign() * a, -3, 3, (0.0,)),
    "cumsum": (lambda a: a.cumsum(-1), -3, 3, ()), "flip": (lambda a: a.flip(0), -3, 3, ()),
    "reshape": (lambda a: a.reshape(-1), -3, 3, ()), "permute": (lambda a: a.T, -3, 3, ()),
    "pad": (lambda a: a.pad(1, value=2.0), -3, 3, ()), "slice": (lambda a: a[..., ::2], -3, 3, ()),
    "gather": (lambda a: a[np.array([0, 0, -1])], -3, 3, ()), "sum": (lambda a: a.sum(0), -3, 3, ()),
    "expand": (lambda a: a.expand(2, *a.shape), -3, 3, ()), "prod": (lambda a: a.prod(), -2, 2, ()),
    "softmax": (lambda a: a.softmax(-1), -3, 3, ()), "logsumexp": (lambda a: a.logsumexp(-1), -3, 3, ()),
    "gelu": (F.gelu, -3, 3, ()), "softplus": (F.softplus, -3, 3, ()), "norm": (lambda a: a.norm(), 0.2, 3, ()),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data())
@examples(10)
def test_unary_jvps(name, data):
    fn, low, high, kinks = UNARY[name]
    x = away(data.draw(arrays(SMALL, min_value=low, max_value=high)), kinks)
    check_jvp(fn, x)
    check_forward_over_reverse(fn, x)


@pytest.mark.parametrize("name", ["max", "min", "max_all"])
@given(shape=SMALL, seed=st.integers(0, 1000))
@examples(10)
def test_max_and_min_jvps(name, shape, seed):
    fn = {"max": lambda a: a.max(-1), "min": lambda a: a.min(0), "max_all": lambda a: a.max()}[name]
    x = distinct(shape, np.random.default_rng(seed))
    check_jvp(fn, x)
    check_forward_over_reverse(fn, x)


BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b, "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b, "maximum": lambda a, b: a.maximum(b), "minimum": lambda a, b: a.minimum(b),
    "where": lambda a, b: Tensor.where(a.data > 0.5, a, b), "cat": lambda a, b: Tensor.cat([a, b], axis=0),
    "stack_mul": lambda a, b: Tensor.stack([a * b, a]),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(shape=SMALL, seed=st.integers(0, 1000))
@examples(10)
def test_binary_jvps(name, shape, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.5, 2.0, shape), rng.uniform(0.5, 2.0, shape)
    if name in ("maximum", "minimum"):
        b = a + rng.choice([-0.3, 0.3], shape)
    check_jvp(BINARY[name], a, b)
    check_forward_over_reverse(BINARY[name], a, b)


def test_cast_carries_the_tangent_across_dtypes():
    x = Tensor(np.array([1.5, -2.0], dtype=np.float32))
    out, ju = func.jvp(lambda a: a.astype(np.float64) * 3.0, [x], [Tensor(np.array([1.0, 0.5], dtype=np.float32))])
    assert out.dtype == ju.dtype == np.float64 and ju.tolist() == [3.0, 1.5]


def test_a_constant_exponent_of_a_negative_base_keeps_a_finite_tangent():
    x = np.array([-2.0, 3.0])
    _, ju = func.jvp(lambda a: a**2, [Tensor(x)], [Tensor(np.ones(2))])
    np.testing.assert_array_equal(ju.data, 2 * x)  # not nan: ln(-2) · 0 is never computed


@given(st.data())
@examples(15)
def test_matmul_and_linear_jvps(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    n, k, m = (data.draw(st.integers(1, 3)) for _ in range(3))
    a, b, bias = rng.standard_normal((2, n, k)), rng.standard_normal((k, m)), rng.standard_normal(m)
    check_jvp(lambda x, y: x @ y, a, b)
    check_forward_over_reverse(lambda x, y: (x @ y).tanh(), a, b)
    check_jvp(lambda x, w, c: F.linear(x, w, c), a, b.T.copy(), bias)
    check_forward_over_reverse(lambda x, w, c: F.linear(x, w, c).sigmoid(), a, b.T.copy(), bias)
    check_jvp(lambda x, y: tinygrad_cnn.einsum("bnk,km->bm", x, y), a, b)


@given(conv2d_cases(max_batch=2, max_groups=1, max_kernel=3, max_stride=2, max_padding=1, max_dilation=2,
                    max_extra=2), st.integers(0, 1000))
@examples(15)
def test_conv2d_jvps_every_geometry(case, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(case.input_shape), rng.standard_normal(case.weight_shape)
    kw = case.kwargs
    if case.bias:
        b = rng.standard_normal(case.bias_shape)
        check_jvp(lambda x_, w_, b_: x_.conv2d(w_, b_, **kw), x, w, b)
        check_forward_over_reverse(lambda x_, w_, b_: x_.conv2d(w_, b_, **kw).tanh(), x, w, b)
    else:
        check_jvp(lambda x_, w_: x_.conv2d(w_, **kw), x, w)
        check_forward_over_reverse(lambda x_, w_: x_.conv2d(w_, **kw).tanh(), x, w)
    from tinygrad_cnn.conv import conv2d_reference

    check_jvp(lambda x_, w_: conv2d_reference(x_, w_, **kw), x, w)


@given(pool2d_cases(max_batch=2, max_kernel=3, max_stride=2, max_padding=1), st.integers(0, 1000))
@examples(15)
def test_pooling_jvps_every_geometry(case, seed):
    x = distinct(case.input_shape, np.random.default_rng(seed))
    kw = case.kwargs
    for fn in (lambda t: t.max_pool2d(**kw), lambda t: t.avg_pool2d(**kw)):
        check_jvp(fn, x)
        check_forward_over_reverse(lambda t, fn=fn: fn(t) ** 2, x)
    from tinygrad_cnn.conv import max_pool2d_reference

    check_jvp(lambda t: max_pool2d_reference(t, **kw), x)


def test_unfold_fold_batch_norm_and_layers():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 5, 4))
    check_jvp(lambda t: t.unfold2d(3, padding=1, stride=2), x)
    check_jvp(lambda t: t.fold2d((5, 4), 2), rng.standard_normal((2, 12, 12)))
    check_forward_over_reverse(lambda t: t.unfold2d(2).sin(), x)
    bn = tinygrad_cnn.nn.BatchNorm2d(3)
    for p in bn.parameters():
        p.data = p.data.astype(np.float64) + rng.standard_normal(p.shape) * 0.1
    check_jvp(lambda t: bn(t), x)
    check_forward_over_reverse(lambda t: bn(t), x)
    g, b = rng.standard_normal(4), rng.standard_normal(4)
    check_jvp(lambda t, s: F.layer_norm(t @ s, (4,)), rng.standard_normal((2, 4)) + 1, rng.standard_normal((4, 4)))
    check_jvp(lambda t, s, c: F.binary_cross_entropy(t.sigmoid(), s.sigmoid(), reduction="sum") + c.sum(),
              rng.standard_normal(4), rng.standard_normal(4), g + b)
    # SoftmaxCrossEntropyFn: class targets (one ignored), weights and smoothing; per sample and reduced
    targets, weight = np.array([2, 0, -100]), np.array([0.5, 1.0, 2.0, 1.5])
    for reduction in ("none", "mean"):
        ce = lambda t, r=reduction: F.cross_entropy(t, targets, weight=weight, label_smoothing=0.2, reduction=r)  # noqa: E731
        check_jvp(ce, rng.standard_normal((3, 4)) * 2)
        check_forward_over_reverse(ce, rng.standard_normal((3, 4)) * 2)
    check_forward_over_reverse(lambda t: F.cross_entropy(t, np.array([[1, 0], [2, 2]])), rng.standard_normal((2, 3, 2)))


# ============================================================================ the dual-tensor API
def test_make_dual_and_unpack_dual():
    x = Tensor(np.array([1.0, 2.0]))
    with forward_ad.dual_level():
        d = forward_ad.make_dual(x, Tensor(np.array([1.0, 0.0])))
        y = (d * d).sum()
        primal, tangent = forward_ad.unpack_dual(y)
        assert forward_ad.unpack_dual(x).tangent is None
        assert isinstance(forward_ad.unpack_dual(y), forward_ad.UnpackedDualTensor)
    assert primal.item() == 5.0 and tangent.item() == 2.0  # still usable after the level closed
    assert forward_ad.unpack_dual(y).tangent is None


def test_dual_level_errors():
    x = Tensor(np.array([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="dual_level"):
        forward_ad.make_dual(x, x)
    with forward_ad.dual_level():
        with pytest.raises(ValueError, match="shape"):
            forward_ad.make_dual(x, np.ones(3))
        with pytest.raises(TypeError, match="float32"):
            forward_ad.make_dual(x, Tensor(np.ones(2, dtype=np.float32)))
        with pytest.raises(TypeError, match="floating"):
            forward_ad.make_dual(Tensor([1, 2]), Tensor([1, 2]))
        with pytest.raises(RuntimeError, match="nested"):
            with forward_ad.dual_level():
                pass


def test_a_custom_function_without_jvp_says_so_under_a_dual_level_only():
    class Double(Function):
        @staticmethod
        def forward(ctx, a):
            return 2 * a

        @staticmethod
        def backward(ctx, grad):
            return grad * 2

    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    Double.apply(x).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]
    with forward_ad.dual_level():
        d = forward_ad.make_dual(x, np.ones(2))
        with pytest.raises(RuntimeError, match="Double has no forward-mode rule"):
            Double.apply(d)
        assert Double.apply(x).tolist() == [2.0, 4.0]  # no tangent in: nothing to compute


def test_forward_mode_works_with_plain_backward_through_a_convolution():
    """Reverse over forward: a backward() under a dual level takes the Tensor-op path, so tangents flow."""
    rng = np.random.default_rng(0)
    x, w, u = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal((1, 2, 5, 5))
    xt = Tensor(x, requires_grad=True)
    with forward_ad.dual_level():
        d = forward_ad.make_dual(xt, u)
        y = (d.conv2d(Tensor(w), padding=1) ** 2).sum()
        (g,) = tinygrad_cnn.autograd.grad([y], [xt], create_graph=True)
        hu = forward_ad.unpack_dual(g).tangent
    plus = func.grad(lambda t: (t.conv2d(Tensor(w), padding=1) ** 2).sum())(Tensor(x + EPS * u)).data
    minus = func.grad(lambda t: (t.conv2d(Tensor(w), padding=1) ** 2).sum())(Tensor(x - EPS * u)).data
    np.testing.assert_allclose(hu.data, (plus - minus) / (2 * EPS), rtol=1e-5, atol=1e-6)


def test_no_dual_level_no_tangents_and_no_cost():
    from tinygrad_cnn import autograd

    assert not autograd.is_dual_level_open()
    y = Tensor(np.ones(3), requires_grad=True) * 2
    assert autograd.tangent_of(y) is None


# ============================================================================ the transforms
def f_vector(x, w):
    return (w @ x).tanh() * x[:2].exp()


def test_transforms_shapes_argnums_has_aux_and_composition():
    rng = np.random.default_rng(1)
    x, w = Tensor(rng.standard_normal(3)), Tensor(rng.standard_normal((2, 3)))
    jx, jw = func.jacrev(f_vector, argnums=(0, 1))(x, w)
    assert jx.shape == (2, 3) and jw.shape == (2, 2, 3)
    fx, fw = func.jacfwd(f_vector, argnums=(0, 1))(x, w)
    np.testing.assert_allclose(fx.data, jx.data, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fw.data, jw.data, rtol=1e-12, atol=1e-14)
    scalar = lambda a: (a**3).sum()  # noqa: E731
    np.testing.assert_allclose(func.grad(func.grad(lambda a: scalar(a)))(Tensor(np.array(2.0))).data, 12.0)
    np.testing.assert_allclose(func.hessian(scalar)(x).data, np.diag(6 * x.data), rtol=1e-12)
    g, aux = func.grad(lambda a: (scalar(a), "aux"), has_aux=True)(x)
    assert aux == "aux" and np.allclose(g.data, 3 * x.data**2)
    g, value = func.grad_and_value(scalar)(x)
    assert value.item() == pytest.approx(np.sum(x.data**3))
    _, ju, aux = func.jvp(lambda a: (a * 2, 7), (x,), (Tensor(np.ones(3)),), has_aux=True)
    assert aux == 7 and ju.tolist() == [2.0, 2.0, 2.0]
    with pytest.raises(RuntimeError, match="one-element"):
        func.grad(lambda a: a * 2)(x)
    with pytest.raises(ValueError, match="argnums"):
        func.jacrev(f_vector, argnums=2)(x, w)


def test_inputs_need_not_require_grad_and_functions_may_make_tensors():
    x = Tensor(np.array([1.0, 2.0]))
    jac = func.jacrev(lambda a: a * Tensor(np.array([3.0, 4.0])) + Tensor.ones(2, dtype=np.float64))(x)
    np.testing.assert_array_equal(jac.data, np.diag([3.0, 4.0]))
    assert not x.requires_grad


TORCH_FUNCTIONS = {
    "mlp": (lambda x, w: (w @ x).tanh().sum() + (x * x).sum(), lambda torch: lambda x, w: (w @ x).tanh().sum()
            + (x * x).sum(), [(3,), (4, 3)]),
    "conv": (lambda x, w: (x.conv2d(w, padding=1).sigmoid() ** 2).sum(),
             lambda torch: lambda x, w: (torch.nn.functional.conv2d(x, w, padding=1).sigmoid() ** 2).sum(),
             [(1, 2, 4, 4), (2, 2, 3, 3)]),
    "pool": (lambda x, w: (x * w).max_pool2d(2).exp().sum(),
             lambda torch: lambda x, w: torch.nn.functional.max_pool2d(x * w, 2).exp().sum(), [(1, 1, 4, 4)] * 2),
}


@pytest.mark.parametrize("name", sorted(TORCH_FUNCTIONS))
def test_transforms_against_torch_func(name, torch):
    ours, make_theirs, shapes_ = TORCH_FUNCTIONS[name]
    theirs = make_theirs(torch)
    rng = np.random.default_rng(7)
    arrays_ = [rng.standard_normal(s) for s in shapes_]
    if name == "pool":
        arrays_[0] = distinct(shapes_[0], rng)
    xs, ts = [Tensor(a) for a in arrays_], [torch.tensor(a) for a in arrays_]
    us = [rng.standard_normal(s) for s in shapes_]

    def same(a, b, rtol=1e-10):
        np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=rtol, atol=1e-12)

    out, ju = func.jvp(ours, xs, [Tensor(u) for u in us])
    tout, tju = torch.func.jvp(theirs, tuple(ts), tuple(torch.tensor(u) for u in us))
    same(out, tout), same(ju, tju)
    _, vjp_fn = func.vjp(ours, *xs)
    _, tvjp_fn = torch.func.vjp(theirs, *ts)
    for a, b in zip(vjp_fn(Tensor(np.array(1.5))), tvjp_fn(torch.tensor(1.5, dtype=torch.float64))):
        same(a, b)
    for transform in ("jacrev", "jacfwd", "hessian"):
        for a, b in zip(getattr(func, transform)(ours, argnums=(0, 1))(*xs),
                        getattr(torch.func, transform)(theirs, argnums=(0, 1))(*ts)):
            if transform == "hessian":
                for a2, b2 in zip(a, b):
                    same(a2, b2)
            else:
                same(a, b)
    value, hv = func.hvp(ours, tuple(xs), tuple(Tensor(u) for u in us))
    tvalue, thv = torch.autograd.functional.hvp(theirs, tuple(ts), tuple(torch.tensor(u) for u in us))
    same(value, tvalue)
    for a, b in zip(hv, thv):
        same(a, b)


def test_outermost_results_are_plain_tensors_like_torch_func():
    x = Tensor(np.array([1.0, 2.0]))
    assert not func.grad(lambda a: (a**3).sum())(x).requires_grad
    assert func.hessian(lambda a: (a**3).sum())(x).grad_fn is None
    assert func.jacrev(lambda a: a.sin())(x).grad_fn is None
    _, ju = func.jvp(lambda a: a.sin(), (x,), (Tensor(np.ones(2)),))
    assert ju.grad_fn is None
    leaf = Tensor(np.array([1.0, 2.0]), requires_grad=True)  # inside an outer computation: differentiable
    _, ju = func.jvp(lambda a: (a**3).sum(), (leaf,), (Tensor(np.ones(2)),))
    ju.backward()
    np.testing.assert_array_equal(leaf.grad.data, [6.0, 12.0])


def test_a_reused_id_never_gives_a_constant_a_tangent():
    with forward_ad.dual_level():
        x = forward_ad.make_dual(Tensor(np.ones(3)), Tensor(np.ones(3)))
        for _ in range(200):
            y = x * 2.0
            del y
            z = Tensor(np.full(3, 2.0)) ** 2.0
            assert forward_ad.unpack_dual(z).tangent is None


def test_plain_backward_through_batch_norm_inside_a_dual_level():
    bn = tinygrad_cnn.nn.BatchNorm1d(3)
    x = Tensor(np.random.default_rng(0).standard_normal((4, 3)), requires_grad=True)
    with forward_ad.dual_level():
        bn(x).sum().backward()
    assert x.grad.shape == (4, 3)
