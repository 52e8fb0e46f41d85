"""Conv1d, the 1-D pooling layers and the transposed convolution (conv/functional.py, conv/transposed.py, nn).

Hypothesis draws whole geometries, as test_conv.py does: the 1-D ones are the
width axis of a `conv2d_cases` / `pool2d_cases` draw, the transposed ones are a
convolution's geometry read backwards (its output is the transposed input) with
every output_padding that PyTorch allows. Over them, each test checks:

* values and first derivatives against PyTorch in float64 (skipped without torch);
* the identity that defines a transposed convolution: conv_transpose2d(g, w) is
  the input gradient of conv2d(·, w) for an output gradient g (docs/im2col.md §7);
* gradcheck and gradgradcheck on small cases;
* the modules: PyTorch's state_dict keys, parameter shapes, init bounds, repr,
  outputs with PyTorch's weights loaded, ConvTranspose2d's output_size;
* bad arguments: ValueError / TypeError naming the op and the shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tinygrad_cnn import Tensor, autograd, gradcheck, gradgradcheck, nn
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.testing import conv2d_cases, examples, seeds


# ============================================================================ strategies and helpers
@dataclass(frozen=True)
class Conv1dCase:
    """A valid conv1d geometry: input (N, C_in, L), weight (C_out, C_in/groups, k)."""

    batch: int
    in_channels: int
    out_channels: int
    length: int
    kernel: int
    stride: int
    padding: int
    dilation: int
    groups: int
    bias: bool

    def arrays(self, seed: int) -> list[np.ndarray | None]:
        rng = np.random.default_rng(seed)
        return [rng.standard_normal((self.batch, self.in_channels, self.length)),
                rng.standard_normal((self.out_channels, self.in_channels // self.groups, self.kernel)),
                rng.standard_normal(self.out_channels) if self.bias else None]


@st.composite
def conv1d_cases(draw: st.DrawFn, **bounds) -> Conv1dCase:
    """The width axis of a `conv2d_cases` geometry (every knob drawn together, always valid)."""
    c = draw(conv2d_cases(**bounds))
    return Conv1dCase(c.batch, c.in_channels, c.out_channels, c.width, c.kernel_size[1], c.stride[1], c.padding[1],
                      c.dilation[1], c.groups, c.bias)


@st.composite
def pool1d_calls(draw: st.DrawFn, kind: str) -> tuple[tuple[int, int, int], dict]:
    """(input shape, keyword arguments) of a valid max_pool1d / avg_pool1d call, PyTorch's options included."""
    kernel = draw(st.integers(1, 4))
    padding = draw(st.integers(0, kernel // 2))
    dilation = draw(st.integers(1, 2)) if kind == "max" else 1
    smallest = max(1, dilation * (kernel - 1) + 1 - 2 * padding)
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(smallest, smallest + 5)))
    kwargs = {"kernel_size": draw(st.sampled_from([kernel, (kernel,)])), "stride": draw(st.sampled_from(
        [None, *range(1, 4)])), "padding": padding, "ceil_mode": draw(st.booleans())}
    if kind == "max":
        kwargs["dilation"] = dilation
        stride = kwargs["stride"] or kernel
        windows = F.max_pool1d(Tensor(np.zeros(shape)), **kwargs).shape[2]
        # a dilated window can read padding only (-inf out, a gradient nobody defines): leave those out
        assume(all(any(0 <= i * stride - padding + k * dilation < shape[2] for k in range(kernel))
                   for i in range(windows)))
    else:
        kwargs["count_include_pad"] = draw(st.booleans())
    return shape, kwargs


@dataclass(frozen=True)
class TransposedCase:
    """A conv_transpose2d call: input (N, C_in, H, W), weight (C_in, C_out/groups, kh, kw), and its arguments."""

    input_shape: tuple[int, int, int, int]
    weight_shape: tuple[int, int, int, int]
    bias: bool
    stride: tuple[int, int]
    padding: tuple[int, int]
    output_padding: tuple[int, int]
    groups: int
    dilation: tuple[int, int]

    @property
    def kwargs(self) -> dict:
        return {"stride": self.stride, "padding": self.padding, "output_padding": self.output_padding,
                "groups": self.groups, "dilation": self.dilation}

    @property
    def output_hw(self) -> tuple[int, ...]:
        return tuple((n - 1) * s - 2 * p + d * (k - 1) + e + 1 for n, k, s, p, d, e in
                     zip(self.input_shape[2:], self.weight_shape[2:], self.stride, self.padding, self.dilation,
                         self.output_padding))

    def arrays(self, seed: int) -> list[np.ndarray | None]:
        rng = np.random.default_rng(seed)
        c_out = self.weight_shape[1] * self.groups
        return [rng.standard_normal(self.input_shape), rng.standard_normal(self.weight_shape),
                rng.standard_normal(c_out) if self.bias else None]


@st.composite
def transposed_cases(draw: st.DrawFn, **bounds) -> TransposedCase:
    """A convolution geometry read backwards: the transposed input is the convolution's output (N, C_out, Ho, Wo),
    the weight the convolution's own (C_out, C_in/groups, kh, kw); output_padding is any value below
    max(stride, dilation) per axis (so sometimes ≥ the stride), as long as the output is not empty."""
    c = draw(conv2d_cases(**bounds))
    extra = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(c.stride, c.dilation))
    case = TransposedCase(c.output_shape, c.weight_shape, c.bias, c.stride, c.padding, extra, c.groups, c.dilation)
    if min(case.output_hw) < 1:
        case = TransposedCase(c.output_shape, c.weight_shape, c.bias, c.stride, (0, 0), extra, c.groups, c.dilation)
    return case


def leaves(arrays, requires_grad=True) -> list[Tensor | None]:
    return [None if a is None else Tensor(a, requires_grad=requires_grad) for a in arrays]


def torch_leaves(torch, arrays) -> list:
    return [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]


def compare_with_torch(torch, ours_fn, torch_fn, arrays, seed: int) -> None:
    """Forward values and the gradient of every input against PyTorch (float64, a random upstream gradient)."""
    ours, theirs = leaves(arrays), torch_leaves(torch, arrays)
    out, expected = ours_fn(*ours), torch_fn(*theirs)
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-10, atol=1e-10, err_msg="forward")
    upstream = np.random.default_rng(seed + 1).standard_normal(out.shape)
    (expected * torch.tensor(upstream)).sum().backward()
    used = [t for t in ours if t is not None]
    grads = autograd.grad(out, used, Tensor(upstream))
    for i, (g, t) in enumerate(zip(grads, [t for t in theirs if t is not None])):
        np.testing.assert_allclose(g.data, t.grad.numpy(), rtol=1e-10, atol=1e-10, err_msg=f"d/d input {i}")


# ============================================================================ conv1d
@examples(40)
@given(conv1d_cases(max_extra=5), seeds, st.booleans())
def test_conv1d_matches_torch(torch, case, seed, as_tuples):
    wrap = (lambda v: (v,)) if as_tuples else (lambda v: v)
    kwargs = {"stride": wrap(case.stride), "padding": wrap(case.padding), "dilation": wrap(case.dilation),
              "groups": case.groups}
    compare_with_torch(torch, lambda *a: F.conv1d(*a, **kwargs), lambda *a: torch.nn.functional.conv1d(*a, **kwargs),
                       case.arrays(seed), seed)


@pytest.mark.filterwarnings("ignore:Using padding='same'")  # PyTorch's note that even kernels pad a copy
@examples(20)
@given(conv1d_cases(max_extra=4), seeds, st.sampled_from(["same", "valid"]))
def test_conv1d_string_padding_matches_torch(torch, case, seed, mode):
    if mode == "valid" and case.dilation * (case.kernel - 1) + 1 > case.length:
        case = Conv1dCase(**{**case.__dict__, "length": case.dilation * (case.kernel - 1) + 1})
    kwargs = {"padding": mode, "dilation": case.dilation, "groups": case.groups}
    compare_with_torch(torch, lambda *a: F.conv1d(*a, **kwargs), lambda *a: torch.nn.functional.conv1d(*a, **kwargs),
                       case.arrays(seed), seed)


@examples(15)
@given(conv1d_cases(max_batch=1, max_extra=2), seeds)
def test_conv1d_gradcheck_and_gradgradcheck(case, seed):
    kwargs = {"stride": case.stride, "padding": case.padding, "dilation": case.dilation, "groups": case.groups}
    inputs = leaves(case.arrays(seed))
    assert gradcheck(lambda x, w, b: F.conv1d(x, w, b, **kwargs), inputs)
    assert gradgradcheck(lambda x, w, b: F.conv1d(x, w, b, **kwargs), inputs)


def test_conv1d_is_conv2d_along_one_row():
    rng = np.random.default_rng(0)
    x, w = Tensor(rng.standard_normal((2, 4, 9))), Tensor(rng.standard_normal((6, 2, 3)))
    out = F.conv1d(x, w, stride=2, padding=1, dilation=2, groups=2)
    as_2d = x.unsqueeze(2).conv2d(w.unsqueeze(2), stride=(1, 2), padding=(0, 1), dilation=(1, 2), groups=2)
    np.testing.assert_array_equal(out.data, as_2d.data[:, :, 0])


# ============================================================================ max_pool1d and avg_pool1d
@pytest.mark.parametrize("kind", ["max", "avg"])
@examples(40)
@given(data=st.data(), seed=seeds)
def test_pool1d_matches_torch(torch, kind, data, seed):
    """Values, gradients and (max) indices; distinct values, so PyTorch's one-index tie rule never differs."""
    shape, kwargs = data.draw(pool1d_calls(kind))
    x = np.random.default_rng(seed).permutation(math.prod(shape)).reshape(shape) * 0.25
    if kind == "max":
        _, where = F.max_pool1d(Tensor(x), **kwargs, return_indices=True)
        _, expected_where = torch.nn.functional.max_pool1d(torch.tensor(x), **kwargs, return_indices=True)
        np.testing.assert_array_equal(where.data, expected_where.numpy())
        assert where.dtype == np.int64
    fn, torch_fn = (F.max_pool1d, torch.nn.functional.max_pool1d) if kind == "max" else (
        F.avg_pool1d, torch.nn.functional.avg_pool1d)
    compare_with_torch(torch, lambda t: fn(t, **kwargs), lambda t: torch_fn(t, **kwargs), [x], seed)


@pytest.mark.parametrize("kind", ["max", "avg"])
@examples(15)
@given(data=st.data(), seed=seeds)
def test_pool1d_gradcheck_and_gradgradcheck(kind, data, seed):
    shape, kwargs = data.draw(pool1d_calls(kind))
    x = Tensor(np.random.default_rng(seed).permutation(math.prod(shape)).reshape(shape) * 0.25, requires_grad=True)
    fn = F.max_pool1d if kind == "max" else F.avg_pool1d
    assert gradcheck(lambda t: fn(t, **kwargs), [x])
    assert gradgradcheck(lambda t: fn(t, **kwargs), [x])


def test_max_pool1d_ties_split_the_gradient_evenly():
    x = Tensor(np.zeros((1, 1, 4)), requires_grad=True)
    F.max_pool1d(x, 2).sum().backward()
    assert x.grad.data.ravel().tolist() == [0.5] * 4


# ============================================================================ conv_transpose2d
@examples(50)
@given(transposed_cases(max_channels_per_group=3, max_extra=4), seeds)
def test_conv_transpose2d_matches_torch(torch, case, seed):
    """Values and the gradients of input, weight and bias over stride, padding, output_padding, groups, dilation."""
    kwargs = case.kwargs
    compare_with_torch(torch, lambda *a: F.conv_transpose2d(*a, **kwargs),
                       lambda *a: torch.nn.functional.conv_transpose2d(*a, **kwargs), case.arrays(seed), seed)


@examples(40)
@given(conv2d_cases(max_channels_per_group=3, max_extra=4), seeds)
def test_conv_transpose2d_is_the_input_gradient_of_conv2d(case, seed):
    """conv_transpose2d(g, w) == ∂⟨conv2d(x, w), g⟩/∂x, same stride, padding, dilation and groups; output_padding
    picks x's size among those conv2d maps onto g's: (H + 2p − d(k − 1) − 1) mod stride."""
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal(case.input_shape), requires_grad=True)
    w = Tensor(rng.standard_normal(case.weight_shape))
    g = Tensor(rng.standard_normal(case.output_shape))
    (input_gradient,) = autograd.grad(x.conv2d(w, **case.kwargs), [x], g)
    extra = tuple((n + 2 * p - d * (k - 1) - 1) % s for n, k, s, p, d in
                  zip(case.input_shape[2:], case.kernel_size, case.stride, case.padding, case.dilation))
    transposed = F.conv_transpose2d(g, w, stride=case.stride, padding=case.padding, output_padding=extra,
                                    groups=case.groups, dilation=case.dilation)
    assert transposed.shape == case.input_shape
    np.testing.assert_allclose(transposed.data, input_gradient.data, rtol=1e-12, atol=1e-12)


@examples(15)
@given(transposed_cases(max_batch=1, max_channels_per_group=2, max_kernel=3, max_extra=2), seeds)
def test_conv_transpose2d_gradcheck_and_gradgradcheck(case, seed):
    kwargs = case.kwargs
    inputs = leaves(case.arrays(seed))
    assert gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, **kwargs), inputs)
    assert gradgradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, **kwargs), inputs)


def test_conv_transpose2d_float32_stays_float32_and_bias_follows_the_weight():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 4, 3, 3)).astype(np.float32))
    w = Tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    out = F.conv_transpose2d(x, w, Tensor(np.ones(3)), stride=2)
    assert out.dtype == np.float32 and out.shape == (2, 3, 7, 7)


# ============================================================================ the modules
MODULE_ARGS = [
    ("Conv1d", (2, 4, 3), {}),
    ("Conv1d", (2, 4, 3), dict(stride=2, padding=1, dilation=2, groups=2, bias=False)),
    ("Conv1d", (2, 4, (3,)), dict(padding="same", padding_mode="reflect")),
    ("Conv1d", (3, 6, 2), dict(padding="valid", groups=3)),
    ("Conv1d", (2, 2, 3), dict(padding=2, padding_mode="circular")),
    ("ConvTranspose2d", (2, 4, 3), {}),
    ("ConvTranspose2d", (2, 4, (3, 2)), dict(stride=2, padding=1, output_padding=1, groups=2, bias=False,
                                            dilation=2)),
    ("ConvTranspose2d", (4, 2, 4), dict(stride=(2, 3), padding=(1, 0), output_padding=(0, 2))),
    ("MaxPool1d", (3,), {}),
    ("MaxPool1d", (3, 2, 1, 2, True, True), {}),
    ("AvgPool1d", (3,), {}),
    ("AvgPool1d", (3, 2, 1, True, False), {}),
]
MODULE_IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(MODULE_ARGS)]


@pytest.mark.parametrize(("name", "args", "kwargs"), MODULE_ARGS, ids=MODULE_IDS)
def test_modules_match_torch_repr_state_dict_and_parameter_shapes(torch, name, args, kwargs):
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    expected = theirs.state_dict()
    assert list(ours.state_dict()) == list(expected)
    for key, value in ours.state_dict().items():
        assert value.shape == tuple(expected[key].shape), key
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]


@pytest.mark.parametrize("name, args, kwargs", [m for m in MODULE_ARGS if m[0] != "MaxPool1d" and m[0] != "AvgPool1d"])
def test_conv_modules_start_within_pytorchs_init_bounds(name, args, kwargs):
    """U(±1/√fan_in) with fan_in = weight.shape[1] · kernel size, for the weight and the bias (PyTorch's default)."""
    module = getattr(nn, name)(*args, **kwargs)
    bound = 1 / math.sqrt(module.weight.shape[1] * math.prod(module.weight.shape[2:]))
    assert np.abs(module.weight.data).max() <= bound and np.abs(module.weight.data).max() > bound / 2
    if module.bias is not None:
        assert module.bias.shape == (module.out_channels,) and np.abs(module.bias.data).max() <= bound


def _forward_both(torch, name, args, kwargs, shape, seed=0, **call):
    """Our module with PyTorch's (float32) weights loaded, and both outputs for one input."""
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    ours.load_state_dict(theirs.state_dict())
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    out = ours(Tensor(x), **call)
    expected = theirs(torch.tensor(x), **call)
    return out, expected


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize(("name", "args", "kwargs"), MODULE_ARGS, ids=MODULE_IDS)
def test_modules_compute_what_torch_computes_with_its_weights(torch, name, args, kwargs):
    channels = args[0] if name.startswith("Conv") else 2
    shape = (2, channels, 7) if name != "ConvTranspose2d" else (2, channels, 4, 5)
    out, expected = _forward_both(torch, name, args, kwargs, shape)
    if isinstance(out, tuple):
        np.testing.assert_array_equal(out[1].data, expected[1].numpy())
        out, expected = out[0], expected[0]
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("output_size", [(9, 9), (10, 10), (9, 10), [2, 4, 10, 9]])
def test_conv_transpose2d_module_output_size_picks_the_output_padding(torch, output_size):
    out, expected = _forward_both(torch, "ConvTranspose2d", (2, 4, 3), {"stride": 2}, (2, 2, 4, 4),
                                  output_size=output_size)
    assert out.shape == tuple(expected.shape) == (2, 4, *output_size[-2:])
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_conv_transpose2d_module_rejects_an_output_size_out_of_range():
    module = nn.ConvTranspose2d(2, 4, 3, stride=2)
    with pytest.raises(ValueError, match=r"output size of \(11, 9\).*\(9, 9\) to \(10, 10\)"):
        module(Tensor(np.zeros((1, 2, 4, 4), np.float32)), output_size=(11, 9))
    with pytest.raises(ValueError, match="output_size must have 2 or 4 elements"):
        module(Tensor(np.zeros((1, 2, 4, 4), np.float32)), output_size=(1, 9, 9))


# ============================================================================ errors
def zeros(*shape, dtype=np.float64) -> Tensor:
    return Tensor(np.zeros(shape, dtype=dtype))


X1, W1 = zeros(1, 4, 8), zeros(2, 4, 3)
XT, WT = zeros(1, 4, 5, 5), zeros(4, 2, 3, 3)
ERRORS = [
    ("conv1d-4d-input", lambda: F.conv1d(zeros(1, 4, 1, 8), W1), ValueError, ["conv1d", "3-D", "(1, 4, 1, 8)"]),
    ("conv1d-2d-weight", lambda: F.conv1d(X1, zeros(2, 4)), ValueError, ["conv1d", "weight", "(2, 4)"]),
    ("conv1d-channels", lambda: F.conv1d(zeros(1, 3, 8), W1), ValueError, ["conv1d", "(1, 3, 8)", "(2, 4, 3)"]),
    ("conv1d-groups", lambda: F.conv1d(X1, zeros(3, 2, 3), groups=2), ValueError,
     ["conv1d", "groups=2", "(1, 4, 8)", "(3, 2, 3)"]),
    ("conv1d-kernel-too-big", lambda: F.conv1d(zeros(1, 4, 2), W1), ValueError, ["conv1d", "kernel 3", "(1, 4, 2)"]),
    ("conv1d-stride-pair", lambda: F.conv1d(X1, W1, stride=(1, 2)), TypeError, ["conv1d", "stride", "(1, 2)"]),
    ("conv1d-padding-same-strided", lambda: F.conv1d(X1, W1, stride=2, padding="same"), ValueError,
     ["conv1d", "'same'", "stride"]),
    ("conv1d-bias", lambda: F.conv1d(X1, W1, zeros(3)), ValueError, ["conv1d", "bias", "(3,)"]),
    ("conv1d-dtypes", lambda: F.conv1d(X1.astype(np.float32), W1), TypeError, ["conv1d", "float32", "float64"]),
    ("max_pool1d-4d-input", lambda: F.max_pool1d(XT, 2), ValueError, ["max_pool1d", "3-D", "(1, 4, 5, 5)"]),
    ("max_pool1d-padding", lambda: F.max_pool1d(X1, 3, padding=2), ValueError, ["max_pool1d", "padding 2", "3"]),
    ("max_pool1d-kernel-too-big", lambda: F.max_pool1d(X1, 9), ValueError, ["max_pool1d", "kernel 9", "(1, 4, 8)"]),
    ("avg_pool1d-kernel-float", lambda: F.avg_pool1d(X1, 2.0), TypeError, ["avg_pool1d", "kernel_size", "2.0"]),
    ("avg_pool1d-stride-zero", lambda: F.avg_pool1d(X1, 2, stride=0), ValueError, ["avg_pool1d", "stride", "0"]),
    ("transposed-3d-input", lambda: F.conv_transpose2d(zeros(4, 5, 5), WT), ValueError,
     ["conv_transpose2d", "4-D", "(4, 5, 5)"]),
    ("transposed-3d-weight", lambda: F.conv_transpose2d(XT, zeros(4, 2, 3)), ValueError,
     ["conv_transpose2d", "weight", "C_in, C_out/groups", "(4, 2, 3)"]),
    ("transposed-channels", lambda: F.conv_transpose2d(zeros(1, 3, 5, 5), WT), ValueError,
     ["conv_transpose2d", "(1, 3, 5, 5)", "(4, 2, 3, 3)", "expects 4"]),
    ("transposed-groups", lambda: F.conv_transpose2d(XT, WT, groups=3), ValueError,
     ["conv_transpose2d", "groups=3", "(4, 2, 3, 3)"]),
    ("transposed-groups-float", lambda: F.conv_transpose2d(XT, WT, groups=2.0), TypeError,
     ["conv_transpose2d", "groups", "2.0"]),
    ("transposed-output-padding", lambda: F.conv_transpose2d(XT, WT, output_padding=1), ValueError,
     ["conv_transpose2d", "output_padding (1, 1)", "stride (1, 1)", "dilation (1, 1)"]),
    ("transposed-output-padding-one-axis", lambda: F.conv_transpose2d(XT, WT, stride=(2, 1), output_padding=(1, 1)),
     ValueError, ["conv_transpose2d", "output_padding (1, 1)", "stride (2, 1)"]),
    ("transposed-output-too-small", lambda: F.conv_transpose2d(zeros(1, 4, 1, 1), zeros(4, 2, 1, 1), padding=1),
     ValueError, ["conv_transpose2d", "(1, 4, 1, 1)", "-1×-1", "too small"]),
    ("transposed-bias", lambda: F.conv_transpose2d(XT, WT, zeros(4)), ValueError,
     ["conv_transpose2d", "bias", "(2,)", "(4,)"]),
    ("transposed-dtypes", lambda: F.conv_transpose2d(XT.astype(np.float32), WT), TypeError,
     ["conv_transpose2d", "float32", "float64"]),
    ("Conv1d-groups", lambda: nn.Conv1d(4, 6, 3, groups=4), ValueError, ["Conv1d", "divisible by groups (4)"]),
    ("Conv1d-padding-mode", lambda: nn.Conv1d(4, 6, 3, padding_mode="mirror"), ValueError,
     ["Conv1d", "padding_mode", "'mirror'"]),
    ("ConvTranspose2d-groups", lambda: nn.ConvTranspose2d(3, 4, 3, groups=2), ValueError,
     ["ConvTranspose2d", "in_channels (3)", "groups (2)"]),
    ("ConvTranspose2d-padding-mode", lambda: nn.ConvTranspose2d(2, 4, 3, padding_mode="reflect"), ValueError,
     ["ConvTranspose2d", "'zeros'", "'reflect'"]),
    ("ConvTranspose2d-output-padding", lambda: nn.ConvTranspose2d(4, 2, 3, output_padding=1)(XT.astype(np.float32)),
     ValueError, ["conv_transpose2d", "output_padding (1, 1)"]),
    ("ConvTranspose2d-2d-input", lambda: nn.ConvTranspose2d(4, 2, 3)(zeros(5, 5, dtype=np.float32)), ValueError,
     ["conv_transpose2d", "4-D", "(5, 5)"]),
]


@pytest.mark.parametrize(("call", "error", "fragments"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_bad_arguments_raise_clear_errors(call, error, fragments):
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    missing = [f for f in fragments if f not in message]
    assert not missing, f"{missing} not in the message {message!r}"
