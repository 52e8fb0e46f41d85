"""Tensor: construction, dtype rules, constructors, conversions, comparisons and error messages (tensor.py)."""

from __future__ import annotations

import contextlib
import operator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_cnn import Tensor, no_grad
from tinygrad_cnn.testing import arrays, broadcastable_shapes, shapes

F32, F64, I64 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64)


# ============================================================================ construction and dtypes
@pytest.mark.parametrize(
    ("data", "dtype"),
    [
        (1.5, F32),
        ([1.0, 2.0], F32),
        ([[1, 2.5]], F32),
        (np.array([1.0, 2.0]), F64),
        (np.array([1.0], dtype=np.float32), F32),
        (np.float64(1.0), F64),
        (3, I64),
        ([1, 2], I64),
        (np.array([1, 2], dtype=np.int32), np.dtype(np.int32)),
        ([True, False], np.dtype(bool)),
        (np.arange(3, dtype=np.uint8), np.dtype(np.uint8)),
    ],
)
def test_construction_dtype_rules(data, dtype):
    t = Tensor(data)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.data, np.asarray(data))


def test_python_floats_become_float32_but_arrays_are_used_as_is():
    a = np.array([1.0, 2.0])
    t = Tensor(a)
    assert t.data is a  # like torch.from_numpy: no copy
    assert Tensor(t).data is a


def test_dtype_keyword_converts():
    assert Tensor([1, 2], dtype=np.float64).dtype == F64
    assert Tensor(np.ones(2), dtype="float32").dtype == F32
    assert Tensor(1.7, dtype="int64").item() == 1


def test_python_floats_with_dtype_float64_keep_full_precision():
    assert Tensor([0.1], dtype=np.float64).data[0] == 0.1
    assert Tensor(0.1, dtype="float64").item() == 0.1
    assert Tensor.full((2,), 0.1, dtype=np.float64).data[0] == 0.1


def test_integer_and_bool_tensors_refuse_requires_grad():
    with pytest.raises(RuntimeError, match="int64"):
        Tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="bool"):
        Tensor([True], requires_grad=True)
    assert Tensor([1, 2], dtype=np.float32, requires_grad=True).requires_grad


@pytest.mark.parametrize("data", ["abc", None, object(), {1: 2}, np.array(["a", "b"]), np.array([1 + 2j])])
def test_unsupported_data_is_a_type_error(data):
    with pytest.raises(TypeError, match="Tensor"):
        Tensor(data)


def test_ragged_nested_lists_are_a_value_error():
    with pytest.raises(ValueError, match="Tensor"):
        Tensor([[1.0, 2.0], [3.0]])


def test_name_is_kept_and_shown():
    t = Tensor(np.ones(2), requires_grad=True, name="weight")
    assert t.name == "weight" and "weight" in repr(t)


# ============================================================================ Python scalars and promotion
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scalar", [2.0, 3, True, np.float64(2.0), np.int64(3)])
def test_python_scalars_never_upcast(dtype, scalar):
    t = Tensor(np.ones(3, dtype=dtype), requires_grad=True)
    results = [t + scalar, scalar + t, t - scalar, scalar - t, t * scalar, scalar * t, t / scalar, scalar / t,
               t**scalar, t.maximum(scalar), t.minimum(scalar), Tensor.where(t > 0, t, scalar)]
    for r in results:
        assert r.dtype == dtype, r
    sum(r.sum() for r in results).backward()
    assert t.grad.dtype == dtype


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        (Tensor([1, 2]), 1.5, F32),  # int tensor and python float: the default float
        (Tensor([1, 2]), 2, I64),
        (Tensor([1, 2], dtype=np.int32), 2, np.dtype(np.int32)),
        (Tensor([True, False]), 2, I64),
        (Tensor([True, False]), 2.0, F32),
        (Tensor([1.0], dtype=np.float32), Tensor([1.0], dtype=np.float64), F64),
        (Tensor([1.0], dtype=np.float32), Tensor([1]), F32),
        (Tensor([1], dtype=np.int32), Tensor([1], dtype=np.int64), I64),
        (Tensor([1.0], dtype=np.float32), np.array([1.0]), F64),  # an array is a tensor, not a scalar
    ],
)
def test_promotion_follows_pytorch(left, right, expected):
    assert (left + right).dtype == expected
    assert (right + left).dtype == expected


def test_true_division_of_integers_gives_float32():
    assert (Tensor([1, 2]) / 2).dtype == F32
    assert (2 / Tensor([1, 2])).dtype == F32
    np.testing.assert_allclose((Tensor([1, 2]) / Tensor([2, 4])).data, [0.5, 0.5])


def test_integer_tensor_methods_that_need_floats_convert():
    t = Tensor([1, 4])
    assert t.sqrt().dtype == F32 and t.exp().dtype == F32 and t.mean().dtype == F32
    np.testing.assert_allclose(t.sqrt().data, [1.0, 2.0])


def test_mixing_dtypes_keeps_the_graph_and_casts_gradients_back():
    x = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    i = Tensor([3, 4])
    y = (x * i + Tensor(np.array([0.5, 0.5]))).sum()
    assert y.dtype == F64
    y.backward()
    assert x.grad.dtype == F32
    np.testing.assert_allclose(x.grad.data, [3, 4])


def test_ndarray_on_the_left_keeps_the_graph():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    a = np.array([3.0, 4.0])
    for y in (a * x, a + x, a - x, a / x, a @ x, np.float64(2.0) * x):
        assert isinstance(y, Tensor) and y.requires_grad
    (a * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, a)


# ============================================================================ constructors
CONSTRUCTORS = {
    "zeros": lambda **kw: Tensor.zeros(2, 3, **kw),
    "ones": lambda **kw: Tensor.ones((2, 3), **kw),
    "full": lambda **kw: Tensor.full((2, 3), 1.5, **kw),
    "eye": lambda **kw: Tensor.eye(3, **kw),
    "arange": lambda **kw: Tensor.arange(0, 3, 0.5, **kw),
    "rand": lambda **kw: Tensor.rand(2, 3, **kw),
    "randn": lambda **kw: Tensor.randn([2, 3], **kw),
    "uniform": lambda **kw: Tensor.uniform(2, 3, low=-1, high=2, **kw),
    "zeros_like": lambda **kw: Tensor.zeros_like(Tensor(np.ones((2, 3))), **kw),
    "ones_like": lambda **kw: Tensor.ones_like(Tensor(np.ones((2, 3))), **kw),
}


@pytest.mark.parametrize("name", CONSTRUCTORS)
@pytest.mark.parametrize("dtype", [np.float64, "float64", np.float32, "float32"])
def test_constructors_take_dtype_and_requires_grad(name, dtype):
    t = CONSTRUCTORS[name](dtype=dtype, requires_grad=True)
    assert t.dtype == np.dtype(dtype) and t.requires_grad and t.is_leaf
    (t * 2).sum().backward()
    assert t.grad.dtype == np.dtype(dtype)


@pytest.mark.parametrize("name", ["zeros", "ones", "full", "eye", "arange", "zeros_like", "ones_like"])
def test_integer_constructors_refuse_requires_grad(name):
    assert CONSTRUCTORS[name](dtype=np.int64).dtype == I64
    with pytest.raises(RuntimeError):
        CONSTRUCTORS[name](dtype=np.int64, requires_grad=True)


@pytest.mark.parametrize("name", ["rand", "randn", "uniform"])
def test_random_constructors_are_floating(name):
    with pytest.raises(TypeError, match="float"):
        CONSTRUCTORS[name](dtype=np.int64)


def test_constructor_defaults_and_values():
    assert Tensor.zeros(2, 3).dtype == F32 and Tensor.zeros(2, 3).shape == (2, 3)
    assert Tensor.zeros([4]).shape == (4,) and Tensor.ones((2, 1)).shape == (2, 1)
    assert Tensor.zeros().shape == ()
    assert Tensor.full(3, 7).dtype == I64 and Tensor.full((3,), 7.0).dtype == F32
    assert Tensor.full((2,), 7.0).tolist() == [7.0, 7.0]
    np.testing.assert_array_equal(Tensor.eye(2, 3).data, np.eye(2, 3))
    assert Tensor.arange(4).dtype == I64 and Tensor.arange(4).tolist() == [0, 1, 2, 3]
    assert Tensor.arange(1, 7, 2).tolist() == [1, 3, 5]
    assert Tensor.arange(0.0, 1.0, 0.25).dtype == F32
    assert Tensor.zeros_like(Tensor([1, 2])).dtype == I64
    assert Tensor.ones_like(Tensor(np.ones(2, dtype=np.float32))).dtype == F32
    u = Tensor.uniform(1000, low=-2.0, high=-1.0)
    assert u.dtype == F32 and u.data.min() >= -2 and u.data.max() < -1
    r = Tensor.rand(1000)
    assert r.data.min() >= 0 and r.data.max() < 1
    assert abs(Tensor.randn(20000, dtype=np.float64).data.std() - 1) < 0.05


@pytest.mark.parametrize("name", ["rand", "randn", "uniform"])
def test_manual_seed_reproduces_random_constructors(name):
    Tensor.manual_seed(1234)
    first = CONSTRUCTORS[name]().data
    second = CONSTRUCTORS[name]().data
    Tensor.manual_seed(1234)
    np.testing.assert_array_equal(CONSTRUCTORS[name]().data, first)
    np.testing.assert_array_equal(CONSTRUCTORS[name]().data, second)
    assert not np.array_equal(first, second)
    Tensor.manual_seed(4321)
    assert not np.array_equal(CONSTRUCTORS[name]().data, first)


# ============================================================================ comparisons
@given(broadcastable_shapes(2, max_dims=3, max_side=3), st.data())
def test_comparisons_are_boolean_without_grad(shapes_, data):
    a, b = (data.draw(arrays(s, min_value=-2, max_value=2).map(np.round)) for s in shapes_.input_shapes)
    x = Tensor(a, requires_grad=True)
    for op, fn in [(operator.lt, np.less), (operator.le, np.less_equal), (operator.gt, np.greater),
                   (operator.ge, np.greater_equal), (operator.eq, np.equal), (operator.ne, np.not_equal)]:
        for other, raw in ((Tensor(b), b), (b, b), (0.5, 0.5)):
            result = op(x, other)
            assert isinstance(result, Tensor) and result.dtype == bool
            assert not result.requires_grad and result.grad_fn is None
            np.testing.assert_array_equal(result.data, fn(a, raw))


def test_comparison_broadcast_mismatch_names_the_op():
    with pytest.raises(ValueError, match=r"lt: shapes \(2, 3\) and \(4, 5\)"):
        _ = Tensor.ones(2, 3) < Tensor.ones(4, 5)


# ============================================================================ conversions and attributes
def test_attributes():
    t = Tensor(np.arange(6.0).reshape(2, 3))
    assert t.shape == (2, 3) and isinstance(t.shape, tuple)
    assert t.ndim == 2 and t.numel() == 6 and t.size() == (2, 3) and t.size(1) == 3 and t.size(-2) == 2
    assert t.dim() == 2
    assert t.dtype == F64 and isinstance(t.dtype, np.dtype)
    assert t.grad is None and not t.requires_grad


def test_item_tolist_len_numpy_array_float_int():
    t = Tensor(np.array([[1.5, 2.0], [3.0, 4.0]]))
    assert t.tolist() == [[1.5, 2.0], [3.0, 4.0]]
    assert len(t) == 2
    assert t.numpy() is t.data and np.asarray(t) is t.data
    assert np.asarray(t, dtype=np.float32).dtype == F32
    assert t[0, 0].item() == 1.5 and isinstance(t[0, 0].item(), float)
    assert Tensor([7]).item() == 7 and isinstance(Tensor([7]).item(), int)
    assert float(Tensor(2.5)) == 2.5 and int(Tensor(3)) == 3
    assert [row.tolist() for row in t] == [[1.5, 2.0], [3.0, 4.0]]
    with pytest.raises(ValueError, match=r"item.*\(2, 2\)"):
        t.item()
    with pytest.raises(TypeError, match="0-d"):
        len(Tensor(1.0))


def test_truth_value():
    assert bool(Tensor([1.0])) and not bool(Tensor(0.0))
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(Tensor([1.0, 2.0]))


def test_T_reverses_the_axes_and_is_differentiable():
    x = Tensor(np.arange(24.0).reshape(2, 3, 4), requires_grad=True)
    assert x.T.shape == (4, 3, 2)
    np.testing.assert_array_equal(x.T.data, x.data.T)
    (x.T * Tensor(np.arange(24.0).reshape(2, 3, 4).T)).sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.arange(24.0).reshape(2, 3, 4))
    assert Tensor(1.0).T.shape == ()


def test_detach_shares_data_and_cuts_the_graph():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.data is y.data
    (y.sum() + (d * x).sum()).backward()
    np.testing.assert_array_equal(x.grad.data, [2 + 2, 2 + 4])


def test_repr_shows_data_dtype_and_grad_fn():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    assert repr(x) == "Tensor([1., 2.], dtype=float64, requires_grad=True)"
    r = repr(x * 2)
    assert "grad_fn=<Mul>" in r and "dtype=float64" in r and "[2., 4.]" in r
    assert "grad_fn=<Sum>" in repr((x * 2).sum())
    assert "grad_fn" not in repr(Tensor([1, 2])) and "int64" in repr(Tensor([1, 2]))
    with no_grad():
        assert "grad_fn" not in repr(x * 2)


def test_reductions_argmax_argmin():
    t = Tensor(np.array([[1.0, 5.0, 5.0], [7.0, 0.0, 0.0]]))
    assert t.argmax().item() == 3 and t.argmin().item() == 4
    assert t.argmax(axis=1).tolist() == [1, 0] and t.argmin(dim=-1).tolist() == [0, 1]
    assert t.argmax(axis=0, keepdims=True).shape == (1, 3)
    assert t.argmax(1).dtype.kind == "i" and not t.argmax(1).requires_grad


# ============================================================================ errors
@given(shapes(min_dims=1, max_dims=3, min_side=2, max_side=3), shapes(max_dims=2, max_side=3),
       st.sampled_from(["add", "sub", "mul", "div", "pow", "maximum", "minimum"]), st.booleans())
def test_broadcast_mismatch_names_the_op_and_both_shapes(a_shape, lead, op, grad_mode):
    b_shape = (*lead, a_shape[-1] + 1)  # the last sides differ and neither is 1
    a, b = Tensor(np.ones(a_shape), requires_grad=True), Tensor(np.ones(b_shape))
    fn = {"add": a.__add__, "sub": a.__sub__, "mul": a.__mul__, "div": a.__truediv__, "pow": a.__pow__,
          "maximum": a.maximum, "minimum": a.minimum}[op]
    with pytest.raises(ValueError, match=rf"^{op}: shapes .* cannot be broadcast"), \
            contextlib.nullcontext() if grad_mode else no_grad():
        fn(b)


def test_broadcast_error_message_is_exact():
    with pytest.raises(ValueError, match=r"^add: shapes \(2, 3\) and \(4, 5\) cannot be broadcast together$"):
        Tensor.ones(2, 3) + Tensor.ones(4, 5)
    with pytest.raises(ValueError, match=r"^where: shapes"):
        Tensor.where(np.ones((2, 3), dtype=bool), Tensor.ones(2, 3), Tensor.ones(4, 3))


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        ((2, 3), (4, 5), r"matmul: shapes \(2, 3\) and \(4, 5\) cannot be multiplied"),
        ((3,), (4,), r"matmul: shapes \(3,\) and \(4,\) cannot be multiplied"),
        ((2, 2, 3), (2,), r"matmul: shapes \(2, 2, 3\) and \(2,\) cannot be multiplied"),
        ((2, 2, 3), (3, 3, 1), r"matmul: shapes \(2, 2, 3\) and \(3, 3, 1\)"),
        ((), (3,), r"matmul: .*shapes \(\) and \(3,\)"),
    ],
)
def test_matmul_mismatch_names_both_shapes(a, b, message):
    x, y = Tensor(np.ones(a), requires_grad=True), Tensor(np.ones(b))
    with pytest.raises(ValueError, match=message):
        x @ y
    with no_grad(), pytest.raises(ValueError, match=message):
        x @ y


def test_shape_errors_name_the_op():
    t = Tensor.ones(2, 3)
    cases = [
        (lambda: t.reshape(4, 2), r"reshape: .*\(2, 3\)"),
        (lambda: t.reshape(-1, -1), "reshape"),
        (lambda: t.permute(0, 0), r"permute: .*\(2, 3\)"),
        (lambda: t.expand(4, 3), r"expand: .*\(2, 3\)"),
        (lambda: t.flatten(1, 0), "flatten"),
        (lambda: t.pad(((1, 1),)), "pad"),
        (lambda: Tensor.cat([t, Tensor.ones(2, 4)]), r"cat: shapes \(2, 3\) and \(2, 4\)"),
        (lambda: Tensor.stack([t, Tensor.ones(3, 2)]), r"stack: .*\(2, 3\) and \(3, 2\)"),
        (lambda: Tensor.cat([]), "cat"),
        (lambda: t.dot(t), r"dot: .*\(2, 3\)"),
        (lambda: t.sum(axis=2), "sum: axis 2"),
        (lambda: t.max(axis=(0, 0)), "max: repeated axis"),
        (lambda: t.clip(), "clip"),
        (lambda: Tensor.ones(0, 3).max(), "max: cannot reduce over an empty axis"),
    ]
    for fn, message in cases:
        with pytest.raises(ValueError, match=message):
            fn()


def test_axis_errors_are_also_index_errors_like_numpy():
    with pytest.raises(IndexError):
        Tensor.ones(2).sum(axis=1)


def test_indexing_errors():
    with pytest.raises(IndexError, match=r"shape \(2, 3\)"):
        Tensor.ones(2, 3)[5]
    with pytest.raises(IndexError):
        Tensor.ones(2, 3)[[0, 3]]


@pytest.mark.parametrize("other", ["a", None, {}, object()])
def test_wrong_operand_types_are_type_errors(other):
    t = Tensor.ones(2)
    for fn in (lambda: t + other, lambda: other * t, lambda: t @ other, lambda: t.maximum(other)):
        with pytest.raises(TypeError):
            fn()


def test_wrong_axis_and_shape_types_are_type_errors():
    t = Tensor.ones(2, 3)
    with pytest.raises(TypeError, match="axis"):
        t.sum(axis="0")
    with pytest.raises(TypeError, match="axis"):
        t.sum(axis=1.0)
    with pytest.raises(TypeError, match="shape"):
        t.reshape("a", 6)
    with pytest.raises(TypeError, match="shape"):
        Tensor.zeros(2.5)
    with pytest.raises(TypeError, match="unsqueeze"):
        t.unsqueeze()


def test_autograd_misuse_is_a_runtime_error():
    x = Tensor(np.ones(2), requires_grad=True)
    y = (x * 2).sum()
    y.backward()
    cases = [
        lambda: y.backward(),  # second time
        lambda: (x * 2).backward(),  # non-scalar without gradient
        lambda: Tensor([1, 2], requires_grad=True),
        lambda: Tensor(np.ones(2)).sum().backward(),
        lambda: Tensor([1, 2]).register_hook(print),
    ]
    for fn in cases:
        with pytest.raises(RuntimeError):
            fn()


# ============================================================================ indexing forms
@given(arrays(shapes(min_dims=2, max_dims=2, max_side=4)))
def test_indexing_forms_agree_with_numpy(x):
    t = Tensor(x)
    n = x.shape[0]
    for key in [0, -1, slice(None, None, 2), (slice(None), None, 0), (Ellipsis, 0), [0, n - 1, 0], (None,)]:
        np.testing.assert_array_equal(t[key].data, x[key])
    np.testing.assert_array_equal(t[Tensor(np.array([n - 1, 0]))].data, x[[n - 1, 0]])
    np.testing.assert_array_equal(t[t > 0].data, x[x > 0])


def test_dim_aliases_and_shape_argument_forms():
    t = Tensor(np.arange(6.0).reshape(2, 3))
    assert Tensor.stack([t, t], dim=1).shape == (2, 2, 3)
    assert Tensor.cat([t, t], dim=-1).shape == (2, 6)
    assert t.unsqueeze(dim=0).shape == (1, 2, 3)
    assert t.reshape(1, 2, 1, 3).squeeze(dim=(0, 2)).shape == (2, 3)
    assert t.softmax(dim=0).shape == (2, 3) and t.log_softmax(dim=0).shape == (2, 3)
    assert t.sum(dim=1).tolist() == [3.0, 12.0] and t.max(dim=-1, keepdims=True).shape == (2, 1)
    assert t.reshape([3, 2]).shape == (3, 2) and t.reshape((6,)).shape == (6,) and t.view(-1).shape == (6,)
    assert t.permute([1, 0]).shape == (3, 2) and t.expand((4, 2, 3)).shape == (4, 2, 3)
    assert t.pad(1).shape == (4, 5) and t.pad(1).data[0, 0] == 0.0
    assert Tensor(np.ones((1, 1))).reshape().shape == ()


def test_backward_of_a_one_element_non_scalar():
    x = Tensor(np.array([[2.0]]), requires_grad=True)
    (x * x).backward()
    assert x.grad.tolist() == [[4.0]]
