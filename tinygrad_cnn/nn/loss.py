"""The losses of `functional` as modules, with `torch.nn`'s names, arguments, attributes and state_dict.

A loss module holds a loss's settings so a training loop reads like PyTorch's::

    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    loss = loss_fn(model(x), y)          # = F.cross_entropy(model(x), y, label_smoothing=0.1)

The math lives in `functional` (and its tests); a module only stores the
arguments and passes them on. Two things make that worth a class, as in PyTorch:
the constructor takes the deprecated ``size_average``/``reduce`` pair and turns
it into ``reduction`` once, with PyTorch's warning; and the per-class ``weight``
(and ``pos_weight``) is a *buffer*, so it appears in `state_dict` under PyTorch's
key, and a checkpoint of a model that holds its loss moves between the two.
"""

from __future__ import annotations

import sys
import warnings

from ..tensor import Tensor
from .functional import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
)
from .module import Module


def _legacy_reduction(size_average: bool | None, reduce: bool | None) -> str:
    """PyTorch's translation of the deprecated pair: reduce=False -> 'none', else size_average picks mean or sum.

    Either one given overrides `reduction` (as in PyTorch), with PyTorch's warning.
    """
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = ("mean" if size_average else "sum") if reduce else "none"
    frame, level = sys._getframe(), 1  # point the warning at the user's line, however deep the __init__ chain
    while frame is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{reduction}' instead.",
                  UserWarning, stacklevel=level)
    return reduction


class _Loss(Module):
    """Base of the losses: stores `reduction` ('mean', 'sum' or 'none'; checked when the loss is computed)."""

    def __init__(self, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean"):
        super().__init__()
        if size_average is not None or reduce is not None:
            reduction = _legacy_reduction(size_average, reduce)
        self.reduction = reduction


class _WeightedLoss(_Loss):
    """A loss with a per-class (or per-element) `weight`: a buffer, so `state_dict` holds it when given."""

    weight: Tensor | None

    def __init__(self, weight: Tensor | None = None, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class L1Loss(_Loss):
    """Mean absolute error |x - y| (`functional.l1_loss`)."""

    def __init__(self, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return l1_loss(input, target, reduction=self.reduction)


class MSELoss(_Loss):
    """Mean squared error (x - y)² (`functional.mse_loss`)."""

    def __init__(self, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return mse_loss(input, target, reduction=self.reduction)


class NLLLoss(_WeightedLoss):
    """-w[y]·log p[y] from log-probabilities and class indices (`functional.nll_loss`)."""

    def __init__(self, weight: Tensor | None = None, size_average: bool | None = None, ignore_index: int = -100,
                 reduce: bool | None = None, reduction: str = "mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    """Softmax cross-entropy of logits against class indices or probabilities (`functional.cross_entropy`)."""

    def __init__(self, weight: Tensor | None = None, size_average: bool | None = None, ignore_index: int = -100,
                 reduce: bool | None = None, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                             reduction=self.reduction, label_smoothing=self.label_smoothing)


class KLDivLoss(_Loss):
    """Pointwise KL divergence y·(ln y - x) of log-probabilities x from y (`functional.kl_div`).

    Use ``reduction='batchmean'`` for the KL divergence itself ('mean' divides by every element).
    """

    def __init__(self, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean",
                 log_target: bool = False):
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy of probabilities (`functional.binary_cross_entropy`); logits go to BCEWithLogitsLoss."""

    def __init__(self, weight: Tensor | None = None, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean"):
        super().__init__(weight, size_average, reduce, reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid and binary cross-entropy in one stable formula (`functional.binary_cross_entropy_with_logits`).

    `weight` rescales each element, `pos_weight` the positive term; both are buffers (state_dict keys).
    """

    weight: Tensor | None
    pos_weight: Tensor | None

    def __init__(self, weight: Tensor | None = None, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean", pos_weight: Tensor | None = None):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return binary_cross_entropy_with_logits(input, target, weight=self.weight, reduction=self.reduction,
                                                pos_weight=self.pos_weight)


class HuberLoss(_Loss):
    """½d² below δ, δ·(|d| - ½δ) beyond it (`functional.huber_loss`). No size_average/reduce: it came later."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class SmoothL1Loss(_Loss):
    """½d²/β below β, |d| - ½β beyond it (`functional.smooth_l1_loss`); β = 0 is L1Loss."""

    def __init__(self, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean",
                 beta: float = 1.0):
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)
