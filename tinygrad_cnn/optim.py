"""Optimizers (SGD, Adam, AdamW, RMSprop, Adagrad) and learning-rate schedules (StepLR,
MultiStepLR, ExponentialLR, LinearLR, LambdaLR, CosineAnnealingLR, OneCycleLR, ReduceLROnPlateau).

The update formulas, argument names, defaults and ``state_dict`` layout are
PyTorch's (``torch/optim/sgd.py``, ``adam.py``, ``rmsprop.py``, ``adagrad.py``,
``lr_scheduler.py``), so the same starting weights and gradients give the same
trajectory, to float32 rounding.

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

import copy
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from types import EllipsisType, FunctionType
from typing import Any

import numpy as np

from .autograd import enable_grad, op_name
from .backend import threads
from .backend.flat import FlatArrays, lend, withdraw
from .backend.linalg import QUIET
from .tensor import Tensor

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]
UPDATE_PASSES = 12  # Adam's passes over memory per value: the cost `_split_update` gives threads.split


def _split_update(update: Callable[[slice], None], rows: int, values_per_row: int) -> None:
    """update(rows) over range(rows), split over our threads only in a program that split work in the last QUIET s.

    Where our threads are busy anyway (a CNN's convolutions), an optimizer's
    update gains from them too. Elsewhere (an MLP) splitting cost ~4% of the
    step: it keeps the big matrix products off BLAS's threads (linalg.matmul).
    """
    if threads.seconds_since_split() > QUIET:
        update(slice(0, rows))
    else:
        threads.split(update, rows, UPDATE_PASSES * values_per_row)


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
        self._flat: dict[int, tuple[dict, FlatArrays]] = {}  # Adam's flat moments, per group (backend/flat.py)
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

    nonnegative: tuple[str, ...] = ()  # options a subclass requires to be >= 0, besides lr and weight_decay

    def _check_options(self, group: dict[str, Any], index: int) -> None:
        """Raise ValueError for an invalid option value in `group`."""
        for name in self.nonnegative:
            if group[name] < 0:
                raise ValueError(f"{self._name}: invalid {name} {group[name]} in group {index} (must be >= 0)")
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


def l2_gradient(x: np.ndarray, g: np.ndarray, weight_decay: float, out: np.ndarray) -> np.ndarray:
    """g + λx written into `out` (L2 weight decay added to the gradient), or g itself when λ = 0."""
    if weight_decay == 0:
        return g
    np.multiply(x, x.dtype.type(weight_decay), out=out)
    out += g
    return out


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
            d = l2_gradient(x, g, weight_decay, self._tmp(x, 0))
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
        flat = self._flat_moments(group)
        if flat is not None:
            self._step_flat(group, flat)
            return
        for x, g, state in self._grads(group):  # parameter by parameter: see _flat_moments for when
            if not state:
                state.update(step=0, exp_avg=np.zeros_like(x), exp_avg_sq=np.zeros_like(x))
            state["step"] += 1
            m, v, work = state["exp_avg"], state["exp_avg_sq"], (self._tmp(x, 0), self._tmp(x, 1))

            def update(rows: slice | EllipsisType, x=x, g=g, m=m, v=v, work=work, step=state["step"]) -> None:
                d = self._decayed_gradient(group, x[rows], g[rows], work[0][rows])
                x[rows] += self._moments_step(group, step, d, m[rows], v[rows], work[1][rows])

            if x.ndim and len(x):  # a big weight's rows may be split over the threads: the same update on each block
                _split_update(update, len(x), x[0].size)
            else:
                update(Ellipsis)

    def _flat_moments(self, group: dict[str, Any]) -> FlatArrays | None:
        """The group's moments as views into two flat arrays (backend/flat.py), or None: step each parameter.

        The flat update needs every parameter of the group to have a gradient, one
        dtype and one step count (a parameter that missed a step has its own bias
        correction from then on). The flat arrays are made on the first step, and
        made again, from the state's current values, whenever the state no longer
        points into them (`load_state_dict` put arrays of its own there).
        """
        params = group["params"]
        if not params or any(p.grad is None for p in params) or len({p.data.dtype for p in params}) > 1:
            return None
        states = [self.state.get(p) for p in params]
        if len({state["step"] if state else 0 for state in states}) > 1:
            return None
        owner, flat = self._flat.get(id(group), (None, None))
        if owner is group and all(state and state["exp_avg"] is m and state["exp_avg_sq"] is v
                                  for state, m, v in zip(states, flat.views["exp_avg"], flat.views["exp_avg_sq"])):
            return flat
        flat = FlatArrays([p.data.shape for p in params], params[0].data.dtype,
                          ("exp_avg", "exp_avg_sq", "grad", "update"))
        for p, state, m, v in zip(params, states, flat.views["exp_avg"], flat.views["exp_avg_sq"]):
            if state:
                np.copyto(m, state["exp_avg"])
                np.copyto(v, state["exp_avg_sq"])
            self.state[p] = {"step": state["step"] if state else 0, "exp_avg": m, "exp_avg_sq": v}
        # keyed by the group dict itself (a group replaced by load_state_dict is a new dict), kept only while it is ours
        self._flat = {key: entry for key, entry in self._flat.items() if any(entry[0] is g for g in self.param_groups)}
        self._flat[id(group)] = (group, flat)
        return flat

    def _step_flat(self, group: dict[str, Any], flat: FlatArrays) -> None:
        """Adam over all of the group's parameters at once: one update of the flat arrays, each slice added.

        Measured on an MLP step (6 parameters, 235k values): ~80 numpy calls became
        ~25. The update is split by `_split_update`: in the CNN, Adam's step took
        1.62-1.84 ms split against 2.12-2.55 not (420k values, medians of 35).
        The gradients are already in the flat array when backward wrote them there
        (`zero_grad` lent it); otherwise, or with L2 decay (g + λθ must not change
        `p.grad`), they are gathered into a work array.
        """
        params = group["params"]
        for p in params:
            if p.grad.data.shape != p.data.shape:
                raise ValueError(f"{self._name}: a parameter of shape {p.shape} has a gradient of shape "
                                 f"{p.grad.data.shape}")
        grad = flat.arrays["grad"]
        l2 = group["weight_decay"] != 0 and not group["decoupled_weight_decay"]
        if l2 or any(p.grad.data is not g for p, g in zip(params, flat.views["grad"])):
            grad = self._tmp(grad, 0)
            for p, g in zip(params, flat.split(grad)):
                d = self._decayed_gradient(group, p.data, p.grad.data, g)  # g + λθ written into g itself
                if d is not g:
                    np.copyto(g, d)
        elif group["weight_decay"] != 0:  # decoupled: θ ← θ(1 − ηλ)
            for p in params:
                self._decayed_gradient(group, p.data, p.grad.data, p.grad.data)
        step = self.state[params[0]]["step"] + 1
        for p in params:
            self.state[p]["step"] = step
        m, v, update = flat.arrays["exp_avg"], flat.arrays["exp_avg_sq"], flat.arrays["update"]
        _split_update(lambda s: self._moments_step(group, step, grad[s], m[s], v[s], update[s]), flat.size, 1)
        for p, t in zip(params, flat.views["update"]):
            p.data += t

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients; then lend each parameter its view of the flat gradient array (backend/flat.py).

        The next backward writes the gradients there, so `step` need not gather them.
        A group is lent nothing while its flat array, or a view of it, is held outside
        (a `p.grad` kept from the last step): that gradient is never written over.
        """
        super().zero_grad(set_to_none)
        for group in self.param_groups:
            owner, flat = self._flat.get(id(group), (None, None))
            if owner is not group:
                continue
            withdraw(group["params"])  # last time's loans not taken (a parameter that got no gradient)
            if set_to_none and flat.unshared("grad"):
                lend(group["params"], flat.views["grad"])

    @staticmethod
    def _decayed_gradient(group: dict[str, Any], x: np.ndarray, g: np.ndarray, out: np.ndarray) -> np.ndarray:
        """The gradient with weight decay: g + λx into `out` (L2), or g after θ ← θ(1 − ηλ) (decoupled)."""
        weight_decay = group["weight_decay"]
        if weight_decay != 0 and group["decoupled_weight_decay"]:
            x *= x.dtype.type(1 - group["lr"] * weight_decay)
            return g
        return l2_gradient(x, g, weight_decay, out)

    @staticmethod
    def _moments_step(group: dict[str, Any], step: int, d: np.ndarray, m: np.ndarray, v: np.ndarray,
                      u: np.ndarray) -> np.ndarray:
        """Update m and v in place with the gradient d (only read); return the parameter's change, written into u."""
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        f = m.dtype.type
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
        # step_size · m / (√v / √c₂ + ε) = (step_size · √c₂) · m / (√v + ε·√c₂): one pass fewer than dividing √v
        root_c2 = (1 - beta2**step) ** 0.5
        np.sqrt(v, out=u)
        u += f(eps * root_c2)
        np.divide(m, u, out=u)  # m / denominator, then the step size: PyTorch's addcdiv order
        u *= f(-lr / (1 - beta1**step) * root_c2)
        return u


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): the decay skips the moment estimates.

    θ ← θ(1 − ηλ);  m ← β₁m + (1 − β₁)∇θ;  v ← β₂v + (1 − β₂)∇θ²;  θ ← θ − η/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr, betas, eps, weight_decay, decoupled_weight_decay=True)


class RMSprop(Optimizer):
    """RMSprop: divide the gradient by a running root-mean-square of its recent values.

    g ← ∇θ + λθ;  v ← αv + (1 − α)g²;  centered: ḡ ← αḡ + (1 − α)g, v̂ = v − ḡ², else v̂ = v;
    momentum μ > 0: b ← μb + g/(√v̂ + ε), θ ← θ − η·b;  else θ ← θ − η·g/(√v̂ + ε)
    (η = lr, α = alpha, λ = weight_decay.) `centered` divides by an estimate of the gradient's
    standard deviation instead of its RMS. There is no bias correction (unlike Adam), so the
    first steps are large: v starts at 0 and grows as 1 − αᵗ.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                                      weight_decay=weight_decay))

    nonnegative = ("eps", "momentum", "alpha")

    def _step_group(self, group: dict[str, Any]) -> None:
        lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
        weight_decay, momentum, centered = group["weight_decay"], group["momentum"], group["centered"]
        for x, g, state in self._grads(group):
            if not state:  # PyTorch's order of the entries: step, square_avg, momentum_buffer, grad_avg
                state.update(step=0, square_avg=np.zeros_like(x))
                if momentum > 0:
                    state["momentum_buffer"] = np.zeros_like(x)
                if centered:
                    state["grad_avg"] = np.zeros_like(x)
            state["step"] += 1
            f = x.dtype.type
            d = l2_gradient(x, g, weight_decay, self._tmp(x, 0))
            u, avg = self._tmp(x, 1), self._tmp(x, 2)
            v = state["square_avg"]
            v *= f(alpha)
            np.multiply(d, f(1 - alpha), out=u)
            u *= d
            v += u
            if centered:  # if switched on after the first step, the average starts at 0 then
                m = state.setdefault("grad_avg", np.zeros_like(x))
                _lerp(m, d, 1 - alpha, u)
                np.multiply(m, m, out=avg)
                np.subtract(v, avg, out=avg)
                np.sqrt(avg, out=avg)
            else:
                np.sqrt(v, out=avg)
            avg += f(eps)
            np.divide(d, avg, out=u)  # g / (√v̂ + ε)
            if momentum > 0:
                buf = state.setdefault("momentum_buffer", np.zeros_like(x))
                buf *= f(momentum)
                buf += u
                np.multiply(buf, f(-lr), out=u)
            else:
                u *= f(-lr)
            x += u


class Adagrad(Optimizer):
    """Adagrad: each coordinate's step shrinks with the sum of all its squared gradients so far.

    g ← ∇θ + λθ;  s ← s + g²;  θ ← θ − η/(1 + (t − 1)·δ) · g/(√s + ε)
    (η = lr, δ = lr_decay, λ = weight_decay, t = step; s starts at `initial_accumulator_value`.)
    Rarely-seen features keep large steps, frequent ones get small steps; since s only grows,
    the step sizes only shrink (the problem RMSprop's running average addresses).
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value))

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a group; its parameters' state (step 0, s filled with the initial value) is made now, as PyTorch does."""
        super().add_param_group(group)
        new = self.param_groups[-1]
        for p in new["params"]:
            self.state[p] = self._fresh_state(p.data, new)

    @staticmethod
    def _fresh_state(x: np.ndarray, group: dict[str, Any]) -> dict[str, Any]:
        return {"step": 0, "sum": np.full_like(x, group["initial_accumulator_value"])}

    nonnegative = ("lr_decay", "initial_accumulator_value", "eps")

    def _step_group(self, group: dict[str, Any]) -> None:
        lr, lr_decay, eps, weight_decay = group["lr"], group["lr_decay"], group["eps"], group["weight_decay"]
        for x, g, state in self._grads(group):
            if not state:  # a state loaded without this parameter's entry
                state.update(self._fresh_state(x, group))
            state["step"] += 1
            f = x.dtype.type
            d = l2_gradient(x, g, weight_decay, self._tmp(x, 0))
            clr = lr / (1 + (state["step"] - 1) * lr_decay)
            s, u = state["sum"], self._tmp(x, 1)
            np.multiply(d, d, out=u)
            s += u
            np.sqrt(s, out=u)
            u += f(eps)
            np.divide(d, u, out=u)
            u *= f(-clr)
            x += u


def _lerp(m: np.ndarray, d: np.ndarray, weight: float, u: np.ndarray) -> None:
    """m ← m + w·(d − m) in place, in PyTorch's two forms (the second is exact at w = 1); `u` is work space."""
    w = m.dtype.type(weight)
    np.subtract(d, m, out=u)
    if abs(w) < 0.5:
        u *= w
        m += u
    else:
        u *= 1 - w  # 1 − w in the array's dtype, as PyTorch computes it
        np.subtract(d, u, out=m)


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
        self.optimizer = _check_optimizer(type(self).__name__, optimizer)
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
        return {k: copy.copy(v) if isinstance(v, (list, dict)) else v
                for k, v in vars(self).items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what `state_dict` saved (keys this class does not know are ignored)."""
        known = self.state_dict()
        for key, value in state_dict.items():
            if key in known:
                setattr(self, key, copy.copy(value) if isinstance(value, (list, dict)) else value)


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


class MultiStepLR(LRScheduler):
    """Multiply the learning rate by `gamma` at each milestone: η_e = η₀·γ^(number of milestones ≤ e).

    The milestones are kept as a `Counter`, as PyTorch does, so one listed n times multiplies by γⁿ.
    """

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1, last_epoch: int = -1):
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        groups = self.optimizer.param_groups
        if self.last_epoch not in self.milestones:
            return [group["lr"] for group in groups]
        return [group["lr"] * self.gamma ** self.milestones[self.last_epoch] for group in groups]

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.milestones = Counter({int(k): n for k, n in self.milestones.items()})  # JSON made the keys strings


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by `gamma` every epoch: η_e = η₀·γᵉ."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        groups = self.optimizer.param_groups
        if self._is_initial:  # a resumed schedule must not take one more step
            return [group["lr"] for group in groups]
        return [group["lr"] * self.gamma for group in groups]


class LinearLR(LRScheduler):
    """Scale the learning rate by a factor going linearly from `start_factor` to `end_factor` in `total_iters` epochs.

    η_e = η₀·(s + (t − s)·min(e, T)/T), the usual warm-up (s = start_factor, t = end_factor, T = total_iters).
    Like PyTorch it sets η₀·s when created and then multiplies the current lr by the ratio of
    successive factors, so it can be chained with a change made by hand.
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        if not 0 < start_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1], got {start_factor}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: end_factor must be in [0, 1], got {end_factor}")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        groups, e, s, t = self.optimizer.param_groups, self.last_epoch, self.start_factor, self.end_factor
        if e == 0:
            return [group["lr"] * s for group in groups]
        if self._is_initial or e > self.total_iters:
            return [group["lr"] for group in groups]
        ratio = 1.0 + (t - s) / (self.total_iters * s + (e - 1) * (t - s))  # factor(e) / factor(e − 1)
        return [group["lr"] * ratio for group in groups]


class LambdaLR(LRScheduler):
    """η_e = η₀·λ(e) for a function λ you give (one for all groups, or a list with one per group)."""

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | list[Callable[[int], float]],
                 last_epoch: int = -1):
        groups = _check_optimizer("LambdaLR", optimizer).param_groups
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != len(groups):
                raise ValueError(f"LambdaLR: expected {len(groups)} lr_lambdas (one per parameter group), "
                                 f"got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * len(groups)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * fn(self.last_epoch) for fn, base in zip(self.lr_lambdas, self.base_lrs)]

    def state_dict(self) -> dict[str, Any]:
        """As the base class, but "lr_lambdas" holds None for a plain function (code is not state)
        and a copy of the attributes of a callable object."""
        state = {k: v for k, v in super().state_dict().items() if k != "lr_lambdas"}
        state["lr_lambdas"] = [None if isinstance(fn, FunctionType) else dict(vars(fn)) for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "lr_lambdas"})
        for fn, attributes in zip(self.lr_lambdas, state_dict.get("lr_lambdas", [])):
            if attributes is not None:
                vars(fn).update(attributes)


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin): the lr rises from max_lr/div_factor to max_lr, then falls far below.

    Meant to be stepped after every batch, `total_steps` times (or `epochs`·`steps_per_epoch`):
    phase 1 (the first `pct_start` of the steps) anneals the lr from η₀ = max_lr/div_factor up to
    max_lr, phase 2 from max_lr down to η₀/final_div_factor (`three_phase`: back to η₀, then a
    third phase down to the minimum). Each phase anneals with a half cosine, a + (b − a)(1 − cos πp)/2,
    or linearly. With `cycle_momentum` the momentum (β₁ for Adam-style optimizers) moves the other
    way, from max_momentum down to base_momentum and back. It sets the starting values when created.
    """

    def __init__(self, optimizer: Optimizer, max_lr: float | list[float], total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float | list[float] = 0.85, max_momentum: float | list[float] = 0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1):
        groups = _check_optimizer("OneCycleLR", optimizer).param_groups
        if total_steps is not None:
            if not isinstance(total_steps, int) or total_steps <= 0:
                raise ValueError(f"OneCycleLR: expected a positive integer total_steps, got {total_steps}")
            self.total_steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            for name, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
                if not isinstance(value, int) or value <= 0:
                    raise ValueError(f"OneCycleLR: expected a positive integer {name}, got {value}")
            self.total_steps = epochs * steps_per_epoch
        else:
            raise ValueError("OneCycleLR: give either total_steps or both epochs and steps_per_epoch")
        if not isinstance(pct_start, float) or not 0 <= pct_start <= 1:
            raise ValueError(f"OneCycleLR: expected a float pct_start between 0 and 1, got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        up, last = float(pct_start * self.total_steps) - 1, self.total_steps - 1
        if three_phase:
            self._schedule_phases = [
                _phase(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                _phase(float(2 * pct_start * self.total_steps) - 2, "max_lr", "initial_lr", "base_momentum",
                       "max_momentum"),
                _phase(last, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            self._schedule_phases = [
                _phase(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                _phase(last, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        self._anneal_func_type = anneal_strategy
        max_lrs = _per_group("OneCycleLR", "max_lr", groups, max_lr)
        if last_epoch == -1:
            for group, top in zip(groups, max_lrs):
                group["initial_lr"] = top / div_factor
                group["max_lr"] = top
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(f"OneCycleLR: cycle_momentum=True needs an optimizer with a momentum or betas "
                                 f"option, and {type(optimizer).__name__} has neither (pass cycle_momentum=False)")
            self.use_beta1 = "betas" in optimizer.defaults
            highs = _per_group("OneCycleLR", "max_momentum", groups, max_momentum)
            lows = _per_group("OneCycleLR", "base_momentum", groups, base_momentum)
            if last_epoch == -1:  # the first step (in LRScheduler.__init__) sets the momentum to max_momentum
                for group, high, low in zip(groups, highs, lows):
                    group["max_momentum"] = high
                    group["base_momentum"] = low
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group: dict[str, Any], value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self._anneal_func_type == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {step} times; the schedule has total_steps="
                             f"{self.total_steps} (make a new scheduler to go on)")
        lrs = []
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end = phase["end_step"]
                if step <= end or i == len(self._schedule_phases) - 1:
                    pct = (step - start) / (end - start)
                    lrs.append(self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct))
                    if self.cycle_momentum:
                        momentum = self._anneal(group[phase["start_momentum"]], group[phase["end_momentum"]], pct)
                        self._set_momentum(group, momentum)
                    break
                start = end
        return lrs


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by `factor` when a metric has stopped improving for more than `patience` epochs.

    `step(metric)` takes the value to watch (a validation loss, or an accuracy with mode='max').
    A value counts as better than the best so far when it beats it by the threshold: in mode
    'min', x < best·(1 − threshold) ('rel') or x < best − threshold ('abs'); mode 'max' mirrors
    it. After a reduction, `cooldown` epochs pass before bad epochs count again. The lr never
    drops below `min_lr`, and a reduction smaller than `eps` is skipped.
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float | list[float] = 0, eps: float = 1e-8):
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1.0, got {factor}")
        self.factor = factor
        self.optimizer = _check_optimizer("ReduceLROnPlateau", optimizer)
        groups = optimizer.param_groups
        self.default_min_lr = None if isinstance(min_lr, (list, tuple)) else min_lr
        self.min_lrs = _per_group("ReduceLROnPlateau", "min_lr", groups, min_lr)
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in groups]
        self._init_is_better(mode, threshold, threshold_mode)
        self._reset()

    def _init_is_better(self, mode: str, threshold: float, threshold_mode: str) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode

    def _reset(self) -> None:
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min":
            return a < (best * (1.0 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold)
        return a > (best * (self.threshold + 1.0) if self.threshold_mode == "rel" else best + self.threshold)

    def step(self, metrics: float) -> None:  # type: ignore[override]
        """Record one epoch's metric (a number or a one-element Tensor) and reduce the lr if it has stalled."""
        current = float(metrics)
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during the cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(self.min_lrs) != len(groups):
            if self.default_min_lr is None:
                raise RuntimeError(f"ReduceLROnPlateau: the optimizer has {len(groups)} parameter groups, "
                                   f"min_lr has {len(self.min_lrs)} values (set `min_lrs` to one per group)")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, min_lr)
            if old - new > self.eps:
                group["lr"] = new

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._init_is_better(self.mode, self.threshold, self.threshold_mode)


def _phase(end_step: float, start_lr: str, end_lr: str, start_momentum: str, end_momentum: str) -> dict[str, Any]:
    """One phase of OneCycleLR: the step it ends at, and the group keys of its start and end values."""
    return dict(end_step=end_step, start_lr=start_lr, end_lr=end_lr, start_momentum=start_momentum,
                end_momentum=end_momentum)


def _check_optimizer(who: str, optimizer: Any) -> Optimizer:
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{who}: {type(optimizer).__name__} is not an Optimizer")
    return optimizer


def _per_group(who: str, name: str, groups: list[dict[str, Any]], value: Any) -> list[Any]:
    """`value` repeated for each group, or a list/tuple checked to hold one value per group."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(groups):
            raise ValueError(f"{who}: {name} has {len(value)} values, the optimizer {len(groups)} parameter groups")
        return list(value)
    return [value] * len(groups)
