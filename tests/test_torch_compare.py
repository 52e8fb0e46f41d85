"""Every core op against PyTorch: forward values and every input's gradient (skipped without torch).

tinygrad's `helper_test_op(shapes, torch_fn, our_fn)` habit: one line per case.
The gradient flowing in is a random tensor (not ones), so a backward that
mixes up elements cannot pass by symmetry. The second half checks that the
geometries `tinygrad_cnn.testing` draws are ones PyTorch accepts.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from tinygrad_cnn import Tensor
from tinygrad_cnn.testing import broadcastable_shapes, conv2d_cases, matmul_shapes, pool2d_cases

torch = pytest.importorskip("torch")
F = torch.nn.functional


def helper_test_op(shapes, torch_fn, our_fn, atol=1e-10, rtol=1e-7, low=-2.0, high=2.0, arrays=None, seed=0,
                   grad=True):
    """Run `torch_fn` and `our_fn` on the same float64 inputs; compare outputs and every input's gradient."""
    rng = np.random.default_rng(seed)
    if arrays is None:
        arrays = [rng.uniform(low, high, size=s) for s in shapes]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=grad) for a in arrays]
    ours = [Tensor(np.array(a, dtype=np.float64), requires_grad=grad) for a in arrays]
    expected, got = torch_fn(*theirs), our_fn(*ours)
    assert got.shape == tuple(expected.shape), f"shape {got.shape} but torch gives {tuple(expected.shape)}"
    np.testing.assert_allclose(got.data, expected.detach().numpy(), atol=atol, rtol=rtol, err_msg="forward")
    if not grad:
        return
    upstream = rng.standard_normal(got.shape)
    (expected * torch.tensor(upstream)).sum().backward()
    (got * Tensor(upstream)).sum().backward()
    for i, (t, o) in enumerate(zip(theirs, ours)):
        if t.grad is None:
            assert o.grad is None or not o.grad.data.any(), f"input {i}: torch gives no gradient"
            continue
        assert o.grad is not None, f"input {i}: no gradient"
        np.testing.assert_allclose(o.grad.data, t.grad.numpy(), atol=atol, rtol=rtol, err_msg=f"grad of input {i}")


# ============================================================================ elementwise
@pytest.mark.parametrize(
    ("name", "torch_fn", "our_fn", "low", "high"),
    [
        ("neg", lambda x: -x, lambda x: -x, -2, 2),
        ("exp", torch.exp, Tensor.exp, -2, 2),
        ("log", torch.log, Tensor.log, 0.1, 3),
        ("sqrt", torch.sqrt, Tensor.sqrt, 0.1, 3),
        ("relu", torch.relu, Tensor.relu, -2, 2),
        ("sigmoid", torch.sigmoid, Tensor.sigmoid, -30, 30),
        ("tanh", torch.tanh, Tensor.tanh, -3, 3),
        ("abs", torch.abs, Tensor.abs, -2, 2),
        ("reciprocal", torch.reciprocal, Tensor.reciprocal, 0.3, 3),
        ("clip", lambda x: torch.clamp(x, -0.5, 1.0), lambda x: x.clip(-0.5, 1.0), -2, 2),
        ("clip_min", lambda x: torch.clamp(x, min=0.2), lambda x: x.clip(min=0.2), -2, 2),
        ("clip_max", lambda x: torch.clamp(x, max=0.2), lambda x: x.clip(max=0.2), -2, 2),
        ("pow_scalar", lambda x: x**2.5, lambda x: x**2.5, 0.1, 2),
        ("pow_int", lambda x: x**3, lambda x: x**3, -2, 2),
        ("rpow", lambda x: 2.0**x, lambda x: 2.0**x, -2, 2),
        ("rsub", lambda x: 2 - x, lambda x: 2 - x, -2, 2),
        ("rdiv", lambda x: 2 / x, lambda x: 2 / x, 0.3, 2),
        ("scalar_ops", lambda x: (x * 3 + 1.5) / 4 - 0.5, lambda x: (x * 3 + 1.5) / 4 - 0.5, -2, 2),
    ],
)
def test_unary(name, torch_fn, our_fn, low, high):
    helper_test_op([(3, 4)], torch_fn, our_fn, low=low, high=high)
    helper_test_op([()], torch_fn, our_fn, low=low, high=high, seed=1)


def test_kinks_follow_pytorch():
    """relu, abs and clip exactly at their kinks, where the convention matters."""
    x = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 2.0])
    helper_test_op(None, torch.relu, Tensor.relu, arrays=[x])
    helper_test_op(None, torch.abs, Tensor.abs, arrays=[x])
    helper_test_op(None, lambda t: torch.clamp(t, -0.5, 1.0), lambda t: t.clip(-0.5, 1.0), arrays=[x])
    with np.errstate(divide="ignore"):
        helper_test_op(None, torch.sqrt, Tensor.sqrt, arrays=[np.array([0.0, 1.0])], atol=0)
    zeros = np.array([0.0, 0.0, 2.0, 0.0])
    helper_test_op(None, lambda t: t**0, lambda t: t**0, arrays=[zeros])
    helper_test_op(None, torch.pow, lambda a, b: a**b, arrays=[zeros, np.array([0.0, 1.5, 1.0, 2.0])])


BINARY_SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((), (2, 3)), ((1,), ()), ((2, 3), (1, 1))]


@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
@pytest.mark.parametrize(
    ("name", "torch_fn", "our_fn", "low"),
    [
        ("add", torch.add, lambda a, b: a + b, -2),
        ("sub", torch.sub, lambda a, b: a - b, -2),
        ("mul", torch.mul, lambda a, b: a * b, -2),
        ("div", torch.div, lambda a, b: a / b, 0.3),
        ("pow", torch.pow, lambda a, b: a**b, 0.3),
        ("maximum", torch.maximum, Tensor.maximum, -2),
        ("minimum", torch.minimum, Tensor.minimum, -2),
    ],
)
def test_binary_broadcasting(shapes, name, torch_fn, our_fn, low):
    helper_test_op(shapes, torch_fn, our_fn, low=low)


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_elementwise_ties(name):
    a, b = np.array([1.0, 2.0, 3.0, -1.0]), np.array([1.0, 0.0, 3.0, 5.0])
    helper_test_op(None, getattr(torch, name), getattr(Tensor, name), arrays=[a, b])


@pytest.mark.parametrize("shapes", [((2, 3), (2, 3), (2, 3)), ((3,), (2, 1), ()), ((2, 1, 3), (3,), (4, 1))], ids=str)
def test_where(shapes):
    cond = np.random.default_rng(5).random(np.broadcast_shapes(shapes[0], (1,))) > 0.5
    cond = cond.reshape(shapes[0]) if shapes[0] else np.array(True)
    helper_test_op(shapes[1:], lambda a, b: torch.where(torch.tensor(cond), a, b),
                   lambda a, b: Tensor.where(cond, a, b))


# ============================================================================ matmul
@pytest.mark.parametrize(
    "shapes",
    [
        ((4,), (4,)),  # vector · vector → 0-d
        ((4,), (4, 3)),  # vector @ matrix
        ((2, 4), (4,)),  # matrix @ vector
        ((2, 4), (4, 3)),
        ((5, 2, 4), (4, 3)),  # batch @ matrix: one big GEMM
        ((2, 4), (5, 4, 3)),  # matrix @ batch
        ((5, 2, 4), (5, 4, 3)),
        ((2, 1, 3, 4), (5, 4, 2)),  # batch axes broadcast
        ((1, 3, 4), (2, 1, 4, 2)),
        ((4,), (2, 4, 3)),  # vector @ batch
        ((2, 3, 4), (4,)),  # batch @ vector
    ],
    ids=str,
)
def test_matmul(shapes):
    helper_test_op(shapes, torch.matmul, lambda a, b: a @ b)


def test_matmul_one_side_constant():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((1, 4, 5))
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b)
    oa, ob = Tensor(a, requires_grad=True), Tensor(b)
    (ta @ tb).sum().backward()
    (oa @ ob).sum().backward()
    np.testing.assert_allclose(oa.grad.data, ta.grad.numpy())


def test_dot():
    helper_test_op([(5,), (5,)], torch.dot, Tensor.dot)


# ============================================================================ reductions
AXES = [None, 0, -1, (0, 2), (-1, 1), 1]


@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize(
    ("name", "torch_fn", "our_fn"),
    [
        ("sum", lambda x, a, k: x.sum() if a is None and not k else x.sum(dim=a, keepdim=k), Tensor.sum),
        ("mean", lambda x, a, k: x.mean() if a is None and not k else x.mean(dim=a, keepdim=k), Tensor.mean),
        ("max", lambda x, a, k: torch.amax(x, dim=() if a is None else a, keepdim=k), Tensor.max),
        ("min", lambda x, a, k: torch.amin(x, dim=() if a is None else a, keepdim=k), Tensor.min),
        ("logsumexp", lambda x, a, k: torch.logsumexp(x, dim=(0, 1, 2) if a is None else a, keepdim=k),
         Tensor.logsumexp),
    ],
)
def test_reductions(axis, keepdims, name, torch_fn, our_fn):
    helper_test_op([(2, 3, 4)], lambda x: torch_fn(x, axis, keepdims), lambda x: our_fn(x, axis, keepdims))
    if axis is not None:  # dim=None means "not given" (logsumexp's default axis is -1)
        helper_test_op([(2, 3, 4)], lambda x: torch_fn(x, axis, keepdims),
                       lambda x: our_fn(x, dim=axis, keepdims=keepdims))


@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("correction", [0, 1, 2])
@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std(axis, correction, name):
    def theirs(x):
        return getattr(torch, name)(x, dim=axis, correction=correction, keepdim=True)

    def ours(x):
        return getattr(x, name)(axis, keepdims=True, correction=correction)

    helper_test_op([(3, 4, 5)], theirs, ours)


def test_var_std_default_correction():
    helper_test_op([(4, 5)], lambda x: x.var(dim=1), lambda x: x.var(axis=1))
    helper_test_op([(4, 5)], lambda x: x.std(), lambda x: x.std())


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)], ids=str)
@pytest.mark.parametrize("name", ["amax", "amin"])
def test_max_min_ties_split_evenly_like_amax(axis, name):
    x = np.array([[1.0, 3.0, 3.0], [3.0, 1.0, 1.0], [2.0, 2.0, 2.0]])
    method = "max" if name == "amax" else "min"
    helper_test_op(None, lambda t: getattr(torch, name)(t, dim=() if axis is None else axis),
                   lambda t: getattr(t, method)(axis), arrays=[x])


def test_argmax_argmin():
    x = np.array([[1.0, 5.0, 5.0], [7.0, 0.0, 0.0]])
    for axis in (None, 0, 1, -1):
        assert Tensor(x).argmax(axis).tolist() == torch.argmax(torch.tensor(x), dim=axis).tolist()
        assert Tensor(x).argmin(axis).tolist() == torch.argmin(torch.tensor(x), dim=axis).tolist()


# ============================================================================ softmax family
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_log_softmax(axis):
    helper_test_op([(3, 4, 5)], lambda x: torch.softmax(x, dim=axis), lambda x: x.softmax(axis), low=-5, high=5)
    helper_test_op([(3, 4, 5)], lambda x: torch.log_softmax(x, dim=axis), lambda x: x.log_softmax(axis),
                   low=-5, high=5)


def test_softmax_family_at_huge_logits():
    x = np.array([[1e4, 0.0, -1e4], [5e3, 5e3, 5e3]])
    helper_test_op(None, lambda t: torch.log_softmax(t, dim=1), lambda t: t.log_softmax(1), arrays=[x])
    helper_test_op(None, lambda t: torch.softmax(t, dim=1), lambda t: t.softmax(1), arrays=[x])
    helper_test_op(None, lambda t: torch.logsumexp(t, dim=1), lambda t: t.logsumexp(1), arrays=[x])


# ============================================================================ shape
@pytest.mark.parametrize(
    ("name", "shape", "torch_fn", "our_fn"),
    [
        ("reshape", (2, 3, 4), lambda x: x.reshape(4, -1), lambda x: x.reshape(4, -1)),
        ("reshape_tuple", (2, 3, 4), lambda x: x.reshape((6, 4)), lambda x: x.reshape((6, 4))),
        ("reshape_0d", (), lambda x: x.reshape(1, 1), lambda x: x.reshape(1, 1)),
        ("flatten", (2, 3, 4), torch.flatten, Tensor.flatten),
        ("flatten_1", (2, 3, 4, 2), lambda x: x.flatten(1), lambda x: x.flatten(1)),
        ("flatten_mid", (2, 3, 4, 2), lambda x: x.flatten(1, -2), lambda x: x.flatten(1, -2)),
        ("flatten_0d", (), torch.flatten, Tensor.flatten),
        ("permute", (2, 3, 4), lambda x: x.permute(2, 0, 1), lambda x: x.permute(2, 0, 1)),
        ("permute_neg", (2, 3, 4), lambda x: x.permute(-1, 0, -2), lambda x: x.permute(-1, 0, -2)),
        ("transpose", (2, 3, 4), lambda x: x.transpose(-2, -1), lambda x: x.transpose()),
        ("transpose_0_2", (2, 3, 4), lambda x: x.transpose(0, 2), lambda x: x.transpose(0, 2)),
        ("T", (3, 4), lambda x: x.T, lambda x: x.T),
        ("expand", (3, 1), lambda x: x.expand(2, 3, 4), lambda x: x.expand(2, 3, 4)),
        ("expand_neg1", (3, 1), lambda x: x.expand(2, -1, 4), lambda x: x.expand(2, -1, 4)),
        ("expand_0d", (), lambda x: x.expand(2, 3), lambda x: x.expand(2, 3)),
        ("squeeze", (1, 3, 1, 2), torch.squeeze, Tensor.squeeze),
        ("squeeze_axis", (1, 3, 1, 2), lambda x: x.squeeze(2), lambda x: x.squeeze(2)),
        ("squeeze_not_one", (1, 3, 1, 2), lambda x: x.squeeze(1), lambda x: x.squeeze(1)),
        ("squeeze_tuple", (1, 3, 1, 2), lambda x: x.squeeze((0, -2)), lambda x: x.squeeze((0, -2))),
        ("unsqueeze", (3, 2), lambda x: x.unsqueeze(1), lambda x: x.unsqueeze(1)),
        ("unsqueeze_neg", (3, 2), lambda x: x.unsqueeze(-1), lambda x: x.unsqueeze(-1)),
        ("unsqueeze_0d", (), lambda x: x.unsqueeze(0), lambda x: x.unsqueeze(0)),
        ("pad", (2, 3), lambda x: F.pad(x, (2, 0, 1, 1)), lambda x: x.pad(((1, 1), (2, 0)))),
        ("pad_value", (2, 3, 2), lambda x: F.pad(x, (1, 1, 0, 2, 1, 0), value=-1.5),
         lambda x: x.pad(((1, 0), (0, 2), (1, 1)), value=-1.5)),
    ],
)
def test_shape_ops(name, shape, torch_fn, our_fn):
    helper_test_op([shape], torch_fn, our_fn)


@pytest.mark.parametrize(
    "key",
    [
        1, -1, (slice(1, 3), 0), (slice(None, None, 2), slice(1, None, 3)), (None, 1, slice(None), None),
        (Ellipsis, 0), (0, Ellipsis, None), (slice(None), slice(2, 2)),
        [0, 2, 0, 0], (np.array([0, 2, 2]), np.array([1, 1, 4])), (slice(None), np.array([[4, 0], [4, 4]])),
        (np.array([1, 1]), slice(None, 3)),
    ],
    ids=str,
)
def test_indexing(key):
    def torch_key(k):
        ks = k if isinstance(k, tuple) else (k,)
        return tuple(torch.tensor(np.asarray(p)) if isinstance(p, (list, np.ndarray)) else p for p in ks)

    helper_test_op([(3, 5, 2)], lambda x: x[torch_key(key)], lambda x: x[key])


def test_boolean_mask_indexing():
    x = np.array([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]])
    helper_test_op(None, lambda t: t[torch.tensor(x > 0)], lambda t: t[x > 0], arrays=[x])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_cat_stack(axis):
    sizes = [(2, 3, 4), (2, 3, 4), (2, 3, 4)]
    cat_sizes = [tuple(2 + i if d == axis % 3 else s for d, s in enumerate(sizes[0])) for i in range(3)]
    helper_test_op(cat_sizes, lambda *xs: torch.cat(xs, dim=axis), lambda *xs: Tensor.cat(xs, axis=axis))
    helper_test_op(sizes, lambda *xs: torch.stack(xs, dim=axis), lambda *xs: Tensor.stack(xs, axis=axis))


def test_astype():
    x = np.random.default_rng(0).standard_normal((3, 4))
    t, o = torch.tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
    ty, oy = t.to(torch.float32), o.astype(np.float32)
    assert oy.dtype == np.float32
    np.testing.assert_array_equal(oy.data, ty.detach().numpy())
    upstream = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    (ty * torch.tensor(upstream)).sum().backward()
    (oy * Tensor(upstream)).sum().backward()
    assert o.grad.dtype == np.float64
    np.testing.assert_allclose(o.grad.data, t.grad.numpy(), rtol=1e-6)


def test_float32_results_match_torch_dtypes():
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    t, o = torch.tensor(x), Tensor(x)
    pairs = [(t * 2.0, o * 2.0), (t + 1, o + 1), (2 ** t, 2**o), (t.softmax(-1), o.softmax(-1)), (t.var(), o.var()),
             (t.int() / 2, o.astype(np.int32) / 2), (t.int() + 1.5, o.astype(np.int32) + 1.5)]
    for theirs, ours in pairs:
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")


def test_a_small_network_end_to_end():
    def net(x, w1, b1, w2):
        return ((x @ w1 + b1).relu() @ w2).log_softmax(-1).mean()

    def ours(x, w1, b1, w2):
        return ((x @ w1 + b1).relu() @ w2).log_softmax(-1).mean()

    helper_test_op([(8, 5), (5, 6), (6,), (6, 3)], net, ours)


# ============================================================================ the strategies of tinygrad_cnn.testing
@given(broadcastable_shapes(3))
def test_broadcastable_shapes_broadcast_in_torch(shapes_):
    assert tuple(torch.broadcast_shapes(*shapes_.input_shapes)) == shapes_.result_shape


@given(matmul_shapes())
def test_matmul_shapes_multiply_in_torch(shapes_):
    a, b = (torch.zeros(s) for s in shapes_.input_shapes)
    assert tuple((a @ b).shape) == shapes_.result_shape


@given(conv2d_cases())
def test_conv2d_cases_are_valid_for_torch(case):
    x = torch.zeros(case.input_shape)
    w = torch.zeros(case.weight_shape)
    b = torch.zeros(case.bias_shape) if case.bias else None
    out = F.conv2d(x, w, b, **case.kwargs)
    assert tuple(out.shape) == case.output_shape
    ours = Tensor.zeros(case.input_shape).conv2d(Tensor.zeros(case.weight_shape),
                                                 Tensor.zeros(case.bias_shape) if case.bias else None, **case.kwargs)
    assert ours.shape == case.output_shape  # the kwargs suit our API too
    assert min(case.output_shape) >= 1
    assert case.in_channels % case.groups == 0 and case.out_channels % case.groups == 0
    assert all(1 <= k <= 5 for k in case.kernel_size) and all(1 <= s <= 3 for s in case.stride)
    assert all(0 <= p <= 2 for p in case.padding) and all(1 <= d <= 2 for d in case.dilation)


@given(pool2d_cases())
def test_pool2d_cases_are_valid_for_torch(case):
    x = torch.zeros(case.input_shape)
    for pool in (F.max_pool2d, F.avg_pool2d):
        out = pool(x, **case.kwargs)  # torch refuses padding > kernel / 2
        assert tuple(out.shape) == case.output_shape
    for name in ("max_pool2d", "avg_pool2d"):
        assert getattr(Tensor.zeros(case.input_shape), name)(**case.kwargs).shape == case.output_shape
    assert min(case.output_shape) >= 1
    assert all(2 * p <= k for p, k in zip(case.padding, case.kernel_size))
