"""Tests for the losses of tinygrad_cnn.nn.functional against PyTorch, gradcheck and their errors.

Each loss is compared with `torch.nn.functional`'s in float64 over Hypothesis-drawn
shapes, reductions and options: the value, the gradients with respect to input
and target, and a Hessian-vector product (the second derivatives). The kinks
(l1 at 0, smooth_l1 and huber at |d| = β, δ, bce at probabilities 0 and 1) are
compared one by one. gradcheck and gradgradcheck run without torch, on inputs
kept away from the kinks.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_cnn import Tensor, autograd, gradcheck, gradgradcheck
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.testing import examples, seeds, shapes

REDUCTIONS = ("mean", "sum", "none")
SMALL = shapes(max_dims=3, max_side=4)


# ============================================================================ comparing with torch
def _ours_grad(out, inputs, upstream, create_graph):
    """d⟨upstream, out⟩ / d inputs, zeros for an input the graph does not reach."""
    if not out.requires_grad:
        return [Tensor(np.zeros(x.shape)) for x in inputs]
    grads = autograd.grad(out, inputs, Tensor(upstream), create_graph=create_graph, allow_unused=True)
    return [Tensor(np.zeros(x.shape)) if g is None else g for x, g in zip(inputs, grads)]


def _torch_grad(torch, out, inputs, upstream, create_graph):
    """The same with torch.autograd."""
    if not out.requires_grad:
        return [torch.zeros(x.shape, dtype=torch.float64) for x in inputs]
    grads = torch.autograd.grad(out, inputs, torch.tensor(upstream), create_graph=create_graph, allow_unused=True)
    return [torch.zeros(x.shape, dtype=torch.float64) if g is None else g for x, g in zip(inputs, grads)]


def _numpy(t):
    """Our Tensor's or torch's values (a torch ZeroTensor included)."""
    return t.data if isinstance(t, Tensor) else t.detach().numpy(force=True)


def compare(torch, ours, theirs, arrays, grad_args=(0, 1), second=True, rtol=1e-7, atol=1e-10):
    """Value, first derivatives and a Hessian-vector product of ours(*tensors) against theirs(*torch tensors).

    The first derivatives are of ⟨v, loss⟩ for a random v; the second, of
    Σᵢ ⟨uᵢ, ∂⟨v, loss⟩/∂argᵢ⟩ for random uᵢ, with respect to every argument in `grad_args`.
    """
    mine = [Tensor(np.array(a, dtype=np.float64), requires_grad=i in grad_args) for i, a in enumerate(arrays)]
    torchs = [torch.tensor(np.array(a, dtype=np.float64), requires_grad=i in grad_args) for i, a in enumerate(arrays)]
    out, expected = ours(*mine), theirs(*torchs)
    assert out.dtype == np.float64 and out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.data, _numpy(expected), rtol=rtol, atol=atol, err_msg="value")
    rng = np.random.default_rng(3)
    v = rng.standard_normal(out.shape)
    wrt, wrt_torch = [mine[i] for i in grad_args], [torchs[i] for i in grad_args]
    g = _ours_grad(out, wrt, v, second)
    gt = _torch_grad(torch, expected, wrt_torch, v, second)
    for i, a, b in zip(grad_args, g, gt):
        np.testing.assert_allclose(a.data, _numpy(b), rtol=rtol, atol=atol, err_msg=f"gradient of argument {i}")
    if not second:
        return
    us = [rng.standard_normal(x.shape) for x in wrt]
    s = sum(((gi * u).sum() for gi, u in zip(g, us)), Tensor(np.zeros(())))
    s_torch = sum(((gi * torch.tensor(u)).sum() for gi, u in zip(gt, us)), torch.zeros((), dtype=torch.float64))
    h = _ours_grad(s, wrt, np.ones(()), False)
    ht = _torch_grad(torch, s_torch, wrt_torch, np.ones(()), False)
    for i, a, b in zip(grad_args, h, ht):
        np.testing.assert_allclose(a.data, _numpy(b), rtol=1e-6, atol=1e-8, err_msg=f"second derivative, argument {i}")


def _arrays(seed, shape, low_x=-2.0, high_x=2.0, low_y=-2.0, high_y=2.0):
    rng = np.random.default_rng(seed)
    return rng.uniform(low_x, high_x, shape), rng.uniform(low_y, high_y, shape)


def _weight(seed, shape):
    return np.random.default_rng(seed + 1).uniform(0.1, 2.0, shape)


POINTWISE = ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
             "binary_cross_entropy_with_logits", "kl_div"]


@pytest.mark.parametrize("name", POINTWISE)
@examples(12)
@given(shape=SMALL, seed=seeds, reduction=st.sampled_from(REDUCTIONS), option=st.integers(0, 3))
def test_pointwise_losses_match_torch(torch, name, shape, seed, reduction, option):
    """Value, gradients (input and target) and second derivatives, with each loss's options."""
    tf = torch.nn.functional
    x, y = _arrays(seed, shape)
    w = _weight(seed, shape)
    kwargs, torch_kwargs, arrays = {"reduction": reduction}, {"reduction": reduction}, [x, y]
    if name in ("mse_loss", "l1_loss", "huber_loss") and option % 2:
        arrays.append(w)  # an element weight, differentiable as in PyTorch
    if name == "smooth_l1_loss":
        kwargs["beta"] = torch_kwargs["beta"] = (0.0, 0.5, 1.0, 2.0)[option]
    if name == "huber_loss":
        kwargs["delta"] = torch_kwargs["delta"] = (0.5, 1.5)[option // 2]
    if name == "binary_cross_entropy":
        x, y = _arrays(seed, shape, 0.02, 0.98, 0.0, 1.0)
        arrays = [x, y]
        if option % 2:
            kwargs["weight"], torch_kwargs["weight"] = Tensor(w), torch.tensor(w)
    if name == "binary_cross_entropy_with_logits":
        x = x * 5
        arrays = [x, y * 0.25 + 0.5]
        if option & 1:
            kwargs["weight"], torch_kwargs["weight"] = Tensor(w), torch.tensor(w)
        if option & 2:
            pos = w[(0,) * (len(shape) - 1)] if shape else w  # broadcast along the last axis, as PyTorch's doc
            kwargs["pos_weight"], torch_kwargs["pos_weight"] = Tensor(pos), torch.tensor(pos)
    if name == "kl_div":
        log_target = option >= 2
        kwargs["log_target"] = torch_kwargs["log_target"] = log_target
        y = np.log(y * 0.2 + 0.5) if log_target else y * 0.2 + 0.5
        arrays = [x, y]
        if option % 2:
            kwargs["reduction"] = torch_kwargs["reduction"] = "batchmean"
    ours, theirs = getattr(F, name), getattr(tf, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kl_div's 'mean' warning in PyTorch
        compare(torch, lambda *t: ours(*t[:2], **kwargs, **({"weight": t[2]} if len(t) > 2 else {})),
                lambda *t: theirs(*t[:2], **torch_kwargs, **({"weight": t[2]} if len(t) > 2 else {})),
                arrays, grad_args=tuple(range(len(arrays))))


@st.composite
def class_problems(draw):
    """(logits, integer targets) of shape (N, C, d...) / (N, d...) or unbatched (C,) / (), some targets ignored."""
    seed = draw(seeds)
    rng = np.random.default_rng(seed)
    classes = draw(st.integers(1, 4))
    unbatched = draw(st.booleans()) and draw(st.booleans())
    batch = () if unbatched else (draw(st.integers(1, 4)), *draw(st.lists(st.integers(1, 3), max_size=2)))
    logits_shape = (classes,) if unbatched else (*batch[:1], classes, *batch[1:])
    x = rng.standard_normal(logits_shape) * 2
    t = rng.integers(0, classes, batch)
    ignore_index = draw(st.sampled_from([-100, -1, 0, classes - 1]))
    share = draw(st.sampled_from([0.0, 0.3, 1.0]))  # how many targets are set to ignore_index (1.0: all)
    t = np.where(rng.random(batch) < share, ignore_index, t)
    weight = rng.uniform(0.2, 2.0, classes) if draw(st.booleans()) else None
    return x, t, ignore_index, weight


@examples(60)
@given(problem=class_problems(), reduction=st.sampled_from(REDUCTIONS),
       smoothing=st.sampled_from([0.0, 0.1, 0.5, 1.0]))
def test_cross_entropy_and_nll_with_weights_ignore_index_and_smoothing_match_torch(torch, problem, reduction,
                                                                                     smoothing):
    x, t, ignore_index, weight = problem
    tf = torch.nn.functional
    ours_w, torch_w = (None, None) if weight is None else (Tensor(weight), torch.tensor(weight))
    compare(torch, lambda a: F.cross_entropy(a, t, weight=ours_w, ignore_index=ignore_index, reduction=reduction,
                                             label_smoothing=smoothing),
            lambda a: tf.cross_entropy(a, torch.tensor(t), weight=torch_w, ignore_index=ignore_index,
                                       reduction=reduction, label_smoothing=smoothing),
            [x], grad_args=(0,))
    compare(torch, lambda a: F.nll_loss(a, t, weight=ours_w, ignore_index=ignore_index, reduction=reduction),
            lambda a: tf.nll_loss(a, torch.tensor(t), weight=torch_w, ignore_index=ignore_index,
                                  reduction=reduction),
            [x], grad_args=(0,))


@examples(40)
@given(problem=class_problems(), reduction=st.sampled_from(REDUCTIONS), smoothing=st.sampled_from([0.0, 0.2, 1.0]))
def test_cross_entropy_with_class_probabilities_matches_torch(torch, problem, reduction, smoothing):
    """A float target of the input's shape: differentiable, weighted, smoothed; the mean is over samples."""
    x, _, _, weight = problem
    axis = 1 if x.ndim >= 2 else 0
    p = np.random.default_rng(x.size).random(x.shape)
    p /= p.sum(axis=axis, keepdims=True)
    tf = torch.nn.functional
    ours_w, torch_w = (None, None) if weight is None else (Tensor(weight), torch.tensor(weight))
    compare(torch, lambda a, b: F.cross_entropy(a, b, weight=ours_w, reduction=reduction, label_smoothing=smoothing),
            lambda a, b: tf.cross_entropy(a, b, weight=torch_w, reduction=reduction, label_smoothing=smoothing),
            [x, p])


def test_empty_batches_give_nan_means_like_torch(torch):
    tf = torch.nn.functional
    x = np.zeros((0, 3))
    for ours, theirs in [(lambda a: F.cross_entropy(a, np.zeros(0, dtype=np.int64)),
                          lambda a: tf.cross_entropy(a, torch.zeros(0, dtype=torch.int64))),
                         (lambda a: F.cross_entropy(a, np.zeros((0, 3))),
                          lambda a: tf.cross_entropy(a, torch.zeros(0, 3))),
                         (lambda a: F.l1_loss(a, np.zeros((0, 3))), lambda a: tf.l1_loss(a, torch.zeros(0, 3))),
                         (lambda a: F.kl_div(a, np.zeros((0, 3)), reduction="batchmean"),
                          lambda a: tf.kl_div(a, torch.zeros(0, 3), reduction="batchmean"))]:
        compare(torch, ours, theirs, [x], grad_args=(0,), second=False)


def test_positional_arguments_follow_torch(torch):
    """weight, size_average, ignore_index, reduce, reduction, label_smoothing: PyTorch's order."""
    tf = torch.nn.functional
    x, t, w = np.random.default_rng(0).standard_normal((5, 3)), np.array([0, 2, 1, 2, 0]), np.array([1.0, 2.0, 0.5])
    args = (None, 2, None, "sum", 0.1)
    compare(torch, lambda a: F.cross_entropy(a, t, Tensor(w), *args),
            lambda a: tf.cross_entropy(a, torch.tensor(t), torch.tensor(w), *args), [x], grad_args=(0,))
    compare(torch, lambda a: F.nll_loss(a, t, Tensor(w), *args[:4]),
            lambda a: tf.nll_loss(a, torch.tensor(t), torch.tensor(w), *args[:4]), [x], grad_args=(0,))
    compare(torch, lambda a, b: F.huber_loss(a, b, "sum", 0.5), lambda a, b: tf.huber_loss(a, b, "sum", 0.5),
            [x, x[::-1]])
    compare(torch, lambda a, b: F.smooth_l1_loss(a, b, None, None, "none", 0.5),
            lambda a, b: tf.smooth_l1_loss(a, b, None, None, "none", 0.5), [x, x[::-1]])


@pytest.mark.parametrize("size_average, reduce", [(False, None), (None, False), (True, True), (False, True)])
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "smooth_l1_loss", "binary_cross_entropy",
                                  "binary_cross_entropy_with_logits", "kl_div", "nll_loss", "cross_entropy"])
def test_deprecated_size_average_and_reduce_match_torch(torch, name, size_average, reduce):
    x, y = _arrays(0, (3, 4), 0.1, 0.9, 0.0, 1.0)
    if name in ("nll_loss", "cross_entropy"):
        y = np.array([0, 3, 1])
    ours, theirs = getattr(F, name), getattr(torch.nn.functional, name)
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        got = ours(Tensor(x), y, size_average=size_average, reduce=reduce)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = theirs(torch.tensor(x), torch.tensor(y), size_average=size_average, reduce=reduce)
    np.testing.assert_allclose(got.data, expected.numpy(), rtol=1e-7)


# ============================================================================ kinks, against torch
@pytest.mark.parametrize("name, kwargs, points", [
    ("l1_loss", {}, [0.0, 1.0, -1.0]),
    ("smooth_l1_loss", {"beta": 0.5}, [0.5, -0.5, 0.0]),
    ("smooth_l1_loss", {"beta": 0.0}, [0.0, 0.5, -0.5]),
    ("huber_loss", {"delta": 0.5}, [0.5, -0.5, 0.0]),
    ("huber_loss", {"delta": 2.0}, [2.0, -2.0, 0.0]),
])
def test_gradients_at_the_kinks_match_torch(torch, name, kwargs, points):
    """d = x - y exactly at 0 and at ±β (±δ): first and second derivatives as PyTorch's."""
    y = np.array([0.25, -1.0, 3.0])
    x = y + np.array(points)
    ours, theirs = getattr(F, name), getattr(torch.nn.functional, name)
    compare(torch, lambda a, b: ours(a, b, reduction="none", **kwargs),
            lambda a, b: theirs(a, b, reduction="none", **kwargs), [x, y], rtol=0, atol=1e-15)


def test_binary_cross_entropy_at_probabilities_0_and_1_matches_torch(torch):
    """Each log clamped at -100; gradients finite in the input (±1e12 or 0), ±inf in the target, as PyTorch."""
    x = np.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1e-50])
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.3, 0.7, 1.0])
    with np.errstate(divide="ignore"):  # the target's gradient is ln((1-x)/x): ±inf at 0 and 1
        compare(torch, lambda a, b: F.binary_cross_entropy(a, b, reduction="none"),
                lambda a, b: torch.nn.functional.binary_cross_entropy(a, b, reduction="none"), [x, y], second=False)
    assert F.binary_cross_entropy(Tensor(x[:2]), y[:2], reduction="sum").item() == 200.0


def test_binary_cross_entropy_with_logits_at_zero_matches_torch(torch):
    x, y, pos = np.zeros(3), np.array([0.0, 0.4, 1.0]), np.array([0.5, 1.0, 3.0])
    tf = torch.nn.functional
    compare(torch, lambda a, b: F.binary_cross_entropy_with_logits(a, b, pos_weight=Tensor(pos), reduction="none"),
            lambda a, b: tf.binary_cross_entropy_with_logits(a, b, pos_weight=torch.tensor(pos), reduction="none"),
            [x, y], second=False)


def test_huge_logits_stay_finite_with_pos_weight():
    x = Tensor(np.array([1e4, -1e4]), requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(x, np.array([0.0, 1.0]), pos_weight=np.array([3.0, 3.0]),
                                              reduction="none")
    np.testing.assert_allclose(loss.data, [1e4, 3e4])
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.data, [1.0, -3.0])


# ============================================================================ gradcheck, no torch
def _away(d, points, margin=0.1):
    """Shift the values of d within `margin` of any of `points` (the kinks) by 2·margin."""
    d = np.array(d)
    for p in points:
        d = np.where(np.abs(d - p) < margin, d + 2 * margin, d)
    return d


@pytest.mark.parametrize("name", POINTWISE)
@examples(8)
@given(shape=shapes(max_dims=2, max_side=3), seed=seeds, reduction=st.sampled_from(REDUCTIONS))
def test_pointwise_gradcheck_and_gradgradcheck(name, shape, seed, reduction):
    x, y = _arrays(seed, shape)
    kwargs = {"reduction": reduction}
    if name == "l1_loss":
        x = y + _away(x - y, [0.0])
    if name in ("smooth_l1_loss", "huber_loss"):
        kwargs["beta" if name == "smooth_l1_loss" else "delta"] = 0.7
        x = y + _away(x - y, [-0.7, 0.7])
    if name == "binary_cross_entropy":
        x, y = _arrays(seed, shape, 0.1, 0.9, 0.0, 1.0)
    if name == "binary_cross_entropy_with_logits":
        x = _away(x, [0.0])
        kwargs["pos_weight"] = np.full(shape[-1:], 2.0)
    if name == "kl_div":
        y = y * 0.2 + 0.5
    fn = getattr(F, name)
    inputs = [Tensor(x, requires_grad=True), Tensor(y, requires_grad=True)]
    assert gradcheck(lambda a, b: fn(a, b, **kwargs), inputs)
    if name != "l1_loss":  # |d| is piecewise linear: its second derivative is 0, nothing to check
        assert gradgradcheck(lambda a, b: fn(a, b, **kwargs), inputs)


@examples(10)
@given(problem=class_problems(), smoothing=st.sampled_from([0.0, 0.3]), reduction=st.sampled_from(REDUCTIONS))
def test_cross_entropy_gradcheck_and_gradgradcheck(problem, smoothing, reduction):
    x, t, ignore_index, weight = problem
    x = Tensor(x, requires_grad=True)
    fn = lambda a: F.cross_entropy(a, t, weight=weight, ignore_index=ignore_index, reduction=reduction,  # noqa: E731
                                   label_smoothing=smoothing)
    assert gradcheck(fn, [x]) and gradgradcheck(fn, [x])
    p = Tensor(np.full(x.shape, 1.0 / x.shape[1 if x.ndim >= 2 else 0]), requires_grad=True)
    assert gradgradcheck(lambda a, b: F.cross_entropy(a, b, weight=weight, label_smoothing=smoothing), [x, p])


# ============================================================================ by hand, no torch
def test_values_by_hand():
    x, y = Tensor(np.array([0.0, 0.5, 3.0])), np.array([0.0, 0.0, 0.0])
    np.testing.assert_allclose(F.smooth_l1_loss(x, y, reduction="none").data, [0.0, 0.125, 2.5])
    np.testing.assert_allclose(F.huber_loss(x, y, reduction="none", delta=2.0).data, [0.0, 0.125, 4.0])
    np.testing.assert_allclose(F.l1_loss(x, y, weight=np.array([1.0, 2.0, 1.0])).item(), 4.0 / 4.0)
    np.testing.assert_allclose(F.mse_loss(x, y, weight=np.array([1.0, 2.0, 1.0])).item(), 9.5 / 4.0)
    np.testing.assert_allclose(F.huber_loss(x, y, weight=np.array([1.0, 2.0, 1.0])).item(), (0.25 + 2.5) / 3)
    # kl_div: a zero target contributes 0 (y·ln y = 0 there), and batchmean is the KL divergence per sample
    logq = Tensor(np.log(np.array([[0.5, 0.5], [0.25, 0.75]])))
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    expected = (np.log(2) + 0.5 * np.log(2) + 0.5 * np.log(0.5 / 0.75)) / 2
    assert F.kl_div(logq, p, reduction="batchmean").item() == pytest.approx(expected)
    assert F.kl_div(logq, np.log(np.maximum(p, 1e-300)), reduction="batchmean", log_target=True).item() == (
        pytest.approx(expected))


def test_kl_div_target_gradient_is_finite_at_zero():
    """ln y + 1 - x has no finite value at y = 0: we give -x there (PyTorch gives nan)."""
    x, y = Tensor(np.array([0.3, -0.2])), Tensor(np.array([0.0, 0.5]), requires_grad=True)
    F.kl_div(x, y, reduction="sum").backward()
    np.testing.assert_allclose(y.grad.data, [-0.3, np.log(0.5) + 1 + 0.2])


def test_losses_keep_float32():
    x = Tensor(np.full((2, 3), 0.5, dtype=np.float32), requires_grad=True)
    for loss in [F.l1_loss(x, np.zeros((2, 3))), F.smooth_l1_loss(x, np.zeros((2, 3))),
                 F.huber_loss(x, np.zeros((2, 3))), F.binary_cross_entropy(x, np.ones((2, 3), dtype=np.int64)),
                 F.kl_div(x, np.full((2, 3), 0.5)), F.cross_entropy(x, np.full((2, 3), 1 / 3)),
                 F.cross_entropy(x, np.array([0, 2]), weight=np.ones(3)),
                 F.binary_cross_entropy_with_logits(x, np.zeros((2, 3)), pos_weight=np.ones(3))]:
        assert loss.dtype == np.float32
        loss.backward()
        assert x.grad.dtype == np.float32


# ============================================================================ errors
@pytest.mark.parametrize("name", POINTWISE)
def test_pointwise_losses_refuse_mismatched_shapes(name):
    with pytest.raises(ValueError, match=rf"{name}.*\(4,\).*\(4, 3\)"):
        getattr(F, name)(Tensor(np.full((4, 3), 0.5)), np.full(4, 0.5))


def test_argument_errors():
    x, half = Tensor(np.full((2, 3), 0.5)), np.full((2, 3), 0.5)
    with pytest.raises(ValueError, match="binary_cross_entropy: all elements of input should be between 0 and 1"):
        F.binary_cross_entropy(Tensor(np.array([0.5, 1.5])), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"all elements of input.*got nan"):
        F.binary_cross_entropy(Tensor(np.array([np.nan])), np.array([0.0]))
    with pytest.raises(ValueError, match="all elements of target should be between 0 and 1"):
        F.binary_cross_entropy(x, np.full((2, 3), -0.5))
    with pytest.raises(ValueError, match=r"weight of shape \(3, 1\) does not broadcast .* \(2, 3\)"):
        F.binary_cross_entropy(x, half, weight=np.ones((3, 1)))
    with pytest.raises(ValueError, match=r"pos_weight of shape \(2,\) does not broadcast"):
        F.binary_cross_entropy_with_logits(x, half, pos_weight=np.ones(2))
    with pytest.raises(ValueError, match="not differentiable with respect to weight"):
        F.binary_cross_entropy_with_logits(x, half, weight=Tensor(np.ones(3), requires_grad=True))
    with pytest.raises(ValueError, match=r"l1_loss: weight of shape \(3,\) must have the input's shape"):
        F.l1_loss(x, half, weight=np.ones(3))
    with pytest.raises(ValueError, match="smooth_l1_loss: beta must be non-negative"):
        F.smooth_l1_loss(x, half, beta=-1.0)
    with pytest.raises(ValueError, match="huber_loss: delta must be positive"):
        F.huber_loss(x, half, delta=0.0)
    with pytest.raises(ValueError, match="reduction"):
        F.l1_loss(x, half, reduction="batchmean")  # kl_div's alone
    with pytest.raises(ValueError, match="reduction"):
        F.kl_div(x, half, reduction="avg")
    with pytest.raises(TypeError, match="floating point"):
        F.huber_loss(Tensor(np.zeros(3, dtype=np.int64)), np.zeros(3))


def test_class_target_errors():
    logits = Tensor(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"weight should hold one value for each of the 3 classes.*\(2,\)"):
        F.cross_entropy(logits, np.zeros(4, dtype=np.int64), weight=np.ones(2))
    with pytest.raises(ValueError, match=r"nll_loss: weight.*\(3, 1\)"):
        F.nll_loss(logits, np.zeros(4, dtype=np.int64), weight=np.ones((3, 1)))
    with pytest.raises(ValueError, match="not differentiable with respect to weight"):
        F.cross_entropy(logits, np.zeros(4, dtype=np.int64), weight=Tensor(np.ones(3), requires_grad=True))
    with pytest.raises(IndexError, match="target -1 is out of bounds for 3 classes"):
        F.cross_entropy(logits, np.array([0, 1, -1, 2]), weight=np.ones(3))
    with pytest.raises(IndexError, match="target 3 is out of bounds"):
        F.nll_loss(logits, np.array([0, 1, 3, 2]), ignore_index=1)
    with pytest.raises(ValueError, match=r"ignore_index .* not supported for class-probability targets"):
        F.cross_entropy(logits, np.full((4, 3), 1 / 3), ignore_index=0)
    with pytest.raises(TypeError, match=r"class probabilities.*floating point"):
        F.cross_entropy(logits, np.zeros((4, 3), dtype=np.int64))
    with pytest.raises(TypeError, match=r"class indices \(shape \(4,\).*or class probabilities.*\(4, 3\)"):
        F.cross_entropy(logits, np.zeros((4, 2)))
    with pytest.raises(TypeError, match="nll_loss: target must hold integer class indices"):
        F.nll_loss(logits, np.zeros((4, 3)))  # nll_loss takes no probabilities
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        F.cross_entropy(logits, np.zeros(4, dtype=np.int64), label_smoothing=1.5)


# ============================================================================ the fused softmax cross-entropy
@examples(30)
@given(problem=class_problems(), smoothing=st.sampled_from([0.0, 0.3]), reduction=st.sampled_from(REDUCTIONS))
def test_fused_cross_entropy_equals_the_composite(problem, smoothing, reduction):
    """Class-index targets run as one SoftmaxCrossEntropyFn node: the composite's loss and gradient, bit for bit
    in float64 up to the last ulp, including rows of -inf logits (their loss is nan or inf in both)."""
    from tinygrad_cnn.nn.functional import _reduce, _target_weights

    x, t, ignore_index, weight = problem
    if x.size and x.ndim >= 2:
        x[0, 0] = -np.inf  # one -inf logit: a class with probability 0
    kwargs = dict(weight=weight, ignore_index=ignore_index, reduction=reduction, label_smoothing=smoothing)
    fused_x, composite_x = Tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
    fused = F.cross_entropy(fused_x, t, **kwargs)
    axis = 1 if x.ndim >= 2 else 0
    q, count = _target_weights(composite_x, t, ignore_index, smoothing, weight, "cross_entropy")
    composite = _reduce(-(composite_x.log_softmax(axis) * q).sum(axis=axis), reduction, count)
    assert "SoftmaxCrossEntropy" in {autograd.op_name(node) for node in _nodes(fused)}
    np.testing.assert_allclose(fused.data, composite.data, rtol=1e-12, atol=1e-15, equal_nan=True)
    grad = np.random.default_rng(0).standard_normal(fused.shape)
    fused.backward(Tensor(grad))
    composite.backward(Tensor(grad))
    np.testing.assert_allclose(fused_x.grad.data, composite_x.grad.data, rtol=1e-12, atol=1e-15, equal_nan=True)


@pytest.mark.parametrize("one_dot_size", [0, 10**9], ids=["sums", "one-dot"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_reduced_fused_loss_is_the_same_whichever_way_it_sums(monkeypatch, one_dot_size, dtype):
    """Up to ONE_DOT_SIZE logits the reduced loss is one BLAS dot product, above it per-row sums then a sum."""
    from tinygrad_cnn.nn import softmax_cross_entropy

    monkeypatch.setattr(softmax_cross_entropy, "ONE_DOT_SIZE", one_dot_size)
    rng = np.random.default_rng(7)
    x, t = rng.standard_normal((300, 17)).astype(dtype), rng.integers(0, 17, 300)
    for reduction in ("mean", "sum"):
        fused = F.cross_entropy(Tensor(x), t, reduction=reduction, label_smoothing=0.1)
        log_p = x - np.log(np.exp(x - x.max(1, keepdims=True)).sum(1, keepdims=True)) - x.max(1, keepdims=True)
        q = np.full(x.shape, 0.1 / 17)
        q[np.arange(300), t] += 0.9
        expected = -(q * log_p).sum() / (300 if reduction == "mean" else 1)
        np.testing.assert_allclose(fused.data, expected, rtol=2e-6 if dtype == np.float32 else 1e-13)
        assert fused.dtype == dtype


def _nodes(t):
    seen, stack = [], [t._ctx]
    while stack:
        node = stack.pop()
        if node is not None and node not in seen:
            seen.append(node)
            stack.extend(x._ctx for x in node.inputs)
    return seen
