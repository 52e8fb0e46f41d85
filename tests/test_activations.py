"""The activations of `F` and their modules: values, gradients, second derivatives, kinks, reprs.

Each activation is a composite, so gradcheck and gradgradcheck (float64, Hypothesis
shapes) test the engine's derivation of it. The PyTorch comparison then pins the
values and first and second derivatives down, and at the kinks (0, the clip bounds,
±3 for the hard ones, softplus's threshold) pins down which side's slope is taken.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Tensor, autograd, gradcheck, gradgradcheck, nn
from tinygrad_cnn.testing import arrays, examples, shapes

SMALL = shapes(max_dims=3, max_side=3)

# name: (ours, torch's name and keywords, points where the function has a kink)
ACTIVATIONS = {
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1), ("leaky_relu", {"negative_slope": 0.1}), [0.0]),
    "elu": (lambda x: F.elu(x, 0.7), ("elu", {"alpha": 0.7}), [0.0]),
    "gelu": (F.gelu, ("gelu", {}), []),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), ("gelu", {"approximate": "tanh"}), []),
    "silu": (F.silu, ("silu", {}), []),
    "softplus": (F.softplus, ("softplus", {}), [20.0]),
    "softplus_beta": (lambda x: F.softplus(x, beta=2.0, threshold=3.0), ("softplus", {"beta": 2.0, "threshold": 3.0}),
                      [1.5]),
    "relu6": (F.relu6, ("relu6", {}), [0.0, 6.0]),
    "hardtanh": (lambda x: F.hardtanh(x, -0.5, 2.0), ("hardtanh", {"min_val": -0.5, "max_val": 2.0}), [-0.5, 2.0]),
    "hardswish": (F.hardswish, ("hardswish", {}), [-3.0, 3.0]),
    "hardsigmoid": (F.hardsigmoid, ("hardsigmoid", {}), [-3.0, 3.0]),
    "mish": (F.mish, ("mish", {}), []),
    "logsigmoid": (F.logsigmoid, ("logsigmoid", {}), [0.0]),
}
SMOOTH = {"gelu", "gelu_tanh", "silu", "softplus", "softplus_beta", "mish", "logsigmoid", "elu"}


def away_from(x: np.ndarray, kinks: list[float], margin: float = 0.05) -> np.ndarray:
    """Move values within `margin` of a kink off it, so central differences see one piece."""
    x = np.array(x, dtype=np.float64)
    for k in kinks:
        near = np.abs(x - k) < margin
        x[near] = k + 2 * margin
    return x


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@given(x=arrays(SMALL, min_value=-8, max_value=8))
@examples(15)
def test_gradcheck_and_gradgradcheck(name, x):
    fn, _, kinks = ACTIVATIONS[name]
    t = Tensor(away_from(x, kinks), requires_grad=True)
    assert fn(t).dtype == np.float64
    assert gradcheck(fn, [t])
    if name in SMOOTH or kinks:
        assert gradgradcheck(fn, [t])


POINTS = np.array([-40.0, -20.5, -6.0, -3.5, -3.0, -1.0, -0.5, -1e-9, 0.0, 1e-9, 0.5, 1.0, 1.5, 2.0, 3.0, 3.5,
                   6.0, 7.0, 20.0, 20.5, 40.0])


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_values_and_derivatives_match_torch_including_the_kinks(name, torch):
    fn, (torch_name, kwargs), _ = ACTIVATIONS[name]
    x, xt = Tensor(POINTS.copy(), requires_grad=True), torch.tensor(POINTS, requires_grad=True)
    y, yt = fn(x), getattr(torch.nn.functional, torch_name)(xt, **kwargs)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-14, atol=1e-15)
    (g,) = autograd.grad([y.sum()], [x], create_graph=True)
    (gt,) = torch.autograd.grad(yt.sum(), xt, create_graph=True)
    # hardsigmoid: PyTorch multiplies by 1/6 rounded to float32 in its backward, even for float64 tensors
    rtol = 1e-7 if name == "hardsigmoid" else 1e-13
    np.testing.assert_allclose(g.data, gt.detach().numpy(), rtol=rtol, atol=1e-15)
    if not g.requires_grad:  # piecewise linear: the gradient does not depend on x (torch may not even say so)
        return
    (gg,) = autograd.grad([g.sum()], [x])
    ggt = torch.autograd.grad(gt.sum(), xt)[0].numpy()
    # stated differences: PyTorch's second derivative takes the other piece than its first derivative at
    # exactly the kink. There elu's is PyTorch's 0 against our α (the negative piece's), and softplus's
    # (at βx = threshold) is PyTorch's 0 against our β·σ'(threshold), the smooth piece's.
    differ = {"elu": POINTS == 0.0, "softplus": POINTS == 20.0, "softplus_beta": POINTS == 1.5}.get(
        name, np.zeros(POINTS.shape, bool))
    np.testing.assert_allclose(gg.data[~differ], ggt[~differ], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_float32_stays_float32_and_extremes_stay_finite(name):
    fn = ACTIVATIONS[name][0]
    x = Tensor(np.array([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=np.float32), requires_grad=True)
    with np.errstate(over="raise", invalid="raise"):
        y = fn(x)
        y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    assert np.all(np.isfinite(y.data)) and np.all(np.isfinite(x.grad.data))


def test_gelu_exact_uses_an_erf_accurate_to_float64():
    import math

    x = np.linspace(-6, 6, 1001)
    erf = Tensor(x).erf().data
    np.testing.assert_array_equal(erf, [math.erf(v) for v in x])
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(Tensor(x), approximate="fast")


@given(arrays(SMALL, min_value=-3, max_value=3))
@examples(20)
def test_erf_gradients(x):
    t = Tensor(x, requires_grad=True)
    assert gradcheck(lambda a: a.erf(), [t]) and gradgradcheck(lambda a: a.erf(), [t])


MODULES = [
    (lambda m: m.LeakyReLU(0.2), "leaky_relu", {"negative_slope": 0.2}),
    (lambda m: m.ELU(alpha=0.5), "elu", {"alpha": 0.5}),
    (lambda m: m.GELU(), "gelu", {}),
    (lambda m: m.GELU(approximate="tanh"), "gelu", {"approximate": "tanh"}),
    (lambda m: m.SiLU(), "silu", {}),
    (lambda m: m.Softplus(beta=2, threshold=10), "softplus", {"beta": 2, "threshold": 10}),
    (lambda m: m.ReLU6(), "relu6", {}),
    (lambda m: m.Hardtanh(-2.0, 2.0), "hardtanh", {"min_val": -2.0, "max_val": 2.0}),
    (lambda m: m.Hardswish(), "hardswish", {}),
    (lambda m: m.Hardsigmoid(), "hardsigmoid", {}),
    (lambda m: m.Mish(), "mish", {}),
    (lambda m: m.LogSigmoid(), "logsigmoid", {}),
    (lambda m: m.Softmax(dim=1), "softmax", {"dim": 1}),
    (lambda m: m.LogSoftmax(dim=0), "log_softmax", {"dim": 0}),
    (lambda m: m.SiLU(inplace=True), "silu", {}),
    (lambda m: m.LeakyReLU(0.01, True), "leaky_relu", {}),
]


@pytest.mark.parametrize("make, fn, kwargs", MODULES)
def test_modules_match_torch_in_repr_and_output(make, fn, kwargs, torch):
    ours, theirs = make(nn), make(torch.nn)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == []
    x = np.random.default_rng(0).standard_normal((3, 4)) * 4
    np.testing.assert_allclose(ours(Tensor(x)).data, theirs(torch.tensor(x)).numpy(), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("shape", [(), (4,), (2, 3), (2, 3, 4), (2, 3, 4, 5)])
def test_softmax_without_dim_takes_pytorchs_legacy_axis(shape, torch):
    import warnings

    x = np.random.default_rng(1).standard_normal(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch warns that the implicit dim is deprecated
        expected = torch.nn.functional.softmax(torch.tensor(x), dim=None).numpy()
        expected_log = torch.nn.LogSoftmax()(torch.tensor(x)).numpy()
    np.testing.assert_allclose(F.softmax(Tensor(x)).data, expected, rtol=1e-13)
    np.testing.assert_allclose(nn.LogSoftmax()(Tensor(x)).data, expected_log, rtol=1e-13, atol=1e-15)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="hardtanh"):
        F.hardtanh(Tensor([1.0]), 2.0, 1.0)
    with pytest.raises(ValueError, match="Hardtanh"):
        nn.Hardtanh(2.0, 1.0)
    with pytest.raises(ValueError, match="GELU"):
        nn.GELU("erf")


@given(st.floats(-30, 30), st.floats(0.5, 3.0))
@examples(30)
def test_softplus_is_log1p_exp_below_the_threshold(v, beta):
    y = F.softplus(Tensor(np.array([v])), beta=beta).item()
    expected = v if v * beta > 20 else np.log1p(np.exp(beta * v)) / beta
    assert y == pytest.approx(expected, rel=1e-14, abs=1e-300)
