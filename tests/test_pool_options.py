"""PyTorch's pooling options: ceil_mode, dilation, return_indices, count_include_pad, divisor_override.

test_conv.py tests the pooling every network here uses (kernel, stride,
padding). This file draws the other arguments of `F.max_pool2d` and
`F.avg_pool2d` together with those and checks, over each drawn geometry:

* values and gradients against `naive_pool`: loops over windows that transcribe
  PyTorch's CPU kernels (its output size, its divisor, its index choice), ties
  included (a max's gradient is split evenly among tied maxima);
* gradients and second derivatives against central differences;
* values, gradients and indices against PyTorch itself (skipped without torch).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_cnn import Tensor, autograd, gradcheck, gradgradcheck, nn
from tinygrad_cnn.testing import examples, seeds


# ============================================================================ the reference
def torch_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """PyTorch's pooling_output_shape, transcribed."""
    span = dilation * (kernel - 1) + 1
    top = size + 2 * padding - span + (stride - 1 if ceil_mode else 0)
    out = top // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # the last window must start inside the input or its left padding
    return out


def window_axis(start: int, kernel: int, dilation: int) -> list[int]:
    """The input positions a window reads along one axis (those outside [0, size) are padding)."""
    return [start + k * dilation for k in range(kernel)]


def naive_pool(x: np.ndarray, kind: str, kwargs: dict, upstream: np.ndarray) -> tuple:
    """(output, input gradient, indices or None) by loops over windows and pixels."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kwargs["kernel_size"], kwargs["stride"], kwargs["padding"]
    dh, dw = kwargs.get("dilation", (1, 1))
    ceil = kwargs.get("ceil_mode", False)
    ho = torch_output_size(h, kh, sh, ph, dh, ceil)
    wo = torch_output_size(w, kw, sw, pw, dw, ceil)
    out, grad = np.zeros((n, c, ho, wo)), np.zeros(x.shape)
    indices = np.zeros((n, c, ho, wo), dtype=np.int64)
    for i in range(ho):
        for j in range(wo):
            rows = window_axis(i * sh - ph, kh, dh)
            cols = window_axis(j * sw - pw, kw, dw)
            inside = [(r, q) for r in rows for q in cols if 0 <= r < h and 0 <= q < w]
            if kind == "max":
                for b in range(n):
                    for ch in range(c):
                        values = [x[b, ch, r, q] for r, q in inside]
                        best = max(values, default=-np.inf)
                        out[b, ch, i, j] = best
                        ties = [(r, q) for (r, q), v in zip(inside, values) if v == best]
                        for r, q in ties:
                            grad[b, ch, r, q] += upstream[b, ch, i, j] / len(ties)
                        if ties:
                            indices[b, ch, i, j] = ties[0][0] * w + ties[0][1]
                        else:  # nothing but padding: PyTorch's first grid position at or after (0, 0)
                            r0 = next(r for r in range(rows[0], rows[0] + dh * h + 1, dh) if r >= 0)
                            q0 = next(q for q in range(cols[0], cols[0] + dw * w + 1, dw) if q >= 0)
                            indices[b, ch, i, j] = r0 * w + q0
            else:
                # PyTorch's AvgPool2d kernel: the window cut at the end of the padded input
                r_end, q_end = min(rows[0] + kh, h + ph), min(cols[0] + kw, w + pw)
                if kwargs.get("divisor_override") is not None:
                    divisor = kwargs["divisor_override"]
                elif kwargs.get("count_include_pad", True):
                    divisor = (r_end - rows[0]) * (q_end - cols[0])
                else:
                    divisor = len(inside)
                for r, q in inside:
                    out[:, :, i, j] += x[:, :, r, q] / divisor
                    grad[:, :, r, q] += upstream[:, :, i, j] / divisor
    return out, grad, indices if kind == "max" else None


# ============================================================================ the geometries
@st.composite
def option_calls(draw: st.DrawFn, kind: str, max_extra: int = 4, degenerate: bool = True) -> tuple[tuple, dict]:
    """(input shape, keyword arguments) for max_pool2d or avg_pool2d with every option drawn.

    Pairs throughout; padding ≤ kernel / 2 (PyTorch's rule). `degenerate=False`
    leaves out windows that read nothing but padding, which dilation allows and
    on which PyTorch's max_pool2d backward writes out of bounds.
    """
    axes = []
    for _ in range(2):
        kernel, stride = draw(st.integers(1, 4)), draw(st.integers(1, 3))
        padding = draw(st.integers(0, kernel // 2))
        dilation = draw(st.integers(1, 2)) if kind == "max" else 1
        smallest = max(1, dilation * (kernel - 1) + 1 - 2 * padding)
        axes.append((draw(st.integers(smallest, smallest + max_extra)), kernel, stride, padding, dilation))
    (h, kh, sh, ph, dh), (w, kw, sw, pw, dw) = axes
    kwargs: dict = {"kernel_size": (kh, kw), "stride": (sh, sw), "padding": (ph, pw),
                    "ceil_mode": draw(st.booleans())}
    if kind == "max":
        kwargs["dilation"] = (dh, dw)
    else:
        kwargs["count_include_pad"] = draw(st.booleans())
        kwargs["divisor_override"] = draw(st.none() | st.integers(1, 5))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), h, w)
    if (not degenerate and kind == "max"
            and (reads_only_padding(h, kh, sh, ph, dh, kwargs["ceil_mode"])
                 or reads_only_padding(w, kw, sw, pw, dw, kwargs["ceil_mode"]))):
        kwargs["dilation"] = (1, 1)  # undilated windows always reach the input (padding ≤ kernel / 2)
    return shape, kwargs


def reads_only_padding(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> bool:
    """Whether some window along this axis misses every input position (possible only with dilation)."""
    windows = torch_output_size(size, kernel, stride, padding, dilation, ceil_mode)
    return any(all(not 0 <= p < size for p in window_axis(i * stride - padding, kernel, dilation))
               for i in range(windows))


def call(kind: str, x: Tensor, kwargs: dict, return_indices: bool = False):
    if kind == "max":
        return x.max_pool2d(**kwargs, return_indices=return_indices)
    return x.avg_pool2d(**kwargs)


def distinct_values(shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """Values in [-2, 2) at least 4/size apart: no ties and no near-ties for max pooling."""
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) * (4.0 / size) - 2.0).astype(np.float64)


# ============================================================================ the tests
@pytest.mark.parametrize("kind", ["max", "avg"])
@examples(60)
@given(data=st.data(), seed=seeds, channels_last=st.booleans())
def test_pool_options_match_loops_ties_included(kind, data, seed, channels_last):
    shape, kwargs = data.draw(option_calls(kind))
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, shape).astype(np.float64)  # many tied maxima
    if channels_last:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    t = Tensor(x, requires_grad=True)
    result = call(kind, t, kwargs, return_indices=True)
    out, indices = result if kind == "max" else (result, None)
    upstream = rng.standard_normal(out.shape)
    expected_out, expected_grad, expected_indices = naive_pool(x, kind, kwargs, upstream)
    np.testing.assert_allclose(out.data, expected_out, rtol=1e-12, atol=1e-12, err_msg="forward")
    (grad,) = autograd.grad(out, [t], Tensor(upstream))
    np.testing.assert_allclose(grad.data, expected_grad, rtol=1e-12, atol=1e-12, err_msg="gradient")
    if kind == "max":
        assert indices.dtype == np.int64 and not indices.requires_grad
        np.testing.assert_array_equal(indices.data, expected_indices)


@pytest.mark.parametrize("kind", ["max", "avg"])
@examples(25)
@given(data=st.data(), seed=seeds)
def test_pool_options_gradcheck_and_gradgradcheck(kind, data, seed):
    shape, kwargs = data.draw(option_calls(kind, max_extra=3, degenerate=False))  # no -inf outputs
    x = Tensor(distinct_values(shape, np.random.default_rng(seed)), requires_grad=True)
    assert gradcheck(lambda x: call(kind, x, kwargs), [x])
    assert gradgradcheck(lambda x: call(kind, x, kwargs), [x])


@pytest.mark.parametrize("kind", ["max", "avg"])
@examples(40)
@given(data=st.data(), seed=seeds, dtype=st.sampled_from([np.float64, np.float32]))
def test_pool_options_match_torch(torch, kind, data, seed, dtype):
    shape, kwargs = data.draw(option_calls(kind, degenerate=False))
    rng = np.random.default_rng(seed)
    x = distinct_values(shape, rng).astype(dtype)
    ours, theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    if kind == "max":
        out, indices = ours.max_pool2d(**kwargs, return_indices=True)
        expected, expected_indices = torch.nn.functional.max_pool2d(theirs, **kwargs, return_indices=True)
        np.testing.assert_array_equal(indices.data, expected_indices.numpy())
    else:
        out, expected = ours.avg_pool2d(**kwargs), torch.nn.functional.avg_pool2d(theirs, **kwargs)
    assert out.shape == tuple(expected.shape) and out.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=tol, atol=tol, err_msg="forward")
    upstream = rng.standard_normal(out.shape).astype(dtype)
    (expected * torch.tensor(upstream)).sum().backward()
    (grad,) = autograd.grad(out, [ours], Tensor(upstream))
    np.testing.assert_allclose(grad.data, theirs.grad.numpy(), rtol=tol, atol=tol, err_msg="gradient")


def test_ceil_mode_keeps_the_partial_last_window():
    """PyTorch's numbers: avg_pool2d(ones 7×7, 3, 2, 1, ceil_mode=True) has 4 windows a side, cut at the corners."""
    out = Tensor(np.ones((1, 1, 7, 7))).avg_pool2d(3, 2, 1, ceil_mode=True)
    np.testing.assert_allclose(out.data[0, 0], np.array([[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]]) / 9)
    assert Tensor(np.ones((1, 1, 5, 5))).max_pool2d(2, ceil_mode=True).shape == (1, 1, 3, 3)
    assert Tensor(np.ones((1, 1, 5, 5))).max_pool2d(2).shape == (1, 1, 2, 2)
    # a kernel wider than the input still fits once when ceil_mode rounds up, as in PyTorch
    assert Tensor(np.ones((1, 1, 7, 7))).max_pool2d(8, stride=2, ceil_mode=True).shape == (1, 1, 1, 1)


def test_return_indices_point_at_the_first_maximum():
    x = Tensor(np.array([[[[1.0, 3.0, 3.0, 0.0], [2.0, 0.0, 5.0, 5.0]]]]))
    out, indices = x.max_pool2d(2, return_indices=True)
    np.testing.assert_array_equal(out.data, [[[[3.0, 5.0]]]])
    np.testing.assert_array_equal(indices.data, [[[[1, 6]]]])


def test_divisor_override_must_be_a_nonzero_int():
    x = Tensor(np.ones((1, 1, 4, 4)))
    for bad in (2.5, True):
        with pytest.raises(TypeError, match=r"avg_pool2d.*divisor_override"):
            x.avg_pool2d(2, divisor_override=bad)
    with pytest.raises(ValueError, match=r"avg_pool2d.*divisor_override"):
        x.avg_pool2d(2, divisor_override=0)
    np.testing.assert_allclose(x.avg_pool2d(2, divisor_override=3).data, np.full((1, 1, 2, 2), 4 / 3))


def test_modules_take_the_options_in_pytorchs_order():
    x = Tensor(np.arange(16.0).reshape(1, 1, 4, 4))
    _, indices = nn.MaxPool2d(2, None, 0, 1, True)(x)  # kernel, stride, padding, dilation, return_indices
    np.testing.assert_array_equal(indices.data, [[[[5, 7], [13, 15]]]])
    assert repr(nn.MaxPool2d(2, ceil_mode=True)) == (
        "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=True)")
    pool = nn.AvgPool2d(3, 1, 1, False, False)  # ..., ceil_mode, count_include_pad
    np.testing.assert_allclose(pool(Tensor(np.ones((1, 1, 3, 3)))).data, np.ones((1, 1, 3, 3)))
    assert repr(pool) == "AvgPool2d(kernel_size=3, stride=1, padding=1)"


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_every_small_square_geometry_matches_loops(kind):
    """Exhaustively, not by sampling: kernel 1–3, stride 1–3, every legal padding, sides 1–7, ceil_mode on and
    off, and each divisor rule (avg) or dilation 1–2 (max). The partial windows of ceil_mode are rare draws."""
    rng = np.random.default_rng(0)
    options = ([{"dilation": (d, d)} for d in (1, 2)] if kind == "max" else
               [{"count_include_pad": cip, "divisor_override": None} for cip in (True, False)]
               + [{"divisor_override": 3}])
    checked = 0
    for k in range(1, 4):
        for s in range(1, 4):
            for p in range(k // 2 + 1):
                for size in range(1, 8):
                    for ceil in (False, True):
                        for extra in options:
                            kwargs = {"kernel_size": (k, k), "stride": (s, s), "padding": (p, p),
                                      "ceil_mode": ceil, **extra}
                            d = kwargs.get("dilation", (1, 1))[0]
                            if torch_output_size(size, k, s, p, d, ceil) < 1:
                                continue
                            x = rng.integers(0, 3, (1, 2, size, size)).astype(np.float64)
                            t = Tensor(x, requires_grad=True)
                            result = call(kind, t, kwargs, return_indices=True)
                            out, indices = result if kind == "max" else (result, None)
                            upstream = rng.standard_normal(out.shape)
                            expected_out, expected_grad, expected_indices = naive_pool(x, kind, kwargs, upstream)
                            np.testing.assert_allclose(out.data, expected_out, rtol=1e-12, atol=1e-12,
                                                       err_msg=str(kwargs))
                            (grad,) = autograd.grad(out, [t], Tensor(upstream))
                            np.testing.assert_allclose(grad.data, expected_grad, rtol=1e-12, atol=1e-12,
                                                       err_msg=str(kwargs))
                            if kind == "max":
                                np.testing.assert_array_equal(indices.data, expected_indices, err_msg=str(kwargs))
                            checked += 1
    assert checked > 300


def test_ceil_mode_errors_name_the_real_input_shape():
    with pytest.raises(ValueError) as info:
        Tensor(np.zeros((2, 3, 5, 5))).max_pool2d(8, 2, ceil_mode=True)
    assert "max_pool2d" in str(info.value) and "(2, 3, 5, 5)" in str(info.value)


@pytest.mark.filterwarnings("error")  # no cast of -inf into integers
def test_integer_max_pooling_pads_with_the_dtypes_minimum():
    x = Tensor(np.arange(-18, 18, dtype=np.int64).reshape(1, 1, 6, 6))
    out, indices = x.max_pool2d(3, 2, padding=1, ceil_mode=True, return_indices=True)  # PyTorch's numbers below
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out.data[0, 0], [[-11, -9, -7, -7], [1, 3, 5, 5], [13, 15, 17, 17],
                                                   [13, 15, 17, 17]])
    np.testing.assert_array_equal(indices.data[0, 0], [[7, 9, 11, 11], [19, 21, 23, 23], [31, 33, 35, 35],
                                                       [31, 33, 35, 35]])


def test_boolean_max_pooling_is_any_over_each_window():
    x = Tensor(np.array([[[[True, False, False], [False, False, False], [False, False, True]]]]))
    out, indices = x.max_pool2d(2, 1, padding=1, ceil_mode=True, return_indices=True)
    expected = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], dtype=bool)
    assert out.dtype == np.bool_ and (out.data[0, 0] == expected).all()
    assert indices.data[0, 0, 0, 0] == 0 and indices.data[0, 0, 3, 3] == 8
