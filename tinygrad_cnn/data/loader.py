"""`DataLoader`: mini-batches by indexing two arrays, with reproducible, resumable shuffling.

A batch is one fancy-index of the dataset's `images` and `labels` arrays and one
uint8 → float32 conversion: no Python loop over samples, so the loader costs
a few percent of a training step, not most of it.

Shuffling, epoch by epoch::

    seed ──▶ Generator ──iter()──▶ permutation₁ ──iter()──▶ permutation₂ ──▶ ...

The generator is seeded once, and each `iter()` (each epoch) draws a fresh
permutation from it, so epoch k's order depends only on the seed and k.
`seed=None` draws from tinygrad_cnn's global generator instead (the one
`Tensor.manual_seed` reseeds), like PyTorch's default.

Resuming: `state_dict()` records the generator's state, the state the current
epoch's permutation was drawn from, and how many of its batches were handed
out. After `load_state_dict()`, the next `iter()` replays that permutation and
skips the batches already seen, so a run resumed from a checkpoint (even one
taken mid-epoch) sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..tensor import Tensor, default_generator
from .datasets import to_float_images

Batch = tuple[Tensor, Tensor]


def _arrays(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """The dataset's (images, labels) arrays, checked."""
    images, labels = getattr(dataset, "images", None), getattr(dataset, "labels", None)
    if images is None or labels is None:
        raise TypeError(
            f"DataLoader: the dataset must expose `images` and `labels` arrays, {type(dataset).__name__} does not "
            "(wrap arrays in data.TensorDataset(images, labels))"
        )
    images = images.data if isinstance(images, Tensor) else np.asarray(images)
    labels = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    if images.ndim < 1 or len(images) != len(labels):
        raise ValueError(f"DataLoader: images {images.shape} and labels {labels.shape} differ in length")
    return images, labels


def _permutation_from(state: dict[str, Any], n: int) -> np.ndarray:
    """The permutation a generator in `state` would draw, without touching any live generator."""
    bit_generator = getattr(np.random, str(state.get("bit_generator")), None)
    if not (isinstance(bit_generator, type) and issubclass(bit_generator, np.random.BitGenerator)):
        raise ValueError(f"DataLoader.load_state_dict: unknown bit generator {state.get('bit_generator')!r}")
    bits = bit_generator()
    bits.state = state
    return np.random.Generator(bits).permutation(n)


class DataLoader:
    """Iterate over `dataset` in batches of `(images, labels)` Tensors.

    images: float32; uint8 pixels are scaled to [0, 1] and an N×H×W stack gains
    a channel axis (Fashion-MNIST gives B×1×28×28); float data keeps its shape.
    labels: int64, shape (B,). `dataset` is anything with `images` and `labels`
    arrays (FashionMNIST, MNIST, TensorDataset, or your own).
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 64,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | None = None,
    ):
        _arrays(dataset)
        try:
            batch_size = operator.index(batch_size)
        except TypeError:
            raise TypeError(f"DataLoader: batch_size must be an int, got {type(batch_size).__name__}") from None
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be at least 1, got {batch_size}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)
        self._epoch_state: dict[str, Any] | None = None  # generator state the current permutation came from
        self._position = 0  # batches of the current epoch handed out so far
        self._resume: tuple[dict[str, Any] | None, int] | None = None
        self._epoch_id = 0  # which iter() is current; an abandoned one stops updating the position

    def __len__(self) -> int:
        """The number of batches per epoch."""
        n = len(_arrays(self.dataset)[1])
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        """Start an epoch: draw its permutation now (or replay a loaded one) and return its batches."""
        images, labels = _arrays(self.dataset)
        n = len(labels)
        start = 0
        if self._resume is not None:
            state, start = self._resume
            self._resume = None
            order = None if state is None else _permutation_from(state, n)
        elif self.shuffle:
            rng = self._rng if self._rng is not None else default_generator()
            state = copy.deepcopy(rng.bit_generator.state)
            order = rng.permutation(n)
        else:
            state, order = None, None
        self._epoch_id += 1
        self._epoch_state, self._position = state, start
        return self._batches(images, labels, order, start, self._epoch_id)

    def _batches(
        self, images: np.ndarray, labels: np.ndarray, order: np.ndarray | None, start: int, epoch_id: int
    ) -> Iterator[Batch]:
        n, bs = len(labels), self.batch_size
        for b in range(start, len(self)):
            rows = slice(b * bs, min(b * bs + bs, n)) if order is None else order[b * bs : b * bs + bs]
            x, y = images[rows], labels[rows].astype(np.int64)
            if epoch_id == self._epoch_id:
                self._position = b + 1  # counted before the yield: a checkpoint taken now has seen batch b
            yield Tensor._wrap(to_float_images(x)), Tensor._wrap(y)
        if epoch_id == self._epoch_id:
            self._epoch_state, self._position = None, 0

    def state_dict(self) -> dict[str, Any]:
        """Where the loader is: enough to make a resumed run see the same batches in the same order.

        With `seed=None` the loader shares the global generator; to resume the
        epochs after the current one exactly, save and restore that generator too
        (its state is `tinygrad_cnn.tensor` module's `default_generator().bit_generator.state`).
        """
        mid_epoch = self._position > 0
        return {
            "rng_state": None if self._rng is None else copy.deepcopy(self._rng.bit_generator.state),
            "epoch_rng_state": copy.deepcopy(self._epoch_state) if mid_epoch else None,
            "batch": self._position,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state` (from `state_dict()`): the next `iter()` resumes the saved epoch."""
        missing = {"rng_state", "epoch_rng_state", "batch"} - set(state)
        if missing:
            raise KeyError(f"DataLoader.load_state_dict: missing keys {sorted(missing)}")
        rng_state, epoch_state, batch = state["rng_state"], state["epoch_rng_state"], int(state["batch"])
        if (rng_state is None) != (self._rng is None):
            made, now = ("a seeded", "seed=None") if self._rng is None else ("a seed=None", "a seed")
            raise ValueError(f"DataLoader.load_state_dict: state comes from {made} loader, this one has {now}")
        if batch > 0 and self.shuffle and epoch_state is None:
            raise ValueError("DataLoader.load_state_dict: mid-epoch state of a shuffling loader lacks epoch_rng_state")
        if self._rng is not None:
            self._rng.bit_generator.state = copy.deepcopy(rng_state)
        self._resume = (copy.deepcopy(epoch_state) if self.shuffle else None, batch) if batch > 0 else None
        # until the next iter() starts, state_dict() says where the loaded run stands (a checkpoint taken
        # before the first batch keeps the position instead of restarting the epoch)
        self._epoch_state, self._position = (self._resume if self._resume is not None else (None, 0))

    def __repr__(self) -> str:
        return (
            f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, seed={self.seed})"
        )
