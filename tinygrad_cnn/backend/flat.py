"""Many small arrays as views into one flat array each: an optimizer's update in a handful of numpy passes.

An optimizer updates every parameter the same way. Done parameter by parameter,
Adam is a dozen numpy calls per parameter, each on a small array: in an MLP's
step that is ~80 calls, mostly call overhead. Lay the parameters' state end to
end in one array per kind (the first moments, the second moments, a gradient
buffer), and the same update is a dozen calls in all, on one long array. This is
the idea of PyTorch's `foreach` optimizers and apex's multi-tensor apply.

    parameters   w1 (256, 784)   b1 (256,)   w2 (128, 256)   ...
    exp_avg      [──── w1 ────────][─ b1 ─][──── w2 ───── ...]   one array; state["exp_avg"] of w1 is a view
    gradients    [──── w1 ────────][─ b1 ─][──── w2 ───── ...]   gathered each step (one copy per parameter)

The parameters themselves stay where they are (a model, a user or a checkpoint
may hold their arrays): each gets its slice of the update added in place.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

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
