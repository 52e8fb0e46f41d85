"""Embedding: a lookup table from integer ids to learned vectors (`torch.nn.Embedding`).

    weight: (num_embeddings, embedding_dim)        input: integer ids of any shape (*)
    output: weight[input], of shape (*, embedding_dim)

A lookup is a gather, so the gradient is its adjoint, a scatter-add: row i of
dweight sums the output gradients of every position whose id is i (an id seen
twice gets both). It equals ``one_hot(input) @ weight`` without building the
one-hot matrix. Both directions are `Tensor` indexing (`GatherFn` and its
backward `ScatterAddFn`), so second derivatives need nothing more.

`padding_idx` names an id whose row stays fixed: zeroed at initialisation and
given no gradient, as in PyTorch, so that padding positions of a batch of
sequences of unequal length neither train nor move anything.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .. import autograd
from ..tensor import Tensor
from . import init
from .module import Module
from .parameter import Parameter


def _padding_index(padding_idx: int | None, num_embeddings: int, fn: str) -> int | None:
    """A negative padding_idx counts from the end, as in PyTorch; anything outside the table is an error."""
    if padding_idx is None:
        return None
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, numbers.Integral):
        raise TypeError(f"{fn}: padding_idx must be an int or None, got {padding_idx!r}")
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"{fn}: padding_idx must be within num_embeddings: got padding_idx={padding_idx} "
                         f"for num_embeddings={num_embeddings}")
    return int(padding_idx) % num_embeddings


def _indices(input: Any, num_embeddings: int) -> np.ndarray:
    """The ids as an integer array, each checked to lie in [0, num_embeddings)."""
    ids = input.data if isinstance(input, Tensor) else np.asarray(input)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"embedding: expected integer indices (int64 or int32, as PyTorch's Long or Int), "
                        f"but got dtype {ids.dtype}")
    if ids.size:
        low, high = ids.min(), ids.max()
        if low < 0 or high >= num_embeddings:
            bad = low if low < 0 else high
            raise IndexError(f"embedding: index {int(bad)} is out of range for num_embeddings={num_embeddings} "
                             f"(indices must be in [0, {num_embeddings}))")
    return ids


def _renorm_(weight: Tensor, ids: np.ndarray, max_norm: float, norm_type: float) -> None:
    """Rescale, in place and outside the graph, each looked-up row whose p-norm exceeds max_norm (to max_norm).

    PyTorch's ``embedding_renorm_``: the scale is max_norm / (norm + 1e-7), and only
    the rows of the ids in this call are touched.
    """
    rows = np.unique(ids)
    if not weight.data.flags.writeable:  # a read-only view (e.g. a broadcast): give the tensor its own array
        weight.data = np.array(weight.data)
    table = weight.data
    norms = np.linalg.norm(table[rows], ord=norm_type, axis=1)
    over = norms > max_norm
    table[rows[over]] *= (max_norm / (norms[over] + 1e-7))[:, None].astype(table.dtype)
    autograd.mark_modified(table)  # a graph that already read these rows must not backward through new values


def embedding(input: Any, weight: Tensor, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Look up rows of `weight` (num_embeddings, embedding_dim) for integer ids of any shape.

    Positions whose id is `padding_idx` get that row's value but pass no gradient
    to it. With `max_norm`, the looked-up rows whose `norm_type`-norm exceeds it
    are first rescaled in place, as PyTorch does.
    """
    if not isinstance(weight, Tensor) or weight.ndim != 2:
        raise ValueError(f"embedding: weight must be a 2-D Tensor (num_embeddings, embedding_dim), got "
                         f"{weight.shape if isinstance(weight, Tensor) else type(weight).__name__}")
    if scale_grad_by_freq:
        raise NotImplementedError("embedding: scale_grad_by_freq=True is not supported (gradients are summed "
                                  "per id, never divided by the id's frequency)")
    if sparse:
        raise NotImplementedError("embedding: sparse=True is not supported (tinygrad_cnn has dense gradients only)")
    num_embeddings, dim = weight.shape
    padding_idx = _padding_index(padding_idx, num_embeddings, "embedding")
    ids = _indices(input, num_embeddings)
    if max_norm is not None:
        _renorm_(weight, ids, max_norm, norm_type)
    flat = ids.reshape(-1)  # a 1-D gather: a 0-d id would otherwise make numpy return a view of the weight
    rows = weight[flat]
    if padding_idx is not None and rows.requires_grad:
        at_padding = flat == padding_idx
        if at_padding.any():  # the same values, but padding positions take them from a constant: no gradient
            rows = Tensor.where(at_padding[:, None], rows.detach(), rows)
    return rows.reshape(*ids.shape, dim)


class Embedding(Module):
    """A table of `num_embeddings` learned vectors of size `embedding_dim`, looked up by integer id.

    The weight is initialised from N(0, 1) (`default_generator()`, like every
    init), with the `padding_idx` row zeroed. `_weight` uses a given array as the
    table instead (shared, not copied, and not re-initialised); `_freeze=True`
    keeps it out of training. `from_pretrained` is the public way to do both.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                 sparse: bool = False, _weight: Any = None, _freeze: bool = False):
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = _padding_index(padding_idx, num_embeddings, "Embedding")
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        if _weight is None:
            self.weight = init.empty_parameter(num_embeddings, embedding_dim)
            self.reset_parameters()
        else:
            table = _weight.data if isinstance(_weight, Tensor) else np.asarray(_weight)
            if table.shape != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: shape of weight {table.shape} does not match num_embeddings and "
                                 f"embedding_dim {(num_embeddings, embedding_dim)}")
            self.weight = Parameter(table)
        self.weight.requires_grad = not _freeze  # a frozen weight stays a parameter (and in state_dict)
        self.sparse = sparse

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, input: Any) -> Tensor:
        return embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                         self.scale_grad_by_freq, self.sparse)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        if self.sparse is not False:
            s += ", sparse=True"
        return s

    @classmethod
    def from_pretrained(cls, embeddings: Any, freeze: bool = True, padding_idx: int | None = None,
                        max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False) -> Embedding:
        """An Embedding whose table is `embeddings` (2-D, used as is: not copied, padding row not zeroed).

        ``freeze=True`` (the default) sets ``weight.requires_grad = False``.
        """
        table = embeddings.data if isinstance(embeddings, Tensor) else np.asarray(embeddings)
        if table.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-dimensional, got shape {table.shape}")
        rows, cols = table.shape
        return cls(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse, _weight=table,
                   _freeze=freeze)
