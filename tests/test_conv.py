"""Convolution, im2col and pooling (conv.py), tested the way MyGrad tests its conv layers.

Hypothesis draws whole geometries at once (batch, channels, spatial size, kernel,
stride, padding, dilation, groups, bias; always valid, see
`tinygrad_cnn.testing.conv2d_cases`) and every test checks a property over them:

* gradients against central differences (`gradcheck`), second derivatives too
  (`gradgradcheck`), for the fused `Conv2d` primitive and the grouped composite;
* the fused primitive against `conv2d_reference` (unfold + matmul), in value and
  in every first and second derivative, float64 and float32;
* memory layout never matters: NCHW-contiguous, channels-last and strided views
  give the same numbers;
* `Unfold` and `Fold` are adjoint: ⟨Unfold(x), y⟩ = ⟨x, Fold(y)⟩;
* pooling (windows side by side, and any other stride) against plain Python
  loops, ties included (the gradient is split evenly among tied maxima);
* values and gradients against PyTorch (skipped without torch);
* bad arguments raise ValueError / TypeError naming the op and the shapes.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tinygrad_cnn import Tensor, autograd, gradcheck, gradgradcheck
from tinygrad_cnn.backend.im2col import Patches, im2col
from tinygrad_cnn.conv import FoldFn, Geometry, UnfoldFn, conv2d_reference, max_pool2d_reference
from tinygrad_cnn.conv.fast import Conv2dBiasGradFn, Conv2dInputGradFn, Conv2dWeightGradFn
from tinygrad_cnn.testing import Conv2dCase, Pool2dCase, conv2d_cases, examples, pool2d_cases, seeds

LAYOUTS = ("nchw", "channels_last", "strided")




# ============================================================================ strategies and helpers
@st.composite
def conv_calls(draw: st.DrawFn, groups: str = "any", **bounds) -> tuple[Conv2dCase, dict]:
    """A `Conv2dCase` and the keyword arguments to call it with.

    Some geometries are made square along an argument so that the int form
    (``stride=2``) is drawn as well as the pair form (``stride=(2, 1)``).
    `groups` is "any", "one" (the fused primitive) or "many" (the grouped composite).
    """
    case = draw(conv2d_cases(**bounds).filter(lambda c: groups != "many" or c.groups > 1))
    if groups == "one":
        case = replace(case, groups=1)
    changes = {}
    for name in ("kernel_size", "stride", "padding", "dilation"):
        pair = getattr(case, name)
        if pair[0] != pair[1] and draw(st.booleans()):
            changes[name] = (pair[0], pair[0])
    case = replace(case, **changes)
    (_, kw), (_, pw), (_, dw) = case.kernel_size, case.padding, case.dilation
    case = replace(case, width=max(case.width, dw * (kw - 1) + 1 - 2 * pw))  # still one window wide
    kwargs = {}
    for name in ("stride", "padding", "dilation"):
        pair = getattr(case, name)
        kwargs[name] = pair[0] if pair[0] == pair[1] and draw(st.booleans()) else pair
    kwargs["groups"] = case.groups
    return case, kwargs


@st.composite
def pool_calls(draw: st.DrawFn, path: str = "any", **bounds) -> tuple[Pool2dCase, dict]:
    """A `Pool2dCase` and its keyword arguments; `path` is "any", "fast" (stride == kernel) or "strided" (not).

    On the fast path the sizes are often not multiples of the kernel (the
    leftover rows and columns belong to no window); the stride is then passed as
    None (the default: stride = kernel) or explicitly.
    """
    if path == "fast":
        bounds.setdefault("max_stride", 1)  # replaced by the kernel below
    case = draw(pool2d_cases(**bounds).filter(lambda c: path != "strided" or c.stride != c.kernel_size))
    if path == "fast":
        case = replace(case, stride=case.kernel_size)
    kernel, stride, padding = case.kernel_size, case.stride, case.padding
    kwargs = {
        "kernel_size": kernel[0] if kernel[0] == kernel[1] and draw(st.booleans()) else kernel,
        "stride": None if stride == kernel and draw(st.booleans()) else stride,
        "padding": padding[0] if padding[0] == padding[1] and draw(st.booleans()) else padding,
    }
    return case, kwargs


def layout(a: np.ndarray, how: str) -> np.ndarray:
    """The same logical (N, C, H, W) array in another memory layout."""
    if how == "nchw":
        return np.ascontiguousarray(a)
    if how == "channels_last":
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    n, c, h, w = a.shape  # "strided": every other row of a wider buffer, shifted by one column
    big = np.full((n, c, 2 * h, w + 1), np.nan, dtype=a.dtype)
    big[:, :, ::2, 1:] = a
    return big[:, :, ::2, 1:]


def conv_arrays(case: Conv2dCase, seed: int, dtype=np.float64) -> list[np.ndarray | None]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(case.input_shape).astype(dtype),
            rng.standard_normal(case.weight_shape).astype(dtype),
            rng.standard_normal(case.bias_shape).astype(dtype) if case.bias else None]


def leaves(arrays, requires_grad=True) -> list[Tensor | None]:
    return [None if a is None else Tensor(a, requires_grad=requires_grad) for a in arrays]


def distinct_values(shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """Values in [-2, 2) at least 4/size apart: no ties and no near-ties for max pooling."""
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) * (4.0 / size) - 2.0).astype(np.float64)


def grads_of(out: Tensor, inputs: list[Tensor], upstream: np.ndarray) -> list[np.ndarray]:
    """d⟨out, upstream⟩ / d input for each input, as arrays (zeros where unused)."""
    found = autograd.grad(out, inputs, Tensor(upstream.astype(out.dtype)), allow_unused=True)
    return [np.zeros(x.shape) if g is None else g.data for x, g in zip(inputs, found)]


def assert_close(actual, expected, dtype, what: str, tight: bool = False) -> None:
    """Equal up to rounding: tight for the same computation in another memory layout, looser across algorithms."""
    if np.dtype(dtype) == np.float64:
        tol = 1e-12 if tight else 1e-10
    else:
        tol = 1e-5 if tight else 2e-4
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol, err_msg=what)


def naive_conv2d(x, w, b, case: Conv2dCase) -> np.ndarray:
    """The definition, one kernel offset and one group at a time (independent of im2col)."""
    (sh, sw), (ph, pw), (dh, dw) = case.stride, case.padding, case.dilation
    _, _, ho, wo = case.output_shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cin, cout = case.in_channels // case.groups, case.out_channels // case.groups
    out = np.zeros(case.output_shape)
    for g in range(case.groups):
        for i in range(case.kernel_size[0]):
            for j in range(case.kernel_size[1]):
                window = xp[:, g * cin:(g + 1) * cin, i * dh:i * dh + sh * (ho - 1) + 1:sh,
                            j * dw:j * dw + sw * (wo - 1) + 1:sw]
                filters = w[g * cout:(g + 1) * cout, :, i, j]
                out[:, g * cout:(g + 1) * cout] += np.einsum("nchw,oc->nohw", window, filters)
    return out if b is None else out + b[:, None, None]


def naive_pool2d(x: np.ndarray, case: Pool2dCase, kind: str, upstream: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pooling and its gradient by loops over windows: max splits a window's gradient evenly among its ties,
    average pooling counts the padded zeros in the divisor."""
    (kh, kw), (sh, sw), (ph, pw) = case.kernel_size, case.stride, case.padding
    n, c, h, w = x.shape
    xp = np.full((n, c, h + 2 * ph, w + 2 * pw), -np.inf if kind == "max" else 0.0)
    xp[:, :, ph:ph + h, pw:pw + w] = x
    _, _, ho, wo = case.output_shape
    out, grad = np.empty((n, c, ho, wo)), np.zeros(xp.shape)
    for i in range(ho):
        for j in range(wo):
            rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
            window = xp[:, :, rows, cols]
            if kind == "max":
                out[:, :, i, j] = window.max(axis=(2, 3))
                ties = window == out[:, :, i, j, None, None]
                share = ties / ties.sum(axis=(2, 3), keepdims=True)
            else:
                out[:, :, i, j] = window.sum(axis=(2, 3)) / (kh * kw)
                share = np.full(window.shape, 1.0 / (kh * kw))
            grad[:, :, rows, cols] += share * upstream[:, :, i, j, None, None]
    return out, grad[:, :, ph:ph + h, pw:pw + w]


def pool(kind: str):
    return Tensor.max_pool2d if kind == "max" else Tensor.avg_pool2d


# ============================================================================ conv2d: gradients
@examples(60)
@given(conv_calls(max_extra=2), seeds, st.sampled_from(["all", "x", "w", "b"]))
def test_conv2d_gradcheck(call, seed, which):
    """Full Jacobians of input, weight and bias against central differences (only some may need a gradient)."""
    case, kwargs = call
    x, w, b = conv_arrays(case, seed)
    tx, tw = Tensor(x, requires_grad=which in ("all", "x")), Tensor(w, requires_grad=which in ("all", "w"))
    tb = None if b is None else Tensor(b, requires_grad=which in ("all", "b"))
    if not any(t is not None and t.requires_grad for t in (tx, tw, tb)):
        tx.requires_grad = True
    assert gradcheck(lambda x, w, b: x.conv2d(w, b, **kwargs), [tx, tw, tb])


@examples(25)
@given(conv_calls(max_batch=3, max_channels_per_group=4, max_extra=10), seeds)
def test_conv2d_gradcheck_fast_mode_bigger_shapes(call, seed):
    case, kwargs = call
    assert gradcheck(lambda x, w, b: x.conv2d(w, b, **kwargs), leaves(conv_arrays(case, seed)), fast_mode=True)


@pytest.mark.parametrize(("groups", "bias", "fn"), [
    ("one", False, Tensor.conv2d),
    ("one", True, Tensor.conv2d),
    ("many", None, Tensor.conv2d),
    ("one", None, conv2d_reference),
], ids=["fused", "fused+bias", "grouped-composite", "reference"])
@examples(15)
@given(data=st.data(), seed=seeds)
def test_conv2d_gradgradcheck(groups, bias, fn, data, seed):
    """Second derivatives through Conv2dInputGrad / Conv2dWeightGrad (fused) and through Unfold/Fold + matmul."""
    case, kwargs = data.draw(conv_calls(groups, max_batch=1, max_channels_per_group=2, max_extra=2))
    if bias is not None:
        case = replace(case, bias=bias)
    assert gradgradcheck(lambda x, w, b: fn(x, w, b, **kwargs), leaves(conv_arrays(case, seed)))


@examples(15)
@given(conv_calls(max_channels_per_group=3, max_extra=6), seeds)
def test_conv2d_gradgradcheck_fast_mode_bigger_shapes(call, seed):
    case, kwargs = call
    assert gradgradcheck(lambda x, w, b: x.conv2d(w, b, **kwargs), leaves(conv_arrays(case, seed)), fast_mode=True)


# ============================================================================ conv2d: fused = reference = definition
def first_and_second_derivatives(fn, arrays, kwargs, seed):
    """The output, every first derivative and every second derivative (through a random projection)."""
    rng = np.random.default_rng(seed)
    inputs = [t for t in leaves(arrays) if t is not None]
    out = fn(*leaves_or(inputs, arrays), **kwargs)
    v = Tensor(rng.standard_normal(out.shape).astype(out.dtype), requires_grad=True)
    first = autograd.grad(out, inputs, v, create_graph=True)
    projection = sum((g * Tensor(rng.standard_normal(g.shape).astype(g.dtype))).sum() for g in first)
    second = autograd.grad(projection, [*inputs, v], allow_unused=True)
    second = [np.zeros(t.shape) if g is None else g.data for t, g in zip([*inputs, v], second)]
    return out, [g.data for g in first], second


def leaves_or(inputs: list[Tensor], arrays) -> list[Tensor | None]:
    """`inputs` put back in (x, w, b) order, with None where the array is None."""
    it = iter(inputs)
    return [None if a is None else next(it) for a in arrays]


@examples(40)
@given(conv_calls("one", max_channels_per_group=3, max_extra=5), seeds, st.sampled_from([np.float64, np.float32]))
def test_fused_conv2d_matches_reference_in_value_and_all_derivatives(call, seed, dtype):
    case, kwargs = call
    arrays = conv_arrays(case, seed, dtype)
    fused = first_and_second_derivatives(Tensor.conv2d, arrays, kwargs, seed)
    reference = first_and_second_derivatives(conv2d_reference, arrays, kwargs, seed)
    assert fused[0].dtype == reference[0].dtype == dtype
    assert fused[0].shape == case.output_shape
    assert_close(fused[0].data, reference[0].data, dtype, "forward")
    names = ["x", "weight", "bias"][:len(fused[1])]
    for name, f, r in zip(names, fused[1], reference[1]):
        assert f.dtype == dtype
        assert_close(f, r, dtype, f"d/d{name}")
    for name, f, r in zip([*names, "upstream"], fused[2], reference[2]):
        assert_close(f, r, dtype, f"second derivative, d/d{name}")


@pytest.mark.parametrize("layout_name", ["nchw", "channels_last"])
def test_gradient_primitives_on_their_own_match_the_fused_backward(layout_name):
    """Conv2dFn.backward hands its one-pass results to the three primitives; applied alone they compute the same."""
    rng = np.random.default_rng(3)
    x, w, b = (Tensor(rng.standard_normal(shape), requires_grad=True) for shape in ((3, 4, 6, 5), (2, 4, 3, 3), (2,)))
    out = x.conv2d(w, b, padding=1)
    g = layout(rng.standard_normal(out.shape), layout_name)
    out.backward(g)
    geometry = Geometry((3, 3), (1, 1), (1, 1), (1, 1))
    g_t = Tensor(g)
    np.testing.assert_allclose(Conv2dInputGradFn.apply(g_t, w.detach(), geometry=geometry, input_shape=x.shape).data,
                               x.grad.data, rtol=1e-12)
    np.testing.assert_allclose(Conv2dWeightGradFn.apply(x.detach(), g_t, geometry=geometry, weight_shape=w.shape).data,
                               w.grad.data, rtol=1e-12)
    np.testing.assert_allclose(Conv2dBiasGradFn.apply(g_t).data, b.grad.data, rtol=1e-12)
    assert gradcheck(lambda t: Conv2dBiasGradFn.apply(t), [Tensor(g, requires_grad=True)])


@examples(40)
@given(conv_calls(max_channels_per_group=3, max_extra=5), seeds)
def test_conv2d_matches_the_definition(call, seed):
    """Independent of im2col: a sum over kernel offsets and groups, written with einsum."""
    case, kwargs = call
    x, w, b = conv_arrays(case, seed)
    out = Tensor(x).conv2d(Tensor(w), None if b is None else Tensor(b), **kwargs)
    np.testing.assert_allclose(out.data, naive_conv2d(x, w, b, case), rtol=1e-10, atol=1e-10)


@examples(40)
@given(conv_calls(max_channels_per_group=3, max_extra=5), seeds, st.sampled_from([np.float64, np.float32]),
       st.sampled_from(LAYOUTS[1:]), st.sampled_from(LAYOUTS), st.sampled_from(LAYOUTS))
def test_conv2d_memory_layout_does_not_change_results(call, seed, dtype, x_layout, w_layout, g_layout):
    """Input, weight and upstream gradient in NCHW, channels-last or strided memory: the same output and gradients."""
    case, kwargs = call
    x, w, b = conv_arrays(case, seed, dtype)
    upstream = np.random.default_rng(seed + 1).standard_normal(case.output_shape).astype(dtype)

    def run(xl, wl, gl):
        inputs = leaves([layout(x, xl), layout(w, wl), b])
        out = inputs[0].conv2d(*inputs[1:], **kwargs)
        used = [t for t in inputs if t is not None]
        return out.data, grads_of(out, used, layout(upstream, gl))

    base_out, base_grads = run("nchw", "nchw", "nchw")
    out, grads = run(x_layout, w_layout, g_layout)
    assert_close(out, base_out, dtype, "forward", tight=True)
    for name, g, base in zip(["x", "weight", "bias"], grads, base_grads):
        assert g.shape == base.shape and g.dtype == dtype
        assert_close(g, base, dtype, f"d/d{name}", tight=True)


def test_conv2d_float32_stays_float32_and_bias_follows_the_weight():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 3, 6, 5)).astype(np.float32), requires_grad=True)
    w = Tensor(rng.standard_normal((4, 3, 3, 2)).astype(np.float32), requires_grad=True)
    b = Tensor(rng.standard_normal(4).astype(np.float32), requires_grad=True)
    out = x.conv2d(w, b, stride=(2, 1), padding=1)
    out.sum().backward()
    assert out.dtype == x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32
    assert out.shape == (2, 4, 3, 6)


# ============================================================================ unfold2d, Unfold and Fold
@st.composite
def unfold_calls(draw: st.DrawFn, **bounds) -> tuple[Conv2dCase, dict]:
    case, kwargs = draw(conv_calls(**bounds))
    case = replace(case, groups=1)
    kernel = case.kernel_size
    kwargs = dict(kwargs, kernel_size=kernel[0] if kernel[0] == kernel[1] and draw(st.booleans()) else kernel)
    del kwargs["groups"]
    return case, kwargs


def geometry(case: Conv2dCase) -> Geometry:
    return Geometry(case.kernel_size, case.stride, case.padding, case.dilation)


@examples(50)
@given(unfold_calls(), seeds, st.sampled_from(LAYOUTS))
def test_unfold_and_fold_are_adjoint(call, seed, x_layout):
    """⟨Unfold(x), y⟩ = ⟨x, Fold(y)⟩: col2im is exactly the transpose of im2col, overlaps and padding included."""
    case, _ = call
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case.input_shape)
    patches = UnfoldFn.apply(Tensor(layout(x, x_layout)), geometry=geometry(case))
    n, _, ho, wo = case.output_shape
    assert patches.shape == (n, ho, wo, *case.kernel_size, case.in_channels)
    y = rng.standard_normal(patches.shape)
    folded = FoldFn.apply(Tensor(y), input_shape=case.input_shape, geometry=geometry(case))
    assert folded.shape == case.input_shape
    lhs, rhs = np.vdot(patches.data, y), np.vdot(x, folded.data)
    assert abs(lhs - rhs) <= 1e-10 * (1 + abs(lhs))


@examples(50)
@given(unfold_calls(), seeds, st.sampled_from(LAYOUTS), st.booleans())
def test_patches_in_either_order_give_im2cols_matrix(call, seed, x_layout, by_offset):
    """`Patches` (conv_fused's forward and weight gradient) fills either order, slice by slice, as im2col's matrix."""
    case, _ = call
    x = layout(np.random.default_rng(seed).standard_normal(case.input_shape), x_layout)
    g = geometry(case)
    expected = im2col(x, g).reshape(-1, g.kernel[0] * g.kernel[1] * case.in_channels)
    patches = Patches(x.shape, x.dtype, g, by_offset=by_offset)
    half = case.batch // 2
    per_image = expected.shape[0] // case.batch
    for images in (slice(0, half), slice(half, case.batch)):
        rows = patches.fill(x, images)
        np.testing.assert_array_equal(rows, expected[images.start * per_image:images.stop * per_image])
    np.testing.assert_array_equal(patches.rows(slice(0, case.batch)), expected)
    assert patches.shape == expected.shape and patches.nbytes == expected.nbytes


@examples(30)
@given(unfold_calls(max_extra=2), seeds)
def test_unfold_and_fold_gradcheck_and_gradgradcheck(call, seed):
    case, kwargs = call
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal(case.input_shape), requires_grad=True)
    assert gradcheck(lambda x: x.unfold2d(**kwargs), [x])
    assert gradgradcheck(lambda x: x.unfold2d(**kwargs), [x])
    g = geometry(case)
    y = Tensor(rng.standard_normal(UnfoldFn.apply(x, geometry=g).shape), requires_grad=True)
    assert gradcheck(lambda y: FoldFn.apply(y, input_shape=case.input_shape, geometry=g), [y])
    assert gradgradcheck(lambda y: FoldFn.apply(y, input_shape=case.input_shape, geometry=g), [y])


@examples(40)
@given(unfold_calls(), seeds)
def test_unfold2d_matches_torch(torch, call, seed):
    """Values (same (N, C·kh·kw, L) order) and gradient of torch.nn.functional.unfold."""
    case, kwargs = call
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case.input_shape)
    ours, theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = ours.unfold2d(**kwargs), torch.nn.functional.unfold(theirs, **kwargs)
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=0, atol=0)
    upstream = rng.standard_normal(out.shape)
    (expected * torch.tensor(upstream)).sum().backward()
    (x_grad,) = grads_of(out, [ours], upstream)
    np.testing.assert_allclose(x_grad, theirs.grad.numpy(), rtol=1e-12, atol=1e-12)


# ============================================================================ pooling
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("path", ["fast", "strided"])
@examples(25)
@given(data=st.data(), seed=seeds)
def test_pool_gradcheck_and_gradgradcheck(kind, path, data, seed):
    case, kwargs = data.draw(pool_calls(path, max_extra=3))
    x = Tensor(distinct_values(case.input_shape, np.random.default_rng(seed)), requires_grad=True)
    assert gradcheck(lambda x: pool(kind)(x, **kwargs), [x])
    assert gradgradcheck(lambda x: pool(kind)(x, **kwargs), [x])


@examples(40)
@given(data=st.data(), seed=seeds, x_layout=st.sampled_from(LAYOUTS), dilation=st.sampled_from([1, 2, (2, 1)]))
def test_max_pool2d_matches_its_unfold_reference_in_value_and_all_derivatives(data, seed, x_layout, dilation):
    """The strided-view primitives against unfold + max (`max_pool2d_reference`), on small integers (many ties),
    dilation included (windows that interleave: the backward must add, not assign)."""
    case, kwargs = data.draw(st.one_of(pool_calls("fast"), pool_calls("strided")))
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    (kh, kw), (ph, pw) = case.kernel_size, case.padding
    assume(dh * (kh - 1) + 1 <= case.height + 2 * ph and dw * (kw - 1) + 1 <= case.width + 2 * pw)
    kwargs = {**kwargs, "dilation": dilation}
    x = layout(np.random.default_rng(seed).integers(0, 3, case.input_shape).astype(np.float64), x_layout)
    views = first_and_second_derivatives(Tensor.max_pool2d, [x], kwargs, seed)
    reference = first_and_second_derivatives(max_pool2d_reference, [x], kwargs, seed)
    assert_close(views[0].data, reference[0].data, np.float64, "forward", tight=True)
    assert_close(views[1][0], reference[1][0], np.float64, "d/dx", tight=True)
    for name, v, r in zip(["x", "upstream"], views[2], reference[2]):
        assert_close(v, r, np.float64, f"second derivative, d/d{name}", tight=True)


@pytest.mark.parametrize("kind", ["max", "avg"])
@examples(20)
@given(data=st.data(), seed=seeds)
def test_pool_gradcheck_fast_mode_bigger_shapes(kind, data, seed):
    case, kwargs = data.draw(pool_calls(max_batch=3, max_channels=4, max_extra=12))
    x = Tensor(distinct_values(case.input_shape, np.random.default_rng(seed)), requires_grad=True)
    assert gradcheck(lambda x: pool(kind)(x, **kwargs), [x], fast_mode=True)
    assert gradgradcheck(lambda x: pool(kind)(x, **kwargs), [x], fast_mode=True)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("path", ["fast", "strided"])
@examples(30)
@given(data=st.data(), seed=seeds, x_layout=st.sampled_from(LAYOUTS), g_layout=st.sampled_from(LAYOUTS))
def test_pool_matches_loops_ties_included(kind, path, data, seed, x_layout, g_layout):
    """Against `naive_pool2d` on small integers (many tied maxima), any memory layout, both paths."""
    case, kwargs = data.draw(pool_calls(path))
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, case.input_shape).astype(np.float64)
    upstream = rng.standard_normal(case.output_shape)
    expected_out, expected_grad = naive_pool2d(x, case, kind, upstream)
    t = Tensor(layout(x, x_layout), requires_grad=True)
    out = pool(kind)(t, **kwargs)
    np.testing.assert_allclose(out.data, expected_out, rtol=1e-12, atol=1e-12, err_msg="forward")
    (grad,) = grads_of(out, [t], layout(upstream, g_layout))
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=1e-12, err_msg="gradient")


@pytest.mark.parametrize("kind", ["max", "avg"])
@examples(40)
@given(data=st.data(), seed=seeds, dtype=st.sampled_from([np.float64, np.float32]))
def test_pool_matches_torch(torch, kind, data, seed, dtype):
    """max_pool2d and avg_pool2d (count_include_pad=True) on distinct values, both paths, float64 and float32."""
    case, kwargs = data.draw(st.one_of(pool_calls("fast"), pool_calls("strided")))
    rng = np.random.default_rng(seed)
    x = distinct_values(case.input_shape, rng).astype(dtype)
    ours, theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    torch_fn = torch.nn.functional.max_pool2d if kind == "max" else torch.nn.functional.avg_pool2d
    out, expected = pool(kind)(ours, **kwargs), torch_fn(theirs, **kwargs)
    assert out.shape == tuple(expected.shape) == case.output_shape
    assert out.dtype == dtype
    assert_close(out.data, expected.detach().numpy(), dtype, "forward")
    upstream = rng.standard_normal(out.shape).astype(dtype)
    (expected * torch.tensor(upstream)).sum().backward()
    (grad,) = grads_of(out, [ours], upstream)
    assert_close(grad, theirs.grad.numpy(), dtype, "gradient")


@pytest.mark.parametrize(("kernel", "stride"), [(2, None), ((2, 3), (2, 3)), (3, 3), (3, 1), ((2, 3), (1, 2)), (3, 2)],
                         ids=["fast-2", "fast-2x3", "fast-3", "overlap-3s1", "overlap-2x3s1x2", "overlap-3s2"])
def test_max_pool_all_tied_windows_split_the_gradient_evenly(kernel, stride):
    """Zeros after a ReLU: every element of a k-element window gets 1/k of its gradient, per window covering it."""
    x = Tensor(-np.arange(1.0, 1 + 2 * 3 * 7 * 8).reshape(2, 3, 7, 8), requires_grad=True)
    h = x.relu()  # all zeros
    out = h.max_pool2d(kernel, stride)
    case = Pool2dCase(2, 3, 7, 8, *(((k, k) if isinstance(k, int) else k) for k in (kernel, stride or kernel)), (0, 0))
    (grad,) = autograd.grad(out.sum(), [h], retain_graph=True)
    kh, kw = case.kernel_size
    (sh, sw), (_, _, ho, wo) = case.stride, case.output_shape
    windows_covering = np.zeros((7, 8))
    for i in range(ho):
        for j in range(wo):
            windows_covering[i * sh:i * sh + kh, j * sw:j * sw + kw] += 1
    np.testing.assert_allclose(grad.data, np.broadcast_to(windows_covering / (kh * kw), grad.shape), rtol=1e-15)
    out.sum().backward()
    assert not x.grad.data.any()  # and nothing leaks through the ReLU


def test_max_pool_ties_in_windows_of_256_and_more_pixels_are_counted_exactly():
    """A 16×16 window of equal values: 256 ties, more than a uint8 count holds; each pixel gets g / 256."""
    x = Tensor(np.zeros((2, 1, 32, 17)), requires_grad=True)
    out = x.max_pool2d((16, 16))
    (out * Tensor(np.arange(1.0, 5.0).reshape(2, 1, 2, 1))).sum().backward()
    expected = np.zeros((2, 1, 32, 17))
    expected[:, :, :, :16] = np.repeat(np.arange(1.0, 5.0).reshape(2, 1, 2, 1), 16, axis=2) / 256
    np.testing.assert_array_equal(x.grad.data, expected)  # the 17th column lies in no window: 0


@pytest.mark.parametrize("stride", [2, 1], ids=["fast", "overlapping"])
def test_max_pool_partial_ties(stride):
    x = np.array([[1.0, 3.0, 2.0],
                  [3.0, 0.0, 2.0],
                  [5.0, 5.0, 5.0]]).reshape(1, 1, 3, 3)
    t = Tensor(x, requires_grad=True)
    out = t.max_pool2d(2, stride)
    out.backward(Tensor(np.arange(1.0, 1 + out.numel()).reshape(out.shape)))
    if stride == 2:  # one window [[1, 3], [3, 0]]: two tied 3s
        expected_out = [[3.0]]
        expected_grad = [[0, 0.5, 0], [0.5, 0, 0], [0, 0, 0]]
    else:  # windows (upstream): [[1,3],[3,0]] (1), [[3,2],[0,2]] (2), [[3,0],[5,5]] (3), [[0,2],[5,5]] (4)
        expected_out = [[3.0, 3.0], [5.0, 5.0]]
        expected_grad = [[0, 0.5 + 2, 0], [0.5, 0, 0], [1.5, 1.5 + 2, 2]]
    np.testing.assert_array_equal(out.data[0, 0], expected_out)
    np.testing.assert_allclose(t.grad.data[0, 0], expected_grad, rtol=1e-15)


@pytest.mark.parametrize("stride", [2, 1], ids=["fast", "overlapping"])
def test_max_pool_ties_ignore_the_padding(stride):
    """-inf padding never ties: an all-zero window's gradient is shared by its real pixels only."""
    t = Tensor(np.zeros((1, 1, 3, 3)), requires_grad=True)
    out = t.max_pool2d(2, stride, padding=1)
    out.sum().backward()
    np.testing.assert_array_equal(out.data, 0.0)
    if stride == 2:  # windows of 1 (corner), 2 (edges) and 4 real pixels
        expected = np.array([[1, 0.5, 0.5], [0.5, 0.25, 0.25], [0.5, 0.25, 0.25]])
    else:
        case = Pool2dCase(1, 1, 3, 3, (2, 2), (1, 1), (1, 1))
        expected = naive_pool2d(np.zeros((1, 1, 3, 3)), case, "max", np.ones(case.output_shape))[1][0, 0]
        assert expected[0, 0] == 1 + 0.5 + 0.5 + 0.25  # four windows cover the corner pixel
    np.testing.assert_allclose(t.grad.data[0, 0], expected, rtol=1e-15)
    assert t.grad.data.sum() == pytest.approx(out.numel())


@pytest.mark.parametrize("stride", [3, 1], ids=["fast", "overlapping"])
def test_avg_pool_counts_padded_zeros(stride):
    out = Tensor(np.ones((1, 1, 3, 3))).avg_pool2d(3, stride, padding=1)
    if stride == 3:
        np.testing.assert_allclose(out.data[0, 0], [[4 / 9]])
    else:
        np.testing.assert_allclose(out.data[0, 0], [[4 / 9, 6 / 9, 4 / 9], [6 / 9, 1, 6 / 9], [4 / 9, 6 / 9, 4 / 9]])


# ============================================================================ conv2d against PyTorch
@examples(60)
@given(conv_calls(max_channels_per_group=3, max_extra=6), seeds, st.sampled_from([np.float64, np.float32]))
def test_conv2d_matches_torch(torch, call, seed, dtype):
    """Values and the gradients of input, weight and bias, over groups, dilation, stride and padding pairs."""
    case, kwargs = call
    arrays = conv_arrays(case, seed, dtype)
    ours = leaves(arrays)
    theirs = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]
    out = ours[0].conv2d(*ours[1:], **kwargs)
    expected = torch.nn.functional.conv2d(*theirs, **kwargs)
    assert out.shape == tuple(expected.shape) == case.output_shape
    assert_close(out.data, expected.detach().numpy(), dtype, "forward")
    upstream = np.random.default_rng(seed + 1).standard_normal(out.shape).astype(dtype)
    (expected * torch.tensor(upstream)).sum().backward()
    used = [t for t in ours if t is not None]
    for name, g, t in zip(["x", "weight", "bias"], grads_of(out, used, upstream), [t for t in theirs if t is not None]):
        assert_close(g, t.grad.numpy(), dtype, f"d/d{name}")


@examples(40)
@given(conv_calls(max_channels_per_group=3, max_extra=4), seeds, st.sampled_from(["same", "valid"]))
def test_string_padding_is_explicit_padding(call, seed, mode):
    """'valid' is padding 0; 'same' pads dilation·(k − 1) per axis, the odd pixel after: the output keeps H and W."""
    case, kwargs = call
    kwargs = dict(kwargs, stride=1, padding=mode)
    x, w, b = leaves(conv_arrays(case, seed))
    (kh, kw), (dh, dw) = case.kernel_size, case.dilation
    assume(mode == "same" or (case.height >= dh * (kh - 1) + 1 and case.width >= dw * (kw - 1) + 1))
    if mode == "valid":
        explicit = x.conv2d(w, b, stride=1, dilation=case.dilation, groups=case.groups)
    else:
        total_h, total_w = dh * (kh - 1), dw * (kw - 1)
        padded = x.pad(((0, 0), (0, 0), (total_h // 2, total_h - total_h // 2), (total_w // 2, total_w - total_w // 2)))
        explicit = padded.conv2d(w, b, stride=1, dilation=case.dilation, groups=case.groups)
        assert explicit.shape[2:] == x.shape[2:]
    for conv in (Tensor.conv2d, conv2d_reference):
        out = conv(x, w, b, **kwargs)
        np.testing.assert_allclose(out.data, explicit.data, rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda x, w: x.conv2d(w, **kwargs), (Tensor(x.data, requires_grad=True),
                                                         Tensor(w.data, requires_grad=True)))


@pytest.mark.filterwarnings("ignore:Using padding='same'")  # PyTorch's note that even kernels pad a copy
@pytest.mark.parametrize("mode", ["same", "valid"])
@pytest.mark.parametrize("kernel, dilation", [((3, 3), (1, 1)), ((2, 4), (1, 1)), ((3, 2), (2, 3)), ((4, 1), (2, 1))])
def test_string_padding_matches_torch(torch, mode, kernel, dilation):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((2, 4, 9, 11)), rng.standard_normal((6, 2, *kernel)), rng.standard_normal(6)]
    ours, theirs = leaves(arrays), [torch.tensor(a, requires_grad=True) for a in arrays]
    out = ours[0].conv2d(*ours[1:], padding=mode, dilation=dilation, groups=2)
    expected = torch.nn.functional.conv2d(*theirs, padding=mode, dilation=dilation, groups=2)
    assert out.shape == tuple(expected.shape)
    assert_close(out.data, expected.detach().numpy(), np.float64, "forward")
    upstream = rng.standard_normal(out.shape)
    (expected * torch.tensor(upstream)).sum().backward()
    for name, g, t in zip(["x", "weight", "bias"], grads_of(out, ours, upstream), theirs):
        assert_close(g, t.grad.numpy(), np.float64, f"d/d{name}")


# ============================================================================ errors
def zeros(*shape, dtype=np.float64) -> Tensor:
    return Tensor(np.zeros(shape, dtype=dtype))


X = zeros(1, 4, 6, 6)
W = zeros(2, 4, 3, 3)
ERRORS = [
    # (id, call, exception, fragments the message must contain)
    ("conv-channels", lambda: zeros(1, 3, 6, 6).conv2d(W), ValueError, ["conv2d", "(1, 3, 6, 6)", "(2, 4, 3, 3)"]),
    ("conv-channels-grouped", lambda: X.conv2d(zeros(2, 1, 3, 3), groups=2), ValueError,
     ["conv2d", "(1, 4, 6, 6)", "(2, 1, 3, 3)"]),
    ("conv-kernel-too-big", lambda: zeros(1, 4, 2, 6).conv2d(W), ValueError, ["conv2d", "(3, 3)", "(1, 4, 2, 6)"]),
    ("conv-dilated-kernel-too-big", lambda: X.conv2d(W, dilation=(1, 3)), ValueError,
     ["conv2d", "(3, 3)", "(1, 4, 6, 6)", "dilation"]),
    ("conv-padded-still-too-small", lambda: zeros(1, 4, 1, 1).conv2d(zeros(2, 4, 4, 4), padding=1), ValueError,
     ["conv2d", "(4, 4)", "(1, 4, 1, 1)"]),
    ("conv-3d-input", lambda: zeros(4, 6, 6).conv2d(W), ValueError, ["conv2d", "4-D", "(4, 6, 6)"]),
    ("conv-5d-input", lambda: zeros(1, 1, 4, 6, 6).conv2d(W), ValueError, ["conv2d", "4-D", "(1, 1, 4, 6, 6)"]),
    ("conv-3d-weight", lambda: X.conv2d(zeros(4, 3, 3)), ValueError, ["conv2d", "weight", "(4, 3, 3)"]),
    ("conv-groups-input", lambda: X.conv2d(zeros(3, 1, 3, 3), groups=3), ValueError,
     ["conv2d", "groups=3", "(1, 4, 6, 6)", "(3, 1, 3, 3)"]),
    ("conv-groups-output", lambda: X.conv2d(zeros(3, 2, 3, 3), groups=2), ValueError,
     ["conv2d", "groups=2", "(1, 4, 6, 6)", "(3, 2, 3, 3)"]),
    ("conv-groups-zero", lambda: X.conv2d(W, groups=0), ValueError, ["conv2d", "groups=0"]),
    ("conv-groups-float", lambda: X.conv2d(W, groups=1.5), TypeError, ["conv2d", "groups", "1.5"]),
    ("conv-groups-str", lambda: X.conv2d(W, groups="2"), TypeError, ["conv2d", "groups", "'2'"]),
    ("conv-groups-bool", lambda: X.conv2d(W, groups=True), TypeError, ["conv2d", "groups", "True"]),
    ("conv-dtype-mismatch-grouped", lambda: X.astype(np.float32).conv2d(zeros(4, 2, 3, 3), groups=2), TypeError,
     ["conv2d", "float32", "float64"]),
    ("conv-bias-length", lambda: X.conv2d(W, zeros(3)), ValueError, ["conv2d", "bias", "(3,)", "(2, 4, 3, 3)"]),
    ("conv-bias-2d", lambda: X.conv2d(W, zeros(1, 2)), ValueError, ["conv2d", "bias", "(1, 2)", "(2,)"]),
    ("conv-stride-float", lambda: X.conv2d(W, stride=1.5), TypeError, ["conv2d", "stride", "1.5"]),
    ("conv-stride-triple", lambda: X.conv2d(W, stride=(1, 1, 1)), TypeError, ["conv2d", "stride", "(1, 1, 1)"]),
    ("conv-stride-bool", lambda: X.conv2d(W, stride=True), TypeError, ["conv2d", "stride", "True"]),
    ("conv-stride-zero", lambda: X.conv2d(W, stride=(1, 0)), ValueError, ["conv2d", "stride", "(1, 0)"]),
    ("conv-padding-unknown-str", lambda: X.conv2d(W, padding="full"), ValueError, ["conv2d", "padding", "'full'"]),
    ("conv-padding-same-strided", lambda: X.conv2d(W, stride=2, padding="same"), ValueError,
     ["conv2d", "'same'", "stride"]),
    ("conv-padding-negative", lambda: X.conv2d(W, padding=-1), ValueError, ["conv2d", "padding", "(-1, -1)"]),
    ("conv-dilation-float", lambda: X.conv2d(W, dilation=(2.0, 1)), TypeError, ["conv2d", "dilation", "(2.0, 1)"]),
    ("conv-dilation-zero", lambda: X.conv2d(W, dilation=0), ValueError, ["conv2d", "dilation", "(0, 0)"]),
    ("conv-dtypes", lambda: zeros(1, 4, 6, 6, dtype=np.float32).conv2d(W), TypeError,
     ["conv2d", "float32", "float64"]),
    ("unfold-3d-input", lambda: zeros(4, 6, 6).unfold2d(2), ValueError, ["unfold2d", "4-D", "(4, 6, 6)"]),
    ("unfold-kernel-too-big", lambda: X.unfold2d((7, 2)), ValueError, ["unfold2d", "(7, 2)", "(1, 4, 6, 6)"]),
    ("unfold-kernel-zero", lambda: X.unfold2d(0), ValueError, ["unfold2d", "kernel_size", "(0, 0)"]),
    ("unfold-stride-float", lambda: X.unfold2d(2, stride=0.5), TypeError, ["unfold2d", "stride", "0.5"]),
]
for _kind in ("max", "avg"):
    _op = f"{_kind}_pool2d"
    ERRORS += [
        (f"{_kind}-3d-input", lambda op=_op: getattr(zeros(4, 6, 6), op)(2), ValueError, [_op, "4-D", "(4, 6, 6)"]),
        (f"{_kind}-padding-above-half", lambda op=_op: getattr(X, op)(3, padding=2), ValueError,
         [_op, "padding", "(2, 2)", "(3, 3)"]),
        (f"{_kind}-padding-above-half-one-side", lambda op=_op: getattr(X, op)((3, 4), padding=(0, 3)), ValueError,
         [_op, "padding", "(0, 3)", "(3, 4)"]),
        (f"{_kind}-kernel-too-big", lambda op=_op: getattr(X, op)((2, 7)), ValueError, [_op, "(2, 7)", "(1, 4, 6, 6)"]),
        (f"{_kind}-kernel-zero", lambda op=_op: getattr(X, op)(0), ValueError, [_op, "kernel_size", "(0, 0)"]),
        (f"{_kind}-kernel-float", lambda op=_op: getattr(X, op)(2.0), TypeError, [_op, "kernel_size", "2.0"]),
        (f"{_kind}-stride-zero", lambda op=_op: getattr(X, op)(2, stride=0), ValueError, [_op, "stride", "(0, 0)"]),
        (f"{_kind}-stride-list3", lambda op=_op: getattr(X, op)(2, stride=[1, 2, 3]), TypeError,
         [_op, "stride", "[1, 2, 3]"]),
        (f"{_kind}-padding-negative", lambda op=_op: getattr(X, op)(2, padding=(0, -1)), ValueError,
         [_op, "padding", "(0, -1)"]),
    ]


@pytest.mark.parametrize(("call", "error", "fragments"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_bad_arguments_raise_clear_errors(call, error, fragments):
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    missing = [f for f in fragments if f not in message]
    assert not missing, f"{missing} not in the message {message!r}"


def test_valid_edge_geometries_are_accepted():
    """Right at the limits: kernel = padded input, padding = kernel / 2, lists for pairs, numpy integers."""
    assert X.conv2d(zeros(2, 4, 8, 8), padding=1).shape == (1, 2, 1, 1)
    assert X.conv2d(zeros(2, 4, 3, 3), stride=[2, 3], padding=[0, 1], dilation=np.int64(2)).shape == (1, 2, 1, 2)
    assert X.max_pool2d(4, padding=2).shape == (1, 4, 2, 2)
    assert X.avg_pool2d((6, 1), stride=(1, 5)).shape == (1, 4, 1, 2)
    assert X.unfold2d(6).shape == (1, 4 * 36, 1)


def test_numpy_integer_groups_and_dtype_rules_agree_on_both_paths():
    x = Tensor(np.zeros((1, 4, 5, 5), np.float32))
    w = Tensor(np.zeros((4, 2, 3, 3), np.float32))
    assert x.conv2d(w, groups=np.int64(2)).shape == (1, 4, 3, 3)
    bias64 = Tensor(np.zeros(4))
    assert x.conv2d(w, bias64, groups=2).dtype == x.conv2d(Tensor(np.zeros((4, 4, 3, 3), np.float32)), bias64).dtype
    ints = Tensor(np.ones((1, 1, 4, 4), dtype=np.int64))
    assert ints.avg_pool2d(2).dtype == ints.avg_pool2d(3, 1).dtype == np.float32


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", [0, 1, 2])
@pytest.mark.parametrize("in_channels", [1, 3])
def test_an_empty_batch_gives_empty_outputs_and_zero_parameter_gradients(stride, padding, in_channels):
    """N = 0, as PyTorch allows: every path through the fused primitive (the stride-1 grid had none to lay out)."""
    x = Tensor(np.zeros((0, in_channels, 6, 7)), requires_grad=True)
    w = Tensor(np.ones((5, in_channels, 3, 3)), requires_grad=True)
    b = Tensor(np.ones(5), requires_grad=True)
    y = x.conv2d(w, b, stride=stride, padding=padding)
    ho, wo = (6 + 2 * padding - 3) // stride + 1, (7 + 2 * padding - 3) // stride + 1
    assert y.shape == (0, 5, ho, wo)
    y.sum().backward()
    assert x.grad.shape == x.shape
    assert not w.grad.numpy().any() and not b.grad.numpy().any() and w.grad.shape == w.shape
    for pool in (x.max_pool2d(2), x.avg_pool2d(3, 1, 1)):
        assert pool.shape[0] == 0
