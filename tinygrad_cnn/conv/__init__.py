"""Convolution and pooling: the public functions, and where each piece lives.

    reference.py   the im2col story: UnfoldFn / FoldFn, conv2d_reference, max_pool2d_reference
    functional.py  conv2d, max_pool2d, avg_pool2d, unfold2d, fold2d (what users and nn call),
                   and the 1-D forms conv1d, max_pool1d, avg_pool1d on an (N, C, 1, L) view
    transposed.py  conv_transpose2d: conv2d's input gradient as one GEMM and col2im
    arguments.py   their argument checks, and 'same' padding
    fast.py        the fused convolution primitives (Conv2dFn and its gradients)
    pool.py        the pooling primitives over strided views

The numpy underneath is in backend/ (im2col.py, conv.py, pool.py, layout.py).
"""

from ..backend.im2col import col2im, im2col
from ..backend.layout import Geometry, output_size
from .arguments import check_padding_string, pair, same_padding, single
from .functional import avg_pool1d, avg_pool2d, conv1d, conv2d, fold2d, max_pool1d, max_pool2d, unfold2d
from .reference import FoldFn, UnfoldFn, conv2d_reference, max_pool2d_reference
from .transposed import conv_transpose2d

__all__ = ["FoldFn", "Geometry", "UnfoldFn", "avg_pool1d", "avg_pool2d", "check_padding_string", "col2im", "conv1d",
           "conv2d", "conv2d_reference", "conv_transpose2d", "fold2d", "im2col", "max_pool1d", "max_pool2d",
           "max_pool2d_reference", "output_size", "pair", "same_padding", "single", "unfold2d"]
