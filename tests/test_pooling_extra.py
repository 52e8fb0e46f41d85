"""Adaptive pooling and nearest upsampling (nn/pooling.py): values, gradients, modules and errors.

Hypothesis draws input sizes and output sizes together (outputs smaller, equal
and larger than the input, sizes that divide it and sizes that do not, None
entries that keep an axis), batched and unbatched, and every check runs over them:

* values, first derivatives and (max) indices against PyTorch in float64;
* gradcheck and gradgradcheck on small cases;
* the tie rule: a max's gradient is split evenly among a window's maxima, so on
  a constant input adaptive max pooling has adaptive average pooling's gradient;
* the modules' reprs against PyTorch's, and bad arguments.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tinygrad_cnn import Tensor, autograd, gradcheck, gradgradcheck, nn
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.nn.pooling import adaptive_windows, averaging_matrix, nearest_source
from tinygrad_cnn.testing import examples, seeds


# ============================================================================ strategies and helpers
@st.composite
def adaptive_calls(draw: st.DrawFn, dims: int, max_side: int = 9) -> tuple[tuple[int, ...], object]:
    """(input shape, output_size): batched or not, each output side 1..max_side or None (keep the input's)."""
    spatial = tuple(draw(st.integers(1, max_side)) for _ in range(dims))
    lead = draw(st.sampled_from([(2, 3), (3,)]))
    sides = [draw(st.one_of(st.none(), st.integers(1, max_side))) for _ in range(dims)]
    if dims == 1:
        output_size = sides[0] if sides[0] is not None else spatial[0]
        output_size = draw(st.sampled_from([output_size, (output_size,)]))
    elif sides[0] == sides[1] and sides[0] is not None and draw(st.booleans()):
        output_size = sides[0]  # the int form
    else:
        output_size = tuple(sides)
    return (*lead, *spatial), output_size


def distinct(shape: tuple, seed: int) -> np.ndarray:
    """Values 0.25 apart in a random order: no ties, so PyTorch's one-index rule for max never differs from ours."""
    return np.random.default_rng(seed).permutation(math.prod(shape)).reshape(shape) * 0.25 - 1.0


def compare_with_torch(torch, ours_fn, torch_fn, x: np.ndarray, seed: int, gradient: bool = True) -> None:
    """Forward values and the input gradient against PyTorch (float64, a random upstream gradient)."""
    t, tt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = ours_fn(t), torch_fn(tt)
    assert out.shape == tuple(expected.shape) and out.dtype == np.float64
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-12, atol=1e-12, err_msg="forward")
    if not gradient:
        return
    upstream = np.random.default_rng(seed + 1).standard_normal(out.shape)
    (expected * torch.tensor(upstream)).sum().backward()
    (grad,) = autograd.grad(out, [t], Tensor(upstream))
    np.testing.assert_allclose(grad.data, tt.grad.numpy(), rtol=1e-12, atol=1e-12, err_msg="d/dx")


# ============================================================================ the window rule
@given(st.integers(1, 30), st.integers(1, 30))
def test_windows_cover_the_axis_as_pytorch_draws_them(size, out):
    starts, ends = adaptive_windows(size, out)
    assert starts[0] == 0 and ends[-1] == size and np.all(ends > starts)
    assert np.all(starts == [math.floor(i * size / out) for i in range(out)])
    assert np.all(ends == [math.ceil((i + 1) * size / out) for i in range(out)])
    assert np.allclose(averaging_matrix(size, out, np.float64).sum(axis=1), 1.0)


# ============================================================================ adaptive pooling against PyTorch
@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize("dims", [1, 2])
@examples(40)
@given(data=st.data(), seed=seeds)
def test_adaptive_pooling_matches_torch(torch, kind, dims, data, seed):
    shape, output_size = data.draw(adaptive_calls(dims))
    name = f"adaptive_{kind}_pool{dims}d"
    ours, theirs = getattr(F, name), getattr(torch.nn.functional, name)
    x = distinct(shape, seed)
    compare_with_torch(torch, lambda t: ours(t, output_size), lambda t: theirs(t, output_size), x, seed)
    if kind == "max":
        _, where = ours(Tensor(x), output_size, return_indices=True)
        _, expected = theirs(torch.tensor(x), output_size, return_indices=True)
        assert where.dtype == np.int64
        np.testing.assert_array_equal(where.data, expected.numpy())


@pytest.mark.parametrize("kind", ["avg", "max"])
@examples(15)
@given(data=st.data(), seed=seeds)
def test_adaptive_pooling_gradcheck_and_gradgradcheck(kind, data, seed):
    shape, output_size = data.draw(adaptive_calls(2, max_side=5))
    fn = F.adaptive_avg_pool2d if kind == "avg" else F.adaptive_max_pool2d
    x = Tensor(distinct(shape, seed), requires_grad=True)
    assert gradcheck(lambda t: fn(t, output_size), [x])
    assert gradgradcheck(lambda t: fn(t, output_size), [x])


@examples(20)
@given(adaptive_calls(2), st.sampled_from([0.0, 1.0]))
def test_adaptive_max_splits_ties_evenly_so_a_constant_input_gets_the_averages_gradient(call, value):
    """Every pixel of a constant input ties: each window's gradient is shared evenly by its pixels."""
    shape, output_size = call
    x = Tensor(np.full(shape, value), requires_grad=True)
    y = Tensor(np.full(shape, value), requires_grad=True)
    (by_max,) = autograd.grad(F.adaptive_max_pool2d(x, output_size).sum(), [x])
    (by_avg,) = autograd.grad(F.adaptive_avg_pool2d(y, output_size).sum(), [y])
    np.testing.assert_allclose(by_max.data, by_avg.data, rtol=1e-12, atol=1e-12)


def test_adaptive_pooling_keeps_float32_and_averages_integers_as_float32():
    x = Tensor(np.arange(2 * 3 * 5 * 5, dtype=np.float32).reshape(2, 3, 5, 5))
    assert F.adaptive_avg_pool2d(x, 3).dtype == F.adaptive_max_pool2d(x, (2, 4)).dtype == np.float32
    ints = Tensor(np.arange(16).reshape(1, 1, 4, 4))
    assert F.adaptive_avg_pool2d(ints, 2).dtype == np.float32
    assert F.adaptive_avg_pool2d(ints, 2).data.ravel().tolist() == [2.5, 4.5, 10.5, 12.5]
    assert F.adaptive_max_pool2d(ints, 3).data.ravel().tolist() == [5, 6, 7, 9, 10, 11, 13, 14, 15]


def test_adaptive_pooling_to_an_empty_size_is_empty_as_in_pytorch():
    x = Tensor(np.ones((2, 3, 4, 4)))
    assert F.adaptive_avg_pool2d(x, (0, 2)).shape == F.adaptive_max_pool2d(x, (0, 2)).shape == (2, 3, 0, 2)


# ============================================================================ interpolate
@st.composite
def interpolate_calls(draw: st.DrawFn) -> tuple[tuple[int, ...], dict]:
    """(input shape, keyword arguments): 3-D, 4-D or 5-D input; size or scale_factor, an int/float or one per axis."""
    dims = draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(1, 6)) for _ in range(dims))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), *spatial)
    if draw(st.booleans()):
        sizes = [draw(st.integers(1, 9)) for _ in range(dims)]
        return shape, {"size": sizes[0] if dims == 1 and draw(st.booleans()) else tuple(sizes)}
    factors = st.sampled_from([0.5, 0.7, 1.0, 1.1, 4 / 3, 1.5, 2.0, 2.2, 2.5, 3.0, 2, 3])
    scale = draw(factors) if draw(st.booleans()) else tuple(draw(factors) for _ in range(dims))
    kwargs = {"scale_factor": scale, "recompute_scale_factor": draw(st.sampled_from([None, False, True]))}
    scales = scale if isinstance(scale, tuple) else (scale,) * dims
    assume(all(math.floor(n * s) >= 1 for n, s in zip(spatial, scales)))
    return shape, kwargs


def torch_backward_is_its_forwards_adjoint(shape: tuple, kwargs: dict) -> bool:
    """False where PyTorch 2.13's nearest backward reads other pixels than its forward did.

    For 1-D and 3-D input with a scale_factor, its forward computes ⌊dst / scale⌋
    even where the output size equals the input's (or twice it), but its backward
    takes the 2-D kernel's shortcuts there (copy, or halve): e.g. scale 1.1 on 2
    pixels reads pixel 0 twice, and sends the gradient to pixels 0 and 1. Ours is
    the adjoint of the forward (gradcheck checks it), so only the values are compared.
    """
    scale = kwargs.get("scale_factor")
    if len(shape) == 4 or scale is None or kwargs.get("recompute_scale_factor"):
        return True
    scales = scale if isinstance(scale, tuple) else (scale,) * (len(shape) - 2)
    return all(math.floor(n * s) not in (n, 2 * n) or s in (1, 2) for n, s in zip(shape[2:], scales))


@examples(60)
@given(interpolate_calls(), seeds)
def test_interpolate_nearest_matches_torch(torch, call, seed):
    shape, kwargs = call
    x = np.random.default_rng(seed).standard_normal(shape)
    compare_with_torch(torch, lambda t: F.interpolate(t, **kwargs),
                       lambda t: torch.nn.functional.interpolate(t, mode="nearest", **kwargs), x, seed,
                       gradient=torch_backward_is_its_forwards_adjoint(shape, kwargs))


@examples(15)
@given(interpolate_calls(), seeds)
def test_interpolate_gradcheck_and_gradgradcheck(call, seed):
    shape, kwargs = call
    x = Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)
    assert gradcheck(lambda t: F.interpolate(t, **kwargs), [x])
    assert gradgradcheck(lambda t: F.interpolate(t, **kwargs), [x])


def test_nearest_source_rule():
    assert nearest_source(3, 7, None).tolist() == [0, 0, 0, 1, 1, 2, 2]  # ⌊dst · 3/7⌋
    assert nearest_source(4, 8, 2.0).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert nearest_source(5, 2, None).tolist() == [0, 2]  # downsampling skips pixels
    assert nearest_source(3, 4, 1.5).tolist() == [0, 0, 1, 2]  # ⌊dst / 1.5⌋
    assert nearest_source(2, 2, 1.1).tolist() == [0, 0]  # ⌊1 / 1.1⌋ = 0, as PyTorch for 1-D and 3-D input
    assert nearest_source(2, 2, 1.1, shortcuts=True).tolist() == [0, 1]  # and for 2-D: equal sizes copy
    assert nearest_source(2, 4, 2.2, shortcuts=True).tolist() == [0, 0, 1, 1]  # double sizes halve


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("scale", [1.1, 4 / 3, 2.2])
def test_interpolate_takes_pytorchs_equal_and_double_size_shortcuts_only_for_2d_input(torch, dims, scale):
    x = np.random.default_rng(0).standard_normal((1, 2, *(2,) * dims))
    expected = torch.nn.functional.interpolate(torch.tensor(x), scale_factor=scale).numpy()
    np.testing.assert_array_equal(F.interpolate(Tensor(x), scale_factor=scale).data, expected)


def test_upsampling_adds_each_copys_gradient_back_onto_its_source():
    x = Tensor(np.arange(4.0).reshape(1, 1, 2, 2), requires_grad=True)
    up = F.interpolate(x, scale_factor=(2, 3))
    assert up.shape == (1, 1, 4, 6)
    assert up.data[0, 0].tolist() == [[0, 0, 0, 1, 1, 1]] * 2 + [[2, 2, 2, 3, 3, 3]] * 2
    up.sum().backward()
    assert x.grad.data.ravel().tolist() == [6.0] * 4


# ============================================================================ the modules
MODULES = [
    ("AdaptiveAvgPool2d", (3,), {}), ("AdaptiveAvgPool2d", ((None, 3),), {}), ("AdaptiveAvgPool2d", ((2, 4),), {}),
    ("AdaptiveMaxPool2d", ((2, 3),), {}), ("AdaptiveMaxPool2d", (2,), {"return_indices": True}),
    ("AdaptiveAvgPool1d", (3,), {}), ("AdaptiveMaxPool1d", (4,), {"return_indices": True}),
    ("Upsample", (), {"scale_factor": 2}), ("Upsample", (), {"scale_factor": (2, 1.5)}),
    ("Upsample", ((5, 3),), {}), ("Upsample", (), {"size": 7, "mode": "nearest"}),
    ("Upsample", (), {"scale_factor": 2, "mode": "bilinear"}),
]
IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(MODULES)]


@pytest.mark.parametrize(("name", "args", "kwargs"), MODULES, ids=IDS)
def test_modules_repr_state_dict_and_output_match_torch(torch, name, args, kwargs):
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == []
    if kwargs.get("mode", "nearest") != "nearest":
        return
    shape = (2, 3, 7) if name.endswith("1d") or kwargs.get("size") == 7 else (2, 3, 5, 6)
    x = distinct(shape, 0)
    out, expected = ours(Tensor(x)), theirs(torch.tensor(x))
    if isinstance(out, tuple):
        np.testing.assert_array_equal(out[1].data, expected[1].numpy())
        out, expected = out[0], expected[0]
    np.testing.assert_allclose(out.data, expected.numpy(), rtol=1e-12, atol=1e-12)


def test_upsample_with_another_mode_raises_naming_it_when_called():
    with pytest.raises(NotImplementedError, match="'bilinear'"):
        nn.Upsample(scale_factor=2, mode="bilinear")(Tensor(np.zeros((1, 1, 2, 2))))


# ============================================================================ errors
X = Tensor(np.zeros((1, 2, 4, 4)))
ERRORS = [
    ("avg2d-2d-input", lambda: F.adaptive_avg_pool2d(Tensor(np.zeros((4, 4))), 2), ValueError,
     ["adaptive_avg_pool2d", "3-D or 4-D", "(4, 4)"]),
    ("max2d-5d-input", lambda: F.adaptive_max_pool2d(Tensor(np.zeros((1, 1, 1, 4, 4))), 2), ValueError,
     ["adaptive_max_pool2d", "(1, 1, 1, 4, 4)"]),
    ("avg1d-4d-input", lambda: F.adaptive_avg_pool1d(X, 2), ValueError, ["adaptive_avg_pool1d", "(1, 2, 4, 4)"]),
    ("max1d-empty-input", lambda: F.adaptive_max_pool1d(Tensor(np.zeros((1, 2, 0))), 2), ValueError,
     ["adaptive_max_pool1d", "non-empty", "(1, 2, 0)"]),
    ("avg2d-size-triple", lambda: F.adaptive_avg_pool2d(X, (1, 2, 3)), TypeError,
     ["adaptive_avg_pool2d", "output_size", "(1, 2, 3)"]),
    ("avg2d-size-float", lambda: F.adaptive_avg_pool2d(X, 2.5), TypeError, ["adaptive_avg_pool2d", "2.5"]),
    ("max2d-size-negative", lambda: F.adaptive_max_pool2d(X, (-1, 2)), ValueError,
     ["adaptive_max_pool2d", "negative", "(-1, 2)"]),
    ("interp-both", lambda: F.interpolate(X, size=2, scale_factor=2), ValueError, ["interpolate", "both"]),
    ("interp-neither", lambda: F.interpolate(X), ValueError, ["interpolate", "neither"]),
    ("interp-size-length", lambda: F.interpolate(X, size=(2, 3, 4)), ValueError,
     ["interpolate", "(1, 2, 4, 4)", "(2, 3, 4)"]),
    ("interp-scale-length", lambda: F.interpolate(X, scale_factor=(2,)), ValueError, ["interpolate", "(2,)"]),
    ("interp-size-float", lambda: F.interpolate(X, size=(2, 3.0)), TypeError, ["interpolate", "size", "(2, 3.0)"]),
    ("interp-empty-output", lambda: F.interpolate(X, scale_factor=0.2), ValueError, ["interpolate", "(0, 0)"]),
    ("interp-2d-input", lambda: F.interpolate(Tensor(np.zeros((4, 4))), size=2), ValueError,
     ["interpolate", "3-D, 4-D or 5-D", "(4, 4)"]),
    ("interp-align-corners", lambda: F.interpolate(X, scale_factor=2, align_corners=True), ValueError,
     ["interpolate", "align_corners"]),
    ("interp-linear", lambda: F.interpolate(X, scale_factor=2, mode="bicubic"), NotImplementedError,
     ["interpolate", "'bicubic'"]),
    ("interp-unknown-mode", lambda: F.interpolate(X, scale_factor=2, mode="cubic"), NotImplementedError,
     ["interpolate", "'cubic'"]),
]


@pytest.mark.parametrize(("call", "error", "fragments"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_bad_arguments_raise_clear_errors(call, error, fragments):
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    missing = [f for f in fragments if f not in message]
    assert not missing, f"{missing} not in the message {message!r}"
