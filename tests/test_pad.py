"""F.pad (constant, reflect, replicate, circular) and nn.Conv2d's padding_mode.

* values against numpy's own `np.pad` ('constant', 'reflect', 'edge', 'wrap'),
  over drawn shapes, modes and amounts (negative amounts crop, in constant mode);
* gradients and second derivatives against central differences: every copy of
  an element sends its gradient back to it;
* values and gradients against PyTorch, for F.pad and for Conv2d with each
  padding_mode and 'same' (skipped without torch);
* bad amounts raise ValueError naming the op, the mode and the shape.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_cnn import Tensor, gradcheck, gradgradcheck, nn
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.testing import examples, seeds

NUMPY_MODE = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}




@st.composite
def pad_calls(draw: st.DrawFn) -> tuple[tuple, tuple, str]:
    """(shape, pad, mode) that the mode accepts: reflect < size, circular ≤ size, crops that leave ≥ 0."""
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    mode = draw(st.sampled_from(list(NUMPY_MODE)))
    amounts: list[int] = []
    for size in reversed(shape[len(shape) - draw(st.integers(1, len(shape))):]):  # from the last axis backwards
        top = {"constant": 3, "reflect": size - 1, "replicate": 3, "circular": size}[mode]
        low = -size if mode == "constant" else 0
        before = draw(st.integers(low, top))
        after = draw(st.integers(low if mode != "constant" else -(size + min(before, 0)), top))
        amounts += [before, after]
    return shape, tuple(amounts), mode


def numpy_pad(x: np.ndarray, pad: tuple, mode: str) -> np.ndarray:
    """The reference: crop what is negative, then np.pad with numpy's name for the mode."""
    pairs = [(0, 0)] * x.ndim
    for k in range(len(pad) // 2):
        pairs[x.ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    cropped = x[tuple(slice(-min(b, 0), x.shape[i] + min(a, 0)) for i, (b, a) in enumerate(pairs))]
    return np.pad(cropped, [(max(b, 0), max(a, 0)) for b, a in pairs], mode=NUMPY_MODE[mode])


@examples(80)
@given(pad_calls(), seeds)
def test_pad_matches_numpy(call, seed):
    shape, pad, mode = call
    x = np.random.default_rng(seed).standard_normal(shape)
    out = F.pad(Tensor(x), pad, mode=mode)
    np.testing.assert_array_equal(out.data, numpy_pad(x, pad, mode))


@examples(30)
@given(pad_calls(), seeds)
def test_pad_gradcheck_and_gradgradcheck(call, seed):
    shape, pad, mode = call
    x = Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)
    assert gradcheck(lambda t: F.pad(t, pad, mode=mode) ** 2, [x])
    assert gradgradcheck(lambda t: F.pad(t, pad, mode=mode) ** 2, [x])


def test_reflect_sends_each_copys_gradient_back():
    x = Tensor(np.arange(4.0), requires_grad=True)
    out = F.pad(x, (2, 2), mode="reflect")
    assert out.numpy().tolist() == [2, 1, 0, 1, 2, 3, 2, 1]
    out.sum().backward()
    assert x.grad.numpy().tolist() == [1, 3, 3, 1]  # b and c are copied twice more


@examples(40)
@given(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), st.sampled_from(list(NUMPY_MODE)), st.data(), seeds)
def test_pad_matches_torch(torch, channels, height, width, mode, data, seed):
    """The combinations PyTorch supports for every mode: a 4-D input, its last two axes padded."""
    shape = (2, channels, height, width)
    pad: tuple[int, ...] = ()
    for size in (width, height):  # F.pad's order: the last axis first
        top = {"reflect": size - 1, "circular": size}.get(mode, 2)
        low = -1 if mode == "constant" else 0
        before = data.draw(st.integers(low, top))
        after = data.draw(st.integers(max(low, -(size + min(before, 0))), top))  # crops leave a size ≥ 0
        pad += (before, after)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    ours, theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = F.pad(ours, pad, mode=mode), torch.nn.functional.pad(theirs, pad, mode=mode)
    np.testing.assert_array_equal(out.data, expected.detach().numpy())
    upstream = rng.standard_normal(out.shape)
    (expected * torch.tensor(upstream)).sum().backward()
    out.backward(upstream)
    np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("shape", "pad", "mode", "fragments"), [
    ((2, 3), (1, 1), "mirror", ["pad", "mode", "'mirror'"]),
    ((2, 3), (1,), "constant", ["pad", "even-length", "(2, 3)"]),
    ((2, 3), (1, 1, 1, 1, 1, 1), "constant", ["pad", "at most 2 per axis"]),
    ((2, 3), (1.0, 1), "constant", ["pad", "ints"]),
    ((2, 3), (3, 0), "reflect", ["reflect", "less than its size 3", "(2, 3)"]),
    ((2, 3), (0, 4), "circular", ["circular", "at most its size 3"]),
    ((2, 3), (-1, 0), "replicate", ["replicate", "cannot crop"]),
    ((2, 3), (-2, -2), "constant", ["cropping", "negative size", "(2, 3)"]),
])
def test_bad_pads_raise_clear_errors(shape, pad, mode, fragments):
    with pytest.raises(ValueError) as info:
        F.pad(Tensor(np.zeros(shape)), pad, mode=mode)
    missing = [f for f in fragments if f not in str(info.value)]
    assert not missing, f"{missing} not in {str(info.value)!r}"


def test_a_value_only_goes_with_constant_mode():
    x = Tensor(np.zeros((2, 2)))
    assert F.pad(x, (1, 0), value=7.0).numpy()[:, 0].tolist() == [7, 7]
    with pytest.raises(ValueError, match="value"):
        F.pad(x, (1, 0), mode="reflect", value=7.0)


@pytest.mark.parametrize("padding_mode", ["reflect", "replicate", "circular"])
def test_conv2d_padding_mode_is_f_pad_then_an_unpadded_convolution(padding_mode):
    layer = nn.Conv2d(2, 3, (3, 2), padding=(1, 2), padding_mode=padding_mode)
    x = Tensor(np.random.default_rng(0).standard_normal((2, 2, 5, 6)).astype(np.float32))
    expected = F.pad(x, (2, 2, 1, 1), mode=padding_mode).conv2d(layer.weight, layer.bias)
    np.testing.assert_array_equal(layer(x).data, expected.data)
    assert repr(layer).endswith(f", padding_mode={padding_mode})")
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(2, 3, 3, padding_mode="mirror")


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # PyTorch's note on its own copy
@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize(("kernel", "padding", "dilation"), [(3, 1, 1), ((2, 3), "same", 1), (3, "same", 2),
                                                             ((3, 2), (2, 1), (1, 2)), (2, "valid", 1)])
def test_conv2d_padding_modes_match_torch(torch, padding_mode, kernel, padding, dilation):
    ours = nn.Conv2d(2, 3, kernel, padding=padding, dilation=dilation, padding_mode=padding_mode)
    theirs = torch.nn.Conv2d(2, 3, kernel, padding=padding, dilation=dilation, padding_mode=padding_mode)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.data))
        theirs.bias.copy_(torch.tensor(ours.bias.data))
    x = np.random.default_rng(1).standard_normal((2, 2, 6, 7)).astype(np.float32)
    ox, tx = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = ours(ox), theirs(tx)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=1e-5, atol=1e-5)
    out.sum().backward()
    expected.sum().backward()
    np.testing.assert_allclose(ox.grad.data, tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.weight.grad.data, theirs.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
    assert repr(ours) == repr(theirs)
