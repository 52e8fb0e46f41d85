"""`import tinygrad_cnn as torch`: the names a PyTorch script touches at its edges, compared with PyTorch.

Top-level functions, dtypes and devices, the Tensor methods PyTorch users reach
for (`size()`, `t()`, `__index__`, `.to`, `.float()`), `grad_fn.next_functions`,
`nn.Parameter`'s `.data` with in-place methods, and the in-place operations with
PyTorch's safety rule: tests here would catch a silently wrong gradient.
"""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import nn


def test_dtypes_are_numpys_under_pytorchs_names():
    assert tg.float32 == tg.float == np.float32 and tg.float64 == tg.double == np.float64
    assert tg.int64 == tg.long == np.int64 and tg.int32 == tg.int == np.int32 and tg.bool == np.bool_
    x = tg.tensor([1.5, 2.0])
    assert x.dtype == tg.float32
    assert tg.tensor([1, 2]).dtype == tg.int64 and tg.tensor([True]).dtype == tg.bool
    assert tg.tensor(np.array([1.0])).dtype == tg.float64


def test_factories_take_pytorchs_arguments(torch):
    for name in ("zeros", "ones"):
        ours, theirs = getattr(tg, name)(2, 3), getattr(torch, name)(2, 3)
        assert ours.shape == tuple(theirs.shape) and str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
        assert getattr(tg, name)((2, 3), dtype=tg.float64, device="cpu").dtype == np.float64
    assert tg.full((2,), 7).dtype == np.int64 and tg.full((2,), 7.0).dtype == np.float32
    assert tg.arange(5).tolist() == torch.arange(5).tolist() and tg.arange(0, 1, 0.25).dtype == np.float32
    assert tg.eye(3).tolist() == torch.eye(3).tolist()
    tg.manual_seed(0)
    a = tg.rand(3, 4)
    tg.manual_seed(0)
    assert np.array_equal(a.data, tg.rand(3, 4).data) and a.dtype == np.float32
    assert tg.randn(2, requires_grad=True).requires_grad
    assert tg.zeros_like(a).shape == a.shape and tg.ones_like(a, dtype=tg.float64).dtype == np.float64
    assert tg.rand_like(a).shape == (3, 4) and tg.randn_like(a).dtype == np.float32
    source = np.array([1.0, 2.0])
    copied = tg.tensor(source)
    source[0] = 9
    assert copied.tolist() == [1.0, 2.0]  # torch.tensor copies


def test_functions_match_torch(torch):
    x = np.random.default_rng(0).standard_normal((3, 4))
    X, T = tg.tensor(x), torch.tensor(x)
    pairs = [
        (tg.matmul(X, X.t()), torch.matmul(T, T.t())), (tg.flatten(X), torch.flatten(T)),
        (tg.exp(X), torch.exp(T)), (tg.log(tg.abs(X)), torch.log(torch.abs(T))), (tg.sum(X, 1), torch.sum(T, 1)),
        (tg.mean(X, dim=0), torch.mean(T, dim=0)), (tg.softmax(X, dim=1), torch.softmax(T, dim=1)),
        (tg.relu(X), torch.relu(T)), (tg.sigmoid(X), torch.sigmoid(T)), (tg.tanh(X), torch.tanh(T)),
        (tg.where(X > 0, X, tg.zeros_like(X)), torch.where(T > 0, T, torch.zeros_like(T))),
        (tg.cat([X, X], dim=1), torch.cat([T, T], dim=1)), (tg.stack([X, X], dim=0), torch.stack([T, T], dim=0)),
        (tg.max(X), torch.max(T)), (tg.argmax(X, dim=1), torch.argmax(T, dim=1)),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-12)
    values, indices = tg.max(X, 1)
    tvalues, tindices = torch.max(T, 1)
    np.testing.assert_array_equal(values.data, tvalues.numpy())
    np.testing.assert_array_equal(indices.data, tindices.numpy())
    assert tg.max(X, dim=1).indices.tolist() == tindices.tolist()
    assert tg.allclose(X, X + 1e-9) and not tg.allclose(X, X + 1)
    assert tg.is_tensor(X) and not tg.is_tensor(x)


def test_devices_the_cpu_is_the_one_there_is():
    assert not tg.cuda.is_available() and not tg.backends.mps.is_available()
    assert not tg.accelerator.is_available()
    cpu = tg.device("cpu")
    assert cpu == "cpu" and str(cpu) == "cpu" and repr(cpu) == "device(type='cpu')"
    x = tg.ones(2)
    assert x.to(cpu) is x and x.to("cpu") is x and x.cpu() is x and x.device == cpu and not x.is_cuda
    assert x.to("cpu", tg.float64).dtype == np.float64 and x.to(dtype=tg.float64).dtype == np.float64
    assert x.to(tg.tensor([1])).dtype == np.int64
    for bad in ("cuda", "cuda:0", "mps"):
        with pytest.raises(RuntimeError, match=f"device '{bad}' is not available"):
            x.to(bad)
        with pytest.raises(RuntimeError, match="not available"):
            tg.zeros(2, device=bad)
    with pytest.raises(RuntimeError, match="not available"):
        tg.device("cuda")
    with pytest.raises(RuntimeError, match="neither a device nor a dtype"):
        x.to("gpu0")


def test_tensor_methods_pytorch_users_reach_for(torch):
    x = tg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert x.size() == (2, 3) and x.size(1) == 3 and x.size(-1) == 3 and x.numel() == 6 and x.dim() == 2
    assert x.t().shape == (3, 2) and tg.tensor([1.0, 2.0]).t().shape == (2,)
    with pytest.raises(ValueError, match="at most 2 dimensions"):
        tg.zeros(2, 2, 2).t()
    classes = ["a", "b", "c"]
    assert classes[x[0].argmax(0)] == "c"
    with pytest.raises(TypeError, match="single element"):
        classes[x[0]]
    assert bool(tg.tensor([1])) and not bool(tg.tensor(0.0))
    pred, y = tg.tensor([[0.1, 0.9], [0.8, 0.2]]), tg.tensor([1, 1])
    correct = (pred.argmax(1) == y).type(tg.float).sum().item()
    assert correct == 1.0
    assert x.type() == "torch.FloatTensor" and x.double().type() == "torch.DoubleTensor"
    assert x.long().dtype == np.int64 and x.int().dtype == np.int32 and x.bool().dtype == np.bool_
    assert x.float().dtype == np.float32
    leaf = tg.zeros(3)
    assert leaf.requires_grad_() is leaf and leaf.requires_grad
    assert x.size() == tuple(torch.zeros(2, 3).size())


def test_grad_fn_next_functions_walk_the_graph_as_in_pytorch():
    net = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    loss = nn.MSELoss()(net(tg.ones(1, 3)), tg.zeros(1, 2))
    node = loss.grad_fn
    names = []
    while node is not None and node.next_functions:
        names.append(node.name())
        node = next((f for f, _ in node.next_functions if f is not None), None)
    assert "Relu" in names and "Linear" in names
    linear = next(n for n in _walk(loss.grad_fn) if n.name() == "Linear")
    leaves = [f for f, _ in linear.next_functions if f is not None and f.name() == "AccumulateGrad"]
    assert {id(f.variable) for f in leaves} == {id(net[0].weight), id(net[0].bias)}
    assert all(index == 0 for _, index in loss.grad_fn.next_functions)


def _walk(node):
    seen, stack = set(), [node]
    while stack:
        n = stack.pop()
        if n is None or id(n) in seen:
            continue
        seen.add(id(n))
        yield n
        stack.extend(f for f, _ in n.next_functions)


# ============================================================================ in-place operations
def test_in_place_ops_on_plain_tensors_and_grads(torch):
    x = tg.tensor([1.0, 2.0, 3.0])
    t = torch.tensor([1.0, 2.0, 3.0])
    for ours, theirs in [(x.add_(1), t.add_(1)), (x.sub_(0.5, alpha=2), t.sub_(0.5, alpha=2)), (x.mul_(3), t.mul_(3)),
                         (x.div_(2), t.div_(2)), (x.clamp_(2.0, 4.0), t.clamp_(2.0, 4.0))]:
        assert ours is x
        np.testing.assert_allclose(ours.data, theirs.numpy())
    x.copy_(tg.tensor([7.0, 8.0, 9.0]))
    assert x.tolist() == [7.0, 8.0, 9.0] and x.fill_(2).tolist() == [2.0, 2.0, 2.0] and x.zero_().tolist() == [0] * 3
    assert x.uniform_(0, 1).data.max() < 1 and x.normal_().shape == (3,)
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    w.grad.zero_()  # the autograd tutorial's line
    assert w.grad.tolist() == [0.0, 0.0]
    i = tg.tensor([1, 2])
    i += 1
    assert i.tolist() == [2, 3]


def test_in_place_on_a_leaf_that_requires_grad_needs_no_grad():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        w.sub_(1)
    with pytest.raises(RuntimeError, match="a leaf Variable"):
        w -= 1
    with tg.no_grad():
        w -= 0.5  # the manual SGD step of PyTorch's tutorials
    assert w.tolist() == [0.5, 1.5] and w.requires_grad and w.is_leaf


def test_in_place_never_gives_a_silently_wrong_gradient():
    w = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x = tg.tensor([1.0, 2.0, 3.0])
    y = (w * x).sum()
    x.mul_(10)  # Mul saved x for dw
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()
    base = tg.tensor([1.0, 2.0, 3.0])
    view = base[0:2]
    y = (w[0:2] * view).sum()
    base.add_(1)  # writes through the view's memory
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()
    a = tg.tensor([0.5, 1.0], requires_grad=True)
    s = a.exp()
    with tg.no_grad():
        s.mul_(2)  # exp saved its output
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        s.sum().backward()
    ok = (w * tg.tensor([1.0, 1.0, 1.0])).sum()
    tg.tensor([5.0]).add_(1)  # an unrelated write does not disturb it
    ok.backward()
    assert w.grad.tolist() == [1.0, 1.0, 1.0]


def test_in_place_on_a_computed_tensor_that_requires_grad():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    h = w * 2
    with pytest.raises(RuntimeError, match="out-of-place"):
        h.add_(1)
    h += 1  # falls back to h = h + 1: the gradient is right
    h.sum().backward()
    assert w.grad.tolist() == [2.0, 2.0]


def test_parameters_data_has_pytorchs_in_place_methods(torch):
    tg.manual_seed(0)
    layer = nn.Linear(3, 2)
    assert isinstance(layer.weight, nn.Parameter) and isinstance(layer.weight.data, np.ndarray)
    before = layer.weight.data.copy()
    layer(tg.ones(1, 3)).sum().backward()
    for f in layer.parameters():
        f.data.sub_(f.grad.data * 0.1)  # the neural-networks tutorial's update
    np.testing.assert_allclose(layer.weight.data, before - 0.1 * layer.weight.grad.data)
    layer.weight.data = np.zeros((2, 3), np.float32)
    assert layer.weight.data.zero_().sum() == 0 and layer.weight.data.fill_(2.0).max() == 2
    p = nn.Parameter(tg.randn(2))
    assert p.requires_grad and p.is_leaf and repr(p).startswith("Parameter containing:")
    assert nn.Parameter(tg.zeros(2), requires_grad=False).requires_grad is False


def test_modules_move_to_a_dtype_and_refuse_other_devices():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    assert model.to("cpu") is model and model.cpu() is model
    model.to(tg.float64)
    assert all(p.dtype == np.float64 for p in model.parameters()) and model[1].running_mean.dtype == np.float64
    assert model(tg.ones(4, 2, dtype=tg.float64)).dtype == np.float64
    model.float()
    assert model[0].weight.dtype == np.float32
    with pytest.raises(RuntimeError, match="'cuda' is not available"):
        model.to("cuda")


def test_in_place_review_cases_give_right_gradients_or_errors():
    w = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    h = tg.zeros(3)
    h += w * 2  # an accumulator that becomes part of the graph: rebinds, so the gradient counts it
    (h * w).sum().backward()
    assert w.grad.tolist() == [4.0, 8.0, 12.0]
    with pytest.raises(RuntimeError, match="requires grad"):
        tg.zeros(3).copy_(w)  # the write would not be recorded
    x = tg.tensor(np.arange(8.0).reshape(2, 4), requires_grad=True)
    y = x.max(1)  # MaxFn keeps its result array for backward
    with tg.no_grad():
        y.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    p = nn.Parameter(np.ones((2, 3), np.float32))
    inputs = tg.tensor(np.ones((4, 3), np.float32), requires_grad=True)
    out = (inputs @ p.detach().T).sum()
    with tg.no_grad():
        p.mul_(5)  # a write through the Parameter reaches the view the product read
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.backward()
    b = tg.tensor([1.0, 2.0])
    fine = (w[:2] * b).sum()
    with pytest.raises(ValueError):
        b.add_(tg.ones(5))  # fails, writes nothing: no stamp
    fine.backward()


def test_in_place_through_an_index_writes_into_the_tensor():
    x = tg.zeros(3)
    x[1].fill_(5)
    z = tg.zeros(2, 3)
    z[1, 2].add_(5)
    assert x.tolist() == [0.0, 5.0, 0.0] and z.tolist() == [[0, 0, 0], [0, 0, 5]]
    assert tg.full((2,), 0.1, dtype=tg.float64)[0].item() == 0.1
    assert tg.tensor(1.0).div(0.1, rounding_mode="floor").item() == 9.0  # Python's 1.0 // 0.1
    assert tg.tensor([2**62 + 1]).div(1, rounding_mode="trunc").item() == 2**62 + 1
