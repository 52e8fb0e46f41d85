"""What a network looks at, measured through gradients with respect to its *input*.

Training differentiates the loss with respect to the weights; the same engine
differentiates anything with respect to the image just as well
(`autograd.grad(output, [x])` with `x = Tensor(images, requires_grad=True)`).
Three measurements of the report come from that one call:

    saliency            |∂ logit of the true class / ∂ pixel|: which pixels the prediction is sensitive to
    receptive field     ∂ one conv2 unit / ∂ pixel: the pixels that unit actually depends on, against the
                        box its layers allow (the theoretical receptive field, `receptive_box`)
    FGSM                x + ε · sign(∂ loss / ∂ x): the worst small step per pixel, and the accuracy after it

Every function sets eval mode for the measurement and restores the mode after,
and uses `grad`, which returns gradients without accumulating any into the
parameters, so a probe leaves the model exactly as it found it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .. import nn
from ..autograd import grad, no_grad
from ..data.datasets import to_float_images
from ..nn import functional
from ..tensor import Tensor

FGSM_EPSILONS = (0.0, 0.02, 0.05, 0.1)
PROBE_BATCH = 500


def input_gradient(model: nn.Module, images: np.ndarray, objective: Callable[[Tensor], Tensor]) -> np.ndarray:
    """∂ objective(model(x)) / ∂ x for a float batch `images` (N, C, H, W), in eval mode.

    `objective` maps the model's output to a scalar; when it is a sum of
    per-image terms (every one below is), the gradient's row n is the gradient
    of image n's own term, since in eval mode no image affects another's output.
    """
    was_training = model.training
    model.eval()
    try:
        x = Tensor(np.ascontiguousarray(images, dtype=np.float32), requires_grad=True)
        (g,) = grad(objective(model(x)), [x])
    finally:
        model.train(was_training)
    return g.numpy()


def saliency(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """|∂ logit of the true class / ∂ pixel| per image: (N, H, W) from float images (N, 1, H, W) in [0, 1].

    For a linear model, logits = W x + b, this is |W[label]|: the row of
    weights of the true class (the unit tests check exactly that).
    """

    def true_logit(logits: Tensor) -> Tensor:  # Σ_n logits[n, label_n], as a product with a one-hot mask
        mask = np.zeros(logits.shape, dtype=np.float32)
        mask[np.arange(len(labels)), labels] = 1
        return (logits * Tensor(mask)).sum()

    return np.abs(input_gradient(model, images, true_logit)).sum(axis=1)


def fgsm(model: nn.Module, images: np.ndarray, labels: np.ndarray, epsilon: float) -> np.ndarray:
    """The fast gradient sign method: clip(x + ε · sign(∂ loss / ∂ x), 0, 1), per image, pixels in [0, 1].

    One step of size ε in every pixel, each in the direction that raises that
    image's cross-entropy: the largest first-order increase of the loss among
    perturbations with max |δ| ≤ ε. At ε = 0 the images come back unchanged.
    """
    if epsilon < 0:
        raise ValueError(f"fgsm: epsilon must be non-negative, got {epsilon}")
    if epsilon == 0:
        return images.astype(np.float32, copy=True)
    target = Tensor(np.asarray(labels, dtype=np.int64))
    g = input_gradient(model, images, lambda logits: functional.cross_entropy(logits, target, reduction="sum"))
    return np.clip(images + np.float32(epsilon) * np.sign(g), 0, 1).astype(np.float32)


def predict(model: nn.Module, images: np.ndarray) -> np.ndarray:
    """The predicted class per float image, in eval mode."""
    was_training = model.training
    model.eval()
    with no_grad():
        logits = np.concatenate([model(Tensor(images[i:i + PROBE_BATCH])).numpy()
                                 for i in range(0, len(images), PROBE_BATCH)])
    model.train(was_training)
    return logits.argmax(axis=1)


def fgsm_accuracy(model: nn.Module, images_u8: np.ndarray, labels: np.ndarray,
                  epsilons: Sequence[float] = FGSM_EPSILONS) -> list[float]:
    """Test accuracy on FGSM images for each ε (ε = 0: the clean accuracy), in batches of PROBE_BATCH."""
    correct = np.zeros(len(epsilons))
    for i in range(0, len(labels), PROBE_BATCH):
        x, y = to_float_images(images_u8[i:i + PROBE_BATCH]), labels[i:i + PROBE_BATCH]
        for k, eps in enumerate(epsilons):
            correct[k] += (predict(model, fgsm(model, x, y, eps)) == y).sum()
    return [float(c / max(len(labels), 1)) for c in correct]


# ---------------------------------------------------------------- receptive fields
def receptive_box(layers: Sequence[nn.Module], row: int, col: int, size: tuple[int, int]) -> tuple[slice, slice]:
    """The input pixels that output (row, col) of a stack of conv and pooling layers can depend on.

    Walked back layer by layer: output indices [a, b] of a layer with kernel k,
    stride s, padding p and dilation d read input indices [a·s − p, b·s − p + d·(k − 1)].
    Element-wise layers (ReLU) pass the range through. The result is clipped to
    the input of `size` (H, W); before clipping its width is the theoretical
    receptive field, `receptive_field_size`.
    """
    (r0, r1), (c0, c1) = _walk_back(layers, (row, row), (col, col))
    h, w = size
    return slice(max(r0, 0), min(r1, h - 1) + 1), slice(max(c0, 0), min(c1, w - 1) + 1)


def receptive_field_size(layers: Sequence[nn.Module]) -> tuple[int, int]:
    """The theoretical receptive field (height, width) of one output unit of a stack, borders ignored."""
    (r0, r1), (c0, c1) = _walk_back(layers, (0, 0), (0, 0))
    return r1 - r0 + 1, c1 - c0 + 1


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _walk_back(layers: Sequence[nn.Module], rows: tuple[int, int], cols: tuple[int, int]
               ) -> tuple[tuple[int, int], tuple[int, int]]:
    for layer in reversed(list(layers)):
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            k, s, p = _pair(layer.kernel_size), _pair(layer.stride or layer.kernel_size), _pair(layer.padding)
            d = _pair(getattr(layer, "dilation", 1))
            rows = (rows[0] * s[0] - p[0], rows[1] * s[0] - p[0] + d[0] * (k[0] - 1))
            cols = (cols[0] * s[1] - p[1], cols[1] * s[1] - p[1] + d[1] * (k[1] - 1))
        elif not isinstance(layer, (nn.ReLU, nn.Identity)):
            raise TypeError(f"receptive_box: {type(layer).__name__} is not a Conv2d, pooling or element-wise layer")
    return rows, cols


def unit_gradient(layers: Sequence[nn.Module], images: np.ndarray, channel: int, row: int, col: int) -> np.ndarray:
    """Mean over images of |∂ unit / ∂ pixel| for one output unit (channel, row, col) of a stack: (H, W).

    The measured ("effective") receptive field: where the unit's value
    actually changes with the input. It is exactly zero outside
    `receptive_box`, and within it usually concentrated near the centre.
    """
    stack = nn.Sequential(*layers)
    g = input_gradient(stack, images, lambda out: out[:, channel, row, col].sum())
    return np.abs(g).sum(axis=1).mean(axis=0)


def mass_area(weights: np.ndarray, share: float) -> int:
    """The fewest pixels of a non-negative map that hold `share` of its total (e.g. 0.5: half the gradient)."""
    flat = np.sort(weights.ravel().astype(np.float64))[::-1]
    cumulative = np.cumsum(flat)
    if cumulative[-1] <= 0:
        return 0
    return int(np.searchsorted(cumulative, share * cumulative[-1]) + 1)
