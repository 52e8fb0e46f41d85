"""Tests for tinygrad_cnn.optim: hand-computed steps, behaviour, state, schedules, errors, and
trajectories compared with PyTorch's optimizers and schedulers (skipped without torch)."""

import math

import numpy as np
import pytest

from tinygrad_cnn import Tensor, no_grad
from tinygrad_cnn.optim import SGD, Adam, AdamW, CosineAnnealingLR, StepLR

OPTIMIZERS = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW}


def param(values, dtype=np.float32) -> Tensor:
    return Tensor(np.array(values, dtype=dtype), requires_grad=True)


def set_grad(p: Tensor, values) -> None:
    p.grad = Tensor(np.array(values, dtype=p.dtype))


def step_with(opt, p: Tensor, grad) -> np.ndarray:
    set_grad(p, grad)
    opt.step()
    return p.data.copy()


# --------------------------------------------------------------------------- hand-computed steps
def test_sgd_plain_step():
    p = param([1.0, -2.0])
    opt = SGD([p], lr=0.1)
    np.testing.assert_allclose(step_with(opt, p, [0.5, 1.0]), [0.95, -2.1], rtol=1e-6)
    assert opt.state_dict()["state"] == {}  # no momentum, no state (as PyTorch)


def test_sgd_momentum_first_buffer_is_the_gradient_and_dampening_waits():
    g1, g2 = np.array([1.0, -2.0]), np.array([0.5, 3.0])
    p = param([0.0, 0.0])
    opt = SGD([p], lr=0.1, momentum=0.9, dampening=0.5)
    np.testing.assert_allclose(step_with(opt, p, g1), -0.1 * g1, rtol=1e-6)  # b = g, undamped
    b2 = 0.9 * g1 + 0.5 * g2
    np.testing.assert_allclose(step_with(opt, p, g2), -0.1 * g1 - 0.1 * b2, rtol=1e-6)
    np.testing.assert_allclose(opt.state[p]["momentum_buffer"], b2, rtol=1e-6)


def test_sgd_nesterov_and_weight_decay():
    p = param([1.0, 2.0])
    opt = SGD([p], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1)
    g = np.array([0.5, -1.0]) + 0.1 * np.array([1.0, 2.0])  # L2 term joins the gradient
    np.testing.assert_allclose(step_with(opt, p, [0.5, -1.0]), [1.0, 2.0] - 0.1 * (g + 0.9 * g), rtol=1e-6)
    q = param([1.0, 2.0])
    np.testing.assert_allclose(step_with(SGD([q], lr=0.5, weight_decay=0.1), q, [0, 0]), [0.95, 1.9], rtol=1e-6)


def reference_adam(x, grads, lr, b1, b2, eps, wd, decoupled):
    """Adam/AdamW written straight from the paper's formulas, in float64."""
    x, m, v = np.array(x, dtype=np.float64), 0.0, 0.0
    for t, g in enumerate(grads, start=1):
        g = np.asarray(g, dtype=np.float64)
        if decoupled:
            x = x * (1 - lr * wd)
        else:
            g = g + wd * x
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        x = x - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return x


@pytest.mark.parametrize("cls, wd, expected", [
    (Adam, 0.0, [0.9, -1.9, 2.9]),  # m̂ = g and v̂ = g²: a first step of lr·sign(g)
    (Adam, 0.5, [0.9, -1.9, 2.9]),  # g + λθ has the same signs here
    (AdamW, 0.5, [0.85, -1.8, 2.75]),  # θ(1 − ηλ) first
])
def test_adam_first_step(cls, wd, expected):
    p = param([1.0, -2.0, 3.0])
    opt = cls([p], lr=0.1, weight_decay=wd)
    np.testing.assert_allclose(step_with(opt, p, [0.5, -0.25, 4.0]), expected, rtol=1e-6)
    assert opt.state[p]["step"] == 1


def test_adam_beta1_zero_keeps_the_last_gradient_exactly():  # PyTorch's lerp changes form for weights ≥ 0.5
    rng = np.random.default_rng(5)
    p = param(rng.standard_normal(50))
    opt = Adam([p], betas=(0.0, 0.9))
    for g in rng.standard_normal((2, 50)).astype(np.float32):
        step_with(opt, p, g)
    np.testing.assert_array_equal(opt.state[p]["exp_avg"], g)


@pytest.mark.parametrize("cls, wd", [(Adam, 0.0), (Adam, 0.1), (AdamW, 0.1)])
def test_adam_matches_float64_reference(cls, wd):
    rng = np.random.default_rng(0)
    x0, grads = rng.standard_normal(6), rng.standard_normal((5, 6))
    p = param(x0)
    opt = cls([p], lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=wd)
    for g in grads:
        step_with(opt, p, g)
    expected = reference_adam(x0, grads, 0.05, 0.8, 0.99, 1e-6, wd, decoupled=cls is AdamW)
    np.testing.assert_allclose(p.data, expected, rtol=2e-6, atol=1e-6)


# --------------------------------------------------------------------------- behaviour
CONFIGS = [
    (SGD, dict(lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.01)),
    (SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    (Adam, dict(lr=0.01, weight_decay=0.1)),
    (AdamW, dict(lr=0.01)),
]
CONFIG_IDS = [f"{cls.__name__}-{'-'.join(kw)}" for cls, kw in CONFIGS]


def test_zero_grad():
    p, q = param([1.0]), param([2.0])
    opt = SGD([p, q], lr=0.1)
    set_grad(p, [3.0])
    opt.zero_grad()
    assert p.grad is None and q.grad is None
    set_grad(p, [3.0])
    old = p.grad.data
    opt.zero_grad(set_to_none=False)
    assert p.grad.data.tolist() == [0.0] and old.tolist() == [3.0] and q.grad is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls, kwargs", CONFIGS, ids=CONFIG_IDS)
def test_step_in_place_no_graph_grads_untouched_dtype_kept(cls, kwargs, dtype):
    p, q = param(np.ones((3, 2)), dtype), param([5.0, 6.0])
    shared = np.full((3, 2), 0.5, dtype=dtype)
    p.grad = Tensor(shared)  # the engine may hand one array to several tensors
    array = p.data
    opt = cls([p, q], **kwargs)
    opt.step()
    opt.step()
    assert p.data is array and p.is_leaf and p.grad.data is shared
    assert np.all(shared == 0.5) and p.data.dtype == dtype and not np.all(p.data == 1)
    assert all(v.dtype == dtype for v in opt.state[p].values() if isinstance(v, np.ndarray))
    assert q.data.tolist() == [5.0, 6.0] and q not in opt.state  # no gradient: skipped, no state


def test_param_groups_options_and_lr_changes():
    a, b = param([1.0]), param([1.0])
    opt = SGD([{"params": [a]}, {"params": b, "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[0]["momentum"] == 0 and opt.param_groups[1]["params"] == [b]
    set_grad(a, [1.0])
    set_grad(b, [1.0])
    opt.step()
    np.testing.assert_allclose([a.data[0], b.data[0]], [0.9, 0.5], rtol=1e-6)
    opt.param_groups[0]["lr"] = 0.0
    opt.step()
    assert a.data[0] == np.float32(0.9)


def test_step_with_closure_records_even_under_no_grad():
    x = param([0.0, 1.0])
    opt = SGD([x], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = ((x - 3) ** 2).sum()
        loss.backward()
        return loss

    with no_grad():
        loss = opt.step(closure)
    assert loss.item() == 13.0
    np.testing.assert_allclose(x.data, [1.5, 2.0])


def run_steps(opt, params, grads):
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = None if g is None else Tensor(g)
        opt.step()


@pytest.mark.parametrize("cls, kwargs", CONFIGS, ids=CONFIG_IDS)
def test_state_dict_round_trip_continues_identically(cls, kwargs):
    rng = np.random.default_rng(1)
    shapes = [(4, 3), (3,)]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(6)]
    grads[1][1] = None
    params = [param(rng.standard_normal(s)) for s in shapes]
    opt = cls([{"params": params[:1]}, {"params": params[1:], "lr": 0.05}], **kwargs)
    run_steps(opt, params, grads[:3])
    saved, copies = opt.state_dict(), [param(p.data.copy()) for p in params]
    assert sorted(saved["state"]) == [0, 1] and [g["params"] for g in saved["param_groups"]] == [[0], [1]]
    run_steps(opt, params, grads[3:])  # a snapshot: these steps must not change `saved`
    other = cls([{"params": copies[:1]}, {"params": copies[1:]}], **kwargs)
    other.load_state_dict(saved)
    assert other.param_groups[1]["lr"] == 0.05
    run_steps(other, copies, grads[3:])
    for p, c in zip(params, copies):
        np.testing.assert_array_equal(p.data, c.data)


def test_load_state_dict_rejects_a_mismatch():
    p = param(np.zeros((2, 2)))
    opt = Adam([p])
    step_with(opt, p, np.ones((2, 2)))
    saved = opt.state_dict()
    with pytest.raises(ValueError, match="groups"):
        Adam([{"params": [param([1.0])]}, {"params": [param([1.0])]}]).load_state_dict(saved)
    with pytest.raises(ValueError, match="group 0 has 1 parameters"):
        Adam([param([1.0]), param([1.0])]).load_state_dict(saved)
    with pytest.raises(ValueError, match="shape"):
        Adam([param([1.0])]).load_state_dict(saved)


# --------------------------------------------------------------------------- arguments
def p1():
    return [param([1.0])]


@pytest.mark.parametrize("make, error, match", [
    (lambda: SGD(p1(), lr=-0.1), ValueError, "learning rate"),
    (lambda: SGD(p1(), lr=0.1, momentum=-0.5), ValueError, "momentum"),
    (lambda: SGD(p1(), lr=0.1, weight_decay=-1), ValueError, "weight_decay"),
    (lambda: SGD(p1(), lr=0.1, nesterov=True), ValueError, "Nesterov"),
    (lambda: SGD(p1(), lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError, "Nesterov"),
    (lambda: SGD([{"params": p1(), "lr": -1.0}], lr=0.1), ValueError, "group 0"),
    (lambda: Adam(p1(), lr=-1e-3), ValueError, "learning rate"),
    (lambda: Adam(p1(), betas=(1.0, 0.999)), ValueError, "betas"),
    (lambda: Adam(p1(), betas=(0.9, -0.1)), ValueError, "betas"),
    (lambda: AdamW(p1(), eps=-1.0), ValueError, "eps"),
    (lambda: AdamW(p1(), weight_decay=-0.01), ValueError, "weight_decay"),
    (lambda: SGD([], lr=0.1), ValueError, "empty"),
    (lambda: SGD(iter([]), lr=0.1), ValueError, "empty"),
    (lambda: SGD([Tensor([1, 2])], lr=0.1), ValueError, "int64"),
    (lambda: SGD([Tensor([1.0])], lr=0.1), ValueError, "does not require grad"),
    (lambda: SGD([param([1.0]) * 2], lr=0.1), ValueError, "not a leaf"),
    (lambda: SGD([param([1.0]), np.ones(1)], lr=0.1), TypeError, "parameter 1 of group 0 is a ndarray"),
    (lambda: SGD(param([1.0]), lr=0.1), TypeError, "single Tensor"),
    (lambda: SGD([{"lr": 0.1}], lr=0.1), TypeError, "params"),
    (lambda: SGD([p := param([1.0]), p], lr=0.1), ValueError, "more than once"),
])
def test_argument_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_gradient_of_the_wrong_shape_is_an_error():
    p = param([1.0, 2.0])
    p.grad = Tensor(np.ones(1, dtype=np.float32))
    with pytest.raises(ValueError, match=r"shape \(2,\) has a gradient of shape \(1,\)"):
        SGD([p], lr=0.1).step()


# --------------------------------------------------------------------------- schedules
def two_group_sgd(lrs=(0.1, 0.5)):
    return SGD([{"params": [param([1.0])], "lr": lr} for lr in lrs], lr=1.0)


def test_step_lr_closed_form():
    opt = two_group_sgd()
    sched = StepLR(opt, step_size=3, gamma=0.5)
    assert sched.last_epoch == 0 and sched.get_last_lr() == [0.1, 0.5]
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.5]
    for epoch in range(1, 31):
        sched.step()
        expected = [base * 0.5 ** (epoch // 3) for base in (0.1, 0.5)]
        assert sched.last_epoch == epoch
        np.testing.assert_allclose(sched.get_last_lr(), expected, rtol=1e-12)
        assert [g["lr"] for g in opt.param_groups] == sched.get_last_lr()


@pytest.mark.parametrize("T_max, eta_min", [(10, 0.0), (7, 0.01), (1, 0.0)])
def test_cosine_closed_form(T_max, eta_min):
    opt = two_group_sgd()
    sched = CosineAnnealingLR(opt, T_max=T_max, eta_min=eta_min)
    for epoch in range(1, 3 * T_max + 1):
        sched.step()
        expected = [eta_min + (b - eta_min) * (1 + math.cos(math.pi * epoch / T_max)) / 2 for b in (0.1, 0.5)]
        np.testing.assert_allclose(sched.get_last_lr(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("make", [lambda o: StepLR(o, 2, gamma=0.3), lambda o: CosineAnnealingLR(o, 5, 0.01)])
def test_scheduler_state_dict_round_trip(make):
    opt = two_group_sgd()
    sched = make(opt)
    for _ in range(3):
        sched.step()
    other_opt = two_group_sgd()
    other = make(other_opt)
    other_opt.load_state_dict(opt.state_dict())
    other.load_state_dict(sched.state_dict())
    assert other.last_epoch == 3 and other.get_last_lr() == sched.get_last_lr()
    for _ in range(8):
        sched.step()
        other.step()
        assert other.get_last_lr() == sched.get_last_lr()


def test_scheduler_argument_errors():
    with pytest.raises(ValueError, match="step_size"):
        StepLR(two_group_sgd(), step_size=0)
    with pytest.raises(ValueError, match="T_max"):
        CosineAnnealingLR(two_group_sgd(), T_max=0)
    with pytest.raises(TypeError, match="not an Optimizer"):
        StepLR(object(), step_size=2)
    with pytest.raises(ValueError, match="initial_lr"):
        CosineAnnealingLR(two_group_sgd(), T_max=5, last_epoch=3)


# --------------------------------------------------------------------------- end to end
@pytest.mark.parametrize("make, steps, tol", [
    (lambda ps: SGD(ps, lr=0.1), 100, 1e-4),
    (lambda ps: SGD(ps, lr=0.05, momentum=0.9), 200, 1e-3),
    (lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True), 150, 1e-3),
    (lambda ps: Adam(ps, lr=0.1), 300, 1e-3),
    (lambda ps: AdamW(ps, lr=0.1), 300, 0.1),  # the decay pulls the optimum towards 0
])
def test_minimises_a_quadratic(make, steps, tol):
    x = param([0.0, -1.0, 10.0, 2.5])
    opt = make([x])
    for _ in range(steps):
        opt.zero_grad()
        loss = ((x - 3) ** 2).sum()
        loss.backward()
        opt.step()
    np.testing.assert_allclose(x.data, 3.0, atol=tol)


# --------------------------------------------------------------------------- against PyTorch
SHAPES = [(6, 5), (5,), (3, 2, 3, 3)]
GROUPS = {
    "SGD": [dict(momentum=0.9, dampening=0.1), dict(lr=0.02, momentum=0.5, nesterov=True, weight_decay=0.1)],
    "Adam": [dict(weight_decay=0.1), dict(lr=0.01, betas=(0.8, 0.9))],
    "AdamW": [dict(weight_decay=0.5), dict(lr=0.01, eps=1e-4)],
}
TORCH_CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.5)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1, weight_decay=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.8, weight_decay=0.05, nesterov=True)),
    ("SGD", dict(lr=0.1, groups=True)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.05, betas=(0.5, 0.9), eps=1e-6)),
    ("Adam", dict(lr=0.05, betas=(0.0, 0.99))),
    ("Adam", dict(lr=0.05, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, groups=True)),
    ("AdamW", dict()),
    ("AdamW", dict(lr=0.05, weight_decay=0.1)),
    ("AdamW", dict(lr=0.05, weight_decay=0)),
    ("AdamW", dict(lr=0.05, groups=True)),
]


def torch_pair(name, kwargs, seed=0):
    """The same initial weights in our optimizer and in torch's (split in two groups if asked)."""
    torch = pytest.importorskip("torch")
    kwargs = dict(kwargs)
    groups = GROUPS[name] if kwargs.pop("groups", False) else None
    init = [np.random.default_rng(seed).standard_normal(s).astype(np.float32) for s in SHAPES]
    ours = [param(a.copy()) for a in init]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in init]

    def arrange(ps):
        return ps if groups is None else [{"params": ps[:2], **groups[0]}, {"params": ps[2:], **groups[1]}]

    opt, topt = OPTIMIZERS[name](arrange(ours), **kwargs), getattr(torch.optim, name)(arrange(theirs), **kwargs)
    return ours, theirs, opt, topt


def feed_and_step(rng, step, ours, theirs, opt, topt):
    import torch

    for i, (p, t) in enumerate(zip(ours, theirs)):
        if i == 1 and step % 3 == 1:  # now and then no gradient: both must skip the parameter
            p.grad = t.grad = None
            continue
        g = rng.standard_normal(p.shape).astype(np.float32)
        p.grad, t.grad = Tensor(g.copy()), torch.from_numpy(g.copy())
    opt.step()
    topt.step()
    for p, t in zip(ours, theirs):  # torch rounds a + c·b once (FMA), we twice: a few ulps per step
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name, kwargs", TORCH_CASES, ids=[f"{n}-{kw}" for n, kw in TORCH_CASES])
def test_trajectory_matches_torch(name, kwargs):
    ours, theirs, opt, topt = torch_pair(name, kwargs)
    rng = np.random.default_rng(1)
    for step in range(20):
        if step == 10:  # as a schedule would: the next steps must read the new rates
            for group in opt.param_groups + topt.param_groups:
                group["lr"] *= 0.3
        feed_and_step(rng, step, ours, theirs, opt, topt)


@pytest.mark.parametrize("name, kwargs", [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("StepLR", dict(step_size=1)),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.01)),
    ("CosineAnnealingLR", dict(T_max=10)),
    ("CosineAnnealingLR", dict(T_max=1, eta_min=0.05)),
])
@pytest.mark.parametrize("resume", [False, True])
def test_schedule_matches_torch(name, kwargs, resume):
    torch = pytest.importorskip("torch")
    import tinygrad_cnn.optim as optim

    ours_opt = two_group_sgd()
    their_opt = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in (0.1, 0.5)], lr=1)
    if resume:  # restart at epoch 5, as from a checkpoint: PyTorch then uses the closed form once
        for group in ours_opt.param_groups + their_opt.param_groups:
            group["initial_lr"] = group["lr"]
        kwargs = {**kwargs, "last_epoch": 5}
    ours = getattr(optim, name)(ours_opt, **kwargs)
    theirs = getattr(torch.optim.lr_scheduler, name)(their_opt, **kwargs)
    for _ in range(31):
        assert ours.last_epoch == theirs.last_epoch
        np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-12, atol=0)
        their_opt.step()
        ours.step()
        theirs.step()


@pytest.mark.parametrize("name, kwargs", [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.05, groups=True))])
def test_state_dict_moves_between_torch_and_ours(name, kwargs):
    torch = pytest.importorskip("torch")
    ours, theirs, opt, topt = torch_pair(name, kwargs)
    rng = np.random.default_rng(3)
    for step in range(5):
        feed_and_step(rng, step, ours, theirs, opt, topt)
    mine, torchs = opt.state_dict(), topt.state_dict()
    assert [set(s) for s in mine["state"].values()] == [set(s) for s in torchs["state"].values()]
    assert [g["params"] for g in mine["param_groups"]] == [g["params"] for g in torchs["param_groups"]]
    assert all(set(m) <= set(t) for m, t in zip(mine["param_groups"], torchs["param_groups"]))
    # torch → ours, and ours → torch, on fresh optimizers over the current weights
    ours2, theirs2, opt2, topt2 = torch_pair(name, kwargs)
    for p, t, q, u in zip(ours, theirs, ours2, theirs2):
        q.data[...] = p.data
        u.data.copy_(t.data)
    opt2.load_state_dict({"state": {k: {n: v.numpy() for n, v in s.items()} for k, s in torchs["state"].items()},
                          "param_groups": torchs["param_groups"]})
    topt2.load_state_dict({"state": {k: {n: torch.tensor(v) for n, v in s.items()} for k, s in mine["state"].items()},
                           "param_groups": mine["param_groups"]})
    for step in range(5, 10):  # ours with torch's state against torch, torch with our state against ours
        seed = int(rng.integers(1 << 30))
        feed_and_step(np.random.default_rng(seed), step, ours2, theirs, opt2, topt)
        feed_and_step(np.random.default_rng(seed), step, ours, theirs2, opt, topt2)
