"""PyTorch's quickstart, the way a PyTorch user writes it, on tinygrad_cnn: `import tinygrad_cnn as torch`.

    python examples/quickstart.py [--limit N] [--epochs 5]    # N training images (default 6,000; 0: all)

The steps of PyTorch's beginner quickstart (pytorch/tutorials,
beginner_source/basics/quickstart_tutorial.py), in our words: Fashion-MNIST
loaders, a three-layer perceptron, a train and a test loop with
`nn.CrossEntropyLoss` and `torch.optim.SGD`, then saving the weights, loading
them into a fresh model and predicting one image. Every name used here is
PyTorch's (`torch.cuda.is_available()`, `.to(device)`, `.type(torch.float)`,
`torch.save(model.state_dict(), ...)`, `classes[pred[0].argmax(0)]`); only the
imports and the data lines would differ from the PyTorch script. docs/porting.md
lists what differs underneath.
"""

import argparse
import tempfile
from pathlib import Path

import tinygrad_cnn as torch
from tinygrad_cnn import nn
from tinygrad_cnn.data import DataLoader, FashionMNIST

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


class NeuralNetwork(nn.Module):
    """28×28 pixels → 512 → 512 → 10 class scores, ReLU between."""

    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, 512), nn.ReLU(),
            nn.Linear(512, 512), nn.ReLU(),
            nn.Linear(512, 10),
        )

    def forward(self, x):
        return self.linear_relu_stack(self.flatten(x))


def train(dataloader, model, loss_fn, optimizer, device):
    """One pass over the training set: forward, loss, backward, step; a line every 100 batches."""
    size = len(dataloader.dataset)
    model.train()
    for batch, (X, y) in enumerate(dataloader):
        X, y = X.to(device), y.to(device)
        loss = loss_fn(model(X), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if batch % 100 == 0:
            print(f"loss: {loss.item():>7f}  [{(batch + 1) * len(X):>5d}/{size:>5d}]")


def test(dataloader, model, loss_fn, device):
    """Accuracy and mean loss on the test set, without recording a graph."""
    model.eval()
    test_loss, correct = 0.0, 0.0
    with torch.no_grad():
        for X, y in dataloader:
            X, y = X.to(device), y.to(device)
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
    accuracy = correct / len(dataloader.dataset)
    print(f"Test Error: \n Accuracy: {100 * accuracy:>0.1f}%, Avg loss: {test_loss / len(dataloader):>8f} \n")
    return accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description="PyTorch's quickstart on tinygrad_cnn.")
    parser.add_argument("--limit", type=int, default=6000, metavar="N",
                        help="train on N images and test on N/6, the first of each class (0: all; default 6000)")
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()

    # the data lines: our FashionMNIST finds the files itself and gives float32 images in [0, 1]
    training_data, test_data = FashionMNIST(train=True), FashionMNIST(train=False)
    if args.limit:
        training_data = training_data.balanced_subset(min(args.limit, len(training_data)))
        test_data = test_data.balanced_subset(min(max(args.limit // 6, 10), len(test_data)))
    train_dataloader = DataLoader(training_data, batch_size=64)
    test_dataloader = DataLoader(test_data, batch_size=64)
    X, y = next(iter(test_dataloader))
    print(f"Shape of X [N, C, H, W]: {X.shape}\nShape of y: {y.shape} {y.dtype}")

    device = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    print(f"Using {device} device")
    torch.manual_seed(0)
    model = NeuralNetwork().to(device)
    print(model)

    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    for t in range(args.epochs):
        print(f"Epoch {t + 1}\n-------------------------------")
        train(train_dataloader, model, loss_fn, optimizer, device)
        test(test_dataloader, model, loss_fn, device)

    path = Path(tempfile.mkdtemp()) / "model.pth"
    torch.save(model.state_dict(), path)  # safetensors inside, whatever the name
    print(f"Saved PyTorch Model State to {path}")
    model = NeuralNetwork().to(device)
    model.load_state_dict(torch.load(path, weights_only=True))

    model.eval()
    x, y = test_data[0][0], test_data[0][1]
    with torch.no_grad():
        pred = model(torch.tensor(x[None]).to(device))
        print(f'Predicted: "{CLASSES[pred[0].argmax(0)]}", Actual: "{CLASSES[y]}"')


if __name__ == "__main__":
    main()
