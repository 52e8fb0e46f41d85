"""Hypothesis strategies for testing code built on tinygrad_cnn (yours and ours).

A shared vocabulary for property-based tests, in the spirit of minitorch's and
MyGrad's test strategies: shapes, arrays, tensors, broadcastable shape tuples,
matmul operand shapes, reduction axes, and whole convolution / pooling
geometries drawn together so that every draw is valid::

    from hypothesis import given
    from tinygrad_cnn import gradcheck
    from tinygrad_cnn.testing import tensors

    @given(tensors(min_value=0.5))              # away from log's pole at 0
    def test_log(x):
        assert gradcheck(lambda t: t.log(), [x])

Only tests import this module (it needs `hypothesis`); the package never does.
Keeping inputs away from kinks (relu and abs at 0, ties of max) is the test's
job: these strategies draw plain values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .backend.layout import output_size
from .tensor import Tensor

__all__ = [
    "Conv2dCase",
    "Pool2dCase",
    "arrays",
    "axes",
    "broadcastable_shapes",
    "conv2d_cases",
    "examples",
    "matmul_shapes",
    "pool2d_cases",
    "seeds",
    "shapes",
    "tensors",
]


seeds = st.integers(0, 2**32 - 1)  # a numpy Generator seed: Hypothesis picks the seed, numpy the big arrays


def examples(n: int) -> settings:
    """Run `n` examples under a 50-example profile, scaled with the loaded one's max_examples.

    So one test can ask for fewer (slow gradient checks) or more examples than
    the default, and a "thorough" profile still multiplies every test's count.
    """
    return settings(max_examples=max(1, n * settings.default.max_examples // 50))


def shapes(min_dims: int = 0, max_dims: int = 4, min_side: int = 1, max_side: int = 5) -> st.SearchStrategy[tuple]:
    """Array shapes: tuples of `min_dims`..`max_dims` sides in [`min_side`, `max_side`] (`()` is a 0-d shape)."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def arrays(
    shape: tuple | st.SearchStrategy[tuple] | None = None,
    dtype: Any = np.float64,
    min_value: float = -3.0,
    max_value: float = 3.0,
    unique: bool = False,
) -> st.SearchStrategy[np.ndarray]:
    """numpy arrays of `dtype` with finite values in [`min_value`, `max_value`].

    `shape` is a tuple, a strategy of tuples, or None for `shapes()`. The default
    range keeps exp, sigmoid and friends well inside float64's comfortable zone.
    Integer dtypes draw integers in the same range.
    """
    dtype = np.dtype(dtype)
    if shape is None:
        shape = shapes()
    if dtype.kind == "f":
        elements = st.floats(min_value, max_value, allow_nan=False, allow_infinity=False, allow_subnormal=False,
                             width=8 * dtype.itemsize)
    elif dtype.kind in "iu":
        elements = st.integers(int(np.ceil(min_value)), int(np.floor(max_value)))
    elif dtype.kind == "b":
        elements = st.booleans()
    else:
        raise TypeError(f"arrays: unsupported dtype {dtype}")
    return hnp.arrays(dtype, shape, elements=elements, unique=unique)


def tensors(
    shape: tuple | st.SearchStrategy[tuple] | None = None,
    dtype: Any = np.float64,
    min_value: float = -3.0,
    max_value: float = 3.0,
    requires_grad: bool = True,
) -> st.SearchStrategy[Tensor]:
    """Leaf Tensors built from `arrays(...)`: float64 with requires_grad=True by default (what gradcheck wants)."""
    return arrays(shape, dtype, min_value, max_value).map(lambda a: Tensor(a, requires_grad=requires_grad))


def broadcastable_shapes(
    num_shapes: int = 2, min_dims: int = 0, max_dims: int = 4, min_side: int = 1, max_side: int = 5
) -> st.SearchStrategy[Any]:
    """`num_shapes` shapes that broadcast together, with their result.

    Draws hypothesis' ``BroadcastableShapes(input_shapes, result_shape)`` named
    tuple (from `hypothesis.extra.numpy.mutually_broadcastable_shapes`): the
    inputs differ in rank and have size-1 axes, so both the "prepend ones" and
    the "stretch ones" halves of the rule are exercised.
    """
    return hnp.mutually_broadcastable_shapes(num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims,
                                             min_side=min_side, max_side=max_side)


def matmul_shapes(max_batch_dims: int = 2, min_side: int = 1, max_side: int = 4) -> st.SearchStrategy[Any]:
    """Operand shapes for ``a @ b`` under numpy's rules, with the result shape.

    Draws ``BroadcastableShapes(input_shapes=(a_shape, b_shape), result_shape)``
    for the gufunc signature ``(n?,k),(k,m?)->(n?,m?)``: 1-D operands on either
    side (vector @ vector gives a 0-d result), plain matrices, batched operands
    and batch axes of different ranks or with size-1 axes that broadcast.
    """
    return hnp.mutually_broadcastable_shapes(signature=np.matmul.signature, max_dims=max_batch_dims,
                                             min_side=min_side, max_side=max_side)


def axes(ndim: int, allow_none: bool = True, allow_tuple: bool = True) -> st.SearchStrategy[Any]:
    """A reduction `axis` argument for a tensor of `ndim` dimensions.

    None (all axes), an int (possibly negative), or a non-empty tuple of distinct
    axes in any order, each possibly negative. For a 0-d tensor: None, 0 or -1.
    """
    choices = [st.none()] if allow_none else []
    if ndim == 0:
        return st.one_of(*choices, st.sampled_from([0, -1]))
    choices.append(st.integers(-ndim, ndim - 1))
    if allow_tuple:  # valid_tuple_axes draws distinct axes, some negative; we also shuffle their order
        choices.append(hnp.valid_tuple_axes(ndim, min_size=1).flatmap(st.permutations).map(tuple))
    return st.one_of(*choices)


# --------------------------------------------------------------------------- convolution and pooling
@dataclass(frozen=True)
class Conv2dCase:
    """One valid `conv2d` geometry: input (N, C_in, H, W), weight (C_out, C_in/groups, kh, kw).

    `kernel_size`, `stride`, `padding` and `dilation` are (height, width) pairs;
    `bias` says whether the case uses a bias of shape (C_out,). `kwargs` gives
    the keyword arguments of ``Tensor.conv2d`` / ``torch.nn.functional.conv2d``.
    """

    batch: int
    in_channels: int
    out_channels: int
    height: int
    width: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    bias: bool

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.in_channels, self.height, self.width)

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    @property
    def bias_shape(self) -> tuple[int] | None:
        return (self.out_channels,) if self.bias else None

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        sizes = [output_size(n, k, s, p, d) for n, k, s, p, d in
                 zip((self.height, self.width), self.kernel_size, self.stride, self.padding, self.dilation)]
        return (self.batch, self.out_channels, *sizes)

    @property
    def kwargs(self) -> dict[str, Any]:
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation, "groups": self.groups}


@dataclass(frozen=True)
class Pool2dCase:
    """One valid pooling geometry on an input (N, C, H, W).

    `kernel_size`, `stride` and `padding` are (height, width) pairs with
    padding ≤ kernel / 2 on each side (PyTorch's rule: no window lies entirely
    in the padding). `kwargs` gives the keyword arguments of
    ``Tensor.max_pool2d`` / ``avg_pool2d`` and their torch counterparts.
    """

    batch: int
    channels: int
    height: int
    width: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.channels, self.height, self.width)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        sizes = [output_size(n, k, s, p, 1) for n, k, s, p in
                 zip((self.height, self.width), self.kernel_size, self.stride, self.padding)]
        return (self.batch, self.channels, *sizes)

    @property
    def kwargs(self) -> dict[str, Any]:
        return {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding}


@st.composite
def _spatial(draw: st.DrawFn, max_kernel: int, max_stride: int, max_padding: int, max_dilation: int,
             max_extra: int, pooling: bool) -> tuple:
    """(size, kernel, stride, padding, dilation) along one axis, with an output size ≥ 1."""
    kernel = draw(st.integers(1, max_kernel))
    stride = draw(st.integers(1, max_stride))
    padding = draw(st.integers(0, min(max_padding, kernel // 2) if pooling else max_padding))
    dilation = 1 if pooling else draw(st.integers(1, max_dilation))
    smallest = max(1, dilation * (kernel - 1) + 1 - 2 * padding)  # the input must cover one (padded) window
    size = draw(st.integers(smallest, smallest + max_extra))
    return size, kernel, stride, padding, dilation


@st.composite
def conv2d_cases(
    draw: st.DrawFn,
    max_batch: int = 2,
    max_groups: int = 3,
    max_channels_per_group: int = 2,
    max_kernel: int = 5,
    max_stride: int = 3,
    max_padding: int = 2,
    max_dilation: int = 2,
    max_extra: int = 4,
) -> Conv2dCase:
    """Valid convolution geometries (`Conv2dCase`), every knob drawn together.

    Kernel sides 1..`max_kernel` (often non-square), stride 1..`max_stride`,
    padding 0..`max_padding` and dilation 1..`max_dilation` per axis, groups
    1..`max_groups` dividing both channel counts, with or without bias. Each
    spatial side is at least what one dilated window needs, plus up to
    `max_extra`, so the output is never empty.
    """
    groups = draw(st.integers(1, max_groups))
    in_channels = groups * draw(st.integers(1, max_channels_per_group))
    out_channels = groups * draw(st.integers(1, max_channels_per_group))
    h, kh, sh, ph, dh = draw(_spatial(max_kernel, max_stride, max_padding, max_dilation, max_extra, False))
    w, kw, sw, pw, dw = draw(_spatial(max_kernel, max_stride, max_padding, max_dilation, max_extra, False))
    return Conv2dCase(
        batch=draw(st.integers(1, max_batch)), in_channels=in_channels, out_channels=out_channels,
        height=h, width=w, kernel_size=(kh, kw), stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw),
        groups=groups, bias=draw(st.booleans()),
    )


@st.composite
def pool2d_cases(
    draw: st.DrawFn,
    max_batch: int = 2,
    max_channels: int = 3,
    max_kernel: int = 5,
    max_stride: int = 3,
    max_padding: int = 2,
    max_extra: int = 4,
) -> Pool2dCase:
    """Valid pooling geometries (`Pool2dCase`): kernel 1..`max_kernel` per axis, stride 1..`max_stride`,
    padding ≤ min(`max_padding`, kernel // 2), and an output of at least one window per axis."""
    h, kh, sh, ph, _ = draw(_spatial(max_kernel, max_stride, max_padding, 1, max_extra, True))
    w, kw, sw, pw, _ = draw(_spatial(max_kernel, max_stride, max_padding, 1, max_extra, True))
    return Pool2dCase(
        batch=draw(st.integers(1, max_batch)), channels=draw(st.integers(1, max_channels)),
        height=h, width=w, kernel_size=(kh, kw), stride=(sh, sw), padding=(ph, pw),
    )
