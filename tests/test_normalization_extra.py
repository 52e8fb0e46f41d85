"""LayerNorm, GroupNorm and Embedding (nn/normalization.py, nn/sparse.py), against PyTorch and central differences.

Values and first and second derivatives are compared with torch in float64 on
Hypothesis-drawn shapes; `gradcheck` and `gradgradcheck` check the composites on
their own. The modules' init, state_dict keys, parameter order and reprs are
compared with torch's, and every bad input must fail loudly with the op's name.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tinygrad_cnn import Tensor, autograd, gradcheck, gradgradcheck, nn
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.tensor import default_generator
from tinygrad_cnn.testing import examples, seeds, shapes

# ============================================================================ helpers


def against_torch(torch, our_fn, torch_fn, arrays, seed=0, grad2=True, atol=1e-9, rtol=1e-7):
    """our_fn and torch_fn on the same float64 inputs: values, then first and second derivatives.

    The first derivatives are vector-Jacobian products with a random upstream u; the
    second ones differentiate ⟨v, uᵀJ⟩ (random v) once more, as torch's double backward does.
    Gradients torch reports as absent must be zero (or absent) here.
    """
    rng = np.random.default_rng(seed)
    ours = [Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    got, expected = our_fn(*ours), torch_fn(*theirs)
    assert got.dtype == np.float64
    assert got.shape == tuple(expected.shape)
    np.testing.assert_allclose(got.data, expected.detach().numpy(), atol=atol, rtol=rtol, err_msg="forward")
    upstream = rng.standard_normal(got.shape)
    grads = autograd.grad(got, ours, Tensor(upstream), create_graph=grad2, allow_unused=True)
    torch_grads = torch.autograd.grad(expected, theirs, torch.tensor(upstream), create_graph=grad2,
                                      allow_unused=True)
    _same_grads(grads, torch_grads, atol, rtol, "first derivative")
    if not grad2:
        return
    probes = [rng.standard_normal(a.shape) for a in ours]
    used = [i for i, t in enumerate(torch_grads) if t is not None and t.requires_grad]
    if not used:
        return
    ours_dot = sum(((grads[i] * Tensor(probes[i])).sum() for i in used), Tensor(0.0, dtype=np.float64))
    theirs_dot = sum((torch_grads[i] * torch.tensor(probes[i])).sum() for i in used)
    second = autograd.grad(ours_dot, ours, allow_unused=True) if ours_dot.requires_grad else [None] * len(ours)
    _same_grads(second, torch.autograd.grad(theirs_dot, theirs, allow_unused=True), atol * 100, rtol * 100,
                "second derivative")


def _same_grads(ours, theirs, atol, rtol, what):
    for i, (o, t) in enumerate(zip(ours, theirs)):
        if t is None:
            assert o is None or not np.any(o.data), f"{what} of input {i}: torch gives none"
            continue
        assert o is not None, f"{what} of input {i}: missing"
        np.testing.assert_allclose(o.data, t.detach().numpy(), atol=atol, rtol=rtol, err_msg=f"{what} of input {i}")


@st.composite
def layer_norm_cases(draw):
    """(array, normalized_shape, which affine parameters) with 1..3 normalized trailing axes behind 0..2 others."""
    lead, normalized = draw(shapes(0, 2, 1, 3)), draw(shapes(1, 3, 1, 4))
    rng = np.random.default_rng(draw(seeds))
    affine = draw(st.sampled_from(["both", "weight", "bias", "none"]))
    return rng.standard_normal(lead + normalized) * 2 + 0.5, normalized, affine, rng


@st.composite
def group_norm_cases(draw):
    """(array of shape (N, C, *), num_groups) with C a multiple of the groups, 0..2 spatial axes."""
    n, groups, per_group = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    spatial = draw(shapes(0, 2, 1, 3))
    assume(n * per_group * math.prod(spatial) > 1)  # PyTorch refuses a single value per group
    rng = np.random.default_rng(draw(seeds))
    affine = draw(st.sampled_from(["both", "weight", "bias", "none"]))
    return rng.standard_normal((n, groups * per_group, *spatial)) * 2 - 0.5, groups, affine, rng


def _affine(torch, affine, shape, rng):
    """Arrays for the affine parameters that `affine` names, and functions placing them as (weight, bias).

    torch's double backward of layer_norm fails ("Expected a proper Tensor but got None")
    when a bias comes without a weight, so torch is then given a weight of ones (the same function).
    """
    names = {"both": ("weight", "bias"), "weight": ("weight",), "bias": ("bias",), "none": ()}[affine]
    arrays = [rng.standard_normal(shape) for _ in names]

    def place(params):
        given = dict(zip(names, params))
        return given.get("weight"), given.get("bias")

    def place_torch(params):
        weight, bias = place(params)
        if weight is None and bias is not None:
            weight = torch.ones(tuple(shape), dtype=torch.float64)
        return weight, bias

    return arrays, place, place_torch


# ============================================================================ F.layer_norm, F.group_norm
@given(layer_norm_cases())
def test_layer_norm_matches_torch_to_the_second_derivative(torch, case):
    x, normalized, affine, rng = case
    params, place, place_torch = _affine(torch, affine, normalized, rng)
    against_torch(torch, lambda x, *p: F.layer_norm(x, normalized, *place(p), eps=1e-5),
                  lambda x, *p: torch.nn.functional.layer_norm(x, normalized, *place_torch(p), eps=1e-5),
                  [x, *params])


@given(group_norm_cases())
def test_group_norm_matches_torch_to_the_second_derivative(torch, case):
    x, groups, affine, rng = case
    params, place, place_torch = _affine(torch, affine, x.shape[1:2], rng)
    against_torch(torch, lambda x, *p: F.group_norm(x, groups, *place(p), eps=1e-3),
                  lambda x, *p: torch.nn.functional.group_norm(x, groups, *place_torch(p), eps=1e-3), [x, *params])


@examples(8)
@given(layer_norm_cases())
def test_layer_norm_passes_gradcheck_and_gradgradcheck(case):
    x, normalized, _, rng = case
    assume(x.size <= 24)
    arrays = (x, rng.standard_normal(normalized), rng.standard_normal(normalized))
    inputs = [Tensor(a, requires_grad=True) for a in arrays]
    fn = lambda x, w, b: F.layer_norm(x, normalized, w, b)  # noqa: E731
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


@examples(8)
@given(group_norm_cases())
def test_group_norm_passes_gradcheck_and_gradgradcheck(case):
    x, groups, _, rng = case
    assume(x.size <= 24)
    c = x.shape[1]
    inputs = [Tensor(a, requires_grad=True) for a in (x, rng.standard_normal(c), rng.standard_normal(c))]
    fn = lambda x, w, b: F.group_norm(x, groups, w, b)  # noqa: E731
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


def test_normalized_output_has_zero_mean_and_unit_variance():
    x = Tensor(np.random.default_rng(0).normal(3.0, 5.0, (4, 6, 8)))
    y = F.layer_norm(x, (6, 8), eps=0.0).data
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(1, 2)), 1, atol=1e-12)
    g = F.group_norm(x, 3, eps=0.0).data.reshape(4, 3, -1)
    np.testing.assert_allclose(g.mean(axis=2), 0, atol=1e-12)
    np.testing.assert_allclose(g.var(axis=2), 1, atol=1e-12)


def test_group_norm_with_one_group_is_layer_norm_over_all_but_the_batch():
    x = Tensor(np.random.default_rng(1).standard_normal((2, 4, 3)))
    np.testing.assert_allclose(F.group_norm(x, 1).data, F.layer_norm(x, (4, 3)).data, atol=1e-12)


def test_float32_stays_float32():
    x = Tensor.randn(2, 4, 3)
    assert F.layer_norm(x, 3).dtype == np.float32
    assert F.group_norm(x, 2).dtype == np.float32


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: F.layer_norm(Tensor.randn(2, 4), (3,)), ValueError, r"normalized_shape=\[3\].*\(2, 4\)"),
        (lambda: F.layer_norm(Tensor.randn(4), (2, 4)), ValueError, r"expected input with shape \[\*, 2, 4\]"),
        (lambda: F.layer_norm(Tensor.randn(2, 4), ()), ValueError, "at least 1-dimensional"),
        (lambda: F.layer_norm(Tensor.randn(2, 4), 4, Tensor.ones(3)), ValueError, r"weight of shape \(3,\)"),
        (lambda: F.layer_norm(Tensor.randn(2, 4), 4, None, Tensor.ones(3)), ValueError, r"bias of shape \(3,\)"),
        (lambda: F.layer_norm(Tensor(np.ones((2, 4), np.int64)), 4), TypeError, "layer_norm: input must be floating"),
        (lambda: F.group_norm(Tensor.randn(2, 4), 3), ValueError, r"divisible by num_groups.*\(2, 4\).*num_groups=3"),
        (lambda: F.group_norm(Tensor.randn(4), 2), ValueError, r"at least 2 dimensions.*\(4,\)"),
        (lambda: F.group_norm(Tensor.randn(2, 4), 0), ValueError, "num_groups must be a positive int"),
        (lambda: F.group_norm(Tensor.randn(2, 4), 2, Tensor.ones(3)), ValueError, r"weight of shape \(3,\)"),
        (lambda: F.group_norm(Tensor.randn(2, 4), 2, None, Tensor.ones(2)), ValueError, r"bias of shape \(2,\)"),
        (lambda: F.group_norm(Tensor.randn(1, 2, 1), 2), ValueError, r"more than 1 value.*\(1, 2, 1\)"),
        (lambda: nn.GroupNorm(2, 3), ValueError, r"num_channels \(3\) must be divisible by num_groups \(2\)"),
        (lambda: nn.GroupNorm(2, 4)(Tensor.randn(2, 6)), ValueError, "GroupNorm: .* 6 channels .* num_channels=4"),
    ],
)
def test_bad_arguments_raise_naming_the_op(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ============================================================================ nn.LayerNorm, nn.GroupNorm
NORM_CONFIGS = [  # (class, args, kwargs, an input shape it takes)
    ("LayerNorm", (4,), {}, (2, 5, 4)),
    ("LayerNorm", ([2, 3],), {"bias": False}, (4, 2, 3)),
    ("LayerNorm", (3,), {"elementwise_affine": False, "eps": 1e-3}, (3,)),
    ("GroupNorm", (2, 4), {}, (2, 4, 3, 2)),
    ("GroupNorm", (3, 6), {"affine": False}, (2, 6)),
    ("GroupNorm", (1, 4), {"eps": 0.01, "bias": False}, (1, 4, 5)),
]


@pytest.mark.parametrize(("name", "args", "kwargs", "shape"), NORM_CONFIGS)
def test_modules_match_torch_in_init_keys_order_and_repr(torch, name, args, kwargs, shape):
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key], value.numpy())
        assert ours.state_dict()[key].dtype == np.float32
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    y = ours(Tensor(x))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data, theirs(torch.tensor(x)).detach().numpy(), atol=1e-5)


@pytest.mark.parametrize(("name", "args", "kwargs", "shape"), NORM_CONFIGS)
def test_modules_compute_in_float64_once_their_parameters_are_float64(torch, name, args, kwargs, shape):
    """Replacing each parameter's .data by a float64 array makes the whole layer float64, as torch's .double()."""
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs).double()
    rng = np.random.default_rng(3)
    for (_, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        p.data = rng.standard_normal(p.shape)
        q.data = torch.tensor(p.data)
    x = rng.standard_normal(shape)
    y = ours(Tensor(x, requires_grad=True))
    assert y.dtype == np.float64
    np.testing.assert_allclose(y.data, theirs(torch.tensor(x)).detach().numpy(), atol=1e-12)
    y.sum().backward()
    assert all(p.grad.dtype == np.float64 for p in ours.parameters())


def test_layer_norm_module_loads_a_torch_state_dict_and_agrees(torch):
    theirs = torch.nn.LayerNorm((3, 4))
    with torch.no_grad():
        theirs.weight.normal_()
        theirs.bias.normal_()
    ours = nn.LayerNorm((3, 4))
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(4).standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(ours(Tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(), atol=1e-5)


def test_normalized_shape_is_stored_as_a_tuple():
    assert nn.LayerNorm(5).normalized_shape == (5,)
    assert nn.LayerNorm([2, 3]).weight.shape == (2, 3)


# ============================================================================ F.embedding, nn.Embedding
@st.composite
def embedding_cases(draw):
    """(ids of 0..3 dimensions, table, padding_idx or None): ids drawn so that the padding id often occurs."""
    num, dim = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    shape = draw(shapes(0, 3, 1, 4))
    rng = np.random.default_rng(draw(seeds))
    ids = rng.integers(0, num, shape)
    padding = draw(st.one_of(st.none(), st.integers(-num, num - 1)))
    return ids, rng.standard_normal((num, dim)), padding


@given(embedding_cases())
def test_embedding_matches_torch_values_and_derivatives(torch, case):
    ids, table, padding = case
    against_torch(torch, lambda w: F.embedding(ids, w, padding) ** 2,
                  lambda w: torch.nn.functional.embedding(torch.tensor(ids), w, padding) ** 2, [table])


@examples(10)
@given(embedding_cases())
def test_embedding_passes_gradcheck_and_gradgradcheck(case):
    """The padding row is fixed by design (zero gradient), so there it enters the table as a constant."""
    ids, table, padding = case
    if padding is None:
        def fn(w):
            return F.embedding(Tensor(ids), w).tanh()
        variable = table
    else:
        row = padding % len(table)
        fixed, variable = Tensor(table[row : row + 1]), np.delete(table, row, axis=0)

        def fn(w):
            return F.embedding(Tensor(ids), Tensor.cat([w[:row], fixed, w[row:]]), padding_idx=padding).tanh()
    w = Tensor(variable, requires_grad=True)
    assert gradcheck(fn, [w])
    assert gradgradcheck(fn, [w])


@pytest.mark.parametrize("padding_idx", [0, 2, -1])
def test_padding_row_gets_zero_gradient_but_keeps_its_value(padding_idx):
    ids = np.array([[0, 1, 2, 3], [3, 3, 0, 2]])
    table = np.arange(12, dtype=np.float64).reshape(4, 3)
    w = Tensor(table.copy(), requires_grad=True)
    out = F.embedding(ids, w, padding_idx=padding_idx)
    np.testing.assert_array_equal(out.data, table[ids])  # the padding row's value is still looked up
    out.sum().backward()
    row = padding_idx % 4
    counts = np.bincount(ids.ravel(), minlength=4).astype(np.float64)
    counts[row] = 0
    np.testing.assert_array_equal(w.grad.data, np.repeat(counts[:, None], 3, axis=1))


def test_repeated_ids_accumulate_their_gradients():
    w = Tensor(np.zeros((3, 2)), requires_grad=True)
    F.embedding([1, 1, 1, 2], w).sum().backward()
    np.testing.assert_array_equal(w.grad.data, [[0, 0], [3, 3], [1, 1]])


def test_index_shapes_and_kinds():
    w = Tensor(np.arange(10.0).reshape(5, 2))
    assert F.embedding(Tensor(np.array(3)), w).shape == (2,)  # a 0-d id gives one row
    assert F.embedding(np.zeros((2, 0), np.int64), w).shape == (2, 0, 2)
    for ids in ([[1, 4]], np.array([[1, 4]], np.int32), np.array([[1, 4]], np.uint8), Tensor([[1, 4]])):
        np.testing.assert_array_equal(F.embedding(ids, w).data, [[[2, 3], [8, 9]]])


def test_a_0d_lookup_is_a_copy_not_a_view_of_the_table():
    w = Tensor(np.arange(6.0).reshape(3, 2))
    out = F.embedding(np.array(1), w)
    w.data[1] = -1
    np.testing.assert_array_equal(out.data, [2, 3])


@pytest.mark.parametrize(
    ("ids", "match"),
    [([0, 5], r"index 5 is out of range for num_embeddings=5"),
     ([[-1, 2]], r"index -1 is out of range for num_embeddings=5")],
)
def test_an_index_out_of_range_raises_index_error_naming_it(ids, match):
    with pytest.raises(IndexError, match=match):
        F.embedding(ids, Tensor.randn(5, 3))
    with pytest.raises(IndexError, match=match):
        nn.Embedding(5, 3)(Tensor(ids))


@pytest.mark.parametrize("ids", [np.array([1.0]), np.array([True]), [0.5]])
def test_a_non_integer_index_raises_type_error(ids):
    with pytest.raises(TypeError, match=r"embedding: expected integer indices .* got dtype"):
        F.embedding(ids, Tensor.randn(5, 3))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: nn.Embedding(5, 3, padding_idx=5), ValueError, "padding_idx must be within num_embeddings"),
        (lambda: nn.Embedding(5, 3, padding_idx=-6), ValueError, "padding_idx=-6 for num_embeddings=5"),
        (lambda: F.embedding([0], Tensor.randn(5, 3), padding_idx=7), ValueError, "embedding: padding_idx"),
        (lambda: F.embedding([0], Tensor.randn(5)), ValueError, r"weight must be a 2-D Tensor.*\(5,\)"),
        (lambda: F.embedding([0], Tensor.randn(5, 3), scale_grad_by_freq=True), NotImplementedError,
         "scale_grad_by_freq"),
        (lambda: F.embedding([0], Tensor.randn(5, 3), sparse=True), NotImplementedError, "sparse=True"),
        (lambda: nn.Embedding(3, 2, _weight=np.zeros((2, 3))), ValueError, r"shape of weight \(2, 3\)"),
        (lambda: nn.Embedding.from_pretrained(np.zeros(3)), ValueError, "must be 2-dimensional"),
    ],
)
def test_embedding_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_embedding_init_is_standard_normal_from_the_library_generator_with_padding_zeroed():
    Tensor.manual_seed(7)
    e = nn.Embedding(4, 3, padding_idx=1)
    Tensor.manual_seed(7)
    expected = default_generator().normal(0.0, 1.0, (4, 3)).astype(np.float32)
    expected[1] = 0
    np.testing.assert_array_equal(e.weight.data, expected)
    big = nn.Embedding(500, 100).weight.data
    assert abs(big.mean()) < 0.02 and abs(big.std() - 1) < 0.02
    assert big.dtype == np.float32 and e.weight.requires_grad


EMBEDDING_CONFIGS = [
    ((10, 3), {}),
    ((10, 3), {"padding_idx": 0}),
    ((10, 3), {"padding_idx": -1}),
    ((6, 2), {"max_norm": 1.0, "norm_type": 1.0}),
    ((6, 2), {"max_norm": 2.5}),
    ((6, 2), {"scale_grad_by_freq": True, "sparse": True}),
]


@pytest.mark.parametrize(("args", "kwargs"), EMBEDDING_CONFIGS)
def test_embedding_module_matches_torch_in_repr_keys_and_attributes(torch, args, kwargs):
    ours, theirs = nn.Embedding(*args, **kwargs), torch.nn.Embedding(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
    assert [n for n, _ in ours.named_parameters()] == ["weight"]
    assert ours.padding_idx == theirs.padding_idx
    if theirs.padding_idx is not None:
        assert not ours.weight.data[ours.padding_idx].any()


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_max_norm_rescales_the_looked_up_rows_in_place_as_torch(torch, norm_type):
    rng = np.random.default_rng(5)
    table = rng.standard_normal((6, 4)) * 2
    ids = np.array([[0, 2, 2], [5, 0, 1]])
    ours = nn.Embedding.from_pretrained(Tensor(table.copy()), freeze=False, max_norm=1.5, norm_type=norm_type)
    theirs = torch.nn.Embedding.from_pretrained(torch.tensor(table.copy()), freeze=False, max_norm=1.5,
                                                norm_type=norm_type)
    upstream = rng.standard_normal((2, 3, 4))
    got, expected = ours(ids), theirs(torch.tensor(ids))
    np.testing.assert_allclose(got.data, expected.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.weight.data, theirs.weight.detach().numpy(), rtol=1e-12)  # row 3, 4 untouched
    (got * Tensor(upstream)).sum().backward()
    (expected * torch.tensor(upstream)).sum().backward()
    np.testing.assert_allclose(ours.weight.grad.data, theirs.weight.grad.numpy(), rtol=1e-12)


def test_from_pretrained_shares_the_table_freezes_it_and_keeps_it_a_parameter():
    table = np.arange(6.0).reshape(3, 2)
    e = nn.Embedding.from_pretrained(table, padding_idx=0)
    assert np.shares_memory(e.weight.data, table)  # used as is: not copied, row 0 not zeroed
    assert not e.weight.requires_grad
    assert [n for n, _ in e.named_parameters()] == ["weight"] and list(e.state_dict()) == ["weight"]
    assert repr(e) == "Embedding(3, 2, padding_idx=0)"
    assert not e(np.array([1, 2])).requires_grad
    trainable = nn.Embedding.from_pretrained(Tensor(table), freeze=False)
    assert trainable.weight.requires_grad and np.shares_memory(trainable.weight.data, table)


def test_embedding_computes_in_float64_once_its_weight_is_float64(torch):
    e = nn.Embedding(5, 3, padding_idx=2)
    e.weight.data = np.random.default_rng(6).standard_normal((5, 3))
    ids = np.array([[2, 4], [0, 2]])
    y = e(ids)
    assert y.dtype == np.float64
    theirs = torch.nn.Embedding.from_pretrained(torch.tensor(e.weight.data), freeze=False, padding_idx=2)
    np.testing.assert_array_equal(y.data, theirs(torch.tensor(ids)).detach().numpy())
    y.sum().backward()
    assert e.weight.grad.dtype == np.float64 and not e.weight.grad.data[2].any()


def test_embedding_trains_with_sgd_except_the_padding_row():
    from tinygrad_cnn import optim

    Tensor.manual_seed(0)
    e = nn.Embedding(4, 2, padding_idx=3)
    before = e.weight.data.copy()
    optimizer = optim.SGD(e.parameters(), lr=0.1)
    e(np.array([0, 3, 3, 1])).sum().backward()
    optimizer.step()
    np.testing.assert_allclose(e.weight.data[[0, 1]], before[[0, 1]] - 0.1)
    np.testing.assert_array_equal(e.weight.data[[2, 3]], before[[2, 3]])
