"""examples/quickstart.py, PyTorch's quickstart written with `import tinygrad_cnn as torch`, matches PyTorch.

With the same starting weights and the same batches, the training losses and
the final weights agree with a PyTorch run of the same model, loss and
optimizer to float32 rounding; the save / load / predict ending runs.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np

import tinygrad_cnn
from tinygrad_cnn.data import DataLoader, FashionMNIST

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "quickstart.py"


def load_example():
    spec = importlib.util.spec_from_file_location("quickstart_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_runs_to_its_prediction(tmp_path):
    result = subprocess.run([sys.executable, str(EXAMPLE), "--limit", "600", "--epochs", "1"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, check=True)
    assert "Using cpu device" in result.stdout and "Accuracy:" in result.stdout
    assert "Predicted:" in result.stdout and "Saved PyTorch Model State" in result.stdout


def test_the_same_weights_and_batches_give_pytorchs_losses(torch):
    example = load_example()
    tinygrad_cnn.manual_seed(0)
    ours = example.NeuralNetwork()
    tnn = torch.nn
    theirs = tnn.Sequential(tnn.Flatten(), tnn.Sequential(
        tnn.Linear(784, 512), tnn.ReLU(), tnn.Linear(512, 512), tnn.ReLU(), tnn.Linear(512, 10)))
    theirs.load_state_dict({k.replace("linear_relu_stack.", "1."): torch.tensor(np.asarray(v))
                            for k, v in ours.state_dict().items()})
    loader = DataLoader(FashionMNIST(train=True).balanced_subset(640), batch_size=64)
    loss_ours, loss_theirs = example.nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    opt_ours = tinygrad_cnn.optim.SGD(ours.parameters(), lr=1e-3)
    opt_theirs = torch.optim.SGD(theirs.parameters(), lr=1e-3)
    for X, y in loader:
        a = loss_ours(ours(X), y)
        a.backward()
        opt_ours.step()
        opt_ours.zero_grad()
        b = loss_theirs(theirs(torch.tensor(X.numpy())), torch.tensor(y.numpy()))
        b.backward()
        opt_theirs.step()
        opt_theirs.zero_grad()
        assert abs(a.item() - b.item()) <= 2e-6 * abs(b.item())
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.data, q.detach().numpy(), atol=1e-6, err_msg=name)
