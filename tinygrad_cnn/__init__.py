"""tinygrad_cnn: a reverse-mode autodiff engine on numpy, to build, train, see and study MLPs and CNNs.

    from tinygrad_cnn import Tensor, nn, optim, viz, data
    import tinygrad_cnn.nn.functional as F

Importing changes nothing in the process (no threads, no BLAS or malloc
settings): `backend.configure()` makes those, and the first operation that
splits work over the cores calls it if you did not.
"""

from . import backend, data, forward_ad, func, nn, optim, viz
from .autograd import Function, enable_grad, is_grad_enabled, no_grad
from .contraction import einsum
from .gradcheck import gradcheck, gradgradcheck
from .tensor import Tensor

__version__ = "0.1.0"
__all__ = [
    "Function",
    "Tensor",
    "__version__",
    "backend",
    "data",
    "einsum",
    "enable_grad",
    "forward_ad",
    "func",
    "gradcheck",
    "gradgradcheck",
    "is_grad_enabled",
    "nn",
    "no_grad",
    "optim",
    "viz",
]
