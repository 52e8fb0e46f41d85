"""Tests for nn.Module's machinery: registration, traversal, Sequential, state_dict, repr, scopes.

Layers against PyTorch, initialisation and whole-model comparisons are in test_nn.py.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

from tinygrad_cnn import Tensor, autograd, nn


class Block(nn.Module):
    """A custom module mixing a parameter, a buffer, a child and a plain attribute."""

    def __init__(self):
        super().__init__()
        self.scale = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
        self.fc = nn.Linear(3, 2)
        self.register_buffer("count", Tensor(np.zeros((), dtype=np.int64)))
        self.note = "plain attribute"
        self.frozen_constant = Tensor(np.ones(3, dtype=np.float32))  # no grad: not a parameter

    def forward(self, x):
        return self.fc(x * self.scale)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
        self.block = Block()

    def forward(self, x):
        return self.block(self.features(x))


# ============================================================================ registration and traversal
def test_registration_by_assignment():
    b = Block()
    assert [n for n, _ in b.named_parameters()] == ["scale", "fc.weight", "fc.bias"]
    assert [n for n, _ in b.named_buffers()] == ["count"]
    assert [n for n, _ in b.named_children()] == ["fc"]
    assert b.note == "plain attribute" and b.frozen_constant is not None
    assert b.scale is b._parameters["scale"]  # a plain attribute read, same object


def test_named_parameters_order_and_nesting():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["features.0.weight", "features.0.bias", "block.scale", "block.fc.weight", "block.fc.bias"]
    assert [n for n, _ in net.named_modules()] == ["", "features", "features.0", "features.1", "block", "block.fc"]
    assert list(net.children()) == [net.features, net.block]
    assert [n for n, _ in net.named_parameters(recurse=False)] == []
    assert net.num_parameters() == 4 * 3 + 3 + 3 + 3 * 2 + 2


def test_shared_parameters_listed_once_but_saved_twice():
    shared = nn.Linear(2, 2)
    seq = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(seq.parameters())) == 2
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]  # PyTorch keeps both


def test_reassignment_rules():
    b = Block()
    with pytest.raises(TypeError, match="parameter 'scale'"):
        b.scale = Tensor(np.ones(3, dtype=np.float32))  # no grad: ambiguous, refused like PyTorch
    with pytest.raises(TypeError, match="child module 'fc'"):
        b.fc = 3
    b.scale = None
    assert "scale" not in [n for n, _ in b.named_parameters()]
    del b.fc
    assert list(b.children()) == []
    b.fc = nn.Linear(3, 5)  # a fresh child
    assert b.fc.out_features == 5
    with pytest.raises(TypeError, match="buffer 'count'"):
        b.count = 7
    b.count = Tensor(np.ones((), dtype=np.int64))
    assert b.state_dict()["count"] == 1


def test_assign_before_init_is_explained():
    class Broken(nn.Module):
        def __init__(self):
            self.w = Tensor(np.ones(2, dtype=np.float32), requires_grad=True)

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Broken()


def test_non_persistent_buffer_stays_out_of_state_dict():
    m = nn.Module()
    m.register_buffer("kept", Tensor(np.zeros(2, dtype=np.float32)))
    m.register_buffer("scratch", Tensor(np.zeros(2, dtype=np.float32)), persistent=False)
    assert [n for n, _ in m.named_buffers()] == ["kept", "scratch"]
    assert list(m.state_dict()) == ["kept"]


def test_train_eval_zero_grad_apply_requires_grad():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net and not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net(Tensor(np.ones((2, 4), dtype=np.float32))).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and seen.count("Linear") == 2
    net.requires_grad_(False)
    assert net.num_parameters(only_trainable=True) == 0 and net.num_parameters() > 0


# ============================================================================ Sequential
def test_sequential_indexing_iteration_append():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and list(seq) == [a, b, c]
    assert seq[0] is a and seq[-1] is c and seq[-3] is a
    tail = seq[1:]
    assert isinstance(tail, nn.Sequential) and list(tail) == [b, c]
    assert list(tail.state_dict()) == ["2.weight", "2.bias"]  # slices keep names, as in PyTorch
    with pytest.raises(IndexError):
        seq[3]
    with pytest.raises(IndexError):
        seq[-4]
    d = nn.Sigmoid()
    assert seq.append(d) is seq and seq[3] is d and len(seq) == 4
    with pytest.raises(TypeError):
        nn.Sequential(a, "relu")
    named = nn.Sequential(OrderedDict(fc=nn.Linear(2, 2), act=nn.ReLU()))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"]


def test_state_dict_values_are_copies():
    lin = nn.Linear(2, 2)
    sd = lin.state_dict()
    sd["weight"][...] = 42
    assert not (lin.weight.data == 42).any()


def test_load_state_dict_in_place_keeps_dtype_and_identity():
    lin = nn.Linear(3, 2)
    weight_array = lin.weight.data
    new = {"weight": np.arange(6, dtype=np.float64).reshape(2, 3), "bias": Tensor(np.ones(2, dtype=np.float32))}
    result = lin.load_state_dict(new)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert lin.weight.data is weight_array and lin.weight.dtype == np.float32
    np.testing.assert_array_equal(lin.weight.data, new["weight"])
    np.testing.assert_array_equal(lin.bias.data, [1, 1])


def test_load_state_dict_reports_every_error_and_writes_nothing():
    seq = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    before = seq.state_dict()
    bad = {"0.weight": np.zeros(2, dtype=np.float32), "0.bias": np.full(2, 5.0), "foo": np.zeros(1)}
    with pytest.raises(RuntimeError) as info:
        seq.load_state_dict(bad)
    message = str(info.value)
    assert message.startswith("Error(s) in loading state_dict for Sequential:")
    assert 'Missing key(s) in state_dict: "1.weight", "1.bias", "1.running_mean"' in message
    assert 'Unexpected key(s) in state_dict: "foo"' in message
    assert "size mismatch for 0.weight: copying a param with shape (2,) from checkpoint, " \
           "the shape in current model is (2, 3)." in message
    for k, v in seq.state_dict().items():
        np.testing.assert_array_equal(v, before[k])  # 0.bias was valid but is not written either


def test_load_state_dict_non_strict():
    seq = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    result = seq.load_state_dict({"0.bias": np.full(2, 5.0), "extra": np.zeros(1)}, strict=False)
    assert "0.weight" in result.missing_keys and result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(seq[0].bias.data, [5, 5])
    with pytest.raises(RuntimeError, match="size mismatch"):  # still an error, as in PyTorch
        seq.load_state_dict({"0.bias": np.zeros(3)}, strict=False)


def test_repr_without_torch():
    assert repr(nn.Sequential(nn.Linear(784, 256), nn.ReLU())) == (
        "Sequential(\n  (0): Linear(in_features=784, out_features=256, bias=True)\n  (1): ReLU()\n)")
    assert repr(nn.Conv2d(1, 32, 3)) == "Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1))"


# ============================================================================ scopes
def _scopes(out):
    """{op name: tuple of scope paths} for every node in the graph of `out`."""
    found, stack, seen = [], [out], set()
    while stack:
        t = stack.pop()
        if t._ctx is None or id(t) in seen:
            continue
        seen.add(id(t))
        found.append((autograd.op_name(t._ctx), tuple(e.path for e in t._ctx.scope), t._ctx.scope))
        stack.extend(t._ctx.inputs)
    return found


def test_scopes_record_module_paths_and_labels():
    model = nn.Sequential(OrderedDict(features=nn.Sequential(nn.Linear(4, 3), nn.ReLU()), head=nn.Linear(3, 2)))
    out = model(Tensor(np.ones((2, 4), dtype=np.float32)))
    paths = {name: p for name, p, _ in _scopes(out)}
    assert paths["Relu"] == ("", "features", "features.1")
    scope_of_head = next(s for name, p, s in _scopes(out) if p[-1:] == ("head",))
    assert scope_of_head[-1].label == "Linear(in_features=3, out_features=2, bias=True)"
    assert scope_of_head[-1].module is model.head and scope_of_head[0].module is model
    assert autograd.current_scope() == ()  # popped after the call


def test_scopes_name_parameters_without_overwriting():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    model[1].bias.name = "my_bias"
    model(Tensor(np.ones((1, 2), dtype=np.float32)))
    assert model[0].weight.name == "0.weight" and model[1].weight.name == "1.weight"
    assert model[1].bias.name == "my_bias"


def test_scopes_follow_tree_changes_and_root_choice():
    model = nn.Sequential(nn.Linear(2, 2))
    x = Tensor(np.ones((1, 2), dtype=np.float32), requires_grad=True)
    model(x)
    model.append(nn.Tanh())
    paths = [p for _, p, _ in _scopes(model(x))]
    assert ("", "1") in paths  # the appended module has a path: the cache was rebuilt
    inner = _scopes(model[0](x))  # called on its own, a submodule is the root
    assert {p for _, p, _ in inner} == {("",)}


def test_unregistered_module_gets_a_nested_scope():
    class Loose(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x):
            return nn.ReLU()(self.fc(x))  # a module made on the fly, not in the tree

    paths = {name: p for name, p, _ in _scopes(Loose()(Tensor(np.ones((1, 2), dtype=np.float32))))}
    assert paths["Relu"] == ("", "ReLU") and paths["Linear"] == ("", "fc")


def test_scope_stack_restored_after_exception():
    model = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(ValueError):
        model(Tensor(np.ones((1, 3), dtype=np.float32)))
    assert autograd.current_scope() == ()
    model(Tensor(np.ones((1, 2), dtype=np.float32)))  # the next call is a root call again
