"""tinygrad_cnn: a reverse-mode autodiff engine on numpy, to build, train, see and study MLPs and CNNs.

    from tinygrad_cnn import Tensor, nn, optim, viz, data
    import tinygrad_cnn.nn.functional as F
"""

from . import data, memory, nn, optim, parallel, viz  # importing memory tunes malloc; parallel owns the threads
from .autograd import Function, enable_grad, is_grad_enabled, no_grad
from .gradcheck import gradcheck, gradgradcheck
from .tensor import Tensor

__version__ = "0.1.0"
__all__ = [
    "Function",
    "Tensor",
    "__version__",
    "data",
    "enable_grad",
    "gradcheck",
    "gradgradcheck",
    "is_grad_enabled",
    "memory",
    "nn",
    "no_grad",
    "optim",
    "parallel",
    "viz",
]
