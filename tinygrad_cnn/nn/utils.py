"""`torch.nn.utils`' gradient clipping and the parameters ↔ one-vector conversion.

    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)   # ‖all gradients‖ ≤ 1
    optimizer.step()

Clipping by norm rescales every gradient by one factor, so the update keeps its
direction and only its length is capped::

    total = ‖(‖g₁‖, ‖g₂‖, ...)‖ₚ          (= the p-norm of all gradients as one vector)
    gᵢ   ← gᵢ · min(1, max_norm / (total + 1e-6))

The gradients get new arrays, never an in-place update (which PyTorch makes): a
`.grad` may share its array with another tensor (one a user assigned, or one
that `backward(create_graph=True)` left as a graph node's output), and writing
into it would change that one too. optim.py's `zero_grad` follows the same rule.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..tensor import Tensor

__all__ = [
    "clip_grad_norm_",
    "clip_grad_value_",
    "clip_grads_with_norm_",
    "get_total_norm",
    "parameters_to_vector",
    "vector_to_parameters",
]

TensorOrTensors = Tensor | Iterable[Tensor]


def _tensor_list(tensors: TensorOrTensors, fn: str) -> list[Tensor]:
    """A single Tensor or an iterable of them, as a list (a generator is read once)."""
    items = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    for t in items:
        if not isinstance(t, Tensor):
            raise TypeError(f"{fn}: expected Tensors, got {type(t).__name__}")
    return items


def _vector_norm(x: np.ndarray, p: float) -> np.ndarray:
    """‖x‖ₚ of all elements, in x's dtype: max |x| for p = inf, min |x| for -inf, the nonzero count for 0."""
    return np.asarray(np.linalg.norm(x.reshape(-1), ord=p))


def get_total_norm(tensors: TensorOrTensors, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach: bool | None = None) -> Tensor:
    """The p-norm of all `tensors` taken as one vector: the norm of their norms (`foreach` is accepted, unused)."""
    arrays = [t.data for t in _tensor_list(tensors, "get_total_norm")]
    p = float(norm_type)
    if not arrays:
        return Tensor(np.zeros((), dtype=np.float32))
    norms = [_vector_norm(a, p) for a in arrays]
    total = _vector_norm(np.stack(norms), p)  # the dtypes meet at the widest
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"The total norm of order {p} for gradients from `parameters` is non-finite, so it "
                           "cannot be clipped. To disable this error and scale the gradients by the non-finite "
                           "norm anyway, set `error_if_nonfinite=False`")
    return Tensor(total)


def clip_grads_with_norm_(parameters: TensorOrTensors, max_norm: float, total_norm: Tensor | float,
                          foreach: bool | None = None) -> None:
    """Scale every gradient by min(1, max_norm / (total_norm + 1e-6)), with a total computed beforehand.

    The factor is applied even when it is 1 (as PyTorch, which avoids the branch);
    each gradient keeps its dtype.
    """
    grads_of = [p for p in _tensor_list(parameters, "clip_grads_with_norm_") if p.grad is not None]
    if not grads_of:
        return
    total = total_norm.data if isinstance(total_norm, Tensor) else np.asarray(total_norm)
    coefficient = np.minimum(float(max_norm) / (total + 1e-6), 1.0)
    for p in grads_of:
        g = p.grad.data
        p.grad = Tensor(g * coefficient.astype(g.dtype))


def clip_grad_norm_(parameters: TensorOrTensors, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Rescale the gradients so that their total p-norm is at most `max_norm`; return the norm before clipping.

    `parameters` is one Tensor or an iterable of them; those without a gradient
    are skipped. ``norm_type=float('inf')`` (or 'inf') takes the largest
    |gradient element|. A nan or inf total raises with ``error_if_nonfinite=True``;
    otherwise it scales the gradients by nan (or 0), as PyTorch.
    """
    parameters = _tensor_list(parameters, "clip_grad_norm_")
    grads = [p.grad for p in parameters if p.grad is not None]
    total = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(parameters, max_norm, total, foreach)
    return total


def clip_grad_value_(parameters: TensorOrTensors, clip_value: float, foreach: bool | None = None) -> None:
    """Clamp every gradient element to [-clip_value, clip_value]."""
    c = float(clip_value)
    for p in _tensor_list(parameters, "clip_grad_value_"):
        if p.grad is not None:
            p.grad = Tensor(np.clip(p.grad.data, -c, c))


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and joined into one 1-D Tensor (differentiable: reshape + cat)."""
    params = _tensor_list(parameters, "parameters_to_vector")
    if not params:
        raise ValueError("parameters_to_vector: got no parameters")
    return Tensor.cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of the 1-D `vec` into the parameters, in order: the inverse of `parameters_to_vector`.

    Each parameter gets a new array in its own dtype. (PyTorch makes each one a
    view of `vec`, taking vec's dtype; a copy keeps a later in-place update of one
    from showing in the other.) `vec` must hold exactly as many elements as the parameters.
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected a Tensor, got {type(vec).__name__}")
    params = _tensor_list(parameters, "vector_to_parameters")
    needed = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.numel() != needed:
        raise ValueError(f"vector_to_parameters: expected a 1-D vector of {needed} elements (one per parameter "
                         f"element), got shape {vec.shape}")
    start = 0
    for p in params:
        p.data = vec.data[start:start + p.numel()].reshape(p.shape).astype(p.dtype)
        start += p.numel()
