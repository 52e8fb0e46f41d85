"""`einsum`: tensor contraction written as index equations, built from permute, reshape and matmul.

A lesson in contraction. Name every axis with a letter; the equation says which
letters survive::

    "ij,jk->ik"     C[i,k] = Σ_j A[i,j] · B[j,k]          matrix product
    "bij,bjk->bik"  the same for every b                  batched product
    "i,i->"         Σ_i a[i] · b[i]                        dot product
    "i,j->ij"       a[i] · b[j]                            outer product (nothing summed)
    "ii->i"         A[i,i]                                 the diagonal
    "ij->"          Σ_ij A[i,j]                            sum of everything
    "...ij->...ji"  transpose the last two axes, whatever comes before

The rule: multiply the operands elementwise over *all* letters, then sum over
every letter that is not in the output. Without "->", the output is the
letters that appear exactly once, in alphabetical order (after the `...` axes).

Nobody computes it that way (the full product of "ij,jk" has i·j·k terms in
memory). Two operands at a time, every letter has one of four roles::

    A[batch, a_only, summed]   B[batch, summed, b_only]
       batch   in both, and needed afterwards     kept, like the b of "bij,bjk"
       summed  in both, needed nowhere else       contracted by the product
       a_only, b_only                              kept, one side each

so that, after a permute and a reshape of each side, the pair is ONE batched
matrix product (batch, a_only, summed) @ (batch, summed, b_only). A letter
found in one operand only, and not in the output, is summed away before that.
Everything here is permute, reshape, sum, indexing and matmul, which all have
backward passes written in Tensor ops: einsum differentiates, twice, for free.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Union

import numpy as np

from .tensor import Tensor

Label = Union[str, int]  # a letter, or an axis of `...` (counted from the right: -1 is the last one)


def einsum(equation: str, *operands: Any) -> Tensor:
    """Sum of products over the letters of `equation`, as PyTorch's einsum: ``einsum("ij,jk->ik", a, b)``."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in operands]
    inputs, output = _parse(equation, tensors)
    sizes = _sizes(equation, inputs, tensors)
    terms = [_reduce_alone(*_diagonals(t, labels), inputs, i, output) for i, (t, labels) in
             enumerate(zip(tensors, inputs))]
    x, labels = terms[0]
    for i in range(1, len(terms)):
        later = set(output).union(*(inputs[j] for j in range(i + 1, len(inputs))))
        x, labels = _contract_pair(x, labels, *terms[i], later, sizes)
    extra = tuple(a for a, label in enumerate(labels) if label not in output)
    if extra:
        x, labels = x.sum(extra), [label for label in labels if label in output]
    x = _broadcast_to(x, labels, sizes)
    return x.permute(*[labels.index(label) for label in output]) if labels != output else x


def _parse(equation: str, tensors: Sequence[Tensor]) -> tuple[list[list[Label]], list[Label]]:
    """The labels of each operand and of the output; `...` becomes one int label per axis it covers."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(tensors):
        raise ValueError(f"einsum: the equation {equation!r} has {len(terms)} operand(s), "
                         f"but {len(tensors)} tensor(s) were given")
    inputs = [_labels(term, t.ndim, i, equation) for i, (term, t) in enumerate(zip(terms, tensors))]
    dots = max((-min((x for x in labels if isinstance(x, int)), default=0) for labels in inputs), default=0)
    if arrow:
        output = _labels(rhs, None, None, equation, dots)
        known = set().union(*inputs)
        for label in output:
            if isinstance(label, str) and label not in known:
                raise ValueError(f"einsum: the output letter {label!r} appears in no operand of {equation!r}")
        if len(set(output)) != len(output):
            raise ValueError(f"einsum: a letter repeats in the output of {equation!r}")
    else:
        letters = [x for labels in inputs for x in labels if isinstance(x, str)]
        output = list(range(-dots, 0)) + sorted(x for x in set(letters) if letters.count(x) == 1)
    return inputs, output


def _labels(term: str, ndim: int | None, index: int | None, equation: str, dots: int = 0) -> list[Label]:
    """'ab...c' → ['a', 'b', -k, ..., -1, 'c'] where `...` stands for the k axes the letters leave over."""
    where = f"operand {index}" if index is not None else "the output"
    head, ellipsis, tail = term.partition("...")
    if "." in head + tail:
        raise ValueError(f"einsum: {where} of {equation!r} has a '.' outside an ellipsis '...'")
    for c in head + tail:
        if not c.isascii() or not c.isalpha():
            raise ValueError(f"einsum: {c!r} in {where} of {equation!r} is not a letter (use a-z, A-Z)")
    letters = len(head) + len(tail)
    if ndim is None:
        k = dots if ellipsis else 0
    elif ellipsis:
        k = ndim - letters
        if k < 0:
            raise ValueError(f"einsum: {where} has {ndim} dimensions, fewer than the {letters} letters in {term!r}")
    else:
        k = 0
        if letters != ndim:
            raise ValueError(f"einsum: {where} has {ndim} dimensions, but its subscripts {term!r} name {letters}")
    return list(head) + list(range(-k, 0)) + list(tail)


def _sizes(equation: str, inputs: list[list[Label]], tensors: Sequence[Tensor]) -> dict[Label, int]:
    """Each label's size; sizes of 1 broadcast, any other disagreement is an error naming the letter."""
    sizes: dict[Label, int] = {}
    seen: dict[Label, int] = {}
    for i, (labels, t) in enumerate(zip(inputs, tensors)):
        for label, n in zip(labels, t.shape):
            if label in sizes and n != sizes[label] and 1 not in (n, sizes[label]):
                name = repr(label) if isinstance(label, str) else "an axis of '...'"
                raise ValueError(f"einsum: {name} has size {sizes[label]} in operand {seen[label]} but {n} "
                                 f"in operand {i} of {equation!r}")
            if label not in sizes or sizes[label] == 1:
                sizes[label], seen[label] = n, i
    return sizes


def _diagonals(x: Tensor, labels: list[Label]) -> tuple[Tensor, list[Label]]:
    """A letter repeated in one operand ("ii") takes the diagonal: both axes move last, then x[..., r, r]."""
    labels = list(labels)
    while len(set(labels)) != len(labels):
        label = next(x for x in labels if labels.count(x) > 1)
        p, q = [i for i, x in enumerate(labels) if x == label][:2]
        if x.shape[p] != x.shape[q]:
            raise ValueError(f"einsum: the repeated letter {label!r} has sizes {x.shape[p]} and {x.shape[q]}")
        rest = [i for i in range(x.ndim) if i not in (p, q)]
        r = np.arange(x.shape[p])
        x = x.permute(*rest, p, q)[(Ellipsis, r, r)]
        labels = [labels[i] for i in rest] + [label]
    return x, labels


def _reduce_alone(x: Tensor, labels: list[Label], inputs: list[list[Label]], i: int,
                  output: list[Label]) -> tuple[Tensor, list[Label]]:
    """Sum away the letters that no other operand and not the output has: nothing else will need them."""
    elsewhere = set(output).union(*(labels_j for j, labels_j in enumerate(inputs) if j != i))
    alone = tuple(a for a, label in enumerate(labels) if label not in elsewhere)
    if not alone:
        return x, labels
    return x.sum(alone), [label for label in labels if label in elsewhere]


def _contract_pair(a: Tensor, la: list[Label], b: Tensor, lb: list[Label], later: set,
                   sizes: dict[Label, int]) -> tuple[Tensor, list[Label]]:
    """A · B summed over the letters they share and nobody needs later: one batched matmul."""
    batch = [x for x in la if x in lb and x in later]
    summed = [x for x in la if x in lb and x not in later]
    a_only = [x for x in la if x not in lb]
    b_only = [x for x in lb if x not in la]
    size = {**dict(zip(la, a.shape)), **dict(zip(lb, b.shape)), **{x: sizes[x] for x in batch + summed}}
    a = _broadcast_to(a, la, size).permute(*[la.index(x) for x in batch + a_only + summed])
    b = _broadcast_to(b, lb, size).permute(*[lb.index(x) for x in batch + summed + b_only])
    n_batch, m, k, n = (math.prod(size[x] for x in group) for group in (batch, a_only, summed, b_only))
    product = a.reshape(n_batch, m, k) @ b.reshape(n_batch, k, n)
    out_labels = batch + a_only + b_only
    return product.reshape(*[size[x] for x in out_labels]), out_labels


def _broadcast_to(x: Tensor, labels: list[Label], sizes: dict[Label, int]) -> Tensor:
    """Expand the size-1 axes whose label has a larger size in `sizes` (broadcasting, as in numpy)."""
    shape = tuple(sizes[label] for label in labels)
    return x.expand(*shape) if shape != x.shape else x
