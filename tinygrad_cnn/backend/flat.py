"""Many small arrays as views into one flat array each: an optimizer's update in a handful of numpy passes.

An optimizer updates every parameter the same way. Done parameter by parameter,
Adam is a dozen numpy calls per parameter, each on a small array: in an MLP's
step that is ~80 calls, mostly call overhead. Lay the parameters' state end to
end in one array per kind (the first moments, the second moments, a gradient
buffer), and the same update is a dozen calls in all, on one long array. This is
the idea of PyTorch's `foreach` optimizers and apex's multi-tensor apply.

    parameters   w1 (256, 784)   b1 (256,)   w2 (128, 256)   ...
    exp_avg      [──── w1 ────────][─ b1 ─][──── w2 ───── ...]   one array; state["exp_avg"] of w1 is a view
    gradients    [──── w1 ────────][─ b1 ─][──── w2 ───── ...]   written there by backward (lent), else gathered

The parameters themselves stay where they are (a model, a user or a checkpoint
may hold their arrays): each gets its slice of the update added in place.

The gradients need not be gathered at all. `zero_grad` lends each parameter
its view of the flat gradient array (`lend`), and the next backward copies the
parameter's gradient there instead of into a new array of its own
(`gradient_array`, from autograd's `_accumulate`): `p.grad` is then a view into
the flat array, as with PyTorch's DDP and its `gradient_as_bucket_view`. On an
MLP's step that saved one copy of every gradient: Adam's part went 1.04-1.07 →
0.89-0.92 ms. A buffer is lent only while nothing outside the optimizer holds it
(`FlatArrays.unshared`): a gradient that a user kept from an earlier step is
never written over.

One difference remains, as with DDP's bucket views: a group's gradients share
one array underneath, and autograd's in-place check stamps the array that owns
the memory. A graph recorded from one `p.grad`, then an in-place op on another
parameter's `.grad`, then that graph's backward, raises "modified by an inplace
operation" (without lending it would not). Numbers are never wrong.
"""

from __future__ import annotations

import itertools
import math
import sys
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


class FlatArrays:
    """Named flat arrays laid out for a list of shapes, and each array's per-shape views."""

    def __init__(self, shapes: Sequence[tuple[int, ...]], dtype: np.dtype, names: Iterable[str]):
        sizes = [math.prod(shape) for shape in shapes]
        self.shapes = [tuple(shape) for shape in shapes]
        self.bounds = list(itertools.pairwise(itertools.accumulate(sizes, initial=0)))
        self.size = self.bounds[-1][1] if self.bounds else 0
        self.arrays = {name: np.zeros(self.size, dtype) for name in names}
        self.views = {name: self.split(array) for name, array in self.arrays.items()}

    def split(self, flat: np.ndarray) -> list[np.ndarray]:
        """`flat` cut into one view per shape."""
        return [flat[start:stop].reshape(shape) for (start, stop), shape in zip(self.bounds, self.shapes)]

    def unshared(self, name: str) -> bool:
        """Whether nothing outside this object holds the named array, one of its views or a view of those.

        A numpy view keeps the array that owns the memory in `.base` (a view of a
        view too), so the owner's reference count is the dict's, one per view of
        ours, and one per view made elsewhere; each view's count is our list's plus
        any holder elsewhere (a `p.grad` kept from an earlier step). Each is counted
        on an item fetched by subscript, whose own reference is the one added.
        """
        views = self.views[name]
        return sys.getrefcount(self.arrays[name]) == 2 + len(views) and all(
            sys.getrefcount(views[i]) == 2 for i in range(len(views)))


_lent: dict[int, tuple[weakref.ref, weakref.ref]] = {}  # id(tensor) -> (the tensor, its buffer), both weakly


def lend(tensors: Iterable[Any], buffers: Iterable[np.ndarray]) -> None:
    """Lend each tensor a buffer for its next gradient: backward writes it there, not into a new array.

    Both are held weakly: a loan never keeps a tensor or an optimizer's array alive
    (a dead tensor's loan is dropped here, the next time anything is lent).
    """
    for key in [key for key, (tensor, _) in _lent.items() if tensor() is None]:
        del _lent[key]
    for tensor, buffer in zip(tensors, buffers):
        _lent[id(tensor)] = (weakref.ref(tensor), weakref.ref(buffer))


def withdraw(tensors: Iterable[Any]) -> None:
    """Take back the buffers lent to these tensors and not yet borrowed."""
    for tensor in tensors:
        _lent.pop(id(tensor), None)


def gradient_array(tensor: Any) -> np.ndarray:
    """Where `tensor`'s new gradient is copied: the buffer lent to it (taken: once), else a new array like its data.

    A leaf's `.grad` must be an array of its own: Add hands one gradient to both
    sides, Expand a read-only view, `w.T` a transposed one (a new array keeps the
    tensor's layout: a transposed gradient slowed every optimizer pass 4x).
    """
    if _lent:
        tensor_ref, buffer_ref = _lent.pop(id(tensor), (None, None))
        buffer = buffer_ref() if tensor_ref is not None and tensor_ref() is tensor else None
        if buffer is not None and buffer.shape == tensor.data.shape and buffer.dtype == tensor.data.dtype:
            return buffer
    return np.empty_like(tensor.data, subok=False)
