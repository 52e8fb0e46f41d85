"""Property tests of every differentiable Tensor operation (the primitives of ops.py and the composites on top).

Each test draws shapes with Hypothesis (0-d tensors, size-1 axes, broadcasting
pairs from `mutually_broadcastable_shapes`), checks the forward value against
numpy, the gradient against central differences (`gradcheck`, float64) and the
second derivative (`gradgradcheck`). Inputs are kept away from kinks (relu and
abs at 0, ties of max/min, clip's bounds) except in the tests that target ties.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_cnn import Tensor, autograd, gradcheck, gradgradcheck
from tinygrad_cnn.backend import elementwise
from tinygrad_cnn.testing import arrays, axes, broadcastable_shapes, matmul_shapes, shapes

SMALL = shapes(max_dims=3, max_side=3)
PAIRS = broadcastable_shapes(2, max_dims=3, max_side=3)
# which operands of a binary op require grad: both, only the left, only the right
REQUIRES = st.sampled_from([(True, True), (True, False), (False, True)])


def check(fn, *arrays_, requires=None, reference=None, grad2=True, **tolerances):
    """Forward against `reference` (numpy), then gradcheck and gradgradcheck of `fn` in float64."""
    requires = requires or (True,) * len(arrays_)
    inputs = [Tensor(np.array(a, dtype=np.float64), requires_grad=r) for a, r in zip(arrays_, requires)]
    out = fn(*inputs)
    assert out.dtype == np.float64
    if reference is not None:
        expected = np.asarray(reference(*arrays_))
        assert out.shape == expected.shape
        np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-12)
    if any(requires):
        assert out.requires_grad
        assert gradcheck(fn, inputs, **tolerances)
        if grad2:
            assert gradgradcheck(fn, inputs, **tolerances)
    return out


def away(x, point=0.0, margin=0.1):
    """Move the values within `margin` of `point` (a kink) to [point + margin, point + 3·margin)."""
    x = np.array(x, dtype=np.float64)
    near = np.abs(x - point) < margin
    x[near] += 2 * margin
    return x


@st.composite
def distinct(draw, shape_strategy=SMALL, spacing=0.3):
    """An array whose values are pairwise at least `spacing` apart: no ties for max/min/sort."""
    shape = draw(shape_strategy)
    n = math.prod(shape)
    perm = np.array(draw(st.permutations(range(n))), dtype=np.float64)
    return ((perm - n / 2) * spacing).reshape(shape)


def grid(shape, offset):
    """Values on the grid 0.5·k + offset, k in [-6, 6]: two grids with different offsets never tie."""
    return arrays(shape, dtype=np.int64, min_value=-6, max_value=6).map(lambda a: a * 0.5 + offset)


# ============================================================================ elementwise, one input
@given(arrays(SMALL))
def test_neg(x):
    check(lambda t: -t, x, reference=np.negative)


@given(arrays(SMALL))
def test_exp(x):
    check(lambda t: t.exp(), x, reference=np.exp)


@given(arrays(SMALL, min_value=0.2, max_value=3))
def test_log(x):
    check(lambda t: t.log(), x, reference=np.log)


@given(arrays(SMALL, min_value=0.2, max_value=3))
def test_sqrt(x):
    check(lambda t: t.sqrt(), x, reference=np.sqrt)


@given(arrays(SMALL))
def test_relu(x):
    x = away(x)
    check(lambda t: t.relu(), x, reference=lambda a: np.maximum(a, 0))


@given(arrays(SMALL, min_value=-20, max_value=20))
def test_sigmoid(x):
    check(lambda t: t.sigmoid(), x, reference=lambda a: 1 / (1 + np.exp(-a)))


@given(arrays(SMALL))
def test_tanh(x):
    check(lambda t: t.tanh(), x, reference=np.tanh)


@given(arrays(SMALL))
def test_abs(x):
    x = away(x)
    check(lambda t: t.abs(), x, reference=np.abs)


@given(arrays(SMALL, min_value=0.3, max_value=3), st.booleans())
def test_reciprocal(x, negative):
    x = -x if negative else x
    check(lambda t: t.reciprocal(), x, reference=lambda a: 1 / a)


@given(grid(SMALL, 0.25), st.sampled_from([(-1.0, 1.0), (None, 0.5), (-0.5, None), (0, 2)]), st.booleans())
def test_clip(x, bounds, alias):
    low, high = bounds  # the grid (…, -0.25, 0.25, 0.75, …) never touches a bound
    method = "clamp" if alias else "clip"
    check(lambda t: getattr(t, method)(low, high), x, reference=lambda a: np.clip(a, low, high))


@given(arrays(SMALL, min_value=-20, max_value=20))
def test_sigmoid_extreme_logits_do_not_overflow(x):
    with np.errstate(over="raise"):
        y = Tensor(x * 100).sigmoid()
    assert np.all((y.data >= 0) & (y.data <= 1))


# ============================================================================ binary, broadcasting
@given(PAIRS, REQUIRES, st.data())
def test_add(shapes_, requires, data):
    a, b = (data.draw(arrays(s)) for s in shapes_.input_shapes)
    check(lambda x, y: x + y, a, b, requires=requires, reference=np.add)


@given(PAIRS, REQUIRES, st.data())
def test_sub(shapes_, requires, data):
    a, b = (data.draw(arrays(s)) for s in shapes_.input_shapes)
    check(lambda x, y: x - y, a, b, requires=requires, reference=np.subtract)


@given(PAIRS, REQUIRES, st.data())
def test_mul(shapes_, requires, data):
    a, b = (data.draw(arrays(s)) for s in shapes_.input_shapes)
    check(lambda x, y: x * y, a, b, requires=requires, reference=np.multiply)


@given(PAIRS, REQUIRES, st.data())
def test_div(shapes_, requires, data):
    a, b = (data.draw(arrays(s)) for s in shapes_.input_shapes)
    b = away(b, 0, 0.4)
    check(lambda x, y: x / y, a, b, requires=requires, reference=np.divide)


@given(PAIRS, REQUIRES, st.data())
def test_pow_tensor_tensor(shapes_, requires, data):
    a = data.draw(arrays(shapes_.input_shapes[0], min_value=0.3, max_value=2.5))
    b = data.draw(arrays(shapes_.input_shapes[1], min_value=-2, max_value=2))
    check(lambda x, y: x**y, a, b, requires=requires, reference=np.power)


@given(arrays(SMALL, min_value=0.3, max_value=2.5), st.sampled_from([0.5, -1.0, 1.5, -0.5, 0.0, 1.0]))
def test_pow_scalar_exponent(x, exponent):
    check(lambda t: t**exponent, x, reference=lambda a: a**exponent)


@given(arrays(SMALL), st.sampled_from([2, 3, 2.0]))
def test_pow_integer_exponent_of_negative_base(x, exponent):
    check(lambda t: t**exponent, x, reference=lambda a: a**exponent)


def test_pow_at_zero_follows_pytorch():
    """d(a⁰)/da = 0 even at a = 0, and d(0ᵇ)/db = 0 for b ≥ 0: no nan from 0 · ∞ (PyTorch's convention)."""
    a = Tensor(np.array([0.0, 0.0, 2.0]), requires_grad=True)
    (a**0).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [0.0, 0.0, 0.0])
    a.grad = None
    b = Tensor(np.array([0.0, 1.5, 1.0]), requires_grad=True)
    (a**b).sum().backward()
    np.testing.assert_allclose(a.grad.data, [0.0, 0.0, 1.0])
    np.testing.assert_allclose(b.grad.data, [0.0, 0.0, 2 * np.log(2)])
    x = Tensor(np.array([0.0, 1.5]), requires_grad=True)
    assert gradgradcheck(lambda t: t**0 + t**2, [x])


@given(arrays(SMALL), st.sampled_from([2.0, 0.5, 3]))
def test_pow_scalar_base(x, base):
    check(lambda t: base**t, x, reference=lambda a: np.power(float(base), a))


@given(arrays(SMALL), st.floats(-3, 3), st.sampled_from(["add", "sub", "mul", "div"]))
def test_reflected_scalar_operators(x, scalar, op):
    x = away(x, 0, 0.4)
    fns = {
        "add": (lambda t: scalar + t, lambda a: scalar + a),
        "sub": (lambda t: scalar - t, lambda a: scalar - a),
        "mul": (lambda t: scalar * t, lambda a: scalar * a),
        "div": (lambda t: scalar / t, lambda a: scalar / a),
    }
    fn, reference = fns[op]
    check(fn, x, reference=reference)


@given(PAIRS, st.data(), st.sampled_from(["add", "sub", "mul", "div", "numpy_scalar"]))
def test_ndarray_on_the_left_keeps_the_graph(shapes_, data, op):
    a, b = (data.draw(arrays(s)) for s in shapes_.input_shapes)
    b = away(b, 0, 0.4)
    fns = {
        "add": (lambda t: a + t, np.add),
        "sub": (lambda t: a - t, np.subtract),
        "mul": (lambda t: a * t, np.multiply),
        "div": (lambda t: a / t, np.divide),
        "numpy_scalar": (lambda t: np.float64(2.0) * t * a, lambda x, y: 2.0 * y * x),
    }
    fn, reference = fns[op]
    out = check(fn, b, reference=lambda y: reference(a, y))
    assert isinstance(out, Tensor)


@given(PAIRS, REQUIRES, st.data(), st.booleans())
def test_maximum(shapes_, requires, data, flip):
    a = data.draw(grid(shapes_.input_shapes[0], 0.0))
    b = data.draw(grid(shapes_.input_shapes[1], 0.25))  # never equal to a grid point of a: no ties
    a, b = (b, a) if flip else (a, b)
    check(lambda x, y: x.maximum(y), a, b, requires=requires, reference=np.maximum)


@given(PAIRS, REQUIRES, st.data(), st.booleans())
def test_minimum(shapes_, requires, data, flip):
    a = data.draw(grid(shapes_.input_shapes[0], 0.0))
    b = data.draw(grid(shapes_.input_shapes[1], 0.25))
    a, b = (b, a) if flip else (a, b)
    check(lambda x, y: x.minimum(y), a, b, requires=requires, reference=np.minimum)


@given(broadcastable_shapes(3, max_dims=3, max_side=3), REQUIRES, st.data())
def test_where(shapes_, requires, data):
    cond_shape, a_shape, b_shape = shapes_.input_shapes
    cond = data.draw(arrays(cond_shape, dtype=bool))
    a, b = data.draw(arrays(a_shape)), data.draw(arrays(b_shape))
    check(lambda x, y: Tensor.where(Tensor(cond), x, y), a, b, requires=requires,
          reference=lambda x, y: np.where(cond, x, y))


@given(arrays(SMALL), st.floats(-3, 3))
def test_where_with_a_scalar_branch(x, scalar):
    cond = x > 0
    check(lambda t: Tensor.where(cond, t, scalar), x, reference=lambda a: np.where(cond, a, scalar))
    check(lambda t: Tensor.where(cond, scalar, t), x, reference=lambda a: np.where(cond, scalar, a))


# ============================================================================ matmul
@given(matmul_shapes(), REQUIRES, st.data())
def test_matmul(shapes_, requires, data):
    a, b = (data.draw(arrays(s)) for s in shapes_.input_shapes)
    out = check(lambda x, y: x @ y, a, b, requires=requires, reference=np.matmul)
    assert out.shape == shapes_.result_shape


@given(matmul_shapes(), st.data())
def test_matmul_method_and_rmatmul(shapes_, data):
    a, b = (data.draw(arrays(s)) for s in shapes_.input_shapes)
    check(lambda y: Tensor(a).matmul(y), b, reference=lambda y: a @ y)
    check(lambda y: a @ y, b, reference=lambda y: a @ y)  # ndarray @ Tensor: __rmatmul__


@given(st.integers(1, 5), st.data())
def test_dot(n, data):
    a, b = data.draw(arrays((n,))), data.draw(arrays((n,)))
    check(lambda x, y: x.dot(y), a, b, reference=np.dot)


@given(st.integers(1, 3), st.integers(20, 40), st.integers(20, 40), st.integers(1, 30))
def test_matmul_big_shapes_fast_mode(batch, m, k, n):
    rng = np.random.default_rng(m * k * n)
    a = Tensor(rng.standard_normal((batch, m, k)), requires_grad=True)
    b = Tensor(rng.standard_normal((k, n)), requires_grad=True)
    assert gradcheck(lambda x, y: (x @ y).tanh(), [a, b], fast_mode=True)
    assert gradgradcheck(lambda x, y: (x @ y).tanh(), [a, b], fast_mode=True)


# ============================================================================ reductions
@st.composite
def reduction_cases(draw, values=None):
    """(array, axis, keepdims, use_dim_keyword) with `values` drawing the array (default: any)."""
    x = draw(values if values is not None else arrays(SMALL))
    return x, draw(axes(x.ndim)), draw(st.booleans()), draw(st.booleans())


def reduce(method, axis, keepdims, use_dim, **kwargs):
    if use_dim:
        return lambda t: getattr(t, method)(dim=axis, keepdims=keepdims, **kwargs)
    return lambda t: getattr(t, method)(axis, keepdims, **kwargs)


def np_axis(axis, ndim):
    """numpy refuses axis 0 of a 0-d array, which we (and PyTorch) accept."""
    if ndim == 0:
        return None
    return tuple(axis) if isinstance(axis, (tuple, list)) else axis


@given(reduction_cases())
def test_sum(case):
    x, axis, keepdims, use_dim = case
    check(reduce("sum", axis, keepdims, use_dim), x,
          reference=lambda a: np.sum(a, axis=np_axis(axis, a.ndim), keepdims=keepdims))


@given(reduction_cases())
def test_mean(case):
    x, axis, keepdims, use_dim = case
    check(reduce("mean", axis, keepdims, use_dim), x,
          reference=lambda a: np.mean(a, axis=np_axis(axis, a.ndim), keepdims=keepdims))


@given(reduction_cases(distinct()))
def test_max(case):
    x, axis, keepdims, use_dim = case
    check(reduce("max", axis, keepdims, use_dim), x,
          reference=lambda a: np.max(a, axis=np_axis(axis, a.ndim), keepdims=keepdims))


@given(reduction_cases(distinct()))
def test_min(case):
    x, axis, keepdims, use_dim = case
    check(reduce("min", axis, keepdims, use_dim), x,
          reference=lambda a: np.min(a, axis=np_axis(axis, a.ndim), keepdims=keepdims))


def reduced_count(shape, axis):
    if axis is None:
        return math.prod(shape)
    axis = axis if isinstance(axis, (tuple, list)) else (axis,)
    return math.prod(shape[a] for a in axis) if shape else 1


@given(reduction_cases(distinct()), st.sampled_from([0, 1, 2]))
def test_var(case, correction):
    x, axis, keepdims, use_dim = case
    assume(reduced_count(x.shape, axis) > correction)
    check(reduce("var", axis, keepdims, use_dim, correction=correction), x,
          reference=lambda a: np.var(a, axis=np_axis(axis, a.ndim), keepdims=keepdims, ddof=correction))


@given(reduction_cases(distinct()), st.sampled_from([0, 1]))
def test_std(case, correction):
    x, axis, keepdims, use_dim = case
    assume(reduced_count(x.shape, axis) >= 2)  # one value has std 0, where sqrt has no derivative
    check(reduce("std", axis, keepdims, use_dim, correction=correction), x,
          reference=lambda a: np.std(a, axis=np_axis(axis, a.ndim), keepdims=keepdims, ddof=correction))


def test_var_and_std_default_to_bessels_correction():
    x = np.array([1.0, 2.0, 4.0, 7.0])
    assert Tensor(x).var().item() == pytest.approx(np.var(x, ddof=1))
    assert Tensor(x).std().item() == pytest.approx(np.std(x, ddof=1))


# ---------------------------------------------------------------------------- ties split the gradient
def test_max_ties_split_the_gradient_evenly():
    x = Tensor(np.array([1.0, 3.0, 3.0, 2.0, 3.0]), requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad.data, [0, 1 / 3, 1 / 3, 0, 1 / 3])


def test_min_ties_split_the_gradient_evenly_along_an_axis():
    x = Tensor(np.array([[1.0, 1.0, 2.0], [0.0, 5.0, 6.0]]), requires_grad=True)
    (x.min(axis=1) * Tensor(np.array([2.0, 10.0]))).sum().backward()
    np.testing.assert_allclose(x.grad.data, [[1, 1, 0], [10, 0, 0]])


def test_max_over_several_axes_with_ties_keepdims():
    x = Tensor(np.array([[[4.0, 4.0], [1.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]]), requires_grad=True)
    out = x.max(axis=(1, 2), keepdims=True)
    assert out.shape == (2, 1, 1)
    out.sum().backward()
    np.testing.assert_allclose(x.grad.data, [[[1 / 3, 1 / 3], [0, 1 / 3]], [[0.25, 0.25], [0.25, 0.25]]])


@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_elementwise_max_min_ties_split_in_half(op):
    a = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = Tensor(np.array([1.0, 0.0, 5.0]), requires_grad=True)
    getattr(a, op)(b).sum().backward()
    if op == "maximum":
        np.testing.assert_allclose(a.grad.data, [0.5, 1, 0])
        np.testing.assert_allclose(b.grad.data, [0.5, 0, 1])
    else:
        np.testing.assert_allclose(a.grad.data, [0.5, 0, 1])
        np.testing.assert_allclose(b.grad.data, [0.5, 1, 0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_backward_is_one_fused_primitive_split_over_threads_in_gs_layout(monkeypatch, dtype):
    """ReluGrad: g · [a > 0] in one pass (each thread masks its own block), in g's layout, and its own backward."""
    monkeypatch.setattr(elementwise, "MIN_ELEMENTWISE_SIZE", 1)  # split even this small activation
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 3, 5, 6)).astype(dtype)
    a[0, 0, 0, :3] = 0.0  # relu'(0) = 0
    g = np.ascontiguousarray(rng.standard_normal((4, 5, 6, 3)).astype(dtype)).transpose(0, 3, 1, 2)  # channels-last
    x, upstream = Tensor(a, requires_grad=True), Tensor(g, requires_grad=True)
    (dx,) = autograd.grad(x.relu(), x, upstream, create_graph=True)
    assert type(dx.grad_fn).__name__ == "ReluGradFn" and dx.dtype == dtype
    np.testing.assert_array_equal(dx.data, g * (a > 0))
    assert dx.data.strides == g.strides  # the layout of g, as g * mask would have had
    (d_upstream,) = autograd.grad((dx * dx).sum(), upstream)
    np.testing.assert_array_equal(d_upstream.data, 2 * g * (a > 0))


def test_the_input_hessian_of_a_relu_network_is_zeros_as_in_pytorch():
    """d(dy/dx)/dx reaches x only through relu's mask: zeros (PyTorch's answer), not "x was not used"."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    w1, w2 = Tensor(rng.standard_normal((3, 5))), Tensor(rng.standard_normal((5, 1)))
    (dx,) = autograd.grad(((x @ w1).relu() @ w2).sum(), x, create_graph=True)
    np.testing.assert_allclose(dx.data, ((x.data @ w1.data > 0) * w2.data.T) @ w1.data.T)
    (hessian_row,) = autograd.grad(dx[:, 0].sum(), x)
    np.testing.assert_array_equal(hessian_row.data, np.zeros((2, 3)))
    (direct,) = autograd.grad(autograd.grad(x.relu().sum(), x, create_graph=True)[0].sum(), x)
    np.testing.assert_array_equal(direct.data, np.zeros((2, 3)))


def test_relu_abs_and_clip_at_their_kinks_follow_pytorch():
    x = Tensor(np.array([0.0, -1.0, 1.0]), requires_grad=True)
    (x.relu() + x.abs() + x.clip(0.0, 1.0)).sum().backward()
    # relu'(0) = 0, abs'(0) = 0, clip passes the gradient on its bounds (inclusive)
    np.testing.assert_allclose(x.grad.data, [0 + 0 + 1, 0 - 1 + 0, 1 + 1 + 1])


# ============================================================================ softmax family
@given(arrays(shapes(min_dims=1, max_dims=3, max_side=4)), st.data(), st.booleans())
def test_softmax(x, data, use_dim):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))

    def reference(a):
        e = np.exp(a - a.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    check(lambda t: t.softmax(dim=axis) if use_dim else t.softmax(axis), x, reference=reference)


@given(arrays(shapes(min_dims=1, max_dims=3, max_side=4)), st.data())
def test_log_softmax(x, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))

    def reference(a):
        shifted = a - a.max(axis=axis, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

    check(lambda t: t.log_softmax(axis), x, reference=reference)


@given(reduction_cases(arrays(shapes(min_dims=1, max_dims=3, max_side=4)))
       .filter(lambda case: case[1] is not None))
def test_logsumexp(case):
    x, axis, keepdims, use_dim = case
    check(reduce("logsumexp", axis, keepdims, use_dim), x,
          reference=lambda a: np.log(np.sum(np.exp(a), axis=np_axis(axis, a.ndim), keepdims=keepdims)))


def test_softmax_family_is_stable_at_huge_logits():
    logits = Tensor(np.array([[1e4, 0.0, -1e4], [1e4, 1e4, 1e4]], dtype=np.float32), requires_grad=True)
    with np.errstate(over="raise", invalid="raise"):
        ls = logits.log_softmax()
        sm = logits.softmax()
        lse = logits.logsumexp(axis=1)
        (ls.sum() + sm.sum() + lse.sum()).backward()
    np.testing.assert_allclose(ls.data[0], [0.0, -1e4, -2e4], rtol=1e-6)
    np.testing.assert_allclose(sm.data[1], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(lse.data, [1e4, 1e4 + np.log(3)], rtol=1e-6)
    assert np.all(np.isfinite(logits.grad.data))


@given(arrays(shapes(min_dims=2, max_dims=2, min_side=2, max_side=30)))
def test_softmax_big_shapes_fast_mode(x):
    assert gradcheck(lambda t: t.softmax(0) * t, [Tensor(x, requires_grad=True)], fast_mode=True)


# ============================================================================ shape
@given(arrays(SMALL), st.data())
def test_reshape(x, data):
    target = list(reversed(x.shape))
    target.insert(data.draw(st.integers(0, len(target))), 1)
    target[data.draw(st.integers(0, len(target) - 1))] = -1
    as_tuple = data.draw(st.booleans())
    fn = (lambda t: t.reshape(tuple(target))) if as_tuple else (lambda t: t.reshape(*target))
    check(fn, x, reference=lambda a: a.reshape(target))


@given(arrays(shapes(max_dims=4, max_side=3)), st.data())
def test_flatten(x, data):
    if x.ndim == 0:
        check(lambda t: t.flatten(), x, reference=lambda a: a.reshape(1))
        return
    start = data.draw(st.integers(-x.ndim, x.ndim - 1))
    end = data.draw(st.integers(start % x.ndim - x.ndim, x.ndim - 1).filter(lambda e: e % x.ndim >= start % x.ndim))
    s, e = start % x.ndim, end % x.ndim
    target = (*x.shape[:s], math.prod(x.shape[s : e + 1]), *x.shape[e + 1 :])
    check(lambda t: t.flatten(start, end), x, reference=lambda a: a.reshape(target))


@given(arrays(shapes(max_dims=4, max_side=3)), st.data())
def test_permute(x, data):
    dims = data.draw(st.permutations(range(x.ndim)))
    dims = [d - x.ndim if data.draw(st.booleans()) else d for d in dims]
    check(lambda t: t.permute(*dims), x, reference=lambda a: a.transpose([d % x.ndim for d in dims]))


@given(arrays(shapes(min_dims=1, max_dims=4, max_side=3)), st.data())
def test_transpose_and_T(x, data):
    dim0 = data.draw(st.integers(-x.ndim, x.ndim - 1))
    dim1 = data.draw(st.integers(-x.ndim, x.ndim - 1))
    check(lambda t: t.transpose(dim0, dim1), x, reference=lambda a: np.swapaxes(a, dim0, dim1))
    check(lambda t: t.T, x, reference=lambda a: a.T)
    if x.ndim >= 2:
        check(lambda t: t.transpose(), x, reference=lambda a: np.swapaxes(a, -2, -1))


@given(PAIRS, st.data())
def test_expand(shapes_, data):
    shape, target = shapes_.input_shapes[0], shapes_.result_shape
    lead = len(target) - len(shape)
    # -1 keeps the input's size: allowed where the input already has the target size
    arg = [-1 if i >= lead and shape[i - lead] == s and data.draw(st.booleans()) else s for i, s in enumerate(target)]
    x = data.draw(arrays(shape))
    check(lambda t: t.expand(*arg), x, reference=lambda a: np.broadcast_to(a, target))


@given(arrays(shapes(max_dims=4, max_side=2)), st.data())
def test_squeeze(x, data):
    axis = data.draw(axes(x.ndim))
    if axis is None:
        target = tuple(s for s in x.shape if s != 1)
    else:
        chosen = {a % max(x.ndim, 1) for a in (axis if isinstance(axis, tuple) else (axis,))}
        target = tuple(s for i, s in enumerate(x.shape) if not (i in chosen and s == 1))
    check(lambda t: t.squeeze(axis), x, reference=lambda a: a.reshape(target))


@given(arrays(SMALL), st.data())
def test_unsqueeze(x, data):
    axis = data.draw(st.integers(-x.ndim - 1, x.ndim))
    check(lambda t: t.unsqueeze(axis), x, reference=lambda a: np.expand_dims(a, axis))


@given(arrays(SMALL), st.data(), st.floats(-2, 2))
def test_pad(x, data, value):
    pairs = [(data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in range(x.ndim)]
    check(lambda t: t.pad(pairs, value=value), x,
          reference=lambda a: np.pad(a, pairs, constant_values=value) if a.ndim else a)


# ============================================================================ indexing
@given(arrays(shapes(min_dims=0, max_dims=3, max_side=4)), st.data())
def test_basic_indexing(x, data):
    key = data.draw(hnp.basic_indices(x.shape, allow_newaxis=True, allow_ellipsis=True))
    check(lambda t: t[key], x, reference=lambda a: a[key])


@given(arrays(shapes(min_dims=1, max_dims=3, max_side=4)), st.data())
def test_integer_array_indexing_on_the_first_axis(x, data):
    n = x.shape[0]
    index = data.draw(hnp.arrays(np.int64, shapes(min_dims=0, max_dims=2, max_side=4), elements=st.integers(-n, n - 1)))
    as_tensor = data.draw(st.booleans())
    key = Tensor(index) if as_tensor else index
    check(lambda t: t[key], x, reference=lambda a: a[index])


@given(arrays(shapes(min_dims=1, max_dims=3, max_side=4)), st.data())
def test_integer_array_indexing_on_every_axis(x, data):
    key = data.draw(hnp.integer_array_indices(x.shape, result_shape=shapes(min_dims=1, max_dims=2, max_side=4)))
    check(lambda t: t[key], x, reference=lambda a: a[key])


@given(arrays(shapes(min_dims=2, max_dims=3, max_side=4)), st.data())
def test_mixed_integer_array_and_slice_indexing(x, data):
    index = data.draw(hnp.arrays(np.int64, (5,), elements=st.integers(0, x.shape[1] - 1)))
    check(lambda t: t[1:, index], x, reference=lambda a: a[1:, index])


def test_repeated_indices_accumulate():
    x = Tensor(np.arange(4.0), requires_grad=True)
    y = x[[0, 2, 0, 0, -1]]
    (y * Tensor(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))).sum().backward()
    np.testing.assert_allclose(x.grad.data, [1 + 3 + 4, 0, 2, 5])


def test_boolean_mask_indexing():
    x = Tensor(np.array([[1.0, -2.0], [-3.0, 4.0]]), requires_grad=True)
    y = x[x > 0]
    np.testing.assert_allclose(y.data, [1.0, 4.0])
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [[1, 0], [0, 1]])


# ============================================================================ joining and casting
@given(shapes(min_dims=1, max_dims=3, max_side=3), st.integers(1, 3), st.data())
def test_cat(shape, count, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    parts = []
    for _ in range(count):
        s = list(shape)
        s[axis] = data.draw(st.integers(1, 3))
        parts.append(data.draw(arrays(tuple(s))))
    requires = data.draw(st.lists(st.booleans(), min_size=count, max_size=count).filter(any))
    use_dim = data.draw(st.booleans())
    fn = (lambda *ts: Tensor.cat(ts, dim=axis)) if use_dim else (lambda *ts: Tensor.cat(ts, axis))
    check(fn, *parts, requires=requires, reference=lambda *ps: np.concatenate(ps, axis=axis))


@given(SMALL, st.integers(1, 3), st.data())
def test_stack(shape, count, data):
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    parts = [data.draw(arrays(shape)) for _ in range(count)]
    requires = data.draw(st.lists(st.booleans(), min_size=count, max_size=count).filter(any))
    check(lambda *ts: Tensor.stack(ts, axis=axis), *parts, requires=requires,
          reference=lambda *ps: np.stack(ps, axis=axis))


@given(arrays(SMALL))
def test_astype_round_trip(x):
    t = Tensor(x, requires_grad=True)
    y = t.astype(np.float32)
    assert y.dtype == np.float32 and y.requires_grad
    z = y.astype("float64")
    assert z.dtype == np.float64
    (z * Tensor(np.full(x.shape, 3.0))).sum().backward()
    assert t.grad.dtype == np.float64
    np.testing.assert_array_equal(t.grad.data, np.full(x.shape, 3.0))
    # values pass through float32 rounding: a coarse step keeps the difference quotient exact enough
    assert gradcheck(lambda a: a.astype(np.float32).astype(np.float64) * 2, [t], eps=1e-2, atol=1e-4)
    assert gradgradcheck(lambda a: a.astype(np.float32).astype(np.float64) ** 2, [t], eps=1e-2, atol=1e-3)


def test_astype_to_the_same_dtype_is_the_same_tensor():
    t = Tensor(np.ones(2), requires_grad=True)
    assert t.astype(np.float64) is t


# ============================================================================ composites built from many ops
@settings(max_examples=20)  # a dozen ops deep: the slowest check here, and every op above is tested alone
@given(arrays(shapes(min_dims=2, max_dims=2, max_side=4)), st.data())
def test_a_small_network(x, data):
    w = data.draw(arrays((x.shape[1], 3)))
    b = data.draw(arrays((3,)))
    check(lambda x_, w_, b_: ((x_ @ w_ + b_).tanh() @ w_.T).sigmoid().log_softmax(-1).mean(), x, w, b)
