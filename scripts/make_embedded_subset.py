"""Make the Fashion-MNIST subset shipped in tinygrad_cnn/data/embedded/.

The subset lets examples, tests and `tinygrad-cnn train` run on a machine with
no downloaded data. It is class-balanced (600 training and 100 test images per
class, the first ones of each class in file order, kept in file order), so
accuracies on it mean the same thing as on the full set, just noisier. The
output is byte-for-byte reproducible (gzip with no timestamp).

    python scripts/make_embedded_subset.py [--source /usr/share/datasets/fashion-mnist]
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from tinygrad_cnn.data.datasets import EMBEDDED_DIR, SPLIT_FILES, FashionMNIST
from tinygrad_cnn.data.idx import write_idx

PER_CLASS = {True: 600, False: 100}  # train, test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="/usr/share/datasets/fashion-mnist", help="folder with the full set")
    parser.add_argument("--out", type=Path, default=EMBEDDED_DIR, help="where to write the subset")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for train, per_class in PER_CLASS.items():
        full = FashionMNIST(root=args.source, train=train)
        subset = full.balanced_subset(per_class * len(full.classes))
        assert (subset.class_counts() == per_class).all()
        image_stem, label_stem = SPLIT_FILES[train]
        for stem, array in ((image_stem, subset.images), (label_stem, subset.labels.astype("uint8"))):
            path = args.out / f"{stem}.gz"
            write_idx(path, array, gzip=True)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            print(f"{path}: {array.shape} {array.dtype}, {path.stat().st_size:,} bytes, sha256 {digest}…")


if __name__ == "__main__":
    main()
