"""Forward-mode AD with dual tensors, as `torch.autograd.forward_ad`.

Reverse mode asks "how does the output change with each input?" and answers
for all inputs at once, from one output. Forward mode asks "how does
everything change if the input moves in direction t?" and answers for all
outputs at once, in one pass that runs *with* the forward pass: each value x
carries a tangent ẋ, and every primitive maps (x, ẋ) to (y, ẏ = J·ẋ) by its
`jvp` rule, beside its `forward` and `backward` in ops.py. That is arithmetic
on dual numbers x + ẋε with ε² = 0::

    (a + ȧε) · (b + ḃε) = ab + (ȧb + aḃ)ε        the product rule, for free
    sin(a + ȧε)         = sin a + (cos a · ȧ)ε

    with forward_ad.dual_level():
        x = forward_ad.make_dual(primal, tangent)
        y = f(x)
        y_value, jvp = forward_ad.unpack_dual(y)    # f(primal), J_f(primal) · tangent

Outside a dual level nothing changes: `Function.apply` tests one flag.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from . import autograd
from .tensor import Tensor


class dual_level:
    """The `with` block inside which dual tensors carry tangents; leaving it forgets them all."""

    def __enter__(self) -> None:
        autograd.set_dual_level(True)

    def __exit__(self, *exc: object) -> None:
        autograd.set_dual_level(False)


class UnpackedDualTensor(NamedTuple):
    """What `unpack_dual` returns: the value and its tangent (None when it has none)."""

    primal: Tensor
    tangent: Tensor | None


def make_dual(tensor: Tensor, tangent: Any) -> Tensor:
    """A tensor with `tensor`'s value (and place in the reverse-mode graph) that carries `tangent`."""
    if not autograd.is_dual_level_open():
        raise RuntimeError("make_dual: call it inside `with forward_ad.dual_level():`")
    if not isinstance(tangent, Tensor):
        tangent = Tensor(np.asarray(tangent, dtype=tensor.dtype))
    if tensor.dtype.kind != "f":
        raise TypeError(f"make_dual: only floating-point tensors have tangents, this one is {tensor.dtype}")
    if tangent.shape != tensor.shape:
        raise ValueError(f"make_dual: the tangent has shape {tangent.shape}, the tensor {tensor.shape}")
    if tangent.dtype != tensor.dtype:
        raise TypeError(f"make_dual: the tangent is {tangent.dtype}, the tensor {tensor.dtype}")
    dual = tensor.reshape(tensor.shape)  # a new node: the tangent belongs to it, not to `tensor`
    autograd.set_tangent(dual, tangent)
    return dual


def unpack_dual(tensor: Tensor) -> UnpackedDualTensor:
    """(primal, tangent) of a tensor: the tangent is J·t for everything computed from a dual, None otherwise.

    The primal is the tensor itself (PyTorch returns a view of it without the tangent):
    ops on it inside the level still carry the tangent along.
    """
    return UnpackedDualTensor(tensor, autograd.tangent_of(tensor))
