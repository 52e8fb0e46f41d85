"""Data: IDX files, Fashion-MNIST and MNIST, and a DataLoader that batches by array indexing::

    from tinygrad_cnn import data
    train = data.FashionMNIST(train=True)          # finds the files, or uses the embedded subset
    for images, labels in data.DataLoader(train, batch_size=64, shuffle=True, seed=0):
        ...                                        # images: float32 B×1×28×28 in [0, 1]; labels: int64 B
"""

from .datasets import MNIST, ArrayDataset, FashionMNIST, TensorDataset
from .idx import read_idx, write_idx
from .loader import DataLoader

__all__ = ["MNIST", "ArrayDataset", "DataLoader", "FashionMNIST", "TensorDataset", "read_idx", "write_idx"]
