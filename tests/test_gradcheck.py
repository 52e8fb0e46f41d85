"""gradcheck and gradgradcheck must pass correct gradients and catch wrong ones, saying where (gradcheck.py)."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_cnn import Function, Tensor, gradcheck, gradgradcheck
from tinygrad_cnn.gradcheck import GradcheckError
from tinygrad_cnn.testing import arrays, axes, shapes, tensors


class WrongMul(Function):
    """y = a · b with a backward that is wrong for b at one element (the last one)."""

    def forward(ctx, a, b):
        return a * b

    def backward(ctx, g):
        a, b = ctx.inputs
        bump = np.zeros(a.shape)
        bump.reshape(-1)[-1] = 1.0
        return g * b, g * a + g * bump


class SquareNumpyBackward(Function):
    """y = x² whose backward multiplies by the *array* 2x: right first derivative, no second derivative."""

    def forward(ctx, x):
        return x * x

    def backward(ctx, g):
        return g * (2 * ctx.inputs[0].data)  # a numpy constant: the graph forgets that it depends on x


class SquareTensorBackward(Function):
    """The same, done right: the backward multiplies by the Tensor 2x."""

    def forward(ctx, x):
        return x * x

    def backward(ctx, g):
        return g * 2 * ctx.inputs[0]


class ForgetsAnInput(Function):
    """y = a + b whose backward returns None for b, as if b did not matter."""

    def forward(ctx, a, b):
        return a + b

    def backward(ctx, g):
        return g, None


def leaf(shape, seed=0):
    return Tensor(np.random.default_rng(seed).uniform(0.5, 2.0, size=shape), requires_grad=True)


# ============================================================================ passing
@given(arrays(shapes(max_dims=3, max_side=3), min_value=0.5, max_value=2))
def test_correct_gradients_pass(x):
    t = Tensor(x, requires_grad=True)
    assert gradcheck(lambda a: (a * a).log().tanh(), [t]) is True
    assert gradcheck(lambda a: (a * a).log().tanh(), [t], fast_mode=True) is True
    assert gradgradcheck(lambda a: (a * a).log().tanh(), [t]) is True
    assert gradgradcheck(lambda a: (a * a).log().tanh(), [t], fast_mode=True) is True


def test_inputs_are_restored_after_the_check():
    t = leaf((3, 2))
    before = t.data.copy()
    gradcheck(lambda a: a.exp(), [t])
    gradgradcheck(lambda a: a.exp(), [t], fast_mode=True)
    np.testing.assert_array_equal(t.data, before)


def test_several_outputs_and_non_differentiable_inputs():
    a, b = leaf((2, 3)), leaf((3,), seed=1)
    index = Tensor(np.array([1, 0]))
    mask = Tensor(np.array([True, False, True]))

    def fn(x, i, y, m):
        return (x * y)[i], Tensor.where(m, y.exp(), y), (x > 1)  # the boolean output is ignored

    assert gradcheck(fn, [a, index, b, mask])
    assert gradgradcheck(fn, [a, index, b, mask])


def test_single_tensor_input_and_non_contiguous_inputs():
    t = Tensor(np.arange(1.0, 7.0).reshape(2, 3).T, requires_grad=True)  # a transposed (non-contiguous) view
    assert gradcheck(lambda a: a @ a.T, t)


def test_float32_inputs_warn():
    t = Tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    with pytest.warns(UserWarning, match="float64"):
        gradcheck(lambda a: a * 2, [t], eps=1e-2, atol=1e-2)


def test_no_differentiable_input_is_an_error():
    with pytest.raises(ValueError, match="requires_grad"):
        gradcheck(lambda a: a * 2, [Tensor(np.ones(2))])


# ============================================================================ catching wrong backwards
def test_wrong_backward_is_caught_with_a_message_that_says_where():
    a, b = leaf((2, 3)), leaf((2, 3), seed=1)
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda x, y: WrongMul.apply(x, y), [a, b])
    message = str(info.value)
    assert "WrongMul" in message  # the op that made the output
    assert "input 1" in message and "(2, 3)" in message  # which input
    assert "d output[1, 2] / d input[1, 2]" in message  # which element
    analytic, numerical = a.data[1, 2] + 1.0, a.data[1, 2]
    numbers = [float(n) for n in re.findall(r"is (\S+) from backward but (\S+) from central", message)[0]]
    assert numbers[0] == pytest.approx(analytic) and numbers[1] == pytest.approx(numerical, rel=1e-6)
    assert isinstance(info.value, AssertionError)


def test_raise_exception_false_returns_false():
    a, b = leaf(3), leaf(3, seed=1)
    assert gradcheck(lambda x, y: WrongMul.apply(x, y), [a, b], raise_exception=False) is False
    assert gradcheck(lambda x, y: WrongMul.apply(x, y), [a, b], raise_exception=False, fast_mode=True) is False


@pytest.mark.parametrize("shape", [(3,), (10, 10)])  # small: fast mode pins the element; big: the projection
def test_fast_mode_catches_a_wrong_backward(shape):
    a, b = leaf(shape), leaf(shape, seed=1)
    with pytest.raises(GradcheckError, match="input 1") as info:
        gradcheck(lambda x, y: WrongMul.apply(x, y), [a, b], fast_mode=True)
    if len(shape) == 2:
        assert "fast mode" in str(info.value) and "WrongMul" in str(info.value)


def test_a_forgotten_input_gradient_is_caught():
    a, b = leaf(2), leaf(2, seed=1)
    with pytest.raises(GradcheckError, match=r"input 1 .* is 0\.0 from backward but (0\.99|1\.0)"):
        gradcheck(lambda x, y: ForgetsAnInput.apply(x, y), [a, b])


def test_gradgradcheck_catches_a_backward_built_from_numpy_constants():
    x = leaf((2, 2))
    fn = SquareNumpyBackward.apply
    assert gradcheck(fn, [x])  # the first derivative is right...
    with pytest.raises(GradcheckError, match="input 0"):
        gradgradcheck(fn, [x])  # ...but it cannot be differentiated again
    with pytest.raises(GradcheckError):
        gradgradcheck(fn, [x], fast_mode=True)
    assert gradgradcheck(SquareTensorBackward.apply, [x])


@given(st.integers(1, 4), st.floats(0.5, 2.0))
def test_wrong_scale_of_a_gradient_is_caught_for_any_size(n, scale):
    class Scaled(Function):
        def forward(ctx, x):
            return np.sin(x)

        def backward(ctx, g):
            return g * Tensor(np.cos(ctx.inputs[0].data) * (1 + scale))

    x = leaf(n)
    assert not gradcheck(Scaled.apply, [x], raise_exception=False)
    assert not gradcheck(Scaled.apply, [x], raise_exception=False, fast_mode=True)


def test_custom_grad_outputs_for_gradgradcheck():
    x = leaf(3)
    v = Tensor(np.array([1.0, -2.0, 0.5]))
    assert gradgradcheck(lambda a: a**3, [x], grad_outputs=[v])


# ============================================================================ the strategies of tinygrad_cnn.testing
@given(tensors(shapes(max_dims=3, max_side=4), min_value=-1, max_value=2))
def test_tensors_strategy_draws_float64_leaves_in_range(t):
    assert isinstance(t, Tensor) and t.dtype == np.float64 and t.requires_grad and t.is_leaf
    assert t.ndim <= 3 and all(1 <= s <= 4 for s in t.shape)
    assert np.all((t.data >= -1) & (t.data <= 2))
    assert gradcheck(lambda a: (a * a).sum(), [t])


@given(arrays(dtype=np.float32), arrays((2, 3), dtype=np.int64, min_value=-2, max_value=2), shapes(2, 3, 2, 2))
def test_arrays_and_shapes_strategies(f, i, shape):
    assert f.dtype == np.float32 and np.all(np.abs(f) <= 3) and f.ndim <= 4
    assert i.shape == (2, 3) and i.dtype == np.int64 and np.all(np.abs(i) <= 2)
    assert 2 <= len(shape) <= 3 and set(shape) == {2}


@given(shapes(max_dims=4, max_side=3).flatmap(lambda s: st.tuples(st.just(s), axes(len(s)))))
def test_axes_strategy_draws_valid_distinct_axes(case):
    shape, axis = case
    x = np.arange(float(np.prod(shape))).reshape(shape)
    if isinstance(axis, tuple):
        assert len({a % len(shape) for a in axis}) == len(axis) > 0
    ours = Tensor(x).sum(axis)  # numpy refuses axis 0 of a 0-d array; we accept it, like PyTorch
    np.testing.assert_array_equal(ours.data, np.sum(x, axis=axis if shape else None))


def test_the_package_does_not_import_hypothesis():
    code = "import sys, tinygrad_cnn; assert not {'hypothesis', 'tinygrad_cnn.testing'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)
