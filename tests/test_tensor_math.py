"""The tensor math added for PyTorch ports: unary ops, operator methods, scans, products, movement, norms, einsum.

Each differentiable op gets gradcheck and gradgradcheck in float64 over Hypothesis
shapes (0-d, size-1 axes), and a comparison of values and first and second
derivatives with PyTorch where it is installed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tinygrad_cnn
from tinygrad_cnn import Tensor, autograd, gradcheck, gradgradcheck
from tinygrad_cnn.testing import arrays, examples, shapes

SMALL = shapes(max_dims=3, max_side=3)
NONEMPTY = shapes(min_dims=1, max_dims=3, max_side=3)


def checked(fn, *arrays_, grad2=True):
    """fn on float64 leaves that require grad: gradcheck, gradgradcheck; returns the output."""
    inputs = [Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays_]
    out = fn(*inputs)
    assert gradcheck(fn, inputs)
    if grad2:
        assert gradgradcheck(fn, inputs)
    return out


def against_torch(torch, ours, theirs, *arrays_, second=True, rtol=1e-12):
    """Values, gradients and (optionally) second derivatives of ours against theirs (torch), float64."""
    xs = [Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays_]
    ts = [torch.tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays_]
    y, yt = ours(*xs), theirs(*ts)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=rtol, atol=1e-14)
    weights = np.random.default_rng(0).standard_normal(y.shape)
    gs = autograd.grad([(y * weights).sum()], xs, create_graph=True)
    gts = torch.autograd.grad((yt * torch.tensor(weights)).sum(), ts, create_graph=True)
    for g, gt in zip(gs, gts):
        np.testing.assert_allclose(g.data, gt.detach().numpy(), rtol=rtol, atol=1e-14)
    if second and all(g.requires_grad for g in gs) and all(gt.requires_grad for gt in gts):
        ggs = autograd.grad([sum((g * g).sum() for g in gs)], xs, allow_unused=True)
        ggts = torch.autograd.grad(sum((gt * gt).sum() for gt in gts), ts, allow_unused=True)
        for gg, ggt in zip(ggs, ggts):
            if ggt is not None and gg is not None:
                np.testing.assert_allclose(gg.data, ggt.numpy(), rtol=1e-10, atol=1e-12)


# ============================================================================ unary
UNARY = {
    "sin": (lambda t: t.sin(), np.sin, -4, 4),
    "cos": (lambda t: t.cos(), np.cos, -4, 4),
    "square": (lambda t: t.square(), np.square, -3, 3),
    "rsqrt": (lambda t: t.rsqrt(), lambda a: 1 / np.sqrt(a), 0.2, 3),
    "log1p": (lambda t: t.log1p(), np.log1p, -0.8, 3),
    "expm1": (lambda t: t.expm1(), np.expm1, -3, 3),
    "neg": (lambda t: t.neg(), np.negative, -3, 3),
    "abs": (lambda t: abs(t), np.abs, 0.1, 3),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data())
@examples(15)
def test_unary(name, data):
    fn, reference, low, high = UNARY[name]
    x = data.draw(arrays(SMALL, min_value=low, max_value=high))
    if name == "abs":
        x = x * data.draw(st.sampled_from([1, -1]))
    out = checked(fn, x)
    np.testing.assert_allclose(out.data, reference(x), rtol=1e-14, atol=1e-300)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_against_torch(name, torch):
    fn, _, low, high = UNARY[name]
    x = np.random.default_rng(2).uniform(low, high, (3, 4))
    against_torch(torch, fn, getattr(torch, name) if name != "abs" else torch.abs, x)


def test_log1p_and_expm1_are_exact_for_tiny_values():
    tiny = np.array([1e-18, -1e-17, 3e-12])
    np.testing.assert_array_equal(Tensor(tiny).log1p().data, np.log1p(tiny))
    np.testing.assert_array_equal(Tensor(tiny).expm1().data, np.expm1(tiny))
    x = Tensor(np.array([-40.0]), requires_grad=True)
    x.expm1().backward()
    assert x.grad.item() == pytest.approx(math.exp(-40.0), rel=1e-15)  # g · eᵃ, not g · (y + 1) = 0


def test_sign_has_a_zero_gradient_like_pytorch(torch):
    x = Tensor(np.array([-2.0, 0.0, 3.0]), requires_grad=True)
    y = x.sign()
    np.testing.assert_array_equal(y.data, [-1, 0, 1])
    (y * 5).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0, 0.0])
    assert Tensor([1, -3]).sign().tolist() == [1, -1]
    xt = torch.tensor([-2.0, 0.0, 3.0], requires_grad=True)
    (xt.sign() * 5).sum().backward()
    np.testing.assert_array_equal(x.grad.data, xt.grad.numpy())


# ============================================================================ operator methods
def test_method_forms_of_the_operators(torch):
    a, b = np.array([[1.5, -2.0], [3.0, 4.0]]), np.array([0.5, -3.0])
    cases = [
        (lambda x, y: x.add(y), lambda x, y: x.add(y)),
        (lambda x, y: x.add(y, alpha=2.5), lambda x, y: x.add(y, alpha=2.5)),
        (lambda x, y: x.sub(y, alpha=-1.5), lambda x, y: x.sub(y, alpha=-1.5)),
        (lambda x, y: x.mul(y), lambda x, y: x.mul(y)),
        (lambda x, y: x.div(y), lambda x, y: x.div(y)),
        (lambda x, y: x.abs().pow(y), lambda x, y: x.abs().pow(y)),
    ]
    for ours, theirs in cases:
        against_torch(torch, ours, theirs, a, b)
    for mode in ("trunc", "floor"):
        for x, y in [(a, b), (np.array([7, -7, 5]), np.array([2, 2, -3]))]:
            got = Tensor(x).div(Tensor(y), rounding_mode=mode)
            want = torch.tensor(x).div(torch.tensor(y), rounding_mode=mode)
            np.testing.assert_array_equal(got.data, want.numpy())
            assert got.dtype == np.dtype(str(want.dtype).replace("torch.", ""))
    with pytest.raises(ValueError, match="rounding_mode"):
        Tensor([1.0]).div(2.0, rounding_mode="round")
    assert Tensor([1.0, 2.0]).pow(2).tolist() == [1.0, 4.0]


# ============================================================================ scans and products
@given(x=arrays(NONEMPTY), data=st.data())
@examples(25)
def test_cumsum(x, data):
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1))
    out = checked(lambda t: t.cumsum(dim), x)
    np.testing.assert_allclose(out.data, np.cumsum(x, axis=dim), rtol=1e-14)


def test_cumsum_against_torch_and_integers(torch):
    x = np.random.default_rng(3).standard_normal((3, 4, 2))
    for dim in (0, 1, -1):
        against_torch(torch, lambda t, d=dim: t.cumsum(d), lambda t, d=dim: t.cumsum(d), x)
    assert Tensor([True, True, False]).cumsum(0).tolist() == [1, 2, 2]
    assert Tensor(2.0).cumsum(0).item() == 2.0


@st.composite
def with_zeros(draw, shape=NONEMPTY):
    """Arrays where some entries are exactly zero (one zero, two zeros, or none in a slice)."""
    x = draw(arrays(shape, min_value=-2, max_value=2))
    mask = draw(arrays(x.shape, dtype=bool))
    return np.where(mask & draw(st.booleans()), 0.0, x)


@given(x=with_zeros(), data=st.data())
@examples(30)
def test_prod_gradients_are_right_where_inputs_are_zero(x, data):
    dim = data.draw(st.none() | st.integers(-x.ndim, x.ndim - 1))
    keepdim = data.draw(st.booleans())
    fn = (lambda t: t.prod()) if dim is None else (lambda t: t.prod(dim, keepdim=keepdim))
    out = checked(fn, x)
    expected = np.prod(x) if dim is None else np.prod(x, axis=dim, keepdims=keepdim)
    np.testing.assert_allclose(out.data, expected, rtol=1e-13, atol=1e-300)
    # the gradient is the product of the others, exactly, also at zeros
    t = Tensor(x, requires_grad=True)
    t.prod().backward()
    flat = x.reshape(-1)
    others = [np.prod(np.delete(flat, i)) for i in range(flat.size)]
    np.testing.assert_allclose(t.grad.data.reshape(-1), others, rtol=1e-13, atol=1e-300)


def test_prod_against_torch_with_zeros(torch):
    x = np.array([[0.0, 2.0, 3.0, -1.5, 0.5], [0.0, 0.0, 2.0, 1.0, 3.0], [1.5, 2.0, -0.5, 4.0, 1.0]])
    against_torch(torch, lambda t: t.prod(1), lambda t: t.prod(1), x)
    against_torch(torch, lambda t: t.prod(), lambda t: t.prod(), x[2:])
    against_torch(torch, lambda t: t.prod(0, keepdim=True), lambda t: t.prod(0, keepdim=True), x)
    assert Tensor(np.zeros((2, 0))).prod(1).tolist() == [1.0, 1.0]
    assert Tensor([True, False]).prod().item() == 0


# ============================================================================ movement
@given(x=arrays(NONEMPTY), data=st.data())
@examples(25)
def test_flip(x, data):
    dims = data.draw(st.lists(st.integers(0, x.ndim - 1), min_size=1, max_size=x.ndim, unique=True))
    out = checked(lambda t: t.flip(dims), x)
    np.testing.assert_array_equal(out.data, np.flip(x, dims))
    np.testing.assert_array_equal(Tensor(x).flip(*dims).data, np.flip(x, dims))


@given(x=arrays(NONEMPTY), data=st.data())
@examples(25)
def test_roll(x, data):
    dims = data.draw(st.lists(st.integers(-x.ndim, x.ndim - 1), min_size=1, max_size=2))
    assume(len({d % x.ndim for d in dims}) == len(dims))
    shifts = data.draw(st.lists(st.integers(-5, 5), min_size=len(dims), max_size=len(dims)))
    out = checked(lambda t: t.roll(shifts, dims), x)
    np.testing.assert_array_equal(out.data, np.roll(x, shifts, dims))
    flat_shift = data.draw(st.integers(-7, 7))
    np.testing.assert_array_equal(Tensor(x).roll(flat_shift).data, np.roll(x, flat_shift))


@st.composite
def gather_cases(draw):
    x = draw(arrays(NONEMPTY))
    dim = draw(st.integers(-x.ndim, x.ndim - 1))
    d = dim % x.ndim
    shape = tuple(draw(st.integers(1, 4)) if i == d else draw(st.integers(1, s)) for i, s in enumerate(x.shape))
    index = draw(arrays(shape, dtype=np.int64, min_value=0, max_value=x.shape[d] - 1))
    return x, dim, index


@given(gather_cases())
@examples(30)
def test_gather(case):
    x, dim, index = case
    out = checked(lambda t: t.gather(dim, index), x)
    d = dim % x.ndim
    expected = np.take_along_axis(x[tuple(slice(0, s) if i != d else slice(None) for i, s in enumerate(index.shape))],
                                  index, axis=d)
    np.testing.assert_array_equal(out.data, expected)


def test_gather_against_torch_and_its_errors(torch):
    x = np.random.default_rng(4).standard_normal((3, 4))
    index = np.array([[0, 0, 3], [1, 2, 2]])
    against_torch(torch, lambda t: t.gather(1, index), lambda t: t.gather(1, torch.tensor(index)), x)
    against_torch(torch, lambda t: t.gather(0, index[:, :2] % 3), lambda t: t.gather(0, torch.tensor(index[:, :2] % 3)),
                  x)
    with pytest.raises(IndexError, match="gather: index 4 is out of bounds for dimension 1 with size 4"):
        Tensor(x).gather(1, np.array([[4]]))
    with pytest.raises(IndexError, match="index -1"):
        Tensor(x).gather(1, np.array([[-1]]))
    with pytest.raises(ValueError, match="dimensions"):
        Tensor(x).gather(1, np.array([0]))
    with pytest.raises(TypeError, match="integer"):
        Tensor(x).gather(1, np.array([[0.0]]))
    with pytest.raises(ValueError, match="larger"):
        Tensor(x).gather(1, np.zeros((4, 1), dtype=np.int64))


@given(x=arrays(NONEMPTY), data=st.data())
@examples(25)
def test_masked_fill(x, data):
    mask = data.draw(arrays(x.shape[data.draw(st.integers(0, x.ndim)):], dtype=bool))
    value = data.draw(st.floats(-3, 3))
    out = checked(lambda t: t.masked_fill(mask, value), x)
    np.testing.assert_array_equal(out.data, np.where(mask, value, x))
    v = Tensor(np.array(2.0), requires_grad=True)
    t = Tensor(x, requires_grad=True)
    t.masked_fill(Tensor(mask), v).sum().backward()
    assert v.grad.item() == np.broadcast_to(mask, x.shape).sum()
    np.testing.assert_array_equal(t.grad.data, ~np.broadcast_to(mask, x.shape))


def test_masked_fill_errors():
    with pytest.raises(TypeError, match="bool"):
        Tensor([1.0, 2.0]).masked_fill(np.array([1, 0]), 0.0)
    with pytest.raises(ValueError, match="masked_fill"):
        Tensor([1.0, 2.0]).masked_fill(np.ones((3, 2), bool), 0.0)
    assert Tensor([1, 2, 3]).masked_fill(np.array([True, False, True]), 9).tolist() == [9, 2, 9]


# ============================================================================ norms
@pytest.mark.parametrize("p", [1, 2, "fro", math.inf, -math.inf, 3, 0.5])
@given(x=arrays(NONEMPTY, min_value=0.2, max_value=3), data=st.data())
@examples(10)
def test_norm(p, x, data):
    x = x * data.draw(arrays(x.shape, dtype=bool)).choose(1, -1)
    if p in (math.inf, -math.inf):  # the max of |x| must be unique for central differences
        x = x + np.arange(x.size).reshape(x.shape) * 0.01 * np.sign(x)
    dim = data.draw(st.none() | st.integers(0, x.ndim - 1))
    keepdim = data.draw(st.booleans())
    out = checked(lambda t: t.norm(p, dim, keepdim), x, grad2=p not in (1, math.inf, -math.inf))
    order = 2 if p == "fro" else p
    flat = x.reshape(-1) if dim is None else x
    expected = np.linalg.norm(flat, ord=order, axis=None if dim is None else dim, keepdims=keepdim and dim is not None)
    if dim is None and keepdim:
        expected = np.reshape(expected, (1,) * x.ndim)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12)


def test_norm_against_torch_including_zero_vectors(torch):
    x = np.array([[3.0, -4.0, 0.0], [0.0, 0.0, 0.0], [1.0, -2.0, 2.0]])
    for p in (1, 2, "fro", math.inf, 3):
        dims = [1] if p == "fro" else [1, None]
        for dim in dims:
            against_torch(torch, lambda t, p=p, d=dim: t.norm(p, d), lambda t, p=p, d=dim: t.norm(p, d), x,
                          second=p in (2, "fro") and dim is None)
    zero = Tensor(np.zeros(3), requires_grad=True)
    zero.norm().backward()
    np.testing.assert_array_equal(zero.grad.data, [0.0, 0.0, 0.0])  # not nan: PyTorch's rule
    assert Tensor([1.0, 0.0, -2.0]).norm(0).item() == 2.0
    with pytest.raises(ValueError, match="norm"):
        Tensor([1.0]).norm("nuc")


# ============================================================================ einsum
EQUATIONS = [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("bij,bjk->bik", [(2, 2, 3), (2, 3, 1)]), ("i,i->", [(3,), (3,)]),
    ("i,j->ij", [(3,), (2,)]), ("ii->i", [(3, 3)]), ("ii", [(3, 3)]), ("ij->", [(2, 3)]), ("ij->ji", [(2, 3)]),
    ("...ij->...ji", [(2, 1, 2, 3)]), ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]), ("bi,bi->b", [(1, 3), (4, 3)]),
    ("...i,...i->...", [(2, 1, 3), (4, 3)]), ("iij->j", [(2, 2, 3)]), ("ab,cd->", [(2, 3), (4, 5)]),
    ("aAb,Ab->a", [(2, 3, 4), (3, 4)]), ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]), ("i,->i", [(3,), ()]),
    ("ij,ij->ij", [(2, 3), (2, 3)]), ("ij,kl,jk->il", [(2, 3), (4, 2), (3, 4)]), ("ba", [(2, 3)]),
    ("b...,b...->b", [(2, 3, 2), (2, 1, 2)]), ("i j , j k -> i k", [(2, 3), (3, 2)]),
]


@pytest.mark.parametrize("equation, shapes_", EQUATIONS)
def test_einsum_gradients(equation, shapes_):
    rng = np.random.default_rng(5)
    arrays_ = [rng.standard_normal(s) for s in shapes_]
    out = checked(lambda *ts: tinygrad_cnn.einsum(equation, *ts), *arrays_)
    if equation == "b...,b...->b":  # numpy refuses to sum `...` away; PyTorch (and we) sum it
        expected = (arrays_[0] * arrays_[1]).sum((1, 2))
    else:
        expected = np.einsum(equation.replace(" ", ""), *arrays_)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("equation, shapes_", EQUATIONS)
def test_einsum_against_torch(equation, shapes_, torch):
    rng = np.random.default_rng(6)
    arrays_ = [rng.standard_normal(s) for s in shapes_]
    against_torch(torch, lambda *ts: tinygrad_cnn.einsum(equation, *ts), lambda *ts: torch.einsum(equation, *ts),
                  *arrays_)


@given(data=st.data())
@examples(30)
def test_einsum_random_contractions_match_numpy(data):
    letters = "abcde"
    sizes = {c: data.draw(st.integers(1, 3)) for c in letters}
    n_ops = data.draw(st.integers(1, 3))
    terms = [data.draw(st.lists(st.sampled_from(letters), min_size=0, max_size=3)) for _ in range(n_ops)]
    used = sorted(set("".join("".join(t) for t in terms)))
    out = data.draw(st.lists(st.sampled_from(used), unique=True, max_size=len(used))) if used else []
    equation = ",".join("".join(t) for t in terms) + "->" + "".join(out)
    arrays_ = [data.draw(arrays(tuple(sizes[c] for c in t))) for t in terms]
    got = tinygrad_cnn.einsum(equation, *[Tensor(a) for a in arrays_])
    np.testing.assert_allclose(got.data, np.einsum(equation, *arrays_), rtol=1e-10, atol=1e-12)


def test_einsum_takes_a_list_and_names_bad_equations():
    a, b = Tensor(np.ones((2, 3))), Tensor(np.ones((4, 5)))
    assert tinygrad_cnn.einsum("ij,jk", [a, Tensor(np.ones((3, 2)))]).shape == (2, 2)
    for equation, operands, message in [
        ("ij,jk", [a, b], "'j' has size 3 in operand 0 but 4 in operand 1"),
        ("ijk", [a], "operand 0 has 2 dimensions, but its subscripts 'ijk' name 3"),
        ("i1", [a], "'1' in operand 0"),
        ("ij->k", [a], "output letter 'k'"),
        ("ij->ii", [a], "repeats in the output"),
        ("ij,jk", [a], "2 operand"),
        ("i.j", [a], "ellipsis"),
        ("ii", [a], "'i' has size 2 in operand 0 but 3 in operand 0"),
    ]:
        with pytest.raises(ValueError, match=message):
            tinygrad_cnn.einsum(equation, *operands)
