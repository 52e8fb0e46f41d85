"""The backward engine, grad mode, hooks, `autograd.grad` and user-defined Functions (autograd.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_cnn import Function, Tensor, enable_grad, gradcheck, gradgradcheck, is_grad_enabled, no_grad
from tinygrad_cnn.autograd import grad
from tinygrad_cnn.testing import arrays, shapes


def leaf(values, dtype=np.float64):
    return Tensor(np.array(values, dtype=dtype), requires_grad=True)


# ============================================================================ accumulation and graph shapes
def test_leaf_grad_accumulates_across_backward_calls_until_zeroed():
    x = leaf([1.0, 2.0])
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [3 + 2, 3 + 4])
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.data, [3, 3])


def test_diamond_graph_sums_both_paths():
    a = leaf(2.0)
    b, c = a * 3, a.exp()
    d = b * c  # d = 3a·eᵃ  ⇒  d' = 3eᵃ(1 + a)
    d.backward()
    assert a.grad.item() == pytest.approx(3 * np.exp(2.0) * 3)


def test_a_tensor_used_several_times():
    x = leaf([1.5, -2.0])
    y = x * x * x + x + x  # 3x² + 2
    y.backward(np.ones(2))
    np.testing.assert_allclose(x.grad.data, 3 * x.data**2 + 2)



@pytest.mark.parametrize("shape", [(), (3,), (2, 1, 3)])
def test_a_gradient_summed_outside_the_graph_equals_the_recorded_sum_and_stays_an_array(shape):
    # without create_graph the engine sums a gradient used twice with numpy, not an Add node; a sum of
    # 0-d arrays is a numpy scalar, which must not reach the next node as a Tensor's data
    data = np.random.default_rng(0).standard_normal(shape)
    plain, recorded = leaf(data), leaf(data)
    h = (plain * 2.0).tanh()
    (g_plain,) = grad((h * h + h).sum(), h)
    h = (recorded * 2.0).tanh()
    (g_recorded,) = grad((h * h + h).sum(), h, create_graph=True)
    assert type(g_plain.data) is np.ndarray and g_plain.shape == shape
    np.testing.assert_array_equal(g_plain.data, g_recorded.data)
    y = (plain * 2.0).tanh()
    (y * y + y).sum().backward()
    assert type(plain.grad.data) is np.ndarray
    np.testing.assert_allclose(plain.grad.data, 2 * (1 - np.tanh(2 * data) ** 2) * (2 * np.tanh(2 * data) + 1))

def test_same_tensor_on_both_sides_of_one_op():
    x = leaf(3.0)
    (x * x).backward()
    assert x.grad.item() == 6.0
    y = leaf(3.0)
    (y - y).backward()
    assert y.grad.item() == 0.0


def test_a_chain_of_100000_ops_needs_no_recursion():
    x = leaf(1.0)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad.item() == 1.0


def test_a_wide_graph_reaches_every_leaf():
    leaves = [leaf(float(i)) for i in range(200)]
    total = leaves[0]
    for t in leaves[1:]:
        total = total + t * t
    total.backward()
    assert leaves[0].grad.item() == 1.0
    assert [t.grad.item() for t in leaves[1:]] == [2.0 * i for i in range(1, 200)]


@given(st.lists(st.tuples(st.sampled_from(["add", "mul", "tanh"]), st.integers(0, 10**6), st.integers(0, 10**6)),
                min_size=1, max_size=25))
def test_every_node_runs_once_after_every_node_that_used_its_output(program):
    """Random DAGs (each op reads any two earlier tensors): the engine's order is a reverse topological order,
    and the gradients are the sum over every path (checked against central differences in float64)."""
    from tinygrad_cnn import autograd

    def build(values):
        made = [*values]
        for op, i, j in program:
            a, b = made[i % len(made)], made[j % len(made)]
            made.append(a + b if op == "add" else a * b if op == "mul" else a.tanh())
        return sum(made[2:], made[-1]) * 0.5  # every op's result reaches the output (some twice)

    xs = [Tensor(np.array([0.3, -0.7]), requires_grad=True), Tensor(np.array([1.1, 0.4]), requires_grad=True)]
    out = build(xs).sum()
    ran: list[Tensor] = []
    with autograd.observe_backward(lambda t, g, sent: ran.append(t)):
        out.backward()
    position = {id(t): k for k, t in enumerate(ran)}
    assert len(position) == len(ran)  # each node once
    for k, t in enumerate(ran):
        for x in t.grad_fn.inputs:
            if id(x) in position:
                assert position[id(x)] > k  # an input's node runs after every node that used it
    for x in xs:
        def f(v, x=x):
            return float(build([Tensor(v) if y is x else Tensor(y.data) for y in xs]).sum().item())
        numeric = [(f(x.data + e) - f(x.data - e)) / 2e-6 for e in np.eye(2) * 1e-6]
        got = x.grad.data if x.grad is not None else np.zeros(2)  # (an input no op read gets no gradient)
        np.testing.assert_allclose(got, numeric, rtol=1e-5, atol=1e-6)


def test_only_leaves_keep_their_gradient():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.sum().backward()
    assert y.grad is None and y.grad_fn is not None and not y.is_leaf
    assert x.is_leaf and x.grad_fn is None


def test_constants_get_no_gradient():
    x = leaf([1.0, 2.0])
    c = Tensor(np.array([3.0, 4.0]))
    (x * c).sum().backward()
    assert c.grad is None and not c.requires_grad


def test_leaf_gradients_of_add_are_separate_arrays():
    """As in PyTorch: Add hands one gradient to both sides, yet the leaves must not share it."""
    a, b, c = leaf([1.0, 2.0]), leaf([3.0, 4.0]), leaf([0.0, 0.0])
    ((a + b) ** 2 + c.reshape(2)).sum().backward()
    a.grad.data *= 10  # e.g. a gradient clipped or scaled in place by an optimizer
    np.testing.assert_allclose(b.grad.data, [8.0, 12.0])
    b.grad.data[...] = 0
    np.testing.assert_allclose(c.grad.data, [1.0, 1.0])


def test_gradient_has_the_tensor_dtype():
    x = leaf([1.0, 2.0], dtype=np.float32)
    w = leaf([0.5, 0.25])  # float64: the product is float64
    y = x * w
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float64
    np.testing.assert_allclose(x.grad.data, [0.5, 0.25])


def test_backward_with_an_explicit_gradient():
    x = leaf([1.0, 2.0, 3.0])
    (x * x).backward(gradient=Tensor(np.array([1.0, 0.0, -1.0])))
    np.testing.assert_allclose(x.grad.data, [2.0, 0.0, -6.0])


def test_backward_of_a_non_scalar_without_gradient_is_an_error():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="one-element"):
        (x * 2).backward()


def test_backward_gradient_of_the_wrong_shape_is_an_error():
    x = leaf([1.0, 2.0])
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        (x * 2).backward(np.ones(3))


def test_backward_of_a_tensor_without_grad_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(np.ones(2)).sum().backward()


# ============================================================================ retain_graph
def test_second_backward_without_retain_graph_raises():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.data.copy()
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * first)
    with pytest.raises(RuntimeError):
        y.backward()


def test_backward_frees_what_forward_saved():
    x = leaf([[1.0, 5.0]])
    y = x.max(axis=1)
    node = y.grad_fn
    assert len(node.saved_tensors) == 1
    y.sum().backward()
    assert node.saved_tensors is None


def test_create_graph_retains_the_graph():
    x = leaf(2.0)
    y = x**3
    y.backward(create_graph=True)
    y.backward()  # retain_graph defaults to create_graph
    assert x.grad.item() == pytest.approx(2 * 12.0)


# ============================================================================ grad mode
def test_no_grad_as_a_context_manager():
    x = leaf([1.0])
    with no_grad():
        assert not is_grad_enabled()
        y = x * 2
    assert is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None


def test_no_grad_as_a_bare_decorator_and_called():
    x = leaf([1.0])

    @no_grad
    def bare(t):
        """Docstring kept."""
        return t * 2, is_grad_enabled()

    @no_grad()
    def called(t):
        return t * 2, is_grad_enabled()

    for fn in (bare, called):
        y, mode = fn(x)
        assert mode is False and not y.requires_grad
    assert is_grad_enabled()
    assert bare.__name__ == "bare" and bare.__doc__ == "Docstring kept."


def test_enable_grad_inside_no_grad_both_forms():
    x = leaf([1.0])

    @enable_grad
    def record(t):
        return t * 2

    with no_grad():
        with enable_grad():
            assert is_grad_enabled()
            y = x * 2
        assert not is_grad_enabled()
        z = record(x)
        w = enable_grad()(lambda t: t * 2)(x)
    assert y.requires_grad and z.requires_grad and w.requires_grad


def test_grad_mode_is_restored_after_an_exception():
    with pytest.raises(ZeroDivisionError), no_grad():
        _ = 1 / 0
    assert is_grad_enabled()

    @no_grad
    def fails():
        raise KeyError

    with pytest.raises(KeyError):
        fails()
    assert is_grad_enabled()


def test_one_no_grad_object_nests_with_itself():
    guard = no_grad()
    with guard:
        with enable_grad():
            with guard:
                assert not is_grad_enabled()
            assert is_grad_enabled()
        assert not is_grad_enabled()
    assert is_grad_enabled()


def test_backward_runs_without_recording_unless_create_graph():
    x = leaf([1.0, 2.0])
    (x * x).sum().backward()
    assert not x.grad.requires_grad and x.grad.grad_fn is None
    x.grad = None
    (x * x).sum().backward(create_graph=True)
    assert x.grad.requires_grad and x.grad.grad_fn is not None


# ============================================================================ hooks and retain_grad
def test_hook_inspects_the_complete_gradient_once():
    x = leaf([1.0, 2.0])
    y = x * 2
    seen = []
    y.register_hook(lambda g: seen.append(g.data.copy()))
    (y * 3 + y).sum().backward()  # two paths meet at y: the hook sees their sum, once
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [4.0, 4.0])
    np.testing.assert_allclose(x.grad.data, [8.0, 8.0])


def test_a_leaf_gradient_is_accumulated_as_soon_as_it_is_complete_as_in_pytorch():
    """A hook on b (whose branch was made later, so runs later) already sees w.grad, and w's own hook ran first:
    the order torch gives, which an engine that leaves every leaf to the end of the pass would break."""
    w, v = leaf([1.0]), leaf([2.0])
    b, a = v * 3.0, w * 2.0
    log = []
    b.register_hook(lambda g: log.append(("b", None if w.grad is None else w.grad.data.tolist())))
    w.register_hook(lambda g: log.append(("w", None)))
    (a.sum() + b.sum()).backward()
    assert log == [("w", None), ("b", [2.0])]


def test_two_tensors_sharing_a_node_each_send_their_gradient_through_it():
    """copy.copy of a computed tensor shares its node: each copy's gradient runs through it (as before)."""
    import copy

    x = leaf([1.0, 2.0])
    y = x * 2.0
    z = copy.copy(y)
    (y * 3.0 + z * 5.0).sum().backward(retain_graph=True)
    assert x.grad.data.tolist() == [16.0, 16.0]


def test_hook_can_replace_the_gradient():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.register_hook(lambda g: g * 10)
    x.register_hook(lambda g: g + 1)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [21.0, 21.0])


def test_hooks_run_in_order_and_can_be_removed():
    x = leaf([1.0])
    calls = []
    first = x.register_hook(lambda g: calls.append("first") or g * 2)
    x.register_hook(lambda g: calls.append("second") or g * 3)
    (x * 1.0).sum().backward()
    assert calls == ["first", "second"] and x.grad.item() == 6.0
    first.remove()
    first.remove()  # removing twice is harmless
    calls.clear()
    x.grad = None
    (x * 1.0).sum().backward()
    assert calls == ["second"] and x.grad.item() == 3.0


def test_hook_returning_a_wrong_shape_is_an_error():
    x = leaf([1.0, 2.0])
    x.register_hook(lambda g: g.sum())
    with pytest.raises(ValueError, match="hook"):
        (x * 2).sum().backward()


def test_hook_on_a_tensor_without_grad_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(np.ones(2)).register_hook(lambda g: g)


def test_retain_grad_keeps_an_intermediate_gradient():
    x = leaf([1.0, 2.0])
    y = x * 3
    z = y * y
    y.retain_grad()
    z.sum().backward(retain_graph=True)
    np.testing.assert_allclose(y.grad.data, 2 * y.data)
    assert z.grad is None
    z2 = (y * y).sum()
    z2.backward()  # accumulates, like a leaf
    np.testing.assert_allclose(y.grad.data, 4 * y.data)
    x.retain_grad()  # no-op on a leaf
    assert x.grad is not None


# ============================================================================ autograd.grad
def test_grad_returns_without_touching_dot_grad():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    gx, gw = grad((x * w).sum(), [x, w])
    np.testing.assert_allclose(gx.data, [3.0, 4.0])
    np.testing.assert_allclose(gw.data, [1.0, 2.0])
    assert x.grad is None and w.grad is None
    assert not gx.requires_grad


def test_grad_of_several_outputs_with_grad_outputs():
    x = leaf([1.0, 2.0])
    (g,) = grad([x * 2, x * x], x, [Tensor(np.array([1.0, 1.0])), Tensor(np.array([1.0, -1.0]))])
    np.testing.assert_allclose(g.data, [2 + 2, 2 - 4])


def test_grad_with_respect_to_an_intermediate():
    x = leaf([1.0, 2.0])
    y = x * 3
    (gy,) = grad((y * y).sum(), y)
    np.testing.assert_allclose(gy.data, 2 * y.data)


def test_grad_with_an_input_listed_twice():
    x = leaf([1.0, 2.0])
    g1, g2 = grad((x * x).sum(), [x, x])
    np.testing.assert_allclose(g1.data, [2.0, 4.0])
    np.testing.assert_allclose(g2.data, [2.0, 4.0])


def test_grad_unused_input():
    x, unused = leaf([1.0]), leaf([2.0])
    with pytest.raises(RuntimeError, match="not used"):
        grad((x * 2).sum(), [x, unused])
    gx, gu = grad((x * 2).sum(), [x, unused], allow_unused=True)
    assert gx.item() == 2.0 and gu is None


def test_grad_of_an_input_reached_only_through_zero_derivatives_is_zeros():
    """relu's mask is in the graph but has derivative 0: zeros, as PyTorch answers, not "not used"."""
    x = leaf([-1.0, 2.0])
    (dx,) = grad(x.relu().sum(), [x], create_graph=True)
    (second,) = grad(dx.sum(), [x], retain_graph=True)
    assert second.data.tolist() == [0.0, 0.0]
    (second,) = grad(dx.sum(), [x], allow_unused=True)  # reached, so zeros here too, not None
    assert second.data.tolist() == [0.0, 0.0]


def test_grad_of_an_input_without_grad_is_an_error():
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        grad((x * 2).sum(), Tensor(np.ones(1)))


def test_grad_frees_the_graph_unless_retained():
    x = leaf([1.0, 2.0])
    y = (x.exp()).sum()
    grad(y, x, retain_graph=True)
    grad(y, x)
    with pytest.raises(RuntimeError, match="second time"):
        grad(y, x)


def test_grad_with_create_graph_gives_second_derivatives():
    x = leaf([0.5, -1.0, 2.0])
    (g,) = grad((x**3).sum(), x, create_graph=True)
    assert g.requires_grad
    (h,) = grad(g.sum(), x)
    np.testing.assert_allclose(g.data, 3 * x.data**2)
    np.testing.assert_allclose(h.data, 6 * x.data)


def test_backward_of_a_gradient_made_with_create_graph():
    x = leaf(3.0)
    (x**3).backward(create_graph=True)
    g = x.grad
    assert g.item() == pytest.approx(27.0)
    x.grad = None
    g.backward()
    assert x.grad.item() == pytest.approx(18.0)


@given(arrays(shapes(min_dims=1, max_dims=1, max_side=5)), st.data())
def test_hessian_vector_product(x, data):
    n = x.shape[0]
    a = data.draw(arrays((n, n)))
    v = data.draw(arrays((n,)))
    t = Tensor(x, requires_grad=True)
    f = 0.5 * (t @ Tensor(a) @ t) + (t**3).sum() + t.tanh().sum()
    (g,) = grad(f, t, create_graph=True)
    (hv,) = grad((g * Tensor(v)).sum(), t)
    # H = (A + Aᵀ)/2 + diag(6x) + diag(tanh''(x)),  tanh'' = -2 tanh · (1 - tanh²)
    th = np.tanh(x)
    hessian = (a + a.T) / 2 + np.diag(6 * x - 2 * th * (1 - th**2))
    np.testing.assert_allclose(hv.data, hessian @ v, rtol=1e-9, atol=1e-9)


@given(arrays(shapes(min_dims=2, max_dims=2, max_side=4)), st.data())
def test_gradient_penalty_is_differentiable(x, data):
    """WGAN-GP: the loss depends on ‖∂D/∂x‖; its gradient with respect to the weights needs double backward."""
    w = Tensor(data.draw(arrays((x.shape[1], 3))), requires_grad=True)
    v = Tensor(data.draw(arrays((3,))))
    xt = Tensor(x, requires_grad=True)

    @enable_grad  # gradcheck evaluates us under no_grad, but the penalty needs a graph to differentiate
    def penalty(weights):
        critic = ((xt @ weights).tanh() @ v).sum()
        (g,) = grad(critic, xt, create_graph=True)
        norms = ((g * g).sum(axis=1) + 1e-3).sqrt()
        return ((norms - 1) ** 2).mean()

    assert gradcheck(penalty, [w])
    loss = penalty(w)
    loss.backward()
    assert w.grad is not None and w.grad.shape == w.shape


# ============================================================================ user-defined Functions
class Cube(Function):
    """y = x³ with @staticmethods, PyTorch style; backward written with Tensor ops (so twice differentiable)."""

    @staticmethod
    def forward(ctx, x, scale=1.0):
        ctx.scale = scale
        return scale * x**3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.inputs
        return g * ctx.scale * 3 * x * x


seen: list = []  # what MulAdd.backward found in ctx.needs_input_grad


class MulAdd(Function):
    """y = a·b + c with plain methods, save_for_backward and needs_input_grad."""

    def forward(ctx, a, b, c):
        ctx.save_for_backward(a, b)
        return a * b + c

    def backward(ctx, g):
        a, b = ctx.saved_tensors
        seen.append(ctx.needs_input_grad)
        return (g * b if ctx.needs_input_grad[0] else None,
                g * a if ctx.needs_input_grad[1] else None,
                g)



def test_user_function_with_staticmethods():
    x = leaf([1.0, -2.0])
    y = Cube.apply(x, scale=2.0)
    assert isinstance(y.grad_fn, Cube)
    np.testing.assert_allclose(y.data, [2.0, -16.0])
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, 6 * x.data**2)
    assert gradcheck(lambda t: Cube.apply(t, scale=0.5), [x])
    assert gradgradcheck(lambda t: Cube.apply(t, scale=0.5), [x])


def test_user_function_with_methods_saved_arrays_and_needs_input_grad():
    seen.clear()
    a, b = leaf([1.0, 2.0]), Tensor(np.array([3.0, 4.0]))
    c = leaf([0.5, 0.5])
    MulAdd.apply(a, b, c).sum().backward()
    assert seen == [(True, False, True)]
    np.testing.assert_allclose(a.grad.data, [3.0, 4.0])
    np.testing.assert_allclose(c.grad.data, [1.0, 1.0])
    assert b.grad is None


def test_user_function_accepts_numbers_and_arrays():
    x = leaf([1.0, 2.0])
    y = MulAdd.apply(x, np.array([2.0, 2.0]), 1.0)
    np.testing.assert_allclose(y.data, [3.0, 5.0])


def test_user_function_without_inputs_needing_grad_records_nothing():
    y = Cube.apply(Tensor(np.array([2.0])))
    assert not y.requires_grad and y.grad_fn is None
    with no_grad():
        z = Cube.apply(leaf([2.0]))
    assert not z.requires_grad and z.grad_fn is None


class ReturnsNumpy(Function):
    def forward(ctx, x):
        return x * 2

    def backward(ctx, g):
        return g.data * 2


class ReturnsWrongShape(Function):
    def forward(ctx, x):
        return x * 2

    def backward(ctx, g):
        return g.sum()


class ReturnsTooMany(Function):
    def forward(ctx, x):
        return x * 2

    def backward(ctx, g):
        return g, g


class NoBackward(Function):
    def forward(ctx, x):
        return x * 2


@pytest.mark.parametrize(
    ("op", "error", "message"),
    [
        (ReturnsNumpy, TypeError, r"ReturnsNumpy\.backward returned ndarray for input 0"),
        (ReturnsWrongShape, ValueError, r"ReturnsWrongShape\.backward .*shape \(\).*input 0 of shape \(2,\)"),
        (ReturnsTooMany, ValueError, r"ReturnsTooMany\.backward returned 2 gradients for 1 inputs"),
        (NoBackward, NotImplementedError, "NoBackward must define backward"),
    ],
)
def test_bad_backward_returns_are_named_errors(op, error, message):
    x = leaf([1.0, 2.0])
    with pytest.raises(error, match=message):
        op.apply(x).sum().backward()


def test_a_users_function_has_its_gradient_shapes_checked_and_our_primitives_do_not():
    """The check is for users' own ops (~3% of a small op's backward): ours are proven by the gradient tests,
    a user's subclass of one of ours is checked again."""
    from tinygrad_cnn import ops

    class MulWrongShape(ops.MulFn):
        def backward(ctx, g):
            return g.sum(), None

    assert ReturnsWrongShape.shape_checked and MulWrongShape.shape_checked and Function.shape_checked
    assert not ops.MulFn.shape_checked
    with pytest.raises(ValueError, match=r"MulWrongShape\.backward .*shape \(\).*input 0 of shape \(2,\)"):
        MulWrongShape.apply(leaf([1.0, 2.0]), Tensor(np.ones(2))).sum().backward()


def test_function_output_of_integer_dtype_carries_no_grad():
    class Floor(Function):
        def forward(ctx, x):
            return np.floor(x).astype(np.int64)

        def backward(ctx, g):
            raise AssertionError("never called")

    y = Floor.apply(leaf([1.5]))
    assert y.dtype == np.int64 and not y.requires_grad
