"""Tests for tinygrad_cnn.nn.functional: hand-computed values, PyTorch comparisons, gradchecks, errors."""

from __future__ import annotations

import math

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given

from tinygrad_cnn import Tensor, gradcheck, gradgradcheck
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.testing import shapes


def _r(*shape, seed=0, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, shape)


def _t64(*shape, seed=0, low=-2.0, high=2.0):
    return Tensor(_r(*shape, seed=seed, low=low, high=high), requires_grad=True)


# ============================================================================ by hand, no torch
def test_linear_on_known_weights():
    x = Tensor(np.array([[1.0, 2.0]], dtype=np.float32))
    w = Tensor(np.array([[1.0, 0.0], [2.0, -1.0], [0.5, 0.5]], dtype=np.float32), requires_grad=True)
    b = Tensor(np.array([0.0, 1.0, -1.0], dtype=np.float32), requires_grad=True)
    y = F.linear(x, w, b)
    np.testing.assert_allclose(y.data, [[1.0, 1.0, 0.5]])
    y.sum().backward()
    np.testing.assert_allclose(w.grad.data, [[1, 2], [1, 2], [1, 2]])  # dW = gᵀ x
    np.testing.assert_allclose(b.grad.data, [1, 1, 1])
    assert w.grad.data.flags.c_contiguous  # in W's own layout: optimizers sweep it fast


def test_cross_entropy_two_classes_by_hand():
    logits = Tensor(np.array([[2.0, 0.0], [0.0, 0.0]], dtype=np.float32), requires_grad=True)
    target = Tensor(np.array([0, 1]))
    loss = F.cross_entropy(logits, target)
    expected = (math.log(1 + math.exp(-2)) + math.log(2)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    p = 1 / (1 + math.exp(-2))  # softmax(x)[0] for the first row
    np.testing.assert_allclose(logits.grad.data, [[(p - 1) / 2, (1 - p) / 2], [0.25, -0.25]], rtol=1e-6)
    smooth = F.cross_entropy(logits, target, label_smoothing=0.2, reduction="none")
    row0 = 0.9 * math.log(1 + math.exp(-2)) + 0.1 * (2 + math.log(1 + math.exp(-2)))  # q = (0.9, 0.1)
    np.testing.assert_allclose(smooth.data, [row0, math.log(2)], rtol=1e-6)


def test_mse_and_bce_by_hand():
    x = Tensor(np.array([1.0, 2.0, 4.0], dtype=np.float32), requires_grad=True)
    y = np.array([1.0, 0.0, 1.0], dtype=np.float32)
    assert F.mse_loss(x, y).item() == pytest.approx((0 + 4 + 9) / 3)
    assert F.mse_loss(x, y, reduction="sum").item() == pytest.approx(13)
    np.testing.assert_allclose(F.mse_loss(x, y, reduction="none").data, [0, 4, 9])
    z = Tensor(np.array([0.0], dtype=np.float32), requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(z, np.array([1.0], dtype=np.float32))
    assert loss.item() == pytest.approx(math.log(2))
    loss.backward()
    assert z.grad.item() == pytest.approx(-0.5)  # σ(0) - y, exactly at the kink of max(x, 0) and |x|


def test_losses_are_stable_at_huge_logits():
    big = Tensor(np.array([[1e4, -1e4, 0.0]], dtype=np.float32), requires_grad=True)
    loss = F.cross_entropy(big, np.array([1]))
    assert loss.item() == pytest.approx(2e4)
    loss.backward()
    assert np.isfinite(big.grad.data).all()
    x = Tensor(np.array([1e4, -1e4], dtype=np.float32), requires_grad=True)
    bce = F.binary_cross_entropy_with_logits(x, np.array([0.0, 1.0], dtype=np.float32), reduction="none")
    np.testing.assert_allclose(bce.data, [1e4, 1e4])
    bce.sum().backward()
    np.testing.assert_allclose(x.grad.data, [1, -1])


def test_losses_keep_float32():
    x = Tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    assert F.cross_entropy(x, np.array([0, 2])).dtype == np.float32
    assert F.mse_loss(x, np.zeros((2, 3))).dtype == np.float32  # a float64 target does not upcast the loss
    assert F.binary_cross_entropy_with_logits(x, np.ones((2, 3), dtype=np.int64)).dtype == np.float32


# ============================================================================ errors
def test_class_target_errors():
    logits = Tensor(np.zeros((4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"cross_entropy.*\(4, 3\).*\(4,\).*\(5,\)"):
        F.cross_entropy(logits, np.zeros(5, dtype=np.int64))
    with pytest.raises(TypeError, match="class indices"):
        F.cross_entropy(logits, np.zeros(4, dtype=np.float32))
    with pytest.raises(IndexError, match="target 3 is out of bounds for 3 classes"):
        F.cross_entropy(logits, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="nll_loss"):
        F.nll_loss(logits, np.zeros((4, 1), dtype=np.int64))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(logits, np.zeros(4, dtype=np.int64), reduction="avg")
    with pytest.raises(TypeError, match="floating point"):
        F.cross_entropy(Tensor(np.zeros((4, 3), dtype=np.int64)), np.zeros(4, dtype=np.int64))


def test_same_shape_loss_errors():
    x = Tensor(np.zeros((4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"mse_loss.*\(4,\).*\(4, 3\)"):
        F.mse_loss(x, np.zeros(4, dtype=np.float32))  # no silent broadcasting
    with pytest.raises(ValueError, match="binary_cross_entropy_with_logits"):
        F.binary_cross_entropy_with_logits(x, np.zeros((3, 4), dtype=np.float32))


def test_linear_shape_errors():
    with pytest.raises(ValueError, match=r"linear.*\(2, 3\).*\(4, 5\)"):
        F.linear(Tensor(np.zeros((2, 3), dtype=np.float32)), Tensor(np.zeros((4, 5), dtype=np.float32)))


# ============================================================================ against PyTorch
def _vs_torch(torch, our_fn, torch_fn, *arrays, grad_args=None, atol=1e-10, rtol=1e-7):
    """Compare float64 outputs and the gradients of the float inputs listed in `grad_args` (default all)."""
    grad_args = range(len(arrays)) if grad_args is None else grad_args
    ours = [Tensor(a, requires_grad=i in grad_args) for i, a in enumerate(arrays)]
    theirs = [torch.tensor(a, requires_grad=i in grad_args) for i, a in enumerate(arrays)]
    got, expected = our_fn(*ours), torch_fn(*theirs)
    np.testing.assert_allclose(got.data, expected.detach().numpy(), atol=atol, rtol=rtol)
    upstream = np.random.default_rng(7).standard_normal(got.shape)
    got.backward(upstream)
    expected.backward(torch.tensor(upstream))
    for i in grad_args:
        np.testing.assert_allclose(ours[i].grad.data, theirs[i].grad.numpy(), atol=atol, rtol=rtol,
                                   err_msg=f"grad of argument {i}")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_matches_torch(torch, reduction, smoothing):
    target = np.array([0, 4, 2, 2, 1, 3])
    tf = torch.nn.functional
    _vs_torch(torch, lambda x, t: F.cross_entropy(x, t, reduction=reduction, label_smoothing=smoothing),
              lambda x, t: tf.cross_entropy(x, t, reduction=reduction, label_smoothing=smoothing),
              _r(6, 5) * 3, target, grad_args=[0])


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_cross_entropy_spatial_ignore_index_and_unbatched(torch, smoothing):
    tf = torch.nn.functional
    target = np.random.default_rng(1).integers(0, 4, (2, 3, 5))
    target[0, 1, 2] = target[1, 2, 4] = -100
    _vs_torch(torch, lambda x, t: F.cross_entropy(x, t, label_smoothing=smoothing),
              lambda x, t: tf.cross_entropy(x, t, label_smoothing=smoothing), _r(2, 4, 3, 5), target,
              grad_args=[0])
    _vs_torch(torch, lambda x, t: F.cross_entropy(x, t, ignore_index=1),
              lambda x, t: tf.cross_entropy(x, t, ignore_index=1), _r(4, 3), np.array([0, 1, 2, 1]),
              grad_args=[0])
    _vs_torch(torch, lambda x, t: F.cross_entropy(x, t), lambda x, t: tf.cross_entropy(x, t), _r(5),
              np.array(3), grad_args=[0])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_mse_bce_match_torch(torch, reduction):
    tf = torch.nn.functional
    _vs_torch(torch, lambda x, t: F.nll_loss(x.log_softmax(1), t, reduction=reduction),
              lambda x, t: tf.nll_loss(x.log_softmax(1), t, reduction=reduction), _r(4, 3), np.array([2, 0, 1, 1]),
              grad_args=[0])
    _vs_torch(torch, lambda x, y: F.mse_loss(x, y, reduction=reduction),
              lambda x, y: tf.mse_loss(x, y, reduction=reduction), _r(3, 4), _r(3, 4, seed=1))
    logits = _r(3, 4) * 10
    logits[0, 0] = 0.0
    _vs_torch(torch, lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction=reduction),
              lambda x, y: tf.binary_cross_entropy_with_logits(x, y, reduction=reduction), logits,
              _r(3, 4, seed=2, low=0, high=1), atol=1e-12, rtol=1e-6)


def test_activations_and_linear_match_torch(torch):
    tf = torch.nn.functional
    for ours, theirs in [(F.relu, tf.relu), (F.sigmoid, torch.sigmoid), (F.tanh, torch.tanh),
                         (lambda x: F.softmax(x, dim=1), lambda x: tf.softmax(x, dim=1)),
                         (lambda x: F.log_softmax(x, dim=0), lambda x: tf.log_softmax(x, dim=0))]:
        _vs_torch(torch, ours, theirs, _r(3, 4))
    _vs_torch(torch, F.linear, tf.linear, _r(5, 3), _r(4, 3, seed=1), _r(4, seed=2))
    _vs_torch(torch, F.linear, tf.linear, _r(2, 5, 3), _r(4, 3, seed=1))  # 3-D input, no bias
    _vs_torch(torch, F.linear, tf.linear, _r(3), _r(4, 3, seed=1), _r(4, seed=2))  # 1-D input


def test_conv_and_pool_functionals_match_torch(torch):
    tf = torch.nn.functional
    x, w, b = _r(2, 4, 6, 5), _r(6, 2, 3, 3, seed=1), _r(6, seed=2)
    _vs_torch(torch, lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, dilation=1, groups=2),
              lambda x, w, b: tf.conv2d(x, w, b, stride=2, padding=1, dilation=1, groups=2), x, w, b)
    _vs_torch(torch, lambda x: F.max_pool2d(x, 3, 2, 1), lambda x: tf.max_pool2d(x, 3, 2, 1), x)
    _vs_torch(torch, lambda x: F.avg_pool2d(x, 2), lambda x: tf.avg_pool2d(x, 2), x)


def test_fused_linear_equals_composite():
    x, w, b = _t64(5, 3), _t64(4, 3, seed=1), _t64(4, seed=2)
    fused = F.linear(x, w, b)
    composite = x @ w.T + b
    np.testing.assert_allclose(fused.data, composite.data, rtol=1e-12)
    grads = []
    for out in (fused, composite):
        x.grad = w.grad = b.grad = None
        (out * Tensor(_r(5, 4, seed=3))).sum().backward()
        grads.append([t.grad.data for t in (x, w, b)])
    for g_fused, g_composite in zip(*grads):
        np.testing.assert_allclose(g_fused, g_composite, rtol=1e-12)
    assert F.linear(Tensor(_r(5, 3).astype(np.float32)), w).dtype == np.float64  # mixed dtypes promote


@given(lead=shapes(min_dims=0, max_dims=2, max_side=3), sizes=st.tuples(st.integers(1, 5), st.integers(1, 5)),
       bias=st.booleans(), seed=st.integers(0, 2**16))
def test_fused_linear_gradchecks_on_random_shapes(lead, sizes, bias, seed):
    """The fused LinearFn against central differences, any number of leading batch axes."""
    in_f, out_f = sizes
    inputs = [_t64(*lead, in_f, seed=seed), _t64(out_f, in_f, seed=seed + 1)]
    if bias:
        inputs.append(_t64(out_f, seed=seed + 2))
    assert gradcheck(F.linear, inputs)


def test_dropout_functional():
    x = Tensor(np.ones((10, 10), dtype=np.float32))
    assert F.dropout(x, 0.5, training=False) is x
    Tensor.manual_seed(3)
    y = F.dropout(x, 0.25)
    np.testing.assert_allclose(np.unique(y.data), [0, 4 / 3], rtol=1e-6)
    with pytest.raises(ValueError):
        F.dropout(x, -0.1)


# ============================================================================ gradchecks (float64)
def _seeded_dropout(x):
    Tensor.manual_seed(11)  # the same mask on every evaluation
    return F.dropout(x, 0.4)


@pytest.mark.parametrize("name, fn, shapes", [
    ("relu", F.relu, [(3, 4)]),
    ("sigmoid", F.sigmoid, [(3, 4)]),
    ("tanh", F.tanh, [(3, 4)]),
    ("softmax", lambda x: F.softmax(x, dim=0), [(3, 4)]),
    ("log_softmax", F.log_softmax, [(3, 4)]),
    ("linear", F.linear, [(3, 4), (2, 4), (2,)]),
    ("linear_3d", F.linear, [(2, 3, 4), (2, 4)]),
    ("conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), [(1, 2, 5, 5), (3, 2, 3, 3), (3,)]),
    ("max_pool2d", lambda x: F.max_pool2d(x, 2, 1), [(1, 2, 4, 4)]),
    ("avg_pool2d", lambda x: F.avg_pool2d(x, 3, 2, 1), [(1, 2, 5, 5)]),
    ("dropout", _seeded_dropout, [(4, 5)]),
    ("cross_entropy", lambda x: F.cross_entropy(x, np.array([1, 0, 3]), label_smoothing=0.1), [(3, 4)]),
    ("cross_entropy_spatial", lambda x: F.cross_entropy(x, np.array([[1, 0], [2, -100]])), [(2, 3, 2)]),
    ("nll_loss", lambda x: F.nll_loss(x, np.array([1, 0, 3]), reduction="sum"), [(3, 4)]),
    ("mse_loss", F.mse_loss, [(3, 4), (3, 4)]),
    ("bce_with_logits", lambda x: F.binary_cross_entropy_with_logits(x, _r(3, 4, seed=5, low=0, high=1)),
     [(3, 4)]),
])
def test_gradcheck_functionals(name, fn, shapes):
    inputs = [_t64(*s, seed=i + 10) for i, s in enumerate(shapes)]
    if name == "max_pool2d":  # distinct values: no ties, where a max is not differentiable
        inputs[0].data[...] = np.random.default_rng(0).permutation(inputs[0].numel()).reshape(inputs[0].shape) / 7
    assert gradcheck(fn, inputs)


def test_gradgradcheck_linear_and_cross_entropy():
    assert gradgradcheck(F.linear, [_t64(3, 4), _t64(2, 4, seed=1), _t64(2, seed=2)])
    assert gradgradcheck(lambda x: F.cross_entropy(x, np.array([1, 0, 2])), [_t64(3, 3)])
