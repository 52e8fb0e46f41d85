# slow-example
"""Train a convolutional network on Fashion-MNIST with the explicit loop of a PyTorch tutorial.

    python examples/train_cnn.py [--epochs 1] [--limit N]

Uses the full data set if it is installed, the embedded 6,000-image subset otherwise.
A full epoch takes about a minute on two cores; --limit 2000 gives a first look in about ten seconds.
"""

import argparse

import numpy as np

import tinygrad_cnn.nn.functional as F
from tinygrad_cnn import Tensor, data, nn, no_grad, optim

parser = argparse.ArgumentParser(description="Train a CNN on Fashion-MNIST.")
parser.add_argument("--epochs", type=int, default=1)
parser.add_argument("--limit", type=int, default=None, metavar="N", help="train on the first N images only")
args = parser.parse_args()

Tensor.manual_seed(0)
train_set, test_set = data.FashionMNIST(train=True), data.FashionMNIST(train=False)
if args.limit:
    train_set = train_set.subset(np.arange(min(args.limit, len(train_set))))
train_loader = data.DataLoader(train_set, batch_size=64, shuffle=True, seed=0)
test_loader = data.DataLoader(test_set, batch_size=1000)

model = nn.Sequential(
    nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 32 × 14 × 14
    nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 64 × 7 × 7
    nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
)
optimizer = optim.Adam(model.parameters(), lr=1e-3)
print(f"{model.num_parameters():,} parameters, {len(train_set):,} training images")

for epoch in range(1, args.epochs + 1):
    model.train()
    total_loss, correct = 0.0, 0
    for images, labels in train_loader:
        logits = model(images)
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(labels)
        correct += (logits.argmax(axis=1) == labels).sum().item()

    model.eval()
    test_correct = 0
    with no_grad():
        for images, labels in test_loader:
            test_correct += (model(images).argmax(axis=1) == labels).sum().item()
    print(f"epoch {epoch}: train loss {total_loss / len(train_set):.4f}, "
          f"train accuracy {correct / len(train_set):.4f}, test accuracy {test_correct / len(test_set):.4f}")
