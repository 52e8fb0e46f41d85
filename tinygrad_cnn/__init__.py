"""tinygrad_cnn: a reverse-mode autodiff engine on numpy, to build, train, see and study MLPs and CNNs."""

from . import (
    data,
    memory,  # first: it tunes malloc (see memory.py)
    nn,
    optim,
)
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
]
