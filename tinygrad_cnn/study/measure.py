"""What `tinygrad-cnn compare` measures without training: parameters and FLOPs per layer, filter statistics.

Parameters and FLOPs come from the model itself (its layers and the shapes a
forward pass gives them), so the tables follow any change to `models.py`; the
tests check them against closed forms. FLOPs count each multiply-add as 2 and
only the layers that multiply (Linear, Conv2d, LocallyConnected2d): bias adds,
ReLU and max-pool comparisons are a few percent at most and are left out.
A convolution with padding is counted as the dense im2col GEMM computes it
(padded zeros included): 2 · C_out · H_out · W_out · C_in · kh · kw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..tensor import Tensor

SHAPED = (nn.Linear, nn.Conv2d, nn.LocallyConnected2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)


@dataclass
class Layer:
    """One row of the parameter table: a layer, what it maps, what it holds and costs."""

    name: str  # qualified module name, e.g. features.0
    kind: str  # Linear, Conv2d, LocallyConnected2d, MaxPool2d
    in_shape: tuple[int, ...]  # per image, e.g. (1, 28, 28)
    out_shape: tuple[int, ...]
    params: int
    flops: int  # per image, forward, multiply-add = 2

    @property
    def dense_params(self) -> int:
        """Parameters of a dense layer mapping the same input to the same output (weights + biases)."""
        n_in, n_out = math.prod(self.in_shape), math.prod(self.out_shape)
        return n_in * n_out + n_out


def layer_flops(module: nn.Module, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
    """Forward FLOPs per image of one layer (0 for layers that do not multiply)."""
    if isinstance(module, nn.Linear):
        return 2 * module.in_features * module.out_features
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return 2 * math.prod(out_shape) * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.LocallyConnected2d):
        kh, kw = module.kernel_size
        return 2 * math.prod(out_shape) * module.in_channels * kh * kw
    return 0


def layer_table(model: nn.Module, in_shape: tuple[int, ...] = (1, 28, 28)) -> list[Layer]:
    """The model's layers with parameters or a change of shape (Linear, conv, LC, pooling), in forward order.

    Shapes come from pushing one zero image through the leaf modules in order,
    which is how `mlp()`, `cnn()`, `cnn_gap()` and `lcn()` (Sequentials, possibly nested) compute.
    """
    leaves = [(name, m) for name, m in model.named_modules() if not any(True for _ in m.children())]
    rows: list[Layer] = []
    x = Tensor.zeros(1, *in_shape)
    was_training = model.training
    model.eval()
    with no_grad():
        for name, module in leaves:
            y = module(x)
            if isinstance(module, SHAPED):
                before, after = tuple(x.shape[1:]), tuple(y.shape[1:])
                params = sum(p.numel() for p in module.parameters())
                rows.append(Layer(name, type(module).__name__, before, after, params,
                                  layer_flops(module, before, after)))
            x = y
    model.train(was_training)
    return rows


def first_layer(model: nn.Module) -> nn.Module:
    """The first Linear, Conv2d or LocallyConnected2d: the layer that looks at pixels."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d, nn.LocallyConnected2d)):
            return module
    raise ValueError(f"{type(model).__name__} has no Linear, Conv2d or LocallyConnected2d layer")


# ---------------------------------------------------------------- what the first layer learned
def _ramp_basis(k: int) -> np.ndarray:
    """An orthonormal basis (3, k·k) of the k×k patterns a + b·x + c·y: flat patches, ramps and straight edges."""
    coords = np.arange(k) - (k - 1) / 2
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    basis = np.stack([np.ones(k * k), xx.ravel(), yy.ravel()])
    return basis / np.linalg.norm(basis, axis=1, keepdims=True)  # the three are orthogonal on a centred grid


def ramp_fraction(filters: np.ndarray) -> np.ndarray:
    """Per k×k filter, the fraction of its energy in the span of {1, x, y}.

    An edge detector (a ramp or step across the patch) scores near 1; white
    noise scores 3/k² (1/3 for 3×3), the value random initial filters have.
    """
    k = filters.shape[-1]
    flat = filters.reshape(-1, k * k).astype(np.float64)
    proj = flat @ _ramp_basis(k).T
    return (proj**2).sum(axis=1) / np.maximum((flat**2).sum(axis=1), 1e-30)


def half_energy_area(weights: np.ndarray) -> np.ndarray:
    """Per row (one unit's weights over the pixels), how many pixels hold half of its squared weight.

    A local detector needs few pixels; a whole-image template needs hundreds;
    i.i.d. noise over 784 pixels needs about 160 (uniform, as at initialisation) or 100 (Gaussian).
    """
    energy = np.sort(weights.reshape(len(weights), -1).astype(np.float64) ** 2, axis=1)[:, ::-1]
    cumulative = np.cumsum(energy, axis=1)
    return (cumulative < 0.5 * cumulative[:, -1:]).sum(axis=1) + 1


def neighbour_similarity(lc_weight: np.ndarray) -> float:
    """Mean cosine similarity between filter c at position (i, j) and filter c at (i, j+1), over all c, i, j.

    `lc_weight` has LocallyConnected2d's layout (H_out, W_out, C_out, C_in, kh, kw).
    Weight sharing forces this to 1; independent random filters give about 0.
    """
    h, w, c = lc_weight.shape[:3]
    flat = lc_weight.reshape(h, w, c, -1).astype(np.float64)
    a, b = flat[:, :-1], flat[:, 1:]
    cos = (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-30)
    return float(cos.mean())
