"""ModuleList and ModuleDict (nn/containers.py) against torch.nn's, operation by operation.

Hypothesis draws sequences of list and dict operations; each sequence runs on our
container and on torch's, with twin modules on both sides, and afterwards the
two must agree on order, child names, state_dict keys, parameter order and repr.
The remaining tests cover registration in a bigger model, scope paths, copying
and the errors.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_cnn import Tensor, autograd, nn

# ============================================================================ twins


class Twins:
    """Linear(k, 1) modules, one of ours and one of torch's per k, made once: the same k is the same object."""

    def __init__(self, torch):
        self.torch, self.made = torch, {}

    def __call__(self, k):
        if k not in self.made:
            self.made[k] = (nn.Linear(k, 1), self.torch.nn.Linear(k, 1))
        return self.made[k]

    def ours(self, ks):
        return [self(k)[0] for k in ks]

    def theirs(self, ks):
        return [self(k)[1] for k in ks]


def assert_same_container(ours, theirs):
    assert len(ours) == len(theirs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [(n, p.shape) for n, p in ours.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in theirs.named_parameters()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]


# ============================================================================ ModuleList
KS = st.integers(1, 6)
LIST_OPS = st.lists(st.one_of(
    st.tuples(st.just("append"), KS),
    st.tuples(st.just("extend"), st.lists(KS, max_size=3)),
    st.tuples(st.just("iadd"), st.lists(KS, max_size=3)),
    st.tuples(st.just("add"), st.lists(KS, max_size=3)),
    st.tuples(st.just("insert"), st.integers(0, 10), KS),
    st.tuples(st.just("set"), st.integers(0, 10), KS),
    st.tuples(st.just("del"), st.integers(0, 10)),
    st.tuples(st.just("pop"), st.integers(0, 10)),
    st.tuples(st.just("del_slice"), st.one_of(st.none(), st.integers(-6, 6)), st.one_of(st.none(), st.integers(-6, 6)),
              st.sampled_from([None, 1, 2, -1, -2])),
), max_size=8)


def _index(raw, length):
    """An index in [-length, length) from a drawn int (negative ones too)."""
    return raw % (2 * length) - length


def _run_list_op(op, ours, theirs, twins):
    """Apply `op` to both lists; return the (possibly new) pair."""
    kind, *args = op
    n = len(ours)
    if kind == "append":
        ours.append(twins(args[0])[0])
        theirs.append(twins(args[0])[1])
    elif kind == "extend":
        ours.extend(twins.ours(args[0]))
        theirs.extend(twins.theirs(args[0]))
    elif kind == "iadd":
        ours += twins.ours(args[0])
        theirs += twins.theirs(args[0])
    elif kind == "add":
        ours, theirs = ours + twins.ours(args[0]), theirs + twins.theirs(args[0])
    elif kind == "insert":  # torch's insert supports 0 <= index <= len (a negative one raises KeyError there)
        i = args[0] % (n + 1)
        ours.insert(i, twins(args[1])[0])
        theirs.insert(i, twins(args[1])[1])
    elif kind == "del_slice":
        i = slice(*args)
        del ours[i]
        del theirs[i]
    elif n:
        i = _index(args[0], n)
        if kind == "set":
            ours[i], theirs[i] = twins(args[1])
        elif kind == "del":
            del ours[i]
            del theirs[i]
        else:
            assert repr(ours.pop(i)) == repr(theirs.pop(i))
    return ours, theirs


@given(st.lists(KS, max_size=4), LIST_OPS)
def test_module_list_follows_torch_through_any_sequence_of_operations(torch, start, ops):
    twins = Twins(torch)
    ours, theirs = nn.ModuleList(twins.ours(start)), torch.nn.ModuleList(twins.theirs(start))
    for op in ops:
        ours, theirs = _run_list_op(op, ours, theirs, twins)
        assert_same_container(ours, theirs)
    for i in range(-len(ours), len(ours)):
        assert repr(ours[i]) == repr(theirs[i])
    for step in (None, 2, -1):
        assert_same_container(ours[1::step], theirs[1::step])


def test_repeated_modules_print_once_as_torch_does(torch):
    ours = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)] + [nn.ReLU(), nn.ReLU(), nn.Linear(2, 3)])
    theirs = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(3)] + [torch.nn.ReLU(), torch.nn.ReLU(),
                                                                                torch.nn.Linear(2, 3)])
    assert repr(ours) == repr(theirs)
    assert "(0-2): 3 x Linear(in_features=2, out_features=2, bias=True)" in repr(ours)
    assert repr(nn.ModuleList()) == repr(torch.nn.ModuleList()) == "ModuleList()"
    nested = nn.ModuleList([nn.Sequential(nn.Linear(1, 1), nn.ReLU())] * 2)
    theirs_nested = torch.nn.ModuleList([torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.ReLU())] * 2)
    assert repr(nested) == repr(theirs_nested)


def test_a_module_listed_twice_is_one_parameter_set_but_two_state_dict_entries(torch):
    twins = Twins(torch)
    ours, theirs = nn.ModuleList(twins.ours([2, 2, 3])), torch.nn.ModuleList(twins.theirs([2, 2, 3]))
    assert_same_container(ours, theirs)
    assert len(list(ours.parameters())) == 4
    assert list(ours.state_dict())[:4] == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_slices_hold_the_same_modules_renumbered_from_zero():
    layers = [nn.Linear(1, 1), nn.Tanh(), nn.Linear(1, 2)]
    ml = nn.ModuleList(layers)
    part = ml[1:]
    assert isinstance(part, nn.ModuleList) and list(part) == layers[1:]
    assert list(part.state_dict()) == ["1.weight", "1.bias"]
    assert list(ml) == layers  # the original is unchanged
    combined = ml + [nn.ReLU()]  # noqa: RUF005 (the operator is what is tested)
    assert isinstance(combined, nn.ModuleList) and len(combined) == 4 and len(ml) == 3


def test_insert_with_a_negative_index_follows_python_lists():
    a, b, c = nn.ReLU(), nn.Tanh(), nn.Sigmoid()
    ml = nn.ModuleList([a, b])
    ml.insert(-1, c)
    assert list(ml) == [a, c, b]
    ml.insert(10, a)
    assert list(ml) == [a, c, b, a]
    assert [name for name, _ in ml.named_children()] == ["0", "1", "2"]  # a shared child is listed once


def test_deleting_renumbers_so_names_stay_contiguous():
    ml = nn.ModuleList([nn.Linear(i + 1, 1) for i in range(5)])
    del ml[1]
    del ml[::2]
    assert [m.in_features for m in ml] == [3, 5]
    assert list(ml.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert ml.__dict__["1"] is ml[1] and "2" not in ml.__dict__ and "4" not in ml.__dict__
    assert not [key for key in dir(ml) if key.isdigit()]


# ============================================================================ ModuleDict
KEYS = st.sampled_from(["a", "b", "conv", "fc", "head_1"])
DICT_OPS = st.lists(st.one_of(
    st.tuples(st.just("set"), KEYS, KS),
    st.tuples(st.just("del"), KEYS),
    st.tuples(st.just("pop"), KEYS),
    st.tuples(st.just("update_dict"), st.dictionaries(KEYS, KS, max_size=3)),
    st.tuples(st.just("update_pairs"), st.lists(st.tuples(KEYS, KS), max_size=3)),
    st.tuples(st.just("update_module_dict"), st.dictionaries(KEYS, KS, max_size=3)),
    st.tuples(st.just("clear")),
), max_size=8)


def _run_dict_op(op, ours, theirs, twins):
    kind, *args = op
    if kind == "set":
        ours[args[0]], theirs[args[0]] = twins(args[1])
    elif kind in ("del", "pop"):
        key = args[0]
        assert (key in ours) == (key in theirs)
        if key not in theirs:
            with pytest.raises(KeyError):
                del ours[key]
            return
        if kind == "del":
            del ours[key]
            del theirs[key]
        else:
            assert repr(ours.pop(key)) == repr(theirs.pop(key))
    elif kind == "update_dict":
        ours.update({key: twins(k)[0] for key, k in args[0].items()})
        theirs.update({key: twins(k)[1] for key, k in args[0].items()})
    elif kind == "update_pairs":
        ours.update([(key, twins(k)[0]) for key, k in args[0]])
        theirs.update([(key, twins(k)[1]) for key, k in args[0]])
    elif kind == "update_module_dict":
        ours.update(nn.ModuleDict({key: twins(k)[0] for key, k in args[0].items()}))
        theirs.update(twins.torch.nn.ModuleDict({key: twins(k)[1] for key, k in args[0].items()}))
    else:
        ours.clear()
        theirs.clear()


@given(st.dictionaries(KEYS, KS, max_size=3), DICT_OPS)
def test_module_dict_follows_torch_through_any_sequence_of_operations(torch, start, ops):
    twins = Twins(torch)
    ours = nn.ModuleDict({key: twins(k)[0] for key, k in start.items()})
    theirs = torch.nn.ModuleDict({key: twins(k)[1] for key, k in start.items()})
    for op in ops:
        _run_dict_op(op, ours, theirs, twins)
        assert_same_container(ours, theirs)
        assert list(ours) == list(theirs) == list(ours.keys()) == list(theirs.keys())
        assert [repr(m) for m in ours.values()] == [repr(m) for m in theirs.values()]
        assert [(k, repr(m)) for k, m in ours.items()] == [(k, repr(m)) for k, m in theirs.items()]
        for key in ours:
            assert key in ours and ours[key] is getattr(ours, key)


# ============================================================================ inside a model
def _model(nn_):
    class Model(nn_.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn_.Embedding(10, 4, padding_idx=0)
            self.blocks = nn_.ModuleList([nn_.Linear(4, 4) for _ in range(2)])
            self.norm = nn_.LayerNorm(4)
            self.heads = nn_.ModuleDict({"cls": nn_.Linear(4, 3), "reg": nn_.Linear(4, 1)})

        def forward(self, ids):
            x = self.embed(ids)
            for block in self.blocks:
                x = self.norm(block(x).relu())
            return {name: head(x) for name, head in self.heads.items()}

    return Model()


def test_a_model_built_from_containers_matches_torch_in_keys_order_repr_and_output(torch):
    ours, theirs = _model(nn), _model(torch.nn)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert list(ours.state_dict())[:5] == ["embed.weight", "blocks.0.weight", "blocks.0.bias", "blocks.1.weight",
                                           "blocks.1.bias"]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    ids = np.array([[0, 3, 9], [4, 4, 1]])
    got, expected = ours(ids), theirs(torch.tensor(ids))
    for name in ("cls", "reg"):
        np.testing.assert_allclose(got[name].data, expected[name].detach().numpy(), atol=1e-5)
    (got["cls"].sum() + got["reg"].sum()).backward()
    (expected["cls"].sum() + expected["reg"].sum()).backward()
    # float32 gradients near 90, summed in an order that depends on how the products were split: relative tolerance
    for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=1e-5, atol=1e-4, err_msg=name)


class Probe(nn.Module):
    """Records the module path the engine's scope stack shows while its forward runs."""

    def __init__(self):
        super().__init__()
        self.paths = []

    def forward(self, x):
        self.paths.append(autograd.current_scope()[-1].path)
        return x


def test_children_get_their_scope_paths_and_mutations_update_them():
    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.probes = nn.ModuleList([Probe(), Probe()])
            self.named = nn.ModuleDict({"p": Probe()})

        def forward(self, x):
            for p in self.probes:
                x = p(x)
            for p in self.named.values():
                x = p(x)
            return x

    model = Holder()
    model(Tensor(1.0))
    assert [p.paths for p in model.probes] == [["probes.0"], ["probes.1"]]
    assert model.named["p"].paths == ["named.p"]
    first = model.probes[0]
    model.probes.insert(0, Probe())
    model.named["q"] = model.named.pop("p")
    model(Tensor(1.0))
    assert first.paths == ["probes.0", "probes.1"]
    assert model.named["q"].paths == ["named.p", "named.q"]


def test_deepcopy_copies_the_modules_and_keeps_the_structure():
    ml = nn.ModuleList([nn.Linear(2, 2), nn.ModuleDict({"a": nn.Linear(2, 1)})])
    twin = copy.deepcopy(ml)
    assert list(twin.state_dict()) == list(ml.state_dict()) == ["0.weight", "0.bias", "1.a.weight", "1.a.bias"]
    assert twin[0] is not ml[0]
    twin[0].weight.data[...] = 0
    assert ml[0].weight.data.any()


def test_containers_have_no_forward():
    with pytest.raises(NotImplementedError):
        nn.ModuleList([nn.ReLU()])(Tensor(1.0))
    with pytest.raises(NotImplementedError):
        nn.ModuleDict({"a": nn.ReLU()})(Tensor(1.0))


# ============================================================================ errors
@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: nn.ModuleList([nn.ReLU()])[1], IndexError, "index 1 is out of range"),
        (lambda: nn.ModuleList([nn.ReLU()])[-2], IndexError, "index -2 is out of range"),
        (lambda: nn.ModuleList()[0], IndexError, "index 0 is out of range"),
        (lambda: nn.ModuleList([nn.ReLU()])["0"], TypeError, "'str'"),
        (lambda: nn.ModuleList(3), TypeError, "ModuleList.extend should be called with an iterable, but got int"),
        (lambda: nn.ModuleList([1]), TypeError, "must be a Module"),
        (lambda: nn.ModuleList().append("relu"), TypeError, "must be a Module"),
        (lambda: nn.ModuleList().insert(0, 1), TypeError, "expected a Module, got int"),
        (lambda: nn.ModuleList([nn.ReLU()]).__setitem__(0, 1), TypeError, "cannot assign int"),
        (lambda: nn.ModuleList([nn.ReLU()]).__delitem__(3), IndexError, "index 3 is out of range"),
        (lambda: nn.ModuleDict({"a.b": nn.ReLU()}), KeyError, r'contain "\.", got: a\.b'),
        (lambda: nn.ModuleDict({"": nn.ReLU()}), KeyError, "be empty string"),
        (lambda: nn.ModuleDict({1: nn.ReLU()}), TypeError, "module name should be a string. Got int"),
        (lambda: nn.ModuleDict({"train": nn.ReLU()}), KeyError, "attribute 'train' already exists"),
        (lambda: nn.ModuleDict({"a": 1}), TypeError, "must be a Module"),
        (lambda: nn.ModuleDict()["x"], KeyError, "x"),
        (lambda: nn.ModuleDict().pop("x"), KeyError, "x"),
        (lambda: nn.ModuleDict(3), TypeError, "iterable of key/value pairs, but got int"),
        (lambda: nn.ModuleDict([nn.ReLU()]), TypeError, "element #0 should be Iterable; is ReLU"),
        (lambda: nn.ModuleDict([("a",)]), ValueError, "element #0 has length 1; 2 is required"),
    ],
)
def test_bad_use_raises_as_torch_does(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_a_failed_update_leaves_the_dict_as_torch_would():
    """torch adds pairs one by one, so the ones before a bad element stay; ours the same."""
    md = nn.ModuleDict()
    with pytest.raises(ValueError):
        md.update([("a", nn.ReLU()), ("b",)])
    assert list(md) == ["a"]
