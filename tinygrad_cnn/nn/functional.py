"""Stateless functions of `torch.nn.functional`: activations, layers' math, losses.

``import tinygrad_cnn.nn.functional as F``. Everything here is a composite of
Tensor operations, whose backward (and second derivative) the engine derives,
except `linear`: measurement made it one primitive, `LinearFn`, whose
backward is three Tensor ops (see its docstring).

The losses compute with the numerically stable forms::

    cross_entropy(x, y)   = -Σ_c q_c · log_softmax(x)_c      q = one-hot(y), smoothed by ε: (1-ε)·q + ε/C
    bce_with_logits(x, y) = max(x, 0) - x·y + log(1 + e^(-|x|))

so logits of ±1e4 give finite losses and gradients.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import autograd
from ..autograd import Function
from ..backend.linalg import matmul
from ..conv import avg_pool1d as avg_pool1d
from ..conv import conv1d as conv1d
from ..conv import conv_transpose2d as conv_transpose2d
from ..conv import max_pool1d as max_pool1d
from ..tensor import Tensor, default_generator
from .normalization import group_norm as group_norm
from .normalization import layer_norm as layer_norm
from .pooling import adaptive_avg_pool1d as adaptive_avg_pool1d
from .pooling import adaptive_avg_pool2d as adaptive_avg_pool2d
from .pooling import adaptive_max_pool1d as adaptive_max_pool1d
from .pooling import adaptive_max_pool2d as adaptive_max_pool2d
from .pooling import interpolate as interpolate
from .softmax_cross_entropy import SoftmaxCrossEntropyFn
from .sparse import embedding as embedding

_REDUCTIONS = ("mean", "sum", "none")


# ---------------------------------------------------------------------------- activations
def relu(x: Tensor) -> Tensor:
    return x.relu()


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def softmax(x: Tensor, dim: int | None = None) -> Tensor:
    """exp(x) / Σ exp(x) along `dim` (PyTorch's legacy choice when None: 0 for 0-, 1- and 3-d input, else 1)."""
    return x.softmax(softmax_dim(x.ndim) if dim is None else dim)


def log_softmax(x: Tensor, dim: int | None = None) -> Tensor:
    """x - logsumexp(x) along `dim` (chosen as in `softmax` when None)."""
    return x.log_softmax(softmax_dim(x.ndim) if dim is None else dim)


def softmax_dim(ndim: int) -> int:
    """The axis PyTorch picks when softmax is called without `dim` (it warns; we follow the rule silently)."""
    return 0 if ndim in (0, 1, 3) else 1


# The activations below are composites. Each says what it does at its kinks, and that
# rule is PyTorch's (checked against torch at exactly those points in tests/test_activations.py).
# A branch that is computed but not chosen by `where` still gets a zero gradient times its
# local derivative, so any exp in a branch is clamped first: 0 · ∞ would be nan.
def leaky_relu(x: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, else negative_slope · x (at 0 the slope is negative_slope)."""
    return Tensor.where(x.data > 0, x, x * negative_slope)


def elu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, else α(eˣ - 1) (at 0 the slope is α, as PyTorch's; its second derivative there is 0, ours α)."""
    return Tensor.where(x.data > 0, x, x.clip(max=0.0).expm1() * alpha)


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    """x clipped to [min_val, max_val]; the slope is 1 strictly inside, 0 at and beyond the bounds."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val ({max_val})")
    inside = (x.data > min_val) & (x.data < max_val)
    return Tensor.where(inside, x, np.clip(x.data, min_val, max_val))


def relu6(x: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6): hardtanh(x, 0, 6), so the slope at 0 and at 6 is 0."""
    return hardtanh(x, 0.0, 6.0)


def hardsigmoid(x: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6: a piecewise-linear sigmoid; slope 1/6 strictly inside (-3, 3)."""
    return hardtanh(x + 3.0, 0.0, 6.0) * (1 / 6)


def hardswish(x: Tensor, inplace: bool = False) -> Tensor:
    """x · relu6(x + 3) / 6; at -3 the slope is 0 and at 3 it is 1 (the outer pieces', as PyTorch)."""
    middle = x * (x + 3.0) * (1 / 6)
    return Tensor.where(x.data <= -3, 0.0, Tensor.where(x.data < 3, middle, x))


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(βx)) / β, and x itself where βx > threshold (where the two agree to float precision)."""
    bx = x * beta
    smooth = bx.clip(max=threshold).exp().log1p() * (1 / beta)
    return Tensor.where(bx.data > threshold, x, smooth)


def silu(x: Tensor, inplace: bool = False) -> Tensor:
    """x · σ(x), also called swish."""
    return x * x.sigmoid()


def mish(x: Tensor, inplace: bool = False) -> Tensor:
    """x · tanh(softplus(x))."""
    return x * softplus(x).tanh()


def logsigmoid(x: Tensor) -> Tensor:
    """log σ(x) = -softplus(-x), in the form that overflows for no x: min(x, 0) - log(1 + e^(-|x|)).

    Written with two clamped branches instead of |x|, whose zero slope at 0 would
    give log σ a slope of 1 there instead of σ(-0) = 1/2.
    """
    negative = x - x.clip(max=0.0).exp().log1p()
    positive = -((-x).clip(max=0.0).exp().log1p())
    return Tensor.where(x.data < 0, negative, positive)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x · Φ(x), Φ the standard normal CDF: ½x(1 + erf(x/√2)), or with approximate='tanh'
    ½x(1 + tanh(√(2/π)(x + 0.044715x³))), the form GPT-2 used before erf was fast everywhere.
    """
    if approximate == "none":
        return x * ((x * (1 / np.sqrt(2.0))).erf() + 1.0) * 0.5
    if approximate == "tanh":
        inner = (x + x * x * x * 0.044715) * np.sqrt(2 / np.pi)
        return x * (inner.tanh() + 1.0) * 0.5
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


# ---------------------------------------------------------------------------- layers
class LinearFn(Function):
    """y = x Wᵀ + b as one primitive (PyTorch's addmm)  ⇒  dx = g W, dW = gᵀ x, db = Σ_rows g

    Measured against the composite ``x @ W.T + b`` (the reference the tests compare
    with): one node instead of four, and dW comes out of the GEMM in W's own
    (out, in) row-major layout. The composite's dW is a transposed view, which
    makes every optimizer pass over the weight about 4x slower (a 784x256 SGD
    update: 300 µs instead of 77 µs). A 784-256-128-10 MLP's SGD step at batch 64
    took 1.5-1.65 ms fused against 1.9-2.2 ms composite (PyTorch: 1.2-1.35 ms,
    one thread). The backward is made of Tensor ops, so second derivatives still work.
    """

    def forward(ctx, x, weight, bias=None):
        out = matmul(x, weight.T)
        if bias is not None:
            out += bias
        return out

    def backward(ctx, grad):
        x, weight = ctx.inputs[:2]
        need = ctx.needs_input_grad
        grads = ((grad @ weight) if need[0] else None, (grad.T @ x) if need[1] else None)
        if len(need) == 2:
            return grads
        return (*grads, grad.sum(axis=0) if need[2] else None)

    def jvp(ctx, tx, tw, tb=None):  # ẏ = ẋ Wᵀ + x Ẇᵀ + ḃ
        x, weight = ctx.inputs[:2]
        moved = tx @ weight.T + x @ tw.T
        return moved if tb is None else moved + tb


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x Wᵀ + b over the last axis of x, with W of shape (out_features, in_features) (PyTorch's layout).

    Runs as one `LinearFn` node when the dtypes agree (the training case),
    otherwise as the composite ``x @ W.T + b``, whose dtype promotion applies.
    """
    if weight.ndim != 2 or x.ndim == 0 or x.shape[-1] != weight.shape[-1]:
        raise ValueError(f"linear: input of shape {x.shape} does not match weight of shape {weight.shape} "
                         "(expected weight (out_features, in_features) and in_features in the input's last axis)")
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"linear: bias of shape {bias.shape} does not match weight of shape {weight.shape}")
    dtype = weight.dtype
    if x.dtype != dtype or (bias is not None and bias.dtype != dtype):
        out = x @ weight.T
        return out if bias is None else out + bias
    params = (weight,) if bias is None else (weight, bias)
    if x.ndim == 2:
        return LinearFn.apply(x, *params)
    y = LinearFn.apply(x.reshape(-1, x.shape[-1]), *params)
    return y.reshape(*x.shape[:-1], weight.shape[0])


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
           dilation: Any = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation of an NCHW input with (out_ch, in_ch/groups, kh, kw) filters.

    Sizes are ints or pairs; `padding` may also be 'valid' or 'same' (stride 1), as in PyTorch.
    """
    return x.conv2d(weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups)


def max_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """Max over each window, with `torch.nn.functional.max_pool2d`'s arguments in its order."""
    return x.max_pool2d(kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def avg_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """Mean over each window, with `torch.nn.functional.avg_pool2d`'s arguments in its order."""
    return x.avg_pool2d(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


PAD_MODES = ("constant", "reflect", "replicate", "circular")


def pad(x: Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> Tensor:
    """`torch.nn.functional.pad`: `pad` gives (before, after) amounts from the last axis backwards.

    So (1, 2) pads the last axis, (1, 1, 2, 2) also the one before it. Along one row::

        constant   0 0 | a b c d | 0 0      (value; negative amounts crop, as in PyTorch)
        reflect    c b | a b c d | c b      (mirrored, the edge not repeated: amounts < the size)
        replicate  a a | a b c d | d d      (the edge repeated)
        circular   c d | a b c d | a b      (wrapped around: amounts ≤ the size)

    The last three gather with one index array per padded axis (Tensor
    indexing), so they are differentiable twice: the gradient adds every copy
    of an element back onto it.
    """
    if mode not in PAD_MODES:
        raise ValueError(f"pad: mode must be one of {PAD_MODES}, got {mode!r}")
    amounts = list(pad) if isinstance(pad, (tuple, list)) else None
    if (amounts is None or len(amounts) % 2 or len(amounts) > 2 * x.ndim
            or not all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in amounts)):
        raise ValueError(f"pad: pad must be an even-length sequence of ints, at most 2 per axis of the input "
                         f"(shape {x.shape}), got {pad!r}")
    if mode != "constant" and value not in (None, 0):
        raise ValueError(f"pad: a value ({value}) only applies to mode='constant', not {mode!r}")
    pairs = [(0, 0)] * x.ndim
    for k in range(len(amounts) // 2):
        pairs[x.ndim - 1 - k] = (int(amounts[2 * k]), int(amounts[2 * k + 1]))
    if mode == "constant":
        for axis, (before, after) in enumerate(pairs):
            if x.shape[axis] + min(before, 0) + min(after, 0) < 0:  # PyTorch crops first, then pads
                raise ValueError(f"pad: cropping ({before}, {after}) leaves a negative size on axis {axis} "
                                 f"of the input of shape {x.shape}")
        grown = x.pad([(max(b, 0), max(a, 0)) for b, a in pairs], value=0.0 if value is None else value)
        if any(b < 0 or a < 0 for b, a in pairs):
            grown = grown[tuple(slice(-min(b, 0), grown.shape[i] + min(a, 0)) for i, (b, a) in enumerate(pairs))]
        return grown
    for axis, (before, after) in enumerate(pairs):
        if before or after:
            index = _pad_index(x.shape[axis], before, after, mode, axis, x.shape)
            x = x[(slice(None),) * axis + (index,)]
    return x


def _pad_index(size: int, before: int, after: int, mode: str, axis: int, shape: tuple) -> np.ndarray:
    """Which input position each padded position along one axis copies."""
    if min(before, after) < 0:
        raise ValueError(f"pad: {mode} padding cannot crop: got ({before}, {after}) on axis {axis} "
                         f"(input shape {shape})")
    if size == 0:
        raise ValueError(f"pad: {mode} padding needs a non-empty axis {axis} to copy from (input shape {shape})")
    if mode == "reflect" and max(before, after) >= size:
        raise ValueError(f"pad: reflect padding ({before}, {after}) of axis {axis} must be less than its size "
                         f"{size} (input shape {shape}): the mirror does not repeat the edge")
    if mode == "circular" and max(before, after) > size:
        raise ValueError(f"pad: circular padding ({before}, {after}) of axis {axis} must be at most its size "
                         f"{size} (input shape {shape})")
    positions = np.arange(-before, size + after)
    if mode == "reflect":
        positions = np.abs(positions)
        return np.where(positions >= size, 2 * (size - 1) - positions, positions)
    if mode == "replicate":
        return np.clip(positions, 0, size - 1)
    return positions % size


def unfold(x: Tensor, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1) -> Tensor:
    """im2col, (N, C, H, W) → (N, C·kh·kw, L), with `torch.nn.functional.unfold`'s arguments in its order."""
    return x.unfold2d(kernel_size, stride, padding, dilation)


def fold(x: Tensor, output_size: Any, kernel_size: Any, dilation: Any = 1, padding: Any = 0,
         stride: Any = 1) -> Tensor:
    """col2im, (N, C·kh·kw, L) → (N, C, H, W) with overlaps summed, `torch.nn.functional.fold`'s arguments."""
    return x.fold2d(output_size, kernel_size, stride, padding, dilation)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: zero each element with probability p and scale survivors by 1/(1-p).

    The scaling keeps E[output] = input, so evaluation needs no rescaling
    (identity when ``training=False``). The mask comes from
    `default_generator()`, so `Tensor.manual_seed` makes it reproducible.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, got {p}")
    if not training or p == 0.0:
        return x
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    if p == 1.0:
        return x * np.zeros(x.shape, dtype=dtype)
    keep = default_generator().random(x.shape, dtype=np.float32) >= p
    return x * (keep * np.asarray(1.0 / (1.0 - p), dtype=dtype))


# ---------------------------------------------------------------------------- losses
# Each loss takes PyTorch's arguments in PyTorch's order, the deprecated size_average
# and reduce included, so that a call copied from PyTorch code means the same here.
def _reduction(size_average: bool | None, reduce: bool | None, reduction: str, fn: str,
               allowed: tuple[str, ...] = _REDUCTIONS) -> str:
    """The reduction to apply: PyTorch's legacy flags, when given, override `reduction` (with its warning)."""
    if size_average is not None or reduce is not None:
        import warnings  # only the deprecated spelling needs it

        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = ("mean" if size_average else "sum") if reduce else "none"
        warnings.warn(f"{fn}: size_average and reduce args will be deprecated, please use "
                      f"reduction='{reduction}' instead.", UserWarning, stacklevel=3)
    if reduction not in allowed:
        raise ValueError(f"{fn}: reduction must be one of {allowed}, got {reduction!r}")
    return reduction


def _reduce(loss: Tensor, reduction: str, count: float | None = None) -> Tensor:
    """'none': the loss per element; 'sum'; 'mean': the sum over `count` (default: every element).

    A mean over nothing (no elements, or every target ignored) is nan, as in
    PyTorch; its gradient is 0 (PyTorch's too), not nan.
    """
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    n = loss.numel() if count is None else count
    return total * (1.0 / n) if n else total * 0.0 + float("nan")


def _constant(value: Any, input: Tensor, name: str, fn: str) -> np.ndarray:
    """A weighting argument PyTorch does not differentiate (`weight`, `pos_weight`), as an array of input's dtype."""
    if isinstance(value, Tensor) and value.requires_grad:
        raise ValueError(f"{fn}: the loss is not differentiable with respect to {name} (as in PyTorch); "
                         f"pass a {name} that does not require grad")
    return np.asarray(value.data if isinstance(value, Tensor) else value).astype(input.dtype, copy=False)


def _broadcast_constant(value: Any, input: Tensor, name: str, fn: str) -> np.ndarray:
    """`_constant`, checked to broadcast to the input's shape (the loss keeps that shape)."""
    w = _constant(value, input, name, fn)
    try:
        fits = np.broadcast_shapes(w.shape, input.shape) == input.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{fn}: {name} of shape {w.shape} does not broadcast to the input's shape {input.shape}")
    return w


# ------------------------------------------------------------ class-index targets: nll_loss, cross_entropy
def _class_targets(input: Tensor, target: Any, fn: str) -> np.ndarray:
    """Validate integer class targets against (N, C, d1, ...) scores; return them as an int array."""
    if input.dtype.kind != "f":
        raise TypeError(f"{fn}: input must be floating point (scores or log-probabilities), got {input.dtype}")
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    expected = input.shape[:1] + input.shape[2:] if input.ndim >= 2 else ()
    if t.dtype.kind not in "iu":
        probabilities = f", or class probabilities: a float target of the input's shape {input.shape}" if (
            fn == "cross_entropy") else ""
        raise TypeError(f"{fn}: target must hold integer class indices (shape {expected}, dtype int64)"
                        f"{probabilities}; got dtype {t.dtype} and shape {t.shape}")
    if input.ndim == 0 or t.shape != expected:
        raise ValueError(f"{fn}: input of shape {input.shape} needs a target of shape {expected} "
                         f"(class indices; classes on axis 1), got target of shape {t.shape}")
    return t


def _class_weight(weight: Any, input: Tensor, fn: str) -> np.ndarray | None:
    """The per-class rescaling `weight`, one value per class (axis 1, or 0 for unbatched input)."""
    if weight is None:
        return None
    w = _constant(weight, input, "weight", fn)
    classes = input.shape[1 if input.ndim >= 2 else 0]
    if w.shape != (classes,):
        raise ValueError(f"{fn}: weight should hold one value for each of the {classes} classes of the input "
                         f"(shape {input.shape}), got weight of shape {w.shape}")
    return w


def _along(values: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """A per-class vector shaped to broadcast along `axis` of an ndim-dimensional array."""
    return values.reshape([-1 if i == axis else 1 for i in range(ndim)])


def _target_weights(scores: Tensor, t: np.ndarray, ignore_index: int, smoothing: float, weight: np.ndarray | None,
                    fn: str) -> tuple[np.ndarray, float | None]:
    """q with loss_n = -Σ_c q[n, c] · log p[n, c], and the divisor of the mean (`None`: every target).

    PyTorch's definition, written as one weight per score::

        q[n, c] = (1-ε) · w[y_n] · [c = y_n]  +  ε/C · w[c]       0 where y_n = ignore_index
        mean    = Σ_n loss_n / Σ_{n not ignored} w[y_n]

    (w = 1 without `weight`, so the mean divides by the number of targets not ignored.)
    Label smoothing thus shares the one-hot part's divisor, as in PyTorch.
    """
    axis = 1 if scores.ndim >= 2 else 0
    classes = scores.shape[axis]
    if not 0 <= ignore_index < classes and _all_below(t, classes):  # the usual case, in one reduction:
        ignored, any_ignored = None, False  # every target a class, so none equals ignore_index
    else:
        ignored = t == ignore_index
        any_ignored = bool(ignored.any())
        valid = t[~ignored] if any_ignored else t
        if valid.size and (valid.min() < 0 or valid.max() >= classes):
            bad = valid[(valid < 0) | (valid >= classes)][0]
            raise IndexError(f"{fn}: target {int(bad)} is out of bounds for {classes} classes")
    index = np.where(ignored, 0, t) if any_ignored else t
    if scores.ndim == 2:  # (N, C): a 1 at (n, y_n) of a zero matrix, two numpy calls instead of five
        q = np.zeros(scores.shape, scores.dtype)
        q[np.arange(len(index)), index] = 1
    else:
        q = (np.expand_dims(index, axis) == _along(np.arange(classes), axis, scores.ndim)).astype(scores.dtype)
    count = float((~ignored).sum()) if any_ignored else None
    if weight is not None:
        target_weight = np.where(ignored, 0, weight[index]) if any_ignored else weight[index]
        q *= np.expand_dims(target_weight, axis)
        count = float(target_weight.sum())
    if smoothing:
        q *= 1.0 - smoothing
        q += (smoothing / classes) * (1.0 if weight is None else _along(weight, axis, scores.ndim))
    if any_ignored:
        q *= np.expand_dims(~ignored, axis)
    return q, count


def _all_below(t: np.ndarray, classes: int) -> bool:
    """Whether every integer in t is in [0, classes): one max over t read as unsigned (a negative reads huge)."""
    return t.size == 0 or int(t.view(t.dtype.str.replace("i", "u")).max()) < classes  # (byte order kept)


def nll_loss(input: Tensor, target: Any, weight: Any = None, size_average: bool | None = None,
             ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """-w[y] · log p[y] from log-probabilities (N, C[, d1, ...]) or (C,) and integer targets (N[, d1, ...]) or ().

    `weight` rescales each class; the mean divides by the summed weights of the
    targets not equal to `ignore_index` (their count without weights).
    """
    reduction = _reduction(size_average, reduce, reduction, "nll_loss")
    t = _class_targets(input, target, "nll_loss")
    w = _class_weight(weight, input, "nll_loss")
    q, count = _target_weights(input, t, ignore_index, 0.0, w, "nll_loss")
    return _reduce(-(input * q).sum(axis=1 if input.ndim >= 2 else 0), reduction, count)


def cross_entropy(input: Tensor, target: Any, weight: Any = None, size_average: bool | None = None,
                  ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy of logits (N, C[, d1, ...]) or (C,) against class indices or class probabilities.

    loss_n = -Σ_c q_nc · log_softmax(x_n)_c. With integer targets (N[, d1, ...])
    q is the one-hot target, smoothed as (1-ε)·q + ε/C by ``label_smoothing=ε``,
    times the class weights; targets equal to `ignore_index` count for nothing,
    and the mean divides by the summed weights of the others (`_target_weights`).
    A float target of the input's own shape holds probabilities: q is that target
    (smoothed, times the weights, differentiable), and the mean divides by the
    number of samples N·d1·..., as in PyTorch.
    """
    reduction = _reduction(size_average, reduce, reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    axis = 1 if input.ndim >= 2 else 0
    target_shape = target.shape if isinstance(target, Tensor) else np.shape(target)
    if input.ndim and target_shape == input.shape:
        q = _probability_targets(input, target, ignore_index, label_smoothing, weight)
        return _reduce(-(input.log_softmax(axis) * q).sum(axis=axis), reduction)
    t = _class_targets(input, target, "cross_entropy")
    w = _class_weight(weight, input, "cross_entropy")
    q, count = _target_weights(input, t, ignore_index, label_smoothing, w, "cross_entropy")
    if input.dtype.kind != "f" or input.ndim == 0 or input.shape[axis] == 0:  # the composite's errors and edge cases
        return _reduce(-(input.log_softmax(axis) * q).sum(axis=axis), reduction, count)
    n = count if count is not None else input.numel() // input.shape[axis]  # what a mean divides by
    if reduction == "none" or not n:  # (a mean over nothing is nan: `_reduce` says how)
        return _reduce(SoftmaxCrossEntropyFn.apply(input, q=q, axis=axis), reduction, count)
    scale = np.array(1.0 if reduction == "sum" else 1.0 / n, dtype=input.dtype)  # as `_reduce` would multiply
    return SoftmaxCrossEntropyFn.apply(input, q=q, axis=axis, scale=scale)


def _probability_targets(input: Tensor, target: Any, ignore_index: int, smoothing: float, weight: Any) -> Tensor:
    """q for class-probability targets: (1-ε)·p + ε/C, times the class weights."""
    p = target if isinstance(target, Tensor) else Tensor(np.asarray(target))
    if input.dtype.kind != "f" or p.dtype.kind != "f":
        raise TypeError(f"cross_entropy: a target of the input's shape {input.shape} holds class probabilities, "
                        f"so input and target must be floating point, got {input.dtype} and {p.dtype}")
    if ignore_index >= 0:
        raise ValueError(f"cross_entropy: ignore_index ({ignore_index}) is not supported for class-probability "
                         "targets (as in PyTorch)")
    if p.dtype != input.dtype and not p.requires_grad:
        p = p.astype(input.dtype)  # a cast that keeps a forward-mode tangent
    axis = 1 if input.ndim >= 2 else 0
    if smoothing:
        p = p * (1.0 - smoothing) + smoothing / input.shape[axis]
    w = _class_weight(weight, input, "cross_entropy")
    return p if w is None else p * _along(w, axis, input.ndim)


# ------------------------------------------------------------ targets of the input's shape
def _same_shape_target(input: Tensor, target: Any, fn: str) -> Tensor:
    if input.dtype.kind != "f":
        raise TypeError(f"{fn}: input must be floating point, got {input.dtype}")
    if not isinstance(target, Tensor):
        target = Tensor(np.asarray(target))
    if target.shape != input.shape:
        raise ValueError(f"{fn}: target of shape {target.shape} does not match input of shape {input.shape}")
    if target.dtype != input.dtype and not target.requires_grad:  # float64 or int labels: no upcast of the loss
        target = target.astype(input.dtype)  # keeps a forward-mode tangent
    return target


def _elementwise_weight(weight: Any, input: Tensor, fn: str) -> Tensor:
    """The `weight` of mse_loss, l1_loss and huber_loss: one per element, differentiable (a plain product)."""
    w = weight if isinstance(weight, Tensor) else Tensor(np.asarray(weight))
    if w.shape != input.shape:
        raise ValueError(f"{fn}: weight of shape {w.shape} must have the input's shape {input.shape}")
    return w if w.dtype == input.dtype or w.requires_grad else Tensor(w.data.astype(input.dtype))


def _weighted(loss: Tensor, weight: Any, reduction: str, fn: str, mean_over_weights: bool) -> Tensor:
    """Reduce loss · weight; PyTorch's weighted mean is Σ w·l / Σ w for mse and l1, Σ w·l / n for huber."""
    if weight is None:
        return _reduce(loss, reduction)
    w = _elementwise_weight(weight, loss, fn)
    loss = loss * w
    if reduction == "mean" and mean_over_weights:
        return loss.sum() / w.sum()
    return _reduce(loss, reduction)


def mse_loss(input: Tensor, target: Any, size_average: bool | None = None, reduce: bool | None = None,
             reduction: str = "mean", weight: Any = None) -> Tensor:
    """Mean squared error (x - y)², shapes must match exactly (no silent broadcasting)."""
    reduction = _reduction(size_average, reduce, reduction, "mse_loss")
    target = _same_shape_target(input, target, "mse_loss")
    diff = input - target
    return _weighted(diff * diff, weight, reduction, "mse_loss", mean_over_weights=True)


def l1_loss(input: Tensor, target: Any, size_average: bool | None = None, reduce: bool | None = None,
            reduction: str = "mean", weight: Any = None) -> Tensor:
    """Mean absolute error |x - y|; at x = y the gradient is 0 (|d|' = sign(d), as in PyTorch)."""
    reduction = _reduction(size_average, reduce, reduction, "l1_loss")
    target = _same_shape_target(input, target, "l1_loss")
    return _weighted((input - target).abs(), weight, reduction, "l1_loss", mean_over_weights=True)


def smooth_l1_loss(input: Tensor, target: Any, size_average: bool | None = None, reduce: bool | None = None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """½ d²/β where |d| < β, else |d| - ½β (d = x - y): quadratic near 0, L1 beyond β; β = 0 is L1.

    The gradient is d/β, then sign(d): continuous, so |d| = β is a kink only of
    the second derivative, which there takes the L1 side's 0 (as PyTorch).
    """
    reduction = _reduction(size_average, reduce, reduction, "smooth_l1_loss")
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    target = _same_shape_target(input, target, "smooth_l1_loss")
    d = input - target
    if beta == 0:
        return _reduce(d.abs(), reduction)
    loss = Tensor.where(np.abs(d.data) < beta, d * d * (0.5 / beta), d.abs() - 0.5 * beta)
    return _reduce(loss, reduction)


def huber_loss(input: Tensor, target: Any, reduction: str = "mean", delta: float = 1.0,
               weight: Any = None) -> Tensor:
    """½ d² where |d| < δ, else δ·(|d| - ½δ): smooth_l1_loss times δ (with β = δ).

    At |d| = δ the gradient is ±δ from either side and the second derivative the
    linear side's 0, as in PyTorch. A `weight` scales each element; its mean divides by the element count.
    """
    reduction = _reduction(None, None, reduction, "huber_loss")
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    target = _same_shape_target(input, target, "huber_loss")
    d = input - target
    loss = Tensor.where(np.abs(d.data) < delta, d * d * 0.5, (d.abs() - 0.5 * delta) * delta)
    return _weighted(loss, weight, reduction, "huber_loss", mean_over_weights=False)


class BinaryCrossEntropyFn(Function):
    """l = -[t·max(ln x, -100) + (1-t)·max(ln(1-x), -100)]  ⇒  dx = g·(x-t) / max(x(1-x), 1e-12), dt = g·ln((1-x)/x)

    A primitive rather than a composite of log and clip, for the edges: at x = 0 or 1
    the composite's gradient is 0/0 = nan, where these formulas (PyTorch's) give a
    finite one: 0 where the target agrees, ±1e12 where it does not. The clamp makes a
    confidently wrong probability cost 100, not inf. The backward is Tensor ops, so
    second derivatives work (PyTorch's own second derivative puts the 1e-12 elsewhere:
    the two agree to about 1e-12 relative for x inside (0, 1)).
    """

    def forward(ctx, x, t):
        with np.errstate(divide="ignore"):  # ln 0 = -inf, clamped to -100 next
            log_x = np.maximum(np.log(x), -100.0)
            log_1mx = np.maximum(np.log1p(-x), -100.0)
        return -(t * log_x + (1 - t) * log_1mx)

    def backward(ctx, grad):
        x, t = ctx.inputs
        need_x, need_t = ctx.needs_input_grad
        grad_x = grad * (x - t) / (x * (1.0 - x)).maximum(1e-12) if need_x else None
        grad_t = grad * ((1.0 - x).log() - x.log()) if need_t else None
        return grad_x, grad_t

    def jvp(ctx, tx, tt):  # a constant target has no tangent, and ln 0 would make 0 · ∞ = nan
        x, t = ctx.inputs
        moved = tx * (x - t) / (x * (1.0 - x)).maximum(1e-12)
        return moved + tt * ((1.0 - x).log() - x.log()) if ctx.has_tangent[1] else moved


def binary_cross_entropy(input: Tensor, target: Any, weight: Any = None, size_average: bool | None = None,
                         reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """-w·[y ln x + (1-y) ln(1-x)] for probabilities x and targets y in [0, 1], each log clamped at -100.

    `weight` (a constant broadcast to the input's shape) rescales each element.
    Probabilities from a sigmoid are better fed, as logits, to
    `binary_cross_entropy_with_logits`: it never needs the clamp.
    """
    fn = "binary_cross_entropy"
    reduction = _reduction(size_average, reduce, reduction, fn)
    target = _same_shape_target(input, target, fn)
    for name, values in (("input", input.data), ("target", target.data)):
        outside = ~((values >= 0) & (values <= 1))  # nan is outside too
        if outside.any():
            raise ValueError(f"{fn}: all elements of {name} should be between 0 and 1, got {values[outside][0]} "
                             f"(for logits, use binary_cross_entropy_with_logits)")
    if input.dtype != target.dtype:  # a float target that requires grad keeps its dtype: meet at the wider
        dtype = np.promote_types(input.dtype, target.dtype)
        input, target = input.astype(dtype), target.astype(dtype)
    loss = BinaryCrossEntropyFn.apply(input, target)
    if weight is not None:
        loss = loss * _broadcast_constant(weight, input, "weight", fn)
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Any, weight: Any = None,
                                     size_average: bool | None = None, reduce: bool | None = None,
                                     reduction: str = "mean", pos_weight: Any = None) -> Tensor:
    """-w·[p·y log σ(x) + (1-y) log(1-σ(x))] in forms that never overflow, with p = `pos_weight`.

    Without p: max(x,0) - x·y + log(1+e^-|x|). With it (p weighs the positive
    term, broadcast along the last axis, as PyTorch): (1-y)·x + (1+(p-1)·y)·softplus(-x),
    softplus(-x) = max(-x,0) + log(1+e^-|x|). `maximum` splits its gradient at
    x = 0 and |x|' = 0 there, so the gradient at 0 is exactly the smooth formula's.
    `weight` and `pos_weight` are constants that broadcast to the input's shape.
    """
    fn = "binary_cross_entropy_with_logits"
    reduction = _reduction(size_average, reduce, reduction, fn)
    target = _same_shape_target(input, target, fn)
    log1p_exp = ((-input.abs()).exp() + 1.0).log()  # log(1 + e^-|x|) ∈ (0, ln 2]: never overflows
    if pos_weight is None:
        loss = input.maximum(0.0) - input * target + log1p_exp
    else:
        p = _broadcast_constant(pos_weight, input, "pos_weight", fn)
        loss = (1.0 - target) * input + (target * (p - 1) + 1.0) * ((-input).maximum(0.0) + log1p_exp)
    if weight is not None:
        loss = loss * _broadcast_constant(weight, input, "weight", fn)
    return _reduce(loss, reduction)


def kl_div(input: Tensor, target: Any, size_average: bool | None = None, reduce: bool | None = None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """Pointwise KL divergence y·(ln y - x) between log-probabilities x and probabilities y.

    y·ln y is taken as 0 at y = 0 (PyTorch's xlogy); with ``log_target=True`` the
    target holds ln y, and the loss is e^y'·(y' - x). 'batchmean' divides the sum
    by the batch size (axis 0), which is the KL divergence itself; 'mean' divides
    by the element count, as PyTorch (which warns about it; we do not).
    """
    fn = "kl_div"
    reduction = _reduction(size_average, reduce, reduction, fn, allowed=(*_REDUCTIONS, "batchmean"))
    target = _same_shape_target(input, target, fn)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        loss = _xlogx(target) - target * input
    if reduction == "batchmean":
        return _reduce(loss, "mean", input.shape[0]) if input.ndim else _reduce(loss, "sum")
    return _reduce(loss, reduction)


def _xlogx(y: Tensor) -> Tensor | np.ndarray:
    """y·ln y, 0 at y = 0 (nan for y < 0). A constant target is computed in numpy.

    A target that requires grad gets ln y + 1 as its gradient, and 0 at y = 0,
    where the derivative has no finite value (PyTorch's xlogy gives nan there).
    """
    zero = y.data == 0
    if not y.requires_grad and autograd.tangent_of(y) is None:  # a constant (no gradient, no tangent)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(zero, 0, y.data * np.log(np.where(zero, 1, y.data))).astype(y.dtype, copy=False)
    return y * Tensor.where(zero, 1.0, y).log()
