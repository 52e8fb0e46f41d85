"""Optimizers (SGD, Adam, AdamW) and learning-rate schedules (StepLR, CosineAnnealingLR).

The update formulas, argument names, defaults and ``state_dict`` layout are
PyTorch's (``torch/optim/sgd.py``, ``adam.py``, ``lr_scheduler.py``), so the same
starting weights and gradients give the same trajectory, to float32 rounding.

An optimizer step runs every training iteration on every parameter, so it works
on numpy arrays, never on Tensors (no graph is recorded, no Tensor overhead):

* ``p.data`` is updated in place (``x += t``), so anything holding the array sees
  the new values and nothing is reallocated;
* ``p.grad.data`` is only read: the engine may share one gradient array between
  several tensors;
* state buffers are allocated on a parameter's first step; intermediate results go
  to two work arrays per dtype, reused across parameters and steps;
* Python scalars are cast to the parameter's dtype first, so float32 stays float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from types import EllipsisType
from typing import Any

import numpy as np

from .autograd import enable_grad, op_name
from .backend import threads
from .tensor import Tensor

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]


class Optimizer:
    """Parameter groups, per-parameter state, `zero_grad`, `step` and (de)serialisation.

    `param_groups` is a list of dicts, each a "params" list plus that group's options
    (`lr`, ...), which users and schedulers may change between steps. `state` maps a
    parameter to its buffers (numpy arrays). Subclasses implement `_step_group`.
    """

    def __init__(self, params: ParamsT, defaults: dict[str, Any]):
        self.defaults = defaults
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Tensor, dict[str, Any]] = {}
        self._work: dict[tuple[np.dtype, int], np.ndarray] = {}
        if isinstance(params, (Tensor, dict)):
            raise TypeError(f"{self._name}: params should be an iterable of Tensors or of dicts, "
                            f"got a single {type(params).__name__} (wrap it in a list)")
        groups = list(params)
        if not groups:
            raise ValueError(f"{self._name}: got an empty parameter list")
        for group in groups if isinstance(groups[0], dict) else [{"params": groups}]:
            self.add_param_group(group)

    @property
    def _name(self) -> str:
        return type(self).__name__

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a group: a dict with "params" and any options that override the defaults."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{self._name}: a parameter group must be a dict with a 'params' entry")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        index = len(self.param_groups)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            where = f"{self._name}: parameter {i} of group {index}"
            if not isinstance(p, Tensor):
                raise TypeError(f"{where} is a {type(p).__name__}, not a Tensor")
            if p.dtype.kind != "f":
                raise ValueError(f"{where} has dtype {p.dtype}; only floating-point tensors can be optimized")
            if not p.requires_grad:
                raise ValueError(f"{where} does not require grad (create it with requires_grad=True)")
            if not p.is_leaf:
                raise ValueError(f"{where} is not a leaf tensor (it was computed by {op_name(p.grad_fn)})")
            if id(p) in seen:
                raise ValueError(f"{where} appears more than once in the optimizer's parameters")
            seen.add(id(p))
        new = {**self.defaults, **{k: v for k, v in group.items() if k != "params"}, "params": params}
        self._check_options(new, index)
        self.param_groups.append(new)

    def _check_options(self, group: dict[str, Any], index: int) -> None:
        """Raise ValueError for an invalid option value in `group`."""
        if group["lr"] < 0:
            raise ValueError(f"{self._name}: invalid learning rate {group['lr']} in group {index} (must be >= 0)")
        if group["weight_decay"] < 0:
            raise ValueError(f"{self._name}: invalid weight_decay {group['weight_decay']} in group {index}")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: `.grad = None` (or a new zero array with `set_to_none=False`)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:  # never zero in place: the array may be shared
                    p.grad = Tensor(np.zeros_like(p.grad.data))

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; return `closure()` if given (it recomputes the loss)."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._step_group(group)
        return loss

    def _step_group(self, group: dict[str, Any]) -> None:
        raise NotImplementedError

    def _grads(self, group: dict[str, Any]) -> Iterator[tuple[np.ndarray, np.ndarray, dict[str, Any]]]:
        """(parameter array, gradient array, state dict) for each parameter of `group` with a gradient."""
        for p in group["params"]:
            if p.grad is None:
                continue
            g = p.grad.data
            if g.shape != p.data.shape:
                raise ValueError(f"{self._name}: a parameter of shape {p.shape} has a gradient of shape {g.shape}")
            state = self.state.get(p)
            if state is None:
                state = self.state[p] = {}
            yield p.data, g, state

    def _tmp(self, x: np.ndarray, slot: int) -> np.ndarray:
        """A work array shaped like `x` (one per dtype and slot, sized for the largest parameter)."""
        key = (x.dtype, slot)
        buf = self._work.get(key)
        if buf is None or buf.size < x.size:
            largest = max(p.data.size for g in self.param_groups for p in g["params"])
            buf = self._work[key] = np.empty(max(largest, x.size), x.dtype)
        return buf[: x.size].reshape(x.shape)

    def state_dict(self) -> dict[str, Any]:
        """PyTorch's layout: {"state": {index: {name: array}}, "param_groups": [{..., "params": [index]}]}.

        Parameters are numbered in group order. The arrays are copies, so the dict is a
        snapshot that later steps do not change (PyTorch returns references instead).
        """
        state: dict[int, dict[str, Any]] = {}
        groups = []
        index = 0
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                entry = self.state.get(p)
                if entry:
                    state[index] = {k: np.array(v) if isinstance(v, np.ndarray) else v for k, v in entry.items()}
                ids.append(index)
                index += 1
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore options and buffers saved by `state_dict` (on an optimizer built with the same groups)."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{self._name}.load_state_dict: the saved state has {len(saved_groups)} parameter "
                             f"groups, this optimizer has {len(self.param_groups)}")
        by_index: dict[int, Tensor] = {}
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{self._name}.load_state_dict: group {i} has {len(saved['params'])} parameters in "
                                 f"the saved state and {len(group['params'])} here")
            by_index.update(zip((int(j) for j in saved["params"]), group["params"]))
        state: dict[Tensor, dict[str, Any]] = {}
        for key, entry in state_dict["state"].items():
            p = by_index.get(int(key))
            if p is None:
                raise ValueError(f"{self._name}.load_state_dict: state for parameter {key}, which no group lists")
            state[p] = {name: _load_value(name, value, p) for name, value in entry.items()}
        groups = [{**group, **{k: v for k, v in saved.items() if k != "params"}, "params": group["params"]}
                  for saved, group in zip(saved_groups, self.param_groups)]
        for i, group in enumerate(groups):
            self._check_options(group, i)
        self.param_groups[:] = groups  # in place: a scheduler holds this list
        self.state = state


def _load_value(name: str, value: Any, p: Tensor) -> Any:
    """A saved state entry made ready for `p`: an int step, or an array copied in `p`'s dtype."""
    if name == "step":
        return int(value)
    if isinstance(value, (int, float)):
        return value
    array = np.array(value, dtype=p.dtype)
    if array.shape != p.shape:
        raise ValueError(f"load_state_dict: state '{name}' has shape {array.shape}, its parameter {p.shape}")
    return array


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay.

    g ← ∇θ + λθ;  b ← g on the first step, then μb + (1 − τ)g;  g ← g + μb (nesterov) or b;  θ ← θ − η·g
    (η = lr, μ = momentum, τ = dampening, λ = weight_decay; PyTorch's formulation, not Sutskever's.)
    """

    def __init__(self, params: ParamsT, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _check_options(self, group: dict[str, Any], index: int) -> None:
        super()._check_options(group, index)
        if group["momentum"] < 0:
            raise ValueError(f"SGD: invalid momentum {group['momentum']} in group {index} (must be >= 0)")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"SGD: Nesterov momentum requires a momentum > 0 and zero dampening (group {index})")

    def _step_group(self, group: dict[str, Any]) -> None:
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        weight_decay, nesterov = group["weight_decay"], group["nesterov"]
        for x, g, state in self._grads(group):
            f = x.dtype.type
            d = g
            if weight_decay != 0:
                d = self._tmp(x, 0)
                np.multiply(x, f(weight_decay), out=d)
                d += g
            if momentum != 0:
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = d.astype(x.dtype)  # a copy; no dampening at first
                else:
                    buf *= f(momentum)
                    if dampening == 0:
                        buf += d
                    else:
                        t = self._tmp(x, 1)
                        np.multiply(d, f(1 - dampening), out=t)
                        buf += t
                if nesterov:
                    t = self._tmp(x, 1)
                    np.multiply(buf, f(momentum), out=t)
                    t += d
                    d = t
                else:
                    d = buf
            t = self._tmp(x, 1)
            np.multiply(d, f(-lr), out=t)
            x += t


class Adam(Optimizer):
    """Adam with bias correction and optional L2 weight decay (added to the gradient).

    g ← ∇θ + λθ;  m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;
    θ ← θ − η/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
    With `decoupled_weight_decay=True` (what AdamW sets) the decay is θ ← θ(1 − ηλ) instead.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled_weight_decay: bool = False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def _check_options(self, group: dict[str, Any], index: int) -> None:
        super()._check_options(group, index)
        if group["eps"] < 0:
            raise ValueError(f"{self._name}: invalid eps {group['eps']} in group {index} (must be >= 0)")
        betas = group["betas"]
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"{self._name}: invalid betas {betas} in group {index} (two numbers in [0, 1))")

    def _step_group(self, group: dict[str, Any]) -> None:
        for x, g, state in self._grads(group):
            if not state:
                state.update(step=0, exp_avg=np.zeros_like(x), exp_avg_sq=np.zeros_like(x))
            state["step"] += 1
            m, v, work = state["exp_avg"], state["exp_avg_sq"], (self._tmp(x, 0), self._tmp(x, 1))

            def update(rows: slice | EllipsisType, x=x, g=g, m=m, v=v, work=work, step=state["step"]) -> None:
                self._update(group, step, x[rows], g[rows], m[rows], v[rows], work[0][rows], work[1][rows])

            # a big weight's rows are split over the threads: the same update on each block (backend/threads.py)
            if x.ndim and len(x):
                threads.split(update, len(x), 12 * x[0].size)
            else:
                update(Ellipsis)

    @staticmethod
    def _update(group: dict[str, Any], step: int, x: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray,
                d_work: np.ndarray, u: np.ndarray) -> None:
        """One Adam step for one block of a parameter, in place, with two work arrays of its shape."""
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        weight_decay, decoupled = group["weight_decay"], group["decoupled_weight_decay"]
        f = x.dtype.type
        d = g
        if weight_decay != 0:
            if decoupled:
                x *= f(1 - lr * weight_decay)
            else:
                d = d_work
                np.multiply(x, f(weight_decay), out=d)
                d += g
        # m.lerp_(d, w) with w = 1 − β₁, in PyTorch's two forms (the second is exact at w = 1)
        w = f(1 - beta1)
        np.subtract(d, m, out=u)
        if w < 0.5:
            u *= w
            m += u
        else:
            u *= f(1) - w
            np.subtract(d, u, out=m)
        v *= f(beta2)
        np.multiply(d, f(1 - beta2), out=u)
        u *= d
        v += u
        step_size = lr / (1 - beta1**step)
        np.sqrt(v, out=u)
        u /= f((1 - beta2**step) ** 0.5)
        u += f(eps)
        t = d_work  # d is no longer needed
        np.multiply(m, f(-step_size), out=t)
        t /= u
        x += t


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): the decay skips the moment estimates.

    θ ← θ(1 − ηλ);  m ← β₁m + (1 − β₁)∇θ;  v ← β₂v + (1 − β₂)∇θ²;  θ ← θ − η/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr, betas, eps, weight_decay, decoupled_weight_decay=True)


# ---------------------------------------------------------------------------
# Learning-rate schedules: call `scheduler.step()` once per epoch, after `optimizer.step()`.
# ---------------------------------------------------------------------------
class LRScheduler:
    """Sets each group's "lr" from `get_lr()` on every `step()`; `last_epoch` counts the steps.

    Creating one stores each group's starting lr as "initial_lr" (`base_lrs`) and takes
    the first step (to epoch 0), as PyTorch does. To resume, pass `last_epoch` and an
    optimizer whose groups already hold "initial_lr", or use `load_state_dict`.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: {type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise ValueError(f"{type(self).__name__}: resuming at last_epoch={last_epoch} needs "
                                 f"'initial_lr' in param_groups[{i}] (load the optimizer's state first)")
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._is_initial = True
        self.step()
        self._is_initial = False

    def get_lr(self) -> list[float]:
        """The learning rates for epoch `last_epoch` (already incremented by `step`)."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and write the new learning rates into the optimizer's groups."""
        self._step_count += 1
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The learning rates the last `step` set, one per group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer, as PyTorch's schedulers save it."""
        return {k: list(v) if isinstance(v, list) else v for k, v in vars(self).items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what `state_dict` saved (keys this class does not know are ignored)."""
        known = self.state_dict()
        for key, value in state_dict.items():
            if key in known:
                setattr(self, key, list(value) if isinstance(value, list) else value)


class StepLR(LRScheduler):
    """Multiply the learning rate by `gamma` every `step_size` epochs: η_e = η₀·γ^⌊e / step_size⌋."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if int(step_size) != step_size or step_size <= 0:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size}")
        self.step_size = int(step_size)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        groups = self.optimizer.param_groups
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [group["lr"] for group in groups]
        return [group["lr"] * self.gamma for group in groups]


class CosineAnnealingLR(LRScheduler):
    """Cosine from the initial lr down to `eta_min` over `T_max` epochs (and back up, periodically).

    η_e = η_min + (η₀ − η_min)·(1 + cos(π·e / T_max)) / 2, computed with PyTorch's recursive form
    (each step rescales the current lr), so a learning rate changed by hand carries on along a
    cosine, and the values equal PyTorch's to the last bits.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        groups, e, T, eta_min = self.optimizer.param_groups, self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return [group["lr"] for group in groups]
        if self._step_count == 1 and e > 0:  # resumed at last_epoch > 0: the closed form
            return [eta_min + (base - eta_min) * (1 + math.cos(e * math.pi / T)) / 2 for base in self.base_lrs]
        if (e - 1 - T) % (2 * T) == 0:  # leaving the minimum, where the ratio below would be 0/0
            return [group["lr"] + (base - eta_min) * (1 - math.cos(math.pi / T)) / 2
                    for base, group in zip(self.base_lrs, groups)]
        ratio = (1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T))
        return [ratio * (group["lr"] - eta_min) + eta_min for group in groups]
