"""Tests for tinygrad_cnn.nn.utils: gradient clipping and parameter vectors, against torch.nn.utils.

The same gradients go to both libraries; the returned norm and the clipped
gradients must agree for the 1-, 2-, ∞- and other p-norms, with parameters
that have no gradient mixed in. The vector functions must round-trip.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.testing import examples, seeds, shapes

NORMS = [1.0, 2.0, math.inf, 0.5, 3.0]


def _params(seed, param_shapes, missing):
    """(ours, torch's) parameter lists with the same float64 gradients; `missing[i]` leaves grad None."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    ours, theirs = [], []
    for shape, skip in zip(param_shapes, missing):
        data, grad = rng.standard_normal(shape), rng.standard_normal(shape) * 3
        p, q = Tensor(data.copy(), requires_grad=True), torch.tensor(data, requires_grad=True)
        if not skip:
            p.grad, q.grad = Tensor(grad.copy()), torch.tensor(grad)
        ours.append(p)
        theirs.append(q)
    return ours, theirs


def _assert_same_grads(ours, theirs, rtol=1e-12):
    for p, q in zip(ours, theirs):
        assert (p.grad is None) == (q.grad is None)
        if p.grad is not None:
            assert p.grad.dtype == q.grad.numpy().dtype
            np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=rtol, atol=1e-300)


@st.composite
def parameter_sets(draw):
    n = draw(st.integers(1, 4))
    return draw(seeds), draw(st.lists(shapes(max_dims=3, max_side=4), min_size=n, max_size=n)), draw(
        st.lists(st.booleans(), min_size=n, max_size=n))


@examples(40)
@given(params=parameter_sets(), norm_type=st.sampled_from(NORMS), max_norm=st.sampled_from([0.1, 1.0, 5.0, 1e3]))
def test_clip_grad_norm_matches_torch(torch, params, norm_type, max_norm):
    """The returned norm (before clipping) and the clipped gradients, clipping or not."""
    ours, theirs = _params(*params)
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert isinstance(total, Tensor) and total.shape == () and total.dtype == expected.numpy().dtype
    np.testing.assert_allclose(total.data, expected.numpy(), rtol=1e-12)
    _assert_same_grads(ours, theirs)


@examples(20)
@given(params=parameter_sets(), norm_type=st.sampled_from(NORMS), max_norm=st.sampled_from([0.5, 1e3]))
def test_get_total_norm_and_clip_grads_with_norm_match_torch(torch, params, norm_type, max_norm):
    ours, theirs = _params(*params)
    total = nn.utils.get_total_norm([p.grad for p in ours if p.grad is not None], norm_type)
    expected = torch.nn.utils.get_total_norm([q.grad for q in theirs if q.grad is not None], norm_type)
    np.testing.assert_allclose(total.data, expected.numpy(), rtol=1e-12)
    nn.utils.clip_grads_with_norm_(ours, max_norm, total)
    torch.nn.utils.clip_grads_with_norm_(theirs, max_norm, expected)
    _assert_same_grads(ours, theirs)


@examples(20)
@given(params=parameter_sets(), clip_value=st.sampled_from([0.0, 0.5, 2.0, 100.0]))
def test_clip_grad_value_matches_torch(torch, params, clip_value):
    ours, theirs = _params(*params)
    assert nn.utils.clip_grad_value_(ours, clip_value) is None
    if any(q.grad is not None for q in theirs):  # PyTorch 2.13 fails on a list without gradients
        torch.nn.utils.clip_grad_value_(theirs, clip_value)
    _assert_same_grads(ours, theirs, rtol=0)


def test_float32_gradients_stay_float32_and_match_torch(torch):
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((64, 32)).astype(np.float32), rng.standard_normal(32).astype(np.float32)]
    ours = [Tensor(np.zeros_like(g), requires_grad=True) for g in grads]
    theirs = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for p, q, g in zip(ours, theirs, grads):
        p.grad, q.grad = Tensor(g.copy()), torch.tensor(g)
    total = nn.utils.clip_grad_norm_(ours, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert total.dtype == np.float32
    np.testing.assert_allclose(total.data, expected.numpy(), rtol=1e-6)
    for p, q in zip(ours, theirs):
        assert p.grad.dtype == np.float32
        np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=1e-6)


def test_a_single_tensor_a_generator_and_no_gradients():
    p = Tensor(np.zeros(3), requires_grad=True)
    p.grad = Tensor(np.array([3.0, 0.0, 4.0]))
    assert nn.utils.clip_grad_norm_(p, 1.0).item() == 5.0  # a single Tensor
    np.testing.assert_allclose(p.grad.data, [0.6, 0.0, 0.8], rtol=1e-6)
    model = nn.Linear(2, 1)
    model(Tensor(np.ones((1, 2), dtype=np.float32))).sum().backward()
    assert nn.utils.clip_grad_norm_(model.parameters(), 10.0, "inf").item() == 1.0  # a generator; 'inf' as PyTorch
    unused = Tensor(np.ones(2), requires_grad=True)
    total = nn.utils.clip_grad_norm_([unused], 1.0)
    assert total.item() == 0.0 and total.dtype == np.float32 and unused.grad is None  # PyTorch's tensor(0.)


def test_gradients_are_replaced_not_written_into():
    """A gradient array may be shared (optim.py's zero_grad comment): clipping leaves the old array alone."""
    shared = np.array([3.0, 4.0])
    a, b = Tensor(np.zeros(2), requires_grad=True), Tensor(np.zeros(2), requires_grad=True)
    a.grad = b.grad = Tensor(shared)
    nn.utils.clip_grad_norm_([a], 1.0)
    nn.utils.clip_grad_value_([b], 3.5)
    np.testing.assert_array_equal(shared, [3.0, 4.0])
    np.testing.assert_allclose(a.grad.data, [0.6, 0.8], rtol=1e-6)
    np.testing.assert_array_equal(b.grad.data, [3.0, 3.5])


def test_nonfinite_norms(torch):
    for bad in (np.inf, np.nan):
        p = Tensor(np.zeros(2), requires_grad=True)
        p.grad = Tensor(np.array([1.0, bad]))
        with pytest.raises(RuntimeError, match="non-finite"):
            nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
        q = torch.zeros(2, dtype=torch.float64, requires_grad=True)
        q.grad = torch.tensor([1.0, bad], dtype=torch.float64)
        with np.errstate(invalid="ignore"):  # inf · 0 = nan
            total = nn.utils.clip_grad_norm_([p], 1.0)
        np.testing.assert_array_equal(total.data, torch.nn.utils.clip_grad_norm_([q], 1.0).numpy())
        np.testing.assert_array_equal(p.grad.data, q.grad.numpy())  # scaled by 0 (inf) or nan, as PyTorch


# ============================================================================ parameter vectors
@examples(30)
@given(param_shapes=st.lists(shapes(max_dims=3, max_side=4), min_size=1, max_size=4), seed=seeds)
def test_parameters_to_vector_and_back(param_shapes, seed):
    rng = np.random.default_rng(seed)
    params = [Tensor(rng.standard_normal(s), requires_grad=True) for s in param_shapes]
    vec = nn.utils.parameters_to_vector(params)
    assert vec.shape == (sum(p.numel() for p in params),)
    np.testing.assert_array_equal(vec.data, np.concatenate([p.data.reshape(-1) for p in params]))
    targets = [Tensor(np.zeros(s), requires_grad=True) for s in param_shapes]
    nn.utils.vector_to_parameters(vec * 2.0, targets)
    for p, t in zip(params, targets):
        assert t.shape == p.shape and t.is_leaf and t.requires_grad
        np.testing.assert_array_equal(t.data, p.data * 2)
    vec.sum().backward()  # differentiable: reshape and cat
    for p in params:
        np.testing.assert_array_equal(p.grad.data, np.ones(p.shape))


def test_parameter_vectors_match_torch(torch):
    ours, theirs = _params(0, [(3, 2), (4,), ()], [False] * 3)
    vec = nn.utils.parameters_to_vector(ours)
    np.testing.assert_array_equal(vec.data, torch.nn.utils.parameters_to_vector(theirs).detach().numpy())
    new = np.arange(vec.numel(), dtype=np.float64)
    nn.utils.vector_to_parameters(Tensor(new), ours)
    torch.nn.utils.vector_to_parameters(torch.tensor(new), theirs)
    for p, q in zip(ours, theirs):
        np.testing.assert_array_equal(p.data, q.detach().numpy())


def test_vector_to_parameters_copies_into_each_parameters_dtype():
    p = Tensor(np.zeros((2, 2), dtype=np.float32), requires_grad=True)
    vec = Tensor(np.arange(4.0))
    nn.utils.vector_to_parameters(vec, [p])
    assert p.dtype == np.float32 and not np.shares_memory(p.data, vec.data)
    np.testing.assert_array_equal(p.data, [[0, 1], [2, 3]])


def test_vector_errors():
    p = Tensor(np.zeros(3), requires_grad=True)
    with pytest.raises(TypeError, match="vector_to_parameters: expected a Tensor, got ndarray"):
        nn.utils.vector_to_parameters(np.zeros(3), [p])
    with pytest.raises(ValueError, match=r"1-D vector of 3 elements.*\(4,\)"):
        nn.utils.vector_to_parameters(Tensor(np.zeros(4)), [p])
    with pytest.raises(ValueError, match=r"\(3, 1\)"):
        nn.utils.vector_to_parameters(Tensor(np.zeros((3, 1))), [p])
    with pytest.raises(ValueError, match="no parameters"):
        nn.utils.parameters_to_vector([])
    with pytest.raises(TypeError, match="clip_grad_norm_: expected Tensors, got ndarray"):
        nn.utils.clip_grad_norm_([np.zeros(3)], 1.0)
