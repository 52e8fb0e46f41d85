"""Tests for tinygrad_cnn.nn's layers: initialisation, state_dict layout and every layer against PyTorch.

(Module's own machinery, Sequential and scopes are tested in test_module.py.)

Layer tests copy PyTorch's weights into ours through `load_state_dict(torch_model.state_dict())`
(so that path is exercised too), then compare the forward output and the gradients of
the input and of every parameter, for a random upstream gradient.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinygrad_cnn import Tensor, gradcheck, nn, no_grad
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.nn import init


# ============================================================================ the same small CNN in both libraries
def _cnn(lib):
    """`lib` is torch.nn or our nn: the same architecture, names and defaults."""
    return lib.Sequential(lib.Conv2d(1, 4, 3, padding=1), lib.BatchNorm2d(4), lib.ReLU(), lib.MaxPool2d(2),
                          lib.Flatten(), lib.Linear(4 * 3 * 3, 5), lib.BatchNorm1d(5), lib.Tanh(), lib.Dropout(0.3),
                          lib.Linear(5, 3))


def test_state_dict_keys_shapes_dtypes_match_torch(torch):
    theirs, ours = _cnn(torch.nn), _cnn(nn)
    expected = theirs.state_dict()
    got = ours.state_dict()
    assert list(got) == list(expected)
    for k, v in expected.items():
        assert got[k].shape == tuple(v.shape), k
        assert got[k].dtype == v.numpy().dtype, k


# ============================================================================ repr
def test_repr_matches_torch(torch):
    ours, theirs = _cnn(nn), _cnn(torch.nn)
    assert repr(ours) == repr(theirs)
    tnn = torch.nn
    nested_ours = nn.Sequential(nn.Sequential(nn.Linear(784, 256, bias=False), nn.Identity()),
                                nn.Conv2d(4, 8, (3, 5), stride=2, padding=1, dilation=2, groups=2, bias=False),
                                nn.AvgPool2d(3, 1, 1), nn.BatchNorm2d(3, momentum=None, affine=False),
                                nn.BatchNorm1d(2, track_running_stats=False), nn.Sigmoid(), nn.Flatten(0, 2))
    nested_theirs = tnn.Sequential(tnn.Sequential(tnn.Linear(784, 256, bias=False), tnn.Identity()),
                                   tnn.Conv2d(4, 8, (3, 5), stride=2, padding=1, dilation=2, groups=2, bias=False),
                                   tnn.AvgPool2d(3, 1, 1), tnn.BatchNorm2d(3, momentum=None, affine=False),
                                   tnn.BatchNorm1d(2, track_running_stats=False), tnn.Sigmoid(), tnn.Flatten(0, 2))
    assert repr(nested_ours) == repr(nested_theirs)
    for padding in ("same", "valid"):
        assert repr(nn.Conv2d(2, 3, 3, padding=padding)) == repr(tnn.Conv2d(2, 3, 3, padding=padding))


@pytest.mark.parametrize("kwargs, fragments", [(dict(padding="same", stride=2), ["'same'", "stride", "(2, 2)"]),
                                               (dict(padding="full"), ["padding", "'full'"])])
def test_conv2d_module_rejects_string_padding_pytorch_rejects(kwargs, fragments):
    with pytest.raises(ValueError) as info:
        nn.Conv2d(2, 3, 3, **kwargs)
    assert all(f in str(info.value) for f in fragments), str(info.value)


# ============================================================================ initialisation
@pytest.mark.parametrize("make, fan_in", [(lambda: nn.Linear(300, 200), 300),
                                          (lambda: nn.Conv2d(6, 64, 5, groups=2), 3 * 25)])
def test_default_init_bounds_and_spread(make, fan_in):
    Tensor.manual_seed(0)
    layer = make()
    bound = 1 / math.sqrt(fan_in)
    for p in (layer.weight, layer.bias):
        assert p.dtype == np.float32 and p.requires_grad
        assert np.abs(p.data).max() <= bound
    w = layer.weight.data
    assert np.abs(w).max() > 0.99 * bound  # fills the interval
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound  # uniform: std = b/√3
    assert abs(w.mean()) < 0.02 * bound


def test_seed_reproduces_weights():
    Tensor.manual_seed(123)
    a = _cnn(nn).state_dict()
    Tensor.manual_seed(123)
    b = _cnn(nn).state_dict()
    Tensor.manual_seed(124)
    c = _cnn(nn).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["0.weight"], c["0.weight"])


def test_init_functions_statistics_and_gains():
    Tensor.manual_seed(0)
    w = Tensor(np.zeros((400, 300), dtype=np.float32))
    assert init.kaiming_uniform_(w, nonlinearity="relu") is w
    bound = math.sqrt(2) * math.sqrt(3 / 300)
    assert bound * 0.99 < np.abs(w.data).max() <= bound * (1 + 1e-6)
    init.kaiming_uniform_(w, mode="fan_out")
    assert np.abs(w.data).max() <= math.sqrt(2) * math.sqrt(3 / 400) * (1 + 1e-6)  # a=0: leaky_relu's gain is √2
    init.kaiming_normal_(w, nonlinearity="relu")
    assert w.data.std() == pytest.approx(math.sqrt(2 / 300), rel=0.02)
    init.xavier_uniform_(w, gain=2.0)
    assert np.abs(w.data).max() <= 2 * math.sqrt(6 / 700)
    init.xavier_normal_(w)
    assert w.data.std() == pytest.approx(math.sqrt(2 / 700), rel=0.02)
    init.normal_(w, 3.0, 0.5)
    assert w.data.mean() == pytest.approx(3.0, abs=0.01) and w.data.std() == pytest.approx(0.5, rel=0.02)
    init.uniform_(w, -1, 2)
    assert w.data.min() >= -1 and w.data.max() < 2
    init.zeros_(w)
    assert not w.data.any()
    init.ones_(w)
    assert (w.data == 1).all() and w.dtype == np.float32
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    assert init.calculate_gain("conv2d") == 1.0 and init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.kaiming_uniform_(Tensor(np.zeros(3, dtype=np.float32)))


def test_init_matches_torch_formulas(torch):
    """Same shapes, same bounds: compare our empirical max |w| with torch's for each initialiser."""
    for name, kwargs in [("kaiming_uniform_", dict(a=math.sqrt(5))), ("xavier_uniform_", dict(gain=1.5)),
                         ("kaiming_uniform_", dict(mode="fan_out", nonlinearity="relu"))]:
        t = torch.empty(64, 16, 3, 3)
        getattr(torch.nn.init, name)(t, **kwargs)
        ours = getattr(init, name)(Tensor(np.zeros((64, 16, 3, 3), dtype=np.float32)), **kwargs)
        assert np.abs(ours.data).max() == pytest.approx(t.abs().max().item(), rel=0.01), name


def test_batchnorm_init():
    bn = nn.BatchNorm2d(3)
    sd = bn.state_dict()
    np.testing.assert_array_equal(sd["weight"], 1)
    np.testing.assert_array_equal(sd["bias"], 0)
    np.testing.assert_array_equal(sd["running_mean"], 0)
    np.testing.assert_array_equal(sd["running_var"], 1)
    assert sd["num_batches_tracked"].dtype == np.int64 and sd["num_batches_tracked"].shape == ()


# ============================================================================ layers against PyTorch
def _compare(torch, ours, theirs, x, train=True, atol=1e-5, rtol=1e-4, seed=0):
    """Load torch's weights into ours, run both, compare output, input gradient and parameter gradients."""
    ours.load_state_dict(theirs.state_dict())
    ours.train(train)
    theirs.train(train)
    tx = torch.tensor(x, requires_grad=True)
    ox = Tensor(x.copy(), requires_grad=True)
    expected, got = theirs(tx), ours(ox)
    np.testing.assert_allclose(got.data, expected.detach().numpy(), atol=atol, rtol=rtol, err_msg="forward")
    upstream = np.random.default_rng(seed).standard_normal(got.shape).astype(x.dtype)
    expected.backward(torch.tensor(upstream))
    got.backward(upstream)
    np.testing.assert_allclose(ox.grad.data, tx.grad.numpy(), atol=atol, rtol=rtol, err_msg="input grad")
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.data, theirs_params[name].grad.numpy(), atol=atol, rtol=rtol,
                                   err_msg=f"grad of {name}")
    for name, b in theirs.named_buffers():
        np.testing.assert_allclose(ours.state_dict()[name], b.numpy(), atol=atol, rtol=rtol, err_msg=name)


def _x(*shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_linear_matches_torch(torch):
    _compare(torch, nn.Linear(5, 4), torch.nn.Linear(5, 4), _x(3, 5))
    _compare(torch, nn.Linear(5, 4, bias=False), torch.nn.Linear(5, 4, bias=False), _x(3, 5))
    _compare(torch, nn.Linear(5, 4), torch.nn.Linear(5, 4), _x(2, 3, 5))  # leading batch axes


@pytest.mark.parametrize("kwargs", [
    dict(in_channels=3, out_channels=4, kernel_size=3),
    dict(in_channels=2, out_channels=4, kernel_size=(3, 2), stride=2, padding=1, bias=False),
    dict(in_channels=4, out_channels=6, kernel_size=3, padding=2, dilation=2, groups=2),
    dict(in_channels=2, out_channels=3, kernel_size=3, padding="same"),
    dict(in_channels=2, out_channels=3, kernel_size=(2, 3), padding="valid"),
])
def test_conv2d_matches_torch(torch, kwargs):
    x = _x(2, kwargs["in_channels"], 7, 6)
    _compare(torch, nn.Conv2d(**kwargs), torch.nn.Conv2d(**kwargs), x, atol=1e-4)


@pytest.mark.parametrize("cls, args", [("MaxPool2d", (2,)), ("MaxPool2d", (3, 2, 1)), ("AvgPool2d", (2,)),
                                       ("AvgPool2d", (3, 2, 1))])
def test_pooling_matches_torch(torch, cls, args):
    _compare(torch, getattr(nn, cls)(*args), getattr(torch.nn, cls)(*args), _x(2, 3, 8, 7))


@pytest.mark.parametrize("cls", ["ReLU", "Sigmoid", "Tanh", "Identity", "Flatten"])
def test_stateless_layers_match_torch(torch, cls):
    _compare(torch, getattr(nn, cls)(), getattr(torch.nn, cls)(), _x(2, 3, 4, 2))


def test_flatten_range_matches_torch(torch):
    _compare(torch, nn.Flatten(0, 2), torch.nn.Flatten(0, 2), _x(2, 3, 4, 2))


@pytest.mark.parametrize("cls, shape, kwargs", [
    ("BatchNorm1d", (8, 5), {}),
    ("BatchNorm1d", (4, 5, 3), {}),
    ("BatchNorm2d", (4, 3, 5, 5), {}),
    ("BatchNorm2d", (4, 3, 2, 2), dict(momentum=None)),
    ("BatchNorm2d", (4, 3, 2, 2), dict(affine=False)),
    ("BatchNorm2d", (4, 3, 2, 2), dict(track_running_stats=False)),
    ("BatchNorm1d", (6, 4), dict(eps=1e-3, momentum=0.3, bias=False)),
])
def test_batchnorm_matches_torch_train_and_eval(torch, cls, shape, kwargs):
    ours, theirs = getattr(nn, cls)(shape[1], **kwargs), getattr(torch.nn, cls)(shape[1], **kwargs)
    if kwargs.get("affine", True):
        with torch.no_grad():  # non-trivial affine parameters
            theirs.weight.uniform_(0.5, 1.5)
            if theirs.bias is not None:
                theirs.bias.uniform_(-1, 1)
    for step in range(3):  # running statistics after several training steps
        x = _x(*shape, seed=step) * 2 + 1
        _compare(torch, ours, theirs, x, train=True)
        for p in list(ours.parameters()) + list(theirs.parameters()):
            p.grad = None
    _compare(torch, ours, theirs, _x(*shape, seed=9), train=False)
    if kwargs.get("track_running_stats", True):
        assert ours.state_dict()["num_batches_tracked"] == 3


def test_batchnorm_running_stats_by_hand():
    bn = nn.BatchNorm1d(1)
    bn(Tensor(np.array([[1.0], [3.0]], dtype=np.float32)))
    assert bn.running_mean.data[0] == pytest.approx(0.9 * 0 + 0.1 * 2)
    assert bn.running_var.data[0] == pytest.approx(0.9 * 1 + 0.1 * 2.0)  # unbiased var of (1, 3) is 2


def test_batchnorm_errors():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(Tensor(np.ones((1, 3), dtype=np.float32)))
    with pytest.raises(ValueError, match="num_features=3"):
        nn.BatchNorm2d(3)(Tensor(np.ones((2, 4, 2, 2), dtype=np.float32)))
    with pytest.raises(ValueError, match="4-D"):
        nn.BatchNorm2d(3)(Tensor(np.ones((2, 3), dtype=np.float32)))
    nn.BatchNorm1d(3).eval()(Tensor(np.ones((1, 3), dtype=np.float32)))  # fine in eval mode


def test_dropout_statistics_and_eval_identity():
    Tensor.manual_seed(0)
    drop = nn.Dropout(0.3)
    x = Tensor(np.ones((200, 500), dtype=np.float32), requires_grad=True)
    y = drop(x)
    zeros = (y.data == 0).mean()
    assert abs(zeros - 0.3) < 0.01
    np.testing.assert_allclose(np.unique(y.data), [0, 1 / 0.7], rtol=1e-6)
    assert abs(y.data.mean() - 1) < 0.02  # inverted dropout keeps the mean
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, y.data)  # gradient flows through the same mask
    drop.eval()
    assert drop(x) is x
    assert nn.Dropout(0.0)(x) is x
    assert not nn.Dropout(1.0)(x).data.any()
    with pytest.raises(ValueError):
        nn.Dropout(1.5)


def test_dropout_seeded_mask_is_reproducible():
    x = Tensor(np.ones((4, 50), dtype=np.float32))
    Tensor.manual_seed(5)
    a = nn.Dropout()(x).data
    Tensor.manual_seed(5)
    b = nn.Dropout()(x).data
    np.testing.assert_array_equal(a, b)


def test_full_model_training_steps_match_torch(torch):
    """Three SGD steps of a small CNN with BatchNorm and copied weights: same losses, weights and stats."""
    theirs, ours = _cnn(torch.nn), _cnn(nn)
    theirs[8].p = ours[8].p = 0.0  # dropout off: the masks come from different generators
    ours.load_state_dict(theirs.state_dict())
    topt = torch.optim.SGD(theirs.parameters(), lr=0.1)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x, y = _x(8, 1, 6, 6, seed=int(rng.integers(1000))), rng.integers(0, 3, 8)
        tloss = torch.nn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y))
        topt.zero_grad()
        tloss.backward()
        topt.step()
        loss = F.cross_entropy(ours(Tensor(x)), Tensor(y))
        ours.zero_grad()
        loss.backward()
        with no_grad():
            for p in ours.parameters():
                p.data -= 0.1 * p.grad.data
        assert loss.item() == pytest.approx(tloss.item(), rel=1e-5)
    expected = theirs.state_dict()
    for k, v in ours.state_dict().items():
        np.testing.assert_allclose(v, expected[k].numpy(), atol=1e-5, rtol=1e-4, err_msg=k)


# ============================================================================ LocallyConnected2d
def locally_connected_by_loops(x: np.ndarray, layer: nn.LocallyConnected2d) -> np.ndarray:
    """The definition: at each output position, its own filter over its own window of the padded input."""
    (ph, pw), (sh, sw), (kh, kw) = layer.padding, layer.stride, layer.kernel_size
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    weight, out_h, out_w = layer.weight.numpy(), *layer.output_size
    out = np.zeros((x.shape[0], layer.out_channels, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            window = padded[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", window, weight[i, j])
    return out if layer.bias is None else out + layer.bias.numpy()


@pytest.mark.parametrize(("kwargs", "bias"), [
    (dict(kernel_size=3), True),
    (dict(kernel_size=(2, 3), stride=2, padding=1), True),
    (dict(kernel_size=1, stride=(1, 2)), False),
])
def test_locally_connected_matches_its_definition_and_gradcheck(kwargs, bias):
    Tensor.manual_seed(0)
    layer = nn.LocallyConnected2d(2, 3, input_size=(5, 6), bias=bias, **kwargs)
    params = [p for p in (layer.weight, layer.bias) if p is not None]
    for p in params:
        p.data = p.data.astype(np.float64)  # gradcheck wants float64, and perturbs these arrays in place
    x = Tensor(np.random.default_rng(0).standard_normal((3, 2, 5, 6)), requires_grad=True)
    y = layer(x)
    np.testing.assert_allclose(y.numpy(), locally_connected_by_loops(x.numpy(), layer), rtol=1e-12, atol=1e-12)
    assert y.data.strides[1] == y.data.itemsize  # channels-last memory, like Conv2d's output, with no copy
    assert gradcheck(lambda x_, *_: layer(x_), [x, *params])


# ============================================================================ BatchNorm's fused primitive
BN_CASES = [  # (class, input shape, channels-last memory, kwargs)
    ("BatchNorm1d", (6, 3), False, {}),
    ("BatchNorm1d", (4, 3, 5), False, {}),
    ("BatchNorm2d", (3, 2, 4, 5), False, {}),
    ("BatchNorm2d", (3, 2, 4, 5), True, {}),
    ("BatchNorm2d", (2, 3, 3, 3), True, dict(affine=False)),
    ("BatchNorm1d", (5, 4), False, dict(bias=False)),
]


def _bn_case(cls, shape, channels_last, kwargs, dtype=np.float64):
    Tensor.manual_seed(0)
    layer = getattr(nn, cls)(shape[1], **kwargs)
    params = list(layer.parameters())
    rng = np.random.default_rng(1)
    for p in params:
        p.data = (rng.uniform(0.5, 1.5, p.shape) if p is layer.weight else rng.uniform(-1, 1, p.shape)).astype(dtype)
    x = rng.standard_normal(shape).astype(dtype) * 2 + 1
    if channels_last:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return layer, params, Tensor(x, requires_grad=True)


@pytest.mark.parametrize("case", BN_CASES)
def test_batchnorm_training_gradcheck_and_gradgradcheck(case):
    from tinygrad_cnn import gradgradcheck

    layer, params, x = _bn_case(*case)
    assert gradcheck(lambda x_, *_: layer(x_), [x, *params])
    assert gradgradcheck(lambda x_, *_: layer(x_), [x, *params])  # the recorded backward: the composite's


@pytest.mark.parametrize("case", BN_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batchnorm_primitive_matches_the_composite(case, dtype):
    from tinygrad_cnn.nn.normalization import batch_norm_reference

    layer, params, x = _bn_case(*case, dtype=dtype)
    upstream = np.random.default_rng(2).standard_normal(x.shape).astype(dtype)
    weight = layer.weight if layer.weight is not None else Tensor(np.ones(x.shape[1], dtype))
    bias = layer.bias if layer.bias is not None else Tensor(np.zeros(x.shape[1], dtype))
    results = []
    for fn in (lambda: layer(x), lambda: batch_norm_reference(x, weight, bias, layer.eps)):
        for t in (x, *params):
            t.grad = None
        out = fn()
        out.backward(upstream)
        assert out.dtype == dtype
        assert out.data.strides == x.data.strides or not case[2]  # channels-last in, channels-last out
        results.append([out.data] + [t.grad.data for t in (x, *params)])
    tolerance = dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    for fused, composite in zip(*results):
        np.testing.assert_allclose(fused, composite, **tolerance)


def test_batchnorm_input_of_another_dtype_takes_the_composite():
    """A float64 input into float32 parameters promotes as the composite does, and still updates the statistics."""
    from tinygrad_cnn.nn.normalization import batch_norm_reference

    bn = nn.BatchNorm2d(3)
    x = Tensor(np.random.default_rng(3).standard_normal((4, 3, 2, 2)) * 2 + 1, requires_grad=True)
    y = bn(x)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y.numpy(), batch_norm_reference(x, bn.weight, bn.bias, bn.eps).numpy())
    y.sum().backward()
    assert x.grad is not None and bn.weight.grad.dtype == np.float32
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * x.numpy().mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * x.numpy().var(axis=(0, 2, 3), ddof=1), rtol=1e-6)
