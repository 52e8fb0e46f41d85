"""The transposed convolution: the input gradient of a convolution, run forwards. One GEMM, then col2im.

A convolution reads each output pixel from a window of the input; its
transpose (its adjoint) writes each input pixel *into* that window. So
conv_transpose2d(x, w) is the gradient that conv2d(·, w) hands back to its
input when its output gradient is x (docs/im2col.md, section 7, draws it)::

    x (N, C_in, H, W) ──one GEMM──▶ columns (N·H·W, kh·kw·C_out) ──col2im──▶ y (N, C_out, H_out, W_out)
                       #lc,cK -> lK    (N, H, W, kh, kw, C_out): the     each column added onto
                       K = (i, j, o)   layout of conv2d's patches        the window it came from

There is no new primitive: the GEMM is `matmul` and col2im is `FoldFn`, whose
backward is `UnfoldFn` (im2col). So the input gradient of a transposed
convolution is a convolution, as it must be, and second derivatives work.
"""

from __future__ import annotations

from typing import Any

from ..backend.layout import Geometry
from ..tensor import Tensor
from .arguments import transposed_geometry
from .reference import FoldFn


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, groups: int = 1, dilation: Any = 1) -> Tensor:
    """`torch.nn.functional.conv_transpose2d`: weight (C_in, C_out/groups, kh, kw); note groups before dilation.

    The output is (N, C_out, H_out, W_out) with H_out = (H − 1)·stride − 2·padding
    + dilation·(kh − 1) + output_padding + 1 (likewise W_out): the size of the
    input of conv2d(·, w, stride, padding, dilation) that this is the gradient of.
    A strided convolution maps `stride` input sizes onto one output size, and
    output_padding (< stride, or < dilation) says which one: that many more rows
    and columns at the bottom and right.

    col2im adds the columns onto a canvas of exactly the windows' reach,
    (H − 1)·stride + dilation·(kh − 1) + 1 rows, so that im2col (FoldFn's backward)
    finds H windows there again; the output is the canvas with `padding` rows cut
    from each side and output_padding rows of zeros beyond the reach, if any.
    """
    g, extra, (h_out, w_out) = transposed_geometry(input, weight, bias, stride, padding, output_padding, groups,
                                                   dilation)
    n, c_in, h, w = input.shape
    _, c_group, kh, kw = weight.shape
    c_out = c_group * groups
    rows = input.permute(0, 2, 3, 1).reshape(n * h * w, c_in)  # a view when the input is channels-last
    if groups == 1:  # #lc,cK -> lK, K = (i, j, o): the weight laid out as conv2d's patches are
        columns = rows @ weight.permute(0, 2, 3, 1).reshape(c_in, kh * kw * c_out)
    else:  # one product per group: #glc,gcK -> glK, then the groups' output channels side by side
        c_in_group = c_in // groups
        per_group = rows.reshape(n * h * w, groups, c_in_group).permute(1, 0, 2)
        w_group = weight.reshape(groups, c_in_group, c_group, kh, kw).permute(0, 1, 3, 4, 2)
        columns = (per_group @ w_group.reshape(groups, c_in_group, kh * kw * c_group))
        columns = columns.reshape(groups, n * h * w, kh, kw, c_group).permute(1, 2, 3, 0, 4)
    reach = tuple((size - 1) * s + d * (k - 1) + 1 for size, k, s, d in zip((h, w), g.kernel, g.stride, g.dilation))
    canvas = FoldFn.apply(columns.reshape(n, h, w, kh, kw, c_out), input_shape=(n, c_out, *reach),
                          geometry=Geometry(g.kernel, g.stride, (0, 0), g.dilation))
    (ph, pw), (eh, ew) = g.padding, extra
    out = canvas[:, :, ph:ph + h_out, pw:pw + w_out]  # the padding cut away: what lay outside conv2d's input
    if eh > ph or ew > pw:  # output_padding beyond the reach of every window: zeros
        out = out.pad(((0, 0), (0, 0), (0, max(eh - ph, 0)), (0, max(ew - pw, 0))))
    if bias is None:
        return out
    return out + bias.astype(weight.dtype).reshape(1, c_out, 1, 1)
