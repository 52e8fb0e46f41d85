"""The models that `tinygrad-cnn train` and `compare` train on 28×28 grey images (Fashion-MNIST).

    mlp()      Flatten → 784-256-128-10, ReLU: every pixel connected to every hidden unit
    cnn()      two (conv 3×3 → ReLU → max-pool 2×2) blocks, then 3136-128-10
    cnn_bn()   the same with BatchNorm after each convolution and the hidden linear layer,
               and Dropout(0.5) before the output layer
    lcn()      cnn()'s architecture with LocallyConnected2d instead of Conv2d: local
               connectivity without weight sharing (one filter per output position)
    cnn_gap()  cnn()'s two conv blocks, then global average pooling and one Linear(64, 10):
               fully convolutional, 19,466 parameters (the MLP has 235,146)

The convolutional models keep PyTorch's layout of names (`features.0.weight`,
`classifier.1.bias`, ...), so the same classes written in PyTorch load our
checkpoints and vice versa.
"""

from __future__ import annotations

from collections.abc import Callable

from . import nn
from .tensor import Tensor

NUM_CLASSES = 10


class ConvNet(nn.Module):
    """`features` (convolution and pooling blocks) then `classifier` (linear layers)."""

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential):
        super().__init__()
        self.features = features
        self.classifier = classifier

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


def mlp(hidden: tuple[int, ...] = (256, 128), in_features: int = 28 * 28, num_classes: int = NUM_CLASSES
        ) -> nn.Sequential:
    """A multilayer perceptron: Flatten, then Linear + ReLU per hidden size, then the output layer."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_features
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def _conv_net(conv: Callable[[int, int, int], nn.Module], batch_norm: bool, channels: tuple[int, int],
              hidden: int, num_classes: int, dropout: float = 0.0) -> ConvNet:
    c1, c2 = channels
    features: list[nn.Module] = []
    spatial = 28
    for c_in, c_out in ((1, c1), (c1, c2)):
        features.append(conv(c_in, c_out, spatial))
        if batch_norm:
            features.append(nn.BatchNorm2d(c_out))
        features += [nn.ReLU(), nn.MaxPool2d(2)]
        spatial //= 2
    classifier: list[nn.Module] = [nn.Flatten(), nn.Linear(c2 * spatial * spatial, hidden)]
    if batch_norm:
        classifier.append(nn.BatchNorm1d(hidden))
    classifier.append(nn.ReLU())
    if dropout:
        classifier.append(nn.Dropout(dropout))
    classifier.append(nn.Linear(hidden, num_classes))
    return ConvNet(nn.Sequential(*features), nn.Sequential(*classifier))


def cnn(channels: tuple[int, int] = (32, 64), hidden: int = 128, num_classes: int = NUM_CLASSES) -> ConvNet:
    """Two conv(3×3, padding 1) → ReLU → MaxPool(2) blocks, then Linear(3136, 128) → ReLU → Linear(128, 10)."""
    return _conv_net(lambda c_in, c_out, _: nn.Conv2d(c_in, c_out, 3, padding=1), False, channels, hidden,
                     num_classes)


def cnn_bn(channels: tuple[int, int] = (32, 64), hidden: int = 128, num_classes: int = NUM_CLASSES,
           dropout: float = 0.5) -> ConvNet:
    """`cnn()` with BatchNorm2d after each convolution, BatchNorm1d after the hidden linear layer, and dropout.

    Why the dropout: with BatchNorm alone this network fits the training set
    (99% train accuracy by epoch 12 with Adam) while its test accuracy stalls
    around 92%; Dropout(0.5) before the output layer is the regulariser that
    lets it go further (docs/training.md has both runs).
    """
    return _conv_net(lambda c_in, c_out, _: nn.Conv2d(c_in, c_out, 3, padding=1), True, channels, hidden,
                     num_classes, dropout)


def lcn(channels: tuple[int, int] = (32, 64), hidden: int = 128, num_classes: int = NUM_CLASSES) -> ConvNet:
    """`cnn()` with each Conv2d replaced by a LocallyConnected2d of the same geometry (no weight sharing)."""
    return _conv_net(lambda c_in, c_out, size: nn.LocallyConnected2d(c_in, c_out, size, 3, padding=1), False,
                     channels, hidden, num_classes)


def cnn_gap(channels: tuple[int, int] = (32, 64), num_classes: int = NUM_CLASSES) -> ConvNet:
    """`cnn()`'s conv blocks, then global average pooling and one Linear(64, 10): a fully convolutional network.

    Why: in `cnn()` 95% of the parameters sit in the dense head that reads each
    feature at a fixed position of the 7×7 maps. Averaging each map over all
    positions instead (AdaptiveAvgPool2d(1)) removes that layer, so the network
    is small (19,466 parameters, 12× fewer than the MLP) and its read-out no
    longer depends on where a feature is: shifting the input shifts the maps,
    and their averages barely move.
    """
    c1, c2 = channels
    features = nn.Sequential(nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c2, num_classes))
    return ConvNet(features, classifier)


MODELS: dict[str, Callable[[], nn.Module]] = {"mlp": mlp, "cnn": cnn, "cnn-bn": cnn_bn, "lcn": lcn,
                                              "cnn-gap": cnn_gap}


def build(name: str) -> nn.Module:
    """A model by its command-line name: mlp, cnn, cnn-bn, lcn or cnn-gap."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name]()
