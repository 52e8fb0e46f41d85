"""Tests for the loss modules of tinygrad_cnn.nn (nn/loss.py) against torch.nn's.

The math is `functional`'s, tested in test_losses.py; here each module is checked
to pass its arguments on: value, gradients and second derivatives against the
torch module built with the same arguments (keyword and positional), plus what
a module adds: PyTorch's signature, attributes, repr, buffers in `state_dict`,
and the deprecated size_average/reduce turned into `reduction` at construction.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
from test_losses import compare

from tinygrad_cnn import Tensor, nn

LOSSES = ["CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "BCELoss",
          "BCEWithLogitsLoss", "KLDivLoss"]

RNG = np.random.default_rng(0)
W3 = RNG.uniform(0.2, 2.0, 3)  # one weight per class
W43 = RNG.uniform(0.2, 2.0, (4, 3))  # one weight per element
CLASSES = np.array([0, 2, 1, 1])


class Weights:
    """A constructor argument given as a Tensor to ours and as a torch tensor to torch's."""

    def __init__(self, array):
        self.array = array


def _args(values, to_tensor):
    return [to_tensor(v.array) if isinstance(v, Weights) else v for v in values]


def _kwargs(values, to_tensor):
    return {k: to_tensor(v.array) if isinstance(v, Weights) else v for k, v in values.items()}


def _pointwise(low_x=-2.0, high_x=2.0, low_y=-2.0, high_y=2.0, shape=(4, 3), seed=1):
    rng = np.random.default_rng(seed)
    return [rng.uniform(low_x, high_x, shape), rng.uniform(low_y, high_y, shape)]


def _log_probabilities(seed=2):
    x = np.random.default_rng(seed).standard_normal((4, 3))
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def _probabilities(seed=3):
    p = np.random.default_rng(seed).uniform(0.1, 1.0, (4, 3))
    return p / p.sum(axis=1, keepdims=True)


# (module, positional args, keyword args, arrays: input (and target, when differentiable), class targets or None)
CASES = [
    ("CrossEntropyLoss", (), {}, [RNG.standard_normal((4, 3))], CLASSES),
    ("CrossEntropyLoss", (), {"weight": Weights(W3), "ignore_index": 1, "label_smoothing": 0.2},
     [RNG.standard_normal((4, 3))], CLASSES),
    ("CrossEntropyLoss", (), {"reduction": "none", "label_smoothing": 0.1}, [RNG.standard_normal((4, 3))], CLASSES),
    ("CrossEntropyLoss", (Weights(W3), None, -100, None, "sum", 0.3), {}, [RNG.standard_normal((4, 3))], CLASSES),
    ("CrossEntropyLoss", (), {"weight": Weights(W3), "label_smoothing": 0.1},
     [RNG.standard_normal((4, 3)), _probabilities()], None),  # class probabilities: the target is differentiable
    ("CrossEntropyLoss", (), {"ignore_index": 0}, [RNG.standard_normal((2, 3, 2, 2))],
     RNG.integers(0, 3, (2, 2, 2))),
    ("NLLLoss", (), {}, [_log_probabilities()], CLASSES),
    ("NLLLoss", (), {"weight": Weights(W3), "ignore_index": 2, "reduction": "sum"}, [_log_probabilities()], CLASSES),
    ("NLLLoss", (Weights(W3), None, 0, None, "none"), {}, [_log_probabilities()], CLASSES),
    ("MSELoss", (), {}, _pointwise(), None),
    ("MSELoss", (), {"reduction": "none"}, _pointwise(), None),
    ("MSELoss", (None, None, "sum"), {}, _pointwise(), None),
    ("L1Loss", (), {}, _pointwise(), None),
    ("L1Loss", (), {"reduction": "sum"}, _pointwise(), None),
    ("SmoothL1Loss", (), {"beta": 0.5}, _pointwise(), None),
    ("SmoothL1Loss", (), {"beta": 0.0, "reduction": "none"}, _pointwise(), None),
    ("SmoothL1Loss", (None, None, "sum", 2.0), {}, _pointwise(), None),
    ("HuberLoss", (), {}, _pointwise(), None),
    ("HuberLoss", (), {"delta": 0.5, "reduction": "none"}, _pointwise(), None),
    ("HuberLoss", ("sum", 2.0), {}, _pointwise(), None),
    ("BCELoss", (), {}, _pointwise(0.05, 0.95, 0.0, 1.0), None),
    ("BCELoss", (), {"weight": Weights(W43), "reduction": "sum"}, _pointwise(0.05, 0.95, 0.0, 1.0), None),
    ("BCELoss", (Weights(W3), None, None, "none"), {}, _pointwise(0.05, 0.95, 0.0, 1.0), None),
    ("BCEWithLogitsLoss", (), {}, _pointwise(-4.0, 4.0, 0.0, 1.0), None),
    ("BCEWithLogitsLoss", (), {"pos_weight": Weights(W3)}, _pointwise(-4.0, 4.0, 0.0, 1.0), None),
    ("BCEWithLogitsLoss", (Weights(W43), None, None, "none", Weights(W3)), {}, _pointwise(-4.0, 4.0, 0.0, 1.0),
     None),
    ("KLDivLoss", (), {}, [_log_probabilities(), _probabilities()], None),
    ("KLDivLoss", (), {"reduction": "batchmean"}, [_log_probabilities(), _probabilities()], None),
    ("KLDivLoss", (None, None, "sum", True), {}, [_log_probabilities(), np.log(_probabilities())], None),
]


@pytest.mark.parametrize("name, args, kwargs, arrays, classes", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_modules_match_torch_values_gradients_and_second_derivatives(torch, name, args, kwargs, arrays, classes):
    def to_torch(a):
        return torch.tensor(a)

    ours = getattr(nn, name)(*_args(args, Tensor), **_kwargs(kwargs, Tensor))
    theirs = getattr(torch.nn, name)(*_args(args, to_torch), **_kwargs(kwargs, to_torch))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # KLDivLoss's 'mean' warning in PyTorch
        if classes is None:
            compare(torch, ours, theirs, arrays, grad_args=tuple(range(len(arrays))))
        else:
            compare(torch, lambda x: ours(x, classes), lambda x: theirs(x, torch.tensor(classes)), arrays,
                    grad_args=(0,))


@pytest.mark.parametrize("name", LOSSES)
def test_signature_attributes_and_repr_match_torch(torch, name):
    ours, theirs = getattr(nn, name), getattr(torch.nn, name)
    params = [(p.name, p.default, p.kind) for p in inspect.signature(ours).parameters.values()]
    assert params == [(p.name, p.default, p.kind) for p in inspect.signature(theirs).parameters.values()]
    a, b = ours(), theirs()
    settings = {k: v for k, v in vars(b).items() if not k.startswith("_") and k != "training"}
    assert {k: getattr(a, k) for k in settings} == settings
    assert list(a._buffers) == list(b._buffers) and all(v is None for v in a._buffers.values())
    assert repr(a) == repr(b) == f"{name}()"
    assert isinstance(a, nn.Module) and a.state_dict() == {} and list(a.parameters()) == []


@pytest.mark.parametrize("name, kwargs", [
    ("CrossEntropyLoss", {"weight": W3}),
    ("NLLLoss", {"weight": W3}),
    ("BCELoss", {"weight": W43}),
    ("BCEWithLogitsLoss", {"weight": W43, "pos_weight": W3}),
    ("BCEWithLogitsLoss", {"pos_weight": W3}),
])
def test_weights_are_buffers_in_state_dict_like_torch(torch, name, kwargs):
    ours = getattr(nn, name)(**{k: Tensor(v) for k, v in kwargs.items()})
    theirs = getattr(torch.nn, name)(**{k: torch.tensor(v) for k, v in kwargs.items()})
    state, expected = ours.state_dict(), theirs.state_dict()
    assert list(state) == list(expected) == list(kwargs)
    for key, value in expected.items():
        np.testing.assert_array_equal(np.asarray(state[key]), value.numpy())
    assert repr(ours) == repr(theirs)
    assert list(ours.parameters()) == [] and [k for k, _ in ours.named_buffers()] == list(kwargs)
    fresh = getattr(nn, name)(**{k: Tensor(np.zeros_like(v)) for k, v in kwargs.items()})
    fresh.load_state_dict({k: v.numpy() for k, v in expected.items()})  # a checkpoint moves between the two
    for key in kwargs:
        np.testing.assert_array_equal(getattr(fresh, key).data, kwargs[key])


def test_a_model_that_holds_its_loss_has_torchs_state_dict_keys(torch):
    class Ours(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.criterion = nn.CrossEntropyLoss(weight=Tensor(W3.astype(np.float32)))

    class Theirs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 3)
            self.criterion = torch.nn.CrossEntropyLoss(weight=torch.tensor(W3, dtype=torch.float32))

    assert list(Ours().state_dict()) == list(Theirs().state_dict()) == ["fc.weight", "fc.bias", "criterion.weight"]
    assert repr(Ours()).removeprefix("Ours") == repr(Theirs()).removeprefix("Theirs")


@pytest.mark.parametrize("name", [n for n in LOSSES if n != "HuberLoss"])
@pytest.mark.parametrize("size_average, reduce", [(False, None), (None, False), (True, True), (False, True)])
def test_deprecated_size_average_and_reduce_set_reduction_like_torch(torch, name, size_average, reduce):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = getattr(nn, name)(size_average=size_average, reduce=reduce, reduction="mean")
        theirs = getattr(torch.nn, name)(size_average=size_average, reduce=reduce, reduction="mean")
    assert ours.reduction == theirs.reduction
    assert [str(w.message) for w in caught[:1]] == [str(w.message) for w in caught[1:]]
    assert "size_average and reduce args will be deprecated" in str(caught[0].message)
    assert caught[0].filename == __file__  # the warning points at the line that built the loss
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        getattr(nn, name)(reduction="sum")  # no warning without the deprecated pair


def test_float32_training_step_like_the_quickstart():
    """Logits from a model in float32, int64 labels: a float32 loss and float32 gradients."""
    model = nn.Sequential(nn.Linear(5, 4))
    x = Tensor(np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32))
    y = np.array([0, 1, 2, 3, 0, 1])
    loss = nn.CrossEntropyLoss()(model(x), y)
    assert loss.dtype == np.float32 and loss.shape == ()
    loss.backward()
    assert all(p.grad.dtype == np.float32 for p in model.parameters())
    mse = nn.MSELoss()(model(x), Tensor(np.zeros((6, 4), dtype=np.float32)))
    assert mse.dtype == np.float32


def test_errors_match_torch(torch):
    x = Tensor(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="weight"):
        nn.CrossEntropyLoss(weight=[1.0, 2.0, 3.0])  # a buffer must be a Tensor, as in PyTorch
    with pytest.raises(TypeError):
        torch.nn.CrossEntropyLoss(weight=[1.0, 2.0, 3.0])
    bogus = nn.MSELoss(reduction="bogus")  # accepted until used, as in PyTorch
    with pytest.raises(ValueError, match="reduction"):
        bogus(x, x)
    with pytest.raises(ValueError):
        torch.nn.MSELoss(reduction="bogus")(torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="weight should hold one value for each of the 3 classes"):
        nn.CrossEntropyLoss(weight=Tensor(np.ones(2)))(x, np.array([0, 1]))
    with pytest.raises(ValueError, match="beta must be non-negative"):
        nn.SmoothL1Loss(beta=-1.0)(x, x)


def test_settings_can_change_after_construction():
    """Attributes are read at each call, as in PyTorch (e.g. a schedule on label_smoothing)."""
    x, y = Tensor(np.random.default_rng(0).standard_normal((4, 3))), CLASSES
    loss = nn.CrossEntropyLoss()
    before = loss(x, y).item()
    loss.label_smoothing = 0.5
    loss.reduction = "sum"
    from tinygrad_cnn.nn import functional

    assert loss(x, y).item() == functional.cross_entropy(x, y, reduction="sum", label_smoothing=0.5).item() != before
