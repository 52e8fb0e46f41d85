"""Tests for RMSprop, Adagrad and the schedules MultiStepLR, ExponentialLR, LinearLR, LambdaLR,
OneCycleLR and ReduceLROnPlateau in tinygrad_cnn.optim.

First without PyTorch (steps and schedules worked out by hand, state, errors), then against
PyTorch's own classes in float64 (skipped without torch): every option combination, to 1e-12.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from tinygrad_cnn import Tensor, optim
from tinygrad_cnn.optim import (
    SGD,
    Adagrad,
    Adam,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
    RMSprop,
)


def param(values, dtype=np.float64) -> Tensor:
    return Tensor(np.array(values, dtype=dtype), requires_grad=True)


def step_with(opt, p: Tensor, grad) -> np.ndarray:
    p.grad = Tensor(np.array(grad, dtype=p.dtype))
    opt.step()
    return p.data.copy()


def two_group_sgd(lrs=(0.1, 0.5), momentum=0.9):
    return SGD([{"params": [param([1.0])], "lr": lr} for lr in lrs], lr=1.0, momentum=momentum)


def lrs_of(opt) -> list[float]:
    return [group["lr"] for group in opt.param_groups]


# --------------------------------------------------------------------------- optimizers by hand
def test_rmsprop_first_step_by_hand():
    # v = (1 − α)g², so the first step is η·g/(√(1 − α)|g| + ε) ≈ 10η·sign(g) for α = 0.99
    p = param([1.0, -2.0])
    g = np.array([0.5, 4.0])
    opt = RMSprop([p], lr=0.01)
    expected = np.array([1.0, -2.0]) - 0.01 * g / (np.sqrt(0.01 * g * g) + 1e-8)
    np.testing.assert_allclose(step_with(opt, p, g), expected, rtol=1e-15)
    np.testing.assert_allclose(p.data, [0.9, -2.1], rtol=1e-6)
    assert list(opt.state[p]) == ["step", "square_avg"] and opt.state[p]["step"] == 1


def test_rmsprop_centered_with_momentum_two_steps_by_hand():
    x, g1, g2 = np.array([1.0, 2.0]), np.array([1.0, -1.0]), np.array([3.0, 0.5])
    lr, a, mu, eps, wd = 0.1, 0.5, 0.9, 1e-3, 0.2
    p = param(x)
    opt = RMSprop([p], lr=lr, alpha=a, eps=eps, momentum=mu, centered=True, weight_decay=wd)
    v = m = b = 0.0
    for g in (g1, g2):
        d = g + wd * x
        v = a * v + (1 - a) * d * d
        m = a * m + (1 - a) * d
        b = mu * b + d / (np.sqrt(v - m * m) + eps)
        x = x - lr * b
        np.testing.assert_allclose(step_with(opt, p, g), x, rtol=1e-14)
    assert list(opt.state[p]) == ["step", "square_avg", "momentum_buffer", "grad_avg"]
    np.testing.assert_allclose(opt.state[p]["grad_avg"], m, rtol=1e-14)


def test_adagrad_steps_by_hand():
    # s starts at 0.5; with lr_decay the t-th step uses η / (1 + (t − 1)δ)
    x, lr, decay = np.array([1.0, -1.0]), 0.1, 0.5
    p = param(x)
    opt = Adagrad([p], lr=lr, lr_decay=decay, initial_accumulator_value=0.5)
    assert opt.state[p]["step"] == 0 and opt.state[p]["sum"].tolist() == [0.5, 0.5]  # made with the optimizer
    s = 0.5
    for t, g in enumerate(([1.0, 2.0], [-0.5, 0.0]), start=1):
        g = np.array(g)
        s = s + g * g
        x = x - lr / (1 + (t - 1) * decay) * g / (np.sqrt(s) + 1e-10)
        np.testing.assert_allclose(step_with(opt, p, g), x, rtol=1e-15)
    np.testing.assert_allclose(opt.state[p]["sum"], s, rtol=1e-15)


def test_adagrad_weight_decay_joins_the_gradient():
    p = param([2.0])
    opt = Adagrad([p], lr=1.0, weight_decay=0.5)
    np.testing.assert_allclose(step_with(opt, p, [0.0]), [1.0], rtol=1e-9)  # g = 0 + 0.5·2: a step of η·sign(g)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [
    lambda ps: RMSprop(ps, momentum=0.9, centered=True, weight_decay=0.1),
    lambda ps: RMSprop(ps, alpha=0.2),
    lambda ps: Adagrad(ps, lr_decay=0.1, weight_decay=0.1, initial_accumulator_value=0.1),
], ids=["RMSprop-all", "RMSprop-alpha", "Adagrad-all"])
def test_in_place_dtype_kept_and_missing_gradients_skipped(make, dtype):
    p, q = param(np.ones((3, 2)), dtype), param([5.0, 6.0], dtype)
    shared = np.full((3, 2), 0.5, dtype=dtype)
    p.grad = Tensor(shared)
    array = p.data
    opt = make([p, q])
    opt.step()
    opt.step()
    assert p.data is array and p.grad.data is shared and np.all(shared == 0.5)
    assert p.data.dtype == dtype and not np.all(p.data == 1)
    assert all(v.dtype == dtype for v in opt.state[p].values() if isinstance(v, np.ndarray))
    assert q.data.tolist() == [5.0, 6.0]
    assert opt.state.get(q, {"step": 0})["step"] == 0  # no gradient: no step (Adagrad made its state up front)


def test_param_groups_hold_the_options():
    a, b = param([1.0]), param([1.0])
    opt = RMSprop([{"params": [a]}, {"params": [b], "lr": 0.5, "momentum": 0.9}], centered=True)
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.5] and [g["momentum"] for g in opt.param_groups] == [0, 0.9]
    assert all(g["centered"] and g["alpha"] == 0.99 and g["eps"] == 1e-8 for g in opt.param_groups)
    ada = Adagrad([a])
    assert {k: v for k, v in ada.param_groups[0].items() if k != "params"} == dict(
        lr=0.01, lr_decay=0, eps=1e-10, weight_decay=0, initial_accumulator_value=0)
    ada.add_param_group({"params": [b], "initial_accumulator_value": 2.0})
    assert ada.state[b]["sum"].tolist() == [2.0]


def run_steps(opt, params, grads):
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = None if g is None else Tensor(g)
        opt.step()


@pytest.mark.parametrize("cls, kwargs", [
    (RMSprop, dict(lr=0.02, momentum=0.8, centered=True, weight_decay=0.1)),
    (RMSprop, dict(alpha=0.9)),
    (Adagrad, dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=0.05)),
])
def test_state_dict_round_trip_continues_identically(cls, kwargs):
    rng = np.random.default_rng(1)
    shapes = [(4, 3), (3,)]
    grads = [[rng.standard_normal(s) for s in shapes] for _ in range(10)]
    grads[2][1] = None
    params = [param(rng.standard_normal(s)) for s in shapes]
    opt = cls([{"params": params[:1]}, {"params": params[1:], "lr": 0.05}], **kwargs)
    run_steps(opt, params, grads[:5])
    saved, copies = opt.state_dict(), [param(p.data.copy()) for p in params]
    assert sorted(saved["state"]) == [0, 1] and saved["state"][1]["step"] == 4
    run_steps(opt, params, grads[5:])  # a snapshot: these steps must not change `saved`
    other = cls([{"params": copies[:1]}, {"params": copies[1:]}], **kwargs)
    other.load_state_dict(saved)
    assert other.param_groups[1]["lr"] == 0.05
    run_steps(other, copies, grads[5:])
    for p, c in zip(params, copies):
        np.testing.assert_array_equal(p.data, c.data)


def p1():
    return [param([1.0])]


BAD_OPTIMIZERS = [
    ("RMSprop", dict(lr=-0.1), "learning rate"),
    ("RMSprop", dict(alpha=-0.5), "alpha"),
    ("RMSprop", dict(eps=-1e-8), "eps"),
    ("RMSprop", dict(momentum=-0.9), "momentum"),
    ("RMSprop", dict(weight_decay=-0.1), "weight_decay"),
    ("Adagrad", dict(lr=-0.1), "learning rate"),
    ("Adagrad", dict(lr_decay=-0.1), "lr_decay"),
    ("Adagrad", dict(eps=-1.0), "eps"),
    ("Adagrad", dict(weight_decay=-0.1), "weight_decay"),
    ("Adagrad", dict(initial_accumulator_value=-1.0), "initial_accumulator_value"),
]


@pytest.mark.parametrize("name, kwargs, match", BAD_OPTIMIZERS, ids=[f"{n}-{k}" for n, k, _ in BAD_OPTIMIZERS])
def test_optimizer_argument_errors(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        getattr(optim, name)(p1(), **kwargs)
    with pytest.raises(ValueError, match=f"{match}.* in group 1"):  # a group's own option is checked too
        getattr(optim, name)([{"params": p1()}, {"params": p1(), **kwargs}])


@pytest.mark.parametrize("make", [
    lambda ps: RMSprop(ps, lr=0.05),
    lambda ps: RMSprop(ps, lr=0.02, momentum=0.5, centered=True),
    lambda ps: Adagrad(ps, lr=1.0),
], ids=["RMSprop", "RMSprop-centered-momentum", "Adagrad"])
def test_minimises_a_quadratic(make):
    x = param([0.0, -1.0, 10.0, 2.5])
    opt = make([x])
    for _ in range(300):
        opt.zero_grad()
        ((x - 3) ** 2).sum().backward()
        opt.step()
    np.testing.assert_allclose(x.data, 3.0, atol=0.05)


# --------------------------------------------------------------------------- schedules by hand
def test_multistep_lr_with_a_repeated_milestone():
    opt = two_group_sgd()
    sched = MultiStepLR(opt, milestones=[2, 5, 5], gamma=0.5)
    seen = [sched.get_last_lr()]
    for _ in range(7):
        sched.step()
        seen.append(sched.get_last_lr())
    factors = [1, 1, 0.5, 0.5, 0.5, 0.125, 0.125, 0.125]  # milestone 5 listed twice: γ²
    np.testing.assert_allclose(seen, [[0.1 * f, 0.5 * f] for f in factors], rtol=1e-15)


def test_exponential_lr():
    opt = two_group_sgd()
    sched = ExponentialLR(opt, gamma=0.9)
    for epoch in range(1, 20):
        sched.step()
        np.testing.assert_allclose(lrs_of(opt), [0.1 * 0.9**epoch, 0.5 * 0.9**epoch], rtol=1e-13)


def test_linear_lr_sets_the_start_at_once_and_ends_at_end_factor():
    opt = two_group_sgd()
    sched = LinearLR(opt, start_factor=0.25, end_factor=0.75, total_iters=4)
    assert lrs_of(opt) == [0.1 * 0.25, 0.5 * 0.25] and [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.5]
    for epoch in range(1, 9):
        sched.step()
        factor = 0.25 + 0.5 * min(epoch, 4) / 4
        np.testing.assert_allclose(lrs_of(opt), [0.1 * factor, 0.5 * factor], rtol=1e-14)


def test_lambda_lr_one_function_or_one_per_group():
    opt = two_group_sgd()
    LambdaLR(opt, lambda e: 0.5)
    assert lrs_of(opt) == [0.05, 0.25]
    opt = two_group_sgd()
    sched = LambdaLR(opt, [lambda e: e + 1, lambda e: 0.5**e])
    sched.step()
    sched.step()
    assert lrs_of(opt) == [0.1 * 3, 0.5 * 0.25]


class Warmup:
    """A callable object: its attributes are saved by LambdaLR.state_dict (a plain function's are not)."""

    def __init__(self, steps):
        self.steps = steps

    def __call__(self, epoch):
        return min(1.0, (epoch + 1) / self.steps)


def test_lambda_lr_state_dict_saves_callable_objects_only():
    opt = two_group_sgd()
    sched = LambdaLR(opt, [Warmup(4), lambda e: 1.0])
    sched.step()
    state = sched.state_dict()
    assert state["lr_lambdas"] == [{"steps": 4}, None] and state["last_epoch"] == 1
    other = LambdaLR(two_group_sgd(), [Warmup(10), lambda e: 1.0])
    other.load_state_dict(state)
    assert other.lr_lambdas[0].steps == 4 and other.last_epoch == 1
    other.step()
    sched.step()
    assert other.get_last_lr() == sched.get_last_lr() == [0.1 * 0.75, 0.5]


def test_one_cycle_lr_sets_start_values_and_reaches_the_minimum():
    opt = two_group_sgd()
    sched = OneCycleLR(opt, max_lr=[1.0, 2.0], total_steps=10, pct_start=0.2)
    assert lrs_of(opt) == pytest.approx([1.0 / 25, 2.0 / 25], rel=1e-14)  # (η₀ − max)/2·(cos 0 + 1) rounds
    assert [g["momentum"] for g in opt.param_groups] == pytest.approx([0.95, 0.95], rel=1e-14)
    assert [g["min_lr"] for g in opt.param_groups] == [1.0 / 25 / 1e4, 2.0 / 25 / 1e4]
    sched.step()  # step 1 = the end of phase 1 (0.2·10 − 1): the peak, with the lowest momentum
    assert lrs_of(opt) == pytest.approx([1.0, 2.0], rel=1e-14)
    assert [g["momentum"] for g in opt.param_groups] == pytest.approx([0.85, 0.85], rel=1e-14)
    for _ in range(8):
        sched.step()
    np.testing.assert_allclose(lrs_of(opt), [1.0 / 25e4, 2.0 / 25e4], rtol=1e-12)  # step 9: total_steps − 1
    np.testing.assert_allclose([g["momentum"] for g in opt.param_groups], [0.95, 0.95], rtol=1e-12)
    sched.step()  # step 10 still runs, as in PyTorch
    with pytest.raises(ValueError, match="tried to step 11 times"):
        sched.step()


def test_one_cycle_lr_linear_midpoint_and_adam_betas():
    p = param([1.0])
    opt = Adam([p], betas=(0.9, 0.99))
    OneCycleLR(opt, max_lr=0.01, epochs=2, steps_per_epoch=5, anneal_strategy="linear", base_momentum=0.8,
               max_momentum=0.9)
    assert opt.param_groups[0]["betas"] == (0.9, 0.99) and opt.param_groups[0]["lr"] == 0.01 / 25
    sched = OneCycleLR(Adam([param([1.0])]), max_lr=0.01, total_steps=11, pct_start=0.5,
                       anneal_strategy="linear", cycle_momentum=False)
    for _ in range(2):  # phase 1 ends at step 4.5: step 2 is 2/4.5 of the way up
        sched.step()
    np.testing.assert_allclose(sched.get_last_lr(), [0.0004 + (0.01 - 0.0004) * 2 / 4.5], rtol=1e-14)
    assert sched.optimizer.param_groups[0]["betas"] == (0.9, 0.999)


def test_reduce_lr_on_plateau_by_hand():
    opt = two_group_sgd()
    sched = ReduceLROnPlateau(opt, factor=0.5, patience=1, cooldown=1, min_lr=[0.04, 0.0])
    expected = []
    for loss in [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95]:
        sched.step(loss)
        expected.append(sched.get_last_lr())
    # bad epochs: after 0.9, two of them (> patience 1) reduce; the cooldown then eats one epoch
    assert expected == [[0.1, 0.5], [0.1, 0.5], [0.1, 0.5], [0.05, 0.25], [0.05, 0.25], [0.05, 0.25],
                        [0.04, 0.125], [0.04, 0.125]]
    assert sched.last_epoch == 8 and sched.best == 0.9


def test_reduce_lr_on_plateau_max_mode_abs_threshold_and_tensor_metric():
    opt = two_group_sgd()
    sched = ReduceLROnPlateau(opt, mode="max", threshold=0.1, threshold_mode="abs", patience=0)
    sched.step(Tensor(0.5))
    sched.step(0.55)  # not better by 0.1: a bad epoch, and patience 0 reduces at once
    assert lrs_of(opt) == pytest.approx([0.01, 0.05], rel=1e-15) and sched.best == 0.5
    sched.step(0.61)
    assert sched.best == 0.61 and sched.num_bad_epochs == 0


def test_reduce_lr_on_plateau_eps_skips_tiny_reductions():
    opt = two_group_sgd(lrs=(1e-8, 1.0))
    sched = ReduceLROnPlateau(opt, patience=0, eps=1e-6)
    sched.step(1.0)
    sched.step(2.0)
    assert lrs_of(opt) == [1e-8, 0.1]


@pytest.mark.parametrize("make", [
    lambda o: MultiStepLR(o, [1, 3, 3]),
    lambda o: ExponentialLR(o, 0.7),
    lambda o: LinearLR(o, 0.1, 0.9, 6),
    lambda o: LambdaLR(o, lambda e: 1 / (e + 1)),
    lambda o: OneCycleLR(o, 1.0, total_steps=12, three_phase=True),
], ids=["MultiStepLR", "ExponentialLR", "LinearLR", "LambdaLR", "OneCycleLR"])
def test_scheduler_state_dict_round_trip_through_json(make):
    opt = two_group_sgd()
    sched = make(opt)
    for _ in range(3):
        sched.step()
    other_opt = two_group_sgd()
    other = make(other_opt)
    other_opt.load_state_dict(opt.state_dict())
    other.load_state_dict(json.loads(json.dumps(sched.state_dict())))  # as a checkpoint would store it
    assert other.last_epoch == 3 and other.get_last_lr() == sched.get_last_lr()
    for _ in range(8):
        sched.step()
        other.step()
        assert other.get_last_lr() == sched.get_last_lr() and lrs_of(other_opt) == lrs_of(opt)


def test_reduce_lr_on_plateau_state_dict_round_trip():
    opt = two_group_sgd()
    sched = ReduceLROnPlateau(opt, mode="max", patience=2)
    for metric in [0.1, 0.2, 0.2, 0.2]:
        sched.step(metric)
    other = ReduceLROnPlateau(two_group_sgd())
    other.load_state_dict(sched.state_dict())
    assert (other.mode, other.patience, other.best, other.num_bad_epochs) == ("max", 2, 0.2, 2)


BAD_SCHEDULES = [
    ("LinearLR", dict(start_factor=0.0), "start_factor"),
    ("LinearLR", dict(start_factor=1.5), "start_factor"),
    ("LinearLR", dict(end_factor=-0.1), "end_factor"),
    ("LambdaLR", dict(lr_lambda=[lambda e: 1.0]), "lr_lambdas"),
    ("OneCycleLR", dict(max_lr=0.1), "total_steps"),
    ("OneCycleLR", dict(max_lr=0.1, epochs=3), "total_steps"),
    ("OneCycleLR", dict(max_lr=0.1, total_steps=0), "total_steps"),
    ("OneCycleLR", dict(max_lr=0.1, epochs=0, steps_per_epoch=5), "epochs"),
    ("OneCycleLR", dict(max_lr=0.1, epochs=2, steps_per_epoch=1.5), "steps_per_epoch"),
    ("OneCycleLR", dict(max_lr=0.1, total_steps=10, pct_start=1.5), "pct_start"),
    ("OneCycleLR", dict(max_lr=0.1, total_steps=10, anneal_strategy="exp"), "anneal_strategy"),
    ("OneCycleLR", dict(max_lr=[0.1, 0.2, 0.3], total_steps=10), "max_lr"),
    ("OneCycleLR", dict(max_lr=0.1, total_steps=10, base_momentum=[0.8]), "base_momentum"),
    ("ReduceLROnPlateau", dict(mode="average"), "mode"),
    ("ReduceLROnPlateau", dict(threshold_mode="percent"), "threshold_mode"),
    ("ReduceLROnPlateau", dict(factor=1.0), "factor"),
    ("ReduceLROnPlateau", dict(min_lr=[0.0]), "min_lr"),
]


@pytest.mark.parametrize("name, kwargs, match", BAD_SCHEDULES, ids=[f"{n}-{k}" for n, k, _ in BAD_SCHEDULES])
def test_schedule_argument_errors(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        getattr(optim, name)(two_group_sgd(), **kwargs)


def test_schedule_type_errors():
    with pytest.raises(ValueError, match="momentum or betas"):
        OneCycleLR(Adagrad(p1()), max_lr=0.1, total_steps=10)
    OneCycleLR(Adagrad(p1()), max_lr=0.1, total_steps=10, cycle_momentum=False)
    for make in [lambda o: OneCycleLR(o, 0.1, 10), lambda o: ReduceLROnPlateau(o), lambda o: LambdaLR(o, abs),
                 lambda o: MultiStepLR(o, [1])]:
        with pytest.raises(TypeError, match="not an Optimizer"):
            make(object())


# --------------------------------------------------------------------------- against PyTorch
SHAPES = [(4, 3), (5,), (2, 1, 3)]
RMSPROP_CASES = [dict(lr=0.01, alpha=alpha, momentum=momentum, centered=centered, weight_decay=wd)
                 for momentum, centered, wd, alpha in itertools.product((0, 0.9), (False, True), (0, 0.1), (0.99, 0.3))]
ADAGRAD_CASES = [dict(lr=0.1, lr_decay=decay, weight_decay=wd, initial_accumulator_value=init)
                 for decay, wd, init in itertools.product((0, 0.05), (0, 0.1), (0, 0.5))]
TORCH_CASES = ([("RMSprop", kw) for kw in RMSPROP_CASES] + [("Adagrad", kw) for kw in ADAGRAD_CASES]
               + [("RMSprop", dict(eps=0.5)), ("Adagrad", dict()), ("RMSprop", dict(groups=True)),
                  ("Adagrad", dict(groups=True))])
GROUPS = {"RMSprop": dict(lr=0.05, momentum=0.5, centered=True), "Adagrad": dict(lr=0.3, lr_decay=0.1)}


def torch_pair(torch, name, kwargs, dtype=np.float64):
    """The same initial weights in our optimizer and in torch's (the last one in a group of its own if asked)."""
    kwargs = dict(kwargs)
    groups = kwargs.pop("groups", False)
    init = [np.random.default_rng(0).standard_normal(s).astype(dtype) for s in SHAPES]
    ours = [param(a.copy(), dtype) for a in init]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in init]

    def arrange(ps):
        return ps if not groups else [{"params": ps[:2]}, {"params": ps[2:], **GROUPS[name]}]

    return ours, theirs, getattr(optim, name)(arrange(ours), **kwargs), getattr(torch.optim, name)(arrange(theirs),
                                                                                                   **kwargs)


def feed_and_step(torch, rng, step, ours, theirs, opt, topt, rtol):
    for i, (p, t) in enumerate(zip(ours, theirs)):
        if i == 1 and step % 3 == 1:  # now and then no gradient: both must skip the parameter
            p.grad = t.grad = None
            continue
        g = rng.standard_normal(p.shape).astype(p.dtype)
        p.grad, t.grad = Tensor(g.copy()), torch.from_numpy(g.copy())
    opt.step()
    topt.step()
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("name, kwargs", TORCH_CASES, ids=[f"{n}-{kw}" for n, kw in TORCH_CASES])
def test_float64_trajectory_matches_torch(torch, name, kwargs):
    ours, theirs, opt, topt = torch_pair(torch, name, kwargs)
    rng = np.random.default_rng(1)
    for step in range(10):
        feed_and_step(torch, rng, step, ours, theirs, opt, topt, rtol=1e-12)
    for p, t in zip(ours, theirs):  # the state too: same names in the same order, same values
        mine, their = opt.state[p], topt.state[t]
        assert list(mine) == list(their) and mine["step"] == their["step"].item()
        for key in list(mine)[1:]:
            np.testing.assert_allclose(mine[key], their[key].numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name, kwargs", [("RMSprop", dict(momentum=0.9, centered=True, weight_decay=0.1)),
                                          ("Adagrad", dict(lr_decay=0.1, initial_accumulator_value=0.1))])
def test_float32_trajectory_matches_torch(torch, name, kwargs):
    ours, theirs, opt, topt = torch_pair(torch, name, kwargs, dtype=np.float32)
    rng = np.random.default_rng(2)
    for step in range(10):
        feed_and_step(torch, rng, step, ours, theirs, opt, topt, rtol=2e-5)
    assert all(p.data.dtype == np.float32 for p in ours)


@pytest.mark.parametrize("name, kwargs", [("RMSprop", dict(momentum=0.9, centered=True, groups=True)),
                                          ("Adagrad", dict(lr_decay=0.1, groups=True))])
def test_state_dict_moves_between_torch_and_ours(torch, name, kwargs):
    ours, theirs, opt, topt = torch_pair(torch, name, kwargs)
    rng = np.random.default_rng(3)
    for step in range(5):
        feed_and_step(torch, rng, step, ours, theirs, opt, topt, rtol=1e-12)
    mine, torchs = opt.state_dict(), topt.state_dict()
    assert [list(s) for s in mine["state"].values()] == [list(s) for s in torchs["state"].values()]
    assert all(set(m) <= set(t) for m, t in zip(mine["param_groups"], torchs["param_groups"]))
    ours2, theirs2, opt2, topt2 = torch_pair(torch, name, kwargs)
    for p, t, q, u in zip(ours, theirs, ours2, theirs2):
        q.data[...] = p.data
        u.data.copy_(t.data)
    opt2.load_state_dict({"state": {k: {n: v.numpy() for n, v in s.items()} for k, s in torchs["state"].items()},
                          "param_groups": torchs["param_groups"]})
    topt2.load_state_dict({"state": {k: {n: torch.tensor(v, dtype=torch.float32 if n == "step" else None)
                                         for n, v in s.items()} for k, s in mine["state"].items()},
                           "param_groups": mine["param_groups"]})
    for step in range(5, 10):  # ours with torch's state against torch, torch with our state against ours
        seed = int(rng.integers(1 << 30))
        feed_and_step(torch, np.random.default_rng(seed), step, ours2, theirs, opt2, topt, rtol=1e-12)
        feed_and_step(torch, np.random.default_rng(seed), step, ours, theirs2, opt, topt2, rtol=1e-12)


@pytest.mark.parametrize("name", ["RMSprop", "Adagrad"])
def test_same_argument_errors_as_torch(torch, name):
    for other, kwargs, _ in BAD_OPTIMIZERS:
        if other == name:
            with pytest.raises(ValueError):
                getattr(torch.optim, name)([torch.zeros(1, requires_grad=True)], **kwargs)


def schedule_pair(torch, optimizer, lrs=(0.1, 0.5)):
    """Two groups in our optimizer and in torch's, with learning rates `lrs`."""
    if optimizer == "SGD":
        kwargs = dict(lr=1.0, momentum=0.9)
    else:
        kwargs = dict(lr=1.0, betas=(0.9, 0.99))
    ours = getattr(optim, optimizer)([{"params": [param([1.0])], "lr": lr} for lr in lrs], **kwargs)
    theirs = getattr(torch.optim, optimizer)([{"params": [torch.zeros(1, requires_grad=True)], "lr": lr}
                                              for lr in lrs], **kwargs)
    return ours, theirs


def momenta(opt) -> list[float]:
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]


SCHEDULE_CASES = [
    ("MultiStepLR", dict(milestones=[3, 7, 7, 12], gamma=0.5), "SGD", 20),
    ("MultiStepLR", dict(milestones=[0, 2]), "SGD", 6),
    ("ExponentialLR", dict(gamma=0.87), "SGD", 30),
    ("LinearLR", dict(), "SGD", 10),
    ("LinearLR", dict(start_factor=0.05, end_factor=0.5, total_iters=13), "SGD", 20),
    ("LinearLR", dict(start_factor=1.0, end_factor=0.0, total_iters=4), "SGD", 8),
    ("LambdaLR", dict(lr_lambda=lambda e: 0.95**e), "SGD", 15),
    ("LambdaLR", dict(lr_lambda=[lambda e: e / 10, lambda e: 1 / math.sqrt(e + 1)]), "SGD", 15),
    ("OneCycleLR", dict(max_lr=0.3, total_steps=25), "SGD", 25),
    ("OneCycleLR", dict(max_lr=[0.3, 1.0], total_steps=25), "Adam", 25),
    ("OneCycleLR", dict(max_lr=0.3, epochs=4, steps_per_epoch=7, pct_start=0.25, anneal_strategy="linear",
                        base_momentum=[0.7, 0.8], max_momentum=0.99, div_factor=10.0, final_div_factor=100.0),
     "SGD", 28),
    ("OneCycleLR", dict(max_lr=0.3, total_steps=30, three_phase=True), "Adam", 30),
    ("OneCycleLR", dict(max_lr=0.3, total_steps=17, three_phase=True, anneal_strategy="linear"), "SGD", 17),
    ("OneCycleLR", dict(max_lr=0.3, total_steps=20, cycle_momentum=False), "Adam", 20),
]


@pytest.mark.parametrize("name, kwargs, optimizer, steps", SCHEDULE_CASES,
                         ids=[f"{n}-{i}" for i, (n, *_rest) in enumerate(SCHEDULE_CASES)])
def test_schedule_matches_torch(torch, name, kwargs, optimizer, steps):
    ours_opt, their_opt = schedule_pair(torch, optimizer)
    ours = getattr(optim, name)(ours_opt, **kwargs)
    theirs = getattr(torch.optim.lr_scheduler, name)(their_opt, **kwargs)
    for _ in range(steps):
        assert ours.last_epoch == theirs.last_epoch
        np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-12, atol=0)
        np.testing.assert_allclose(lrs_of(ours_opt), lrs_of(their_opt), rtol=1e-12, atol=0)
        np.testing.assert_allclose(momenta(ours_opt), momenta(their_opt), rtol=1e-12, atol=0)
        assert [g.get("initial_lr") for g in ours_opt.param_groups] == [g.get("initial_lr")
                                                                        for g in their_opt.param_groups]
        their_opt.step()
        ours.step()
        theirs.step()
    if name == "OneCycleLR":  # one step past total_steps: both refuse
        with pytest.raises(ValueError):
            theirs.step()
        with pytest.raises(ValueError, match="total_steps"):
            ours.step()


@pytest.mark.parametrize("name, kwargs", [("ExponentialLR", dict(gamma=0.8)), ("LinearLR", dict(total_iters=9)),
                                          ("MultiStepLR", dict(milestones=[3, 6, 8]))])
def test_resumed_schedule_matches_torch(torch, name, kwargs):
    ours_opt, their_opt = schedule_pair(torch, "SGD")
    for group in ours_opt.param_groups + their_opt.param_groups:
        group["initial_lr"] = group["lr"]
    ours = getattr(optim, name)(ours_opt, last_epoch=5, **kwargs)
    theirs = getattr(torch.optim.lr_scheduler, name)(their_opt, last_epoch=5, **kwargs)
    for _ in range(10):
        np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-12, atol=0)
        their_opt.step()
        ours.step()
        theirs.step()


METRICS = [1.0, 0.9, 0.9, 0.89995, 0.95, 0.95, 0.95, 0.7, 0.7, 0.69, 0.8, 0.8, 0.8, 0.8, 0.8, 0.5, 0.5,
           0.50001, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]  # 11 bad epochs at the end: patience 10 acts
PLATEAU_CASES = [
    dict(),
    dict(patience=1),
    dict(patience=0, factor=0.5),
    dict(mode="max", patience=1),
    dict(mode="min", threshold_mode="abs", threshold=0.05, patience=1),
    dict(mode="max", threshold_mode="abs", threshold=0.05, patience=0),
    dict(mode="min", threshold=0.1, patience=1, cooldown=2),
    dict(patience=0, cooldown=1, min_lr=0.02),
    dict(patience=0, min_lr=[0.05, 0.001], factor=0.3),
    dict(patience=0, eps=0.02),
]


@pytest.mark.parametrize("kwargs", PLATEAU_CASES, ids=[str(kw) for kw in PLATEAU_CASES])
def test_reduce_lr_on_plateau_matches_torch(torch, kwargs):
    ours_opt, their_opt = schedule_pair(torch, "SGD")
    ours = ReduceLROnPlateau(ours_opt, **kwargs)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(their_opt, **kwargs)
    metrics = METRICS if kwargs.get("mode") != "max" else [-m for m in METRICS]
    for metric in metrics:
        ours.step(metric)
        theirs.step(metric)
        assert ours.get_last_lr() == theirs.get_last_lr() and ours.last_epoch == theirs.last_epoch
        assert (ours.best, ours.num_bad_epochs, ours.cooldown_counter) == (
            theirs.best, theirs.num_bad_epochs, theirs.cooldown_counter)
    assert set(ours.state_dict()) == set(theirs.state_dict())


@pytest.mark.parametrize("name, kwargs, match", BAD_SCHEDULES, ids=[f"{n}-{k}" for n, k, _ in BAD_SCHEDULES])
def test_same_schedule_errors_as_torch(torch, name, kwargs, match):
    their_opt = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)]} for _ in range(2)], lr=0.1,
                                momentum=0.9)
    with pytest.raises(ValueError):
        getattr(torch.optim.lr_scheduler, name)(their_opt, **kwargs)


# --------------------------------------------------------------------------- Adam over flat arrays
def _adam_pair(kwargs, shapes, dtype=np.float32, seed=0):
    """Two optimizers on equal parameters: one as shipped (flat when it can), one forced parameter by parameter."""
    from tinygrad_cnn.optim import Adam, AdamW

    rng = np.random.default_rng(seed)
    values = [rng.standard_normal(s).astype(dtype) for s in shapes]
    cls = AdamW if kwargs.pop("adamw", False) else Adam
    flat_params = [Tensor(v.copy(), requires_grad=True) for v in values]
    each_params = [Tensor(v.copy(), requires_grad=True) for v in values]
    flat, each = cls(flat_params, **kwargs), cls(each_params, **kwargs)
    each._flat_moments = lambda group: None  # the parameter-by-parameter path
    return (flat, flat_params), (each, each_params)


@pytest.mark.parametrize("kwargs", [dict(lr=0.01), dict(lr=0.01, weight_decay=0.1), dict(lr=0.01, adamw=True),
                                    dict(lr=0.1, betas=(0.0, 0.9))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_over_flat_arrays_equals_the_update_parameter_by_parameter(kwargs, dtype):
    """Bit for bit, over steps where some parameter misses a gradient (it then steps on its own from there)."""
    shapes = [(5, 3), (3,), (2, 1, 4), ()]
    (flat, fp), (each, ep) = _adam_pair(dict(kwargs), shapes, dtype)
    rng = np.random.default_rng(1)
    for step in range(6):
        for a, b in zip(fp, ep):
            g = None if (step == 3 and a.ndim == 1) else rng.standard_normal(a.shape).astype(dtype)
            a.grad = b.grad = None if g is None else Tensor(g)
        flat.step()
        each.step()
        for a, b in zip(fp, ep):
            np.testing.assert_array_equal(a.data, b.data)
            assert a.data.dtype == dtype
    assert [flat.state[p]["step"] for p in fp] == [6, 5, 6, 6]


def test_adam_moments_are_views_into_one_array_and_state_dict_copies_them():
    (flat, params), _ = _adam_pair(dict(lr=0.01), [(4, 3), (3,)])
    for p in params:
        p.grad = Tensor(np.ones(p.shape, np.float32))
    flat.step()
    firsts = [flat.state[p]["exp_avg"] for p in params]
    assert firsts[0].base is firsts[1].base is not None  # one flat array underneath
    saved = flat.state_dict()
    flat.step()
    assert not np.shares_memory(saved["state"][0]["exp_avg"], firsts[0])
    np.testing.assert_allclose(saved["state"][0]["exp_avg"], 0.1)  # the snapshot kept the first step's value


def test_adam_after_load_state_dict_continues_from_the_loaded_moments():
    """load_state_dict puts arrays of its own in the state: the next step lays them out flat again."""
    (a, pa), (b, pb) = _adam_pair(dict(lr=0.01, weight_decay=0.01), [(4, 3), (3,)])
    del b._flat_moments  # both flat
    rng = np.random.default_rng(2)
    grads = [[rng.standard_normal(p.shape).astype(np.float32) for p in pa] for _ in range(4)]
    for gs in grads[:2]:
        for p, q, g in zip(pa, pb, gs):
            p.grad = q.grad = Tensor(g)
        a.step()
        b.step()
    b.load_state_dict(a.state_dict())  # the same values, in arrays of their own
    assert b.state[pb[0]]["exp_avg"].base is None
    for gs in grads[2:]:
        for p, q, g in zip(pa, pb, gs):
            p.grad = q.grad = Tensor(g)
        a.step()
        b.step()
    for p, q in zip(pa, pb):
        np.testing.assert_array_equal(p.data, q.data)
    assert b.state[pb[0]]["exp_avg"].base is b.state[pb[1]]["exp_avg"].base is not None


def test_adam_with_mixed_dtypes_in_a_group_steps_each_parameter():
    from tinygrad_cnn.optim import Adam

    params = [Tensor(np.ones(3, np.float32), requires_grad=True), Tensor(np.ones(2), requires_grad=True)]
    opt = Adam(params, lr=0.1)
    for p in params:
        p.grad = Tensor(np.ones(p.shape, p.dtype))
    opt.step()
    assert [p.data.dtype for p in params] == [np.float32, np.float64]
    np.testing.assert_allclose(params[0].data, 0.9, rtol=1e-6)
    np.testing.assert_allclose(params[1].data, 0.9 + 1e-9, rtol=1e-12)  # 1 − 0.1 · 1 / (1 + ε)


# --------------------------------------------------------------------------- gradients written into Adam's flat array
def _train_pair(kwargs, steps):
    """Both optimizers of `_adam_pair` trained by backward on one loss; yields after each step."""
    (flat, fp), (each, ep) = _adam_pair(dict(kwargs), [(4, 3), (3,), (2, 2)])
    x = Tensor(np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32))
    for step in range(steps):
        for opt, (w, b, v) in ((flat, fp), (each, ep)):
            opt.zero_grad()
            loss = ((x @ w + b).tanh() ** 2).sum() + (v * v * (step + 1)).sum()
            loss.backward(retain_graph=True)
            if step % 2:  # a second backward before the step: the gradients add up
                loss.backward()
            opt.step()
        yield step, (flat, fp), (each, ep)


@pytest.mark.parametrize("kwargs", [dict(lr=0.01), dict(lr=0.01, weight_decay=0.1), dict(lr=0.01, adamw=True)])
def test_backward_writes_into_the_lent_flat_gradients_and_training_is_unchanged(kwargs):
    """After `zero_grad`, backward copies each gradient into Adam's flat array (no gather), and every number
    (parameters, `.grad` after the step) equals the parameter-by-parameter path, bit for bit."""
    lent_seen = 0
    for _, (_, fp), (_, ep) in _train_pair(kwargs, 6):
        bases = [p.grad.data.base for p in fp]  # one flat array under every gradient: backward wrote them there
        lent_seen += all(base is not None and base is bases[0] for base in bases)
        for a, b in zip(fp, ep):
            np.testing.assert_array_equal(a.data, b.data)
            np.testing.assert_array_equal(a.grad.data, b.grad.data)  # .grad is still ∇θ after the step (not g + λθ)
    assert lent_seen == 2  # steps 2 and 4 (one backward each; with L2, step gathers g + λθ into a work array)


@pytest.mark.parametrize("hold", ["tensor", "array", "slice"])
def test_a_gradient_kept_from_an_earlier_step_is_never_written_over(hold):
    """A kept `.grad` Tensor, its array, or a slice of it (a view of the flat array's memory) stays as it was."""
    kept = None
    for step, (_, fp), _ in _train_pair(dict(lr=0.01), 8):
        if step == 2:
            w_grad = fp[0].grad
            assert w_grad.data.base is not None  # lent: a view into the flat gradients
            kept = {"tensor": w_grad, "array": w_grad.data, "slice": w_grad.data[1:3]}[hold]
            value = np.array(kept.data if hold == "tensor" else kept)
            del w_grad
        if kept is not None:
            np.testing.assert_array_equal(kept.data if hold == "tensor" else kept, value)
        assert step < 7 or fp[0].grad.data.base is None  # while it is held, nothing is lent


def test_nothing_is_lent_while_the_flat_gradients_are_held_and_loans_not_taken_are_withdrawn():
    from tinygrad_cnn.backend import flat as flat_module

    (opt, params), _ = _adam_pair(dict(lr=0.01), [(3,), (2,)])
    for p in params:
        p.grad = Tensor(np.ones(p.shape, np.float32))
    opt.step()  # lays the moments and the gradients out flat
    opt.zero_grad()
    assert all(id(p) in flat_module._lent for p in params)
    (params[0] * 2.0).sum().backward()  # params[1] gets no gradient: its loan stays open...
    assert id(params[0]) not in flat_module._lent and id(params[1]) in flat_module._lent
    held = params[0].grad
    params[1].grad = Tensor(np.ones(2, np.float32))
    opt.step()
    opt.zero_grad()  # ...and is withdrawn here; held keeps params[0]'s buffer, so nothing is lent
    assert not any(id(p) in flat_module._lent for p in params)
    del held
    opt.zero_grad(set_to_none=False)  # zero arrays of their own: nothing to lend either
    assert not any(id(p) in flat_module._lent for p in params)
    opt.zero_grad()
    assert all(id(p) in flat_module._lent for p in params)


def test_loans_keep_nothing_alive():
    """A loan holds its tensor and its buffer weakly: an optimizer and model dropped right after zero_grad
    leave no loan behind and free the flat gradient array (stop 26's review found it kept, 4 MB per model)."""
    import gc
    import weakref

    from tinygrad_cnn.backend import flat as flat_module

    (opt, params), _ = _adam_pair(dict(lr=0.01), [(50, 40), (40,)])
    for p in params:
        p.grad = Tensor(np.ones(p.shape, np.float32))
    opt.step()
    opt.zero_grad()
    assert all(id(p) in flat_module._lent for p in params)
    (_, flat), = opt._flat.values()
    flat_grad = weakref.ref(flat.arrays["grad"])
    del opt, params, flat, _, p
    gc.collect()
    assert flat_grad() is None
    flat_module.lend([], [])  # the next loan drops the dead tensors' loans
    assert all(tensor() is not None for tensor, _ in flat_module._lent.values())
