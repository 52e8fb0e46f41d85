"""fold2d (col2im, `F.fold`, `nn.Fold`) and PyTorch's unfold/fold signatures.

Over drawn geometries (`tinygrad_cnn.testing.conv2d_cases`: kernel, stride,
padding and dilation per axis):

* fold2d is the adjoint of unfold2d: ⟨unfold2d(x), y⟩ = ⟨x, fold2d(y)⟩;
* its gradient and second derivative against central differences;
* values and gradients against `torch.nn.functional.fold` (skipped without torch);
* `F.unfold` / `F.fold` / `nn.Unfold` / `nn.Fold` take PyTorch's argument order
  (dilation before padding before stride), and bad shapes raise clear errors.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from tinygrad_cnn import Tensor, gradcheck, gradgradcheck, nn
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.testing import Conv2dCase, conv2d_cases, examples, seeds


def fold_kwargs(case: Conv2dCase) -> dict:
    return {"kernel_size": case.kernel_size, "stride": case.stride, "padding": case.padding,
            "dilation": case.dilation}


def columns_shape(case: Conv2dCase) -> tuple[int, int, int]:
    """(N, C·kh·kw, L): what unfold2d gives for the case's input and fold2d takes back."""
    _, _, ho, wo = case.output_shape
    return case.batch, case.in_channels * case.kernel_size[0] * case.kernel_size[1], ho * wo


@examples(50)
@given(conv2d_cases(max_groups=1, max_channels_per_group=3), seeds)
def test_fold_is_the_adjoint_of_unfold(case, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal(case.input_shape), rng.standard_normal(columns_shape(case))
    unfolded = Tensor(x).unfold2d(**fold_kwargs(case)).data
    folded = Tensor(y).fold2d((case.height, case.width), **fold_kwargs(case)).data
    assert unfolded.shape == y.shape and folded.shape == x.shape
    np.testing.assert_allclose(np.vdot(unfolded, y), np.vdot(x, folded), rtol=1e-10)


@examples(25)
@given(conv2d_cases(max_groups=1, max_channels_per_group=2, max_extra=2), seeds)
def test_fold_gradcheck_and_gradgradcheck(case, seed):
    y = Tensor(np.random.default_rng(seed).standard_normal(columns_shape(case)), requires_grad=True)
    fold = lambda y: y.fold2d((case.height, case.width), **fold_kwargs(case))  # noqa: E731
    assert gradcheck(fold, [y])
    assert gradgradcheck(fold, [y])


@examples(40)
@given(conv2d_cases(max_groups=1, max_channels_per_group=3), seeds)
def test_fold_matches_torch(torch, case, seed):
    rng = np.random.default_rng(seed)
    y = rng.standard_normal(columns_shape(case))
    ours, theirs = Tensor(y, requires_grad=True), torch.tensor(y, requires_grad=True)
    (kh, kw), d, p, s = case.kernel_size, case.dilation, case.padding, case.stride
    out = F.fold(ours, (case.height, case.width), (kh, kw), d, p, s)  # PyTorch's positional order
    expected = torch.nn.functional.fold(theirs, (case.height, case.width), (kh, kw), d, p, s)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    upstream = rng.standard_normal(out.shape)
    (expected * torch.tensor(upstream)).sum().backward()
    out.backward(upstream)
    np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-12, atol=1e-12)
    x = rng.standard_normal(case.input_shape)
    np.testing.assert_allclose(F.unfold(Tensor(x), (kh, kw), d, p, s).data,
                               torch.nn.functional.unfold(torch.tensor(x), (kh, kw), d, p, s).numpy())


def test_fold_sums_what_unfold_copied():
    """A pixel read by k windows comes back k times: fold(unfold(ones)) counts the windows over each pixel."""
    ones = Tensor(np.ones((1, 1, 3, 3)))
    counts = ones.unfold2d(2).fold2d((3, 3), 2).numpy()[0, 0]
    assert counts.tolist() == [[1, 2, 1], [2, 4, 2], [1, 2, 1]]


def test_modules_take_pytorchs_arguments_and_reprs():
    x = Tensor(np.arange(2 * 3 * 5 * 4, dtype=np.float64).reshape(2, 3, 5, 4))
    unfold, fold = nn.Unfold((2, 3), 1, 1, 2), nn.Fold((5, 4), (2, 3), 1, 1, 2)  # ..., dilation, padding, stride
    cols = unfold(x)
    np.testing.assert_array_equal(cols.data, x.unfold2d((2, 3), stride=2, padding=1).data)
    np.testing.assert_array_equal(fold(cols).data, cols.fold2d((5, 4), (2, 3), stride=2, padding=1).data)
    assert repr(unfold) == "Unfold(kernel_size=(2, 3), dilation=1, padding=1, stride=2)"
    assert repr(fold) == "Fold(output_size=(5, 4), kernel_size=(2, 3), dilation=1, padding=1, stride=2)"


@pytest.mark.parametrize(("shape", "kwargs", "fragments"), [
    ((2, 4, 4, 1), {"output_size": 3, "kernel_size": 2}, ["fold2d", "3-D", "(2, 4, 4, 1)"]),
    ((1, 6, 4), {"output_size": 3, "kernel_size": 2}, ["fold2d", "6 rows", "kh·kw = 4"]),
    ((1, 8, 5), {"output_size": 3, "kernel_size": 2}, ["fold2d", "2×2 windows", "L = 5"]),
    ((1, 4, 4), {"output_size": 0, "kernel_size": 2}, ["fold2d", "output_size"]),
])
def test_bad_fold_arguments_raise_clear_errors(shape, kwargs, fragments):
    with pytest.raises(ValueError) as info:
        Tensor(np.zeros(shape)).fold2d(**kwargs)
    missing = [f for f in fragments if f not in str(info.value)]
    assert not missing, f"{missing} not in {str(info.value)!r}"
