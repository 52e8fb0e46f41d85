"""Neural-network building blocks with `torch.nn`'s names, defaults and state_dict keys.

    from tinygrad_cnn import nn
    import tinygrad_cnn.nn.functional as F

    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    loss = F.cross_entropy(model(x), y)
"""

from . import functional, init
from .conv_layers import AvgPool2d, Conv2d, Fold, MaxPool2d, Unfold
from .layers import Dropout, Flatten, Identity, Linear, ReLU, Sequential, Sigmoid, Tanh
from .local import LocallyConnected2d
from .module import IncompatibleKeys, Module, ModuleScope
from .normalization import BatchNorm1d, BatchNorm2d
from .serialization import load, load_metadata, save

__all__ = [
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "Dropout",
    "Flatten",
    "Fold",
    "Identity",
    "IncompatibleKeys",
    "Linear",
    "LocallyConnected2d",
    "MaxPool2d",
    "Module",
    "ModuleScope",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "Unfold",
    "functional",
    "init",
    "load",
    "load_metadata",
    "save",
]
