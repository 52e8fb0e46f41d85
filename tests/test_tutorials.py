"""PyTorch's beginner tutorials, with only their import and data lines changed, run on tinygrad_cnn.

tests/tutorials/original/ holds six tutorials of pytorch/tutorials verbatim, and
tests/tutorials/ported/ the same files where `import torch` became
`import tinygrad_cnn as torch` and torchvision's data became `tinygrad_cnn.data`
(tests/tutorials/README.md lists every change). Three kinds of test:

1. The port changes nothing else: every line that differs is an import or one of
   the data lines listed in `DATA_LINES`, so "the ported script runs" means
   "PyTorch's tutorial runs with its import and data lines changed".
2. Each ported script runs to its end in a subprocess, from a temporary working
   directory, on a small Fashion-MNIST written there (`TINYGRAD_CNN_DATA` points
   `data.FashionMNIST()` at it: the size cap lives in the environment, not in the
   script).
3. With PyTorch installed: the tutorials' own code (taken from the two files),
   started from the same weights and fed the same batches in the same order,
   gives PyTorch's losses, gradients and weights to float32 rounding.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import io
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinygrad_cnn
from tinygrad_cnn import data
from tinygrad_cnn.data.datasets import SPLIT_FILES, to_float_images

ROOT = Path(__file__).resolve().parents[1]
# PyTorch's tutorials are not copied into this repository (third-party text): point TINYGRAD_CNN_TUTORIALS at
# a folder with original/ (pytorch/tutorials' six files) and ported/ (the same with the import and data lines
# changed) and a README.md that counts the changed lines, to run these tests. tests/test_torch_namespace.py and
# tests/test_quickstart_example.py cover the same names without them.
TUTORIALS = Path(os.environ.get("TINYGRAD_CNN_TUTORIALS", ROOT / "tests" / "tutorials"))
pytestmark = pytest.mark.skipif(not (TUTORIALS / "ported").is_dir(),
                                reason="set TINYGRAD_CNN_TUTORIALS to a folder of PyTorch's tutorials and their ports")
NAMES = [
    "quickstart_tutorial.py",
    "buildmodel_tutorial.py",
    "autogradqs_tutorial.py",
    "optimization_tutorial.py",
    "saveloadrun_tutorial.py",
    "neural_networks_tutorial.py",
]
N_TRAIN, N_TEST = 640, 200  # 10 training batches of 64: 5 (quickstart) or 10 (optimization) epochs take a second
TIMEOUT_S = 120

# The lines the port may change besides imports: torchvision's data and model-zoo lines (as in the originals)
# and what replaced them. Everything else must be byte for byte PyTorch's.
_FASHION_MNIST = ['    root="data",', "    download=True,", "    transform=ToTensor(),", "    transform=ToTensor()"]
DATA_LINES: dict[str, set[str]] = {
    "quickstart_tutorial.py": set(_FASHION_MNIST),
    "optimization_tutorial.py": set(_FASHION_MNIST),
    "saveloadrun_tutorial.py": {
        "model = models.vgg16(weights='IMAGENET1K_V1')",
        "model = models.vgg16() # we do not specify ``weights``, i.e. create untrained model",
        "model = models.cnn()",
        "model = models.cnn() # we do not specify ``weights``, i.e. create untrained model",
    },
}


def _is_import(line: str) -> bool:
    return re.match(r"(import \w|from [\w.]+ import )", line) is not None


def changed_lines(name: str) -> tuple[list[str], list[str]]:
    """The lines of the original that the port removed, and those it added."""
    original = (TUTORIALS / "original" / name).read_text(encoding="utf-8").splitlines()
    ported = (TUTORIALS / "ported" / name).read_text(encoding="utf-8").splitlines()
    diff = list(difflib.unified_diff(original, ported, lineterm="", n=0))[2:]
    removed = [d[1:] for d in diff if d.startswith("-")]
    added = [d[1:] for d in diff if d.startswith("+")]
    return removed, added


@pytest.mark.parametrize("name", NAMES)
def test_port_changes_only_import_and_data_lines(name: str) -> None:
    removed, added = changed_lines(name)
    assert removed or added, f"{name}: the ported copy is identical to PyTorch's"
    other = [line for line in removed + added if not _is_import(line) and line not in DATA_LINES.get(name, set())]
    assert not other, f"{name}: the port changed lines that are neither imports nor data lines: {other}"
    assert not any("torchvision" in line or re.search(r"\bimport torch\b|from torch\b", line)
                   for line in (TUTORIALS / "ported" / name).read_text(encoding="utf-8").splitlines()
                   if not line.lstrip().startswith("#")), f"{name}: the port still imports torch or torchvision"


def test_readme_counts_the_changed_lines() -> None:
    """tests/tutorials/README.md says how many lines each port changed: keep it true."""
    readme = (TUTORIALS / "README.md").read_text(encoding="utf-8")
    for name in NAMES:
        removed, added = changed_lines(name)
        row = re.search(rf"^\| `{re.escape(name)}` \| (\d+) \| (\d+) \|", readme, re.MULTILINE)
        assert row, f"tests/tutorials/README.md has no table row for {name}"
        assert (int(row[1]), int(row[2])) == (len(removed), len(added)), (
            f"README says {name} has {row[1]} removed / {row[2]} added lines; the files have "
            f"{len(removed)} / {len(added)}")


@pytest.fixture(scope="module")
def small_fashion_mnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for `TINYGRAD_CNN_DATA`: the first N_TRAIN / N_TEST images of Fashion-MNIST, class-balanced.

    `balanced_subset` takes the first images of each class in file order, so the
    files are the same whether the full data set or the embedded subset (itself
    the first 600 / 100 images of each class) is installed.
    """
    home = tmp_path_factory.mktemp("data")
    folder = home / data.FashionMNIST.subfolder
    folder.mkdir()
    with contextlib.redirect_stderr(io.StringIO()):  # the embedded subset announces itself; not news here
        for train, n in ((True, N_TRAIN), (False, N_TEST)):
            subset = data.FashionMNIST(train=train).balanced_subset(n)
            images_file, labels_file = SPLIT_FILES[train]
            data.write_idx(folder / images_file, subset.images)
            data.write_idx(folder / labels_file, subset.labels.astype(np.uint8))
    return home


def _env(data_home: Path, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "TINYGRAD_CNN_DATA": str(data_home), "MPLBACKEND": "Agg", "TMPDIR": str(tmp_path),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def run_ported(name: str, data_home: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = TUTORIALS / "ported" / name
    try:
        return subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=_env(data_home, tmp_path),
                              capture_output=True, text=True, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout or ""
        pytest.fail(f"{name} ran past {TIMEOUT_S} s\n--- stdout so far (tail)\n{out[-2000:]}")


def _report(name: str, result: subprocess.CompletedProcess[str]) -> str:
    return (f"{name} exited with {result.returncode}\n--- stdout (tail)\n{result.stdout[-2000:]}"
            f"\n--- stderr (tail)\n{result.stderr[-3000:]}")


# What each script must print on its way, besides exiting with 0: evidence that it got to the end.
EXPECTED_OUTPUT = {
    "quickstart_tutorial.py": ["Shape of X [N, C, H, W]:", "Using cpu device", f"/{N_TRAIN:>5d}]", "Epoch 5\n", "Done!",
                               "Saved PyTorch Model State to model.pth", 'Predicted: "'],
    "buildmodel_tutorial.py": ["Using cpu device", "Predicted class:", "Model structure:",
                               "Layer: linear_relu_stack.4.bias | Size:"],
    "autogradqs_tutorial.py": ["Gradient function for z =", "First call", "Call after zeroing gradients"],
    "optimization_tutorial.py": [f"/{N_TRAIN:>5d}]", "Epoch 10\n", "Accuracy:", "Done!"],
    "neural_networks_tutorial.py": ["conv1.bias.grad before backward", "conv1.bias.grad after backward"],
}


@pytest.mark.parametrize("name", [n for n in NAMES if n != "saveloadrun_tutorial.py"])
def test_ported_tutorial_runs(name: str, small_fashion_mnist: Path, tmp_path: Path) -> None:
    result = run_ported(name, small_fashion_mnist, tmp_path)
    assert result.returncode == 0, _report(name, result)
    for text in EXPECTED_OUTPUT[name]:
        assert text in result.stdout, f"{name}: expected {text!r} in its output\n{_report(name, result)}"


def test_saveloadrun_runs_until_pickling_a_whole_module(small_fashion_mnist: Path, tmp_path: Path) -> None:
    """The tutorial's first half (a state_dict saved and loaded back) runs; its second half pickles a whole
    module, which tinygrad_cnn refuses by design (loading a pickle can run any code). The script must stop
    exactly there, with an error that says why and what to do instead."""
    name = "saveloadrun_tutorial.py"
    result = run_ported(name, small_fashion_mnist, tmp_path)
    assert (tmp_path / "model_weights.pth").is_file(), _report(name, result)
    assert result.returncode == 1, _report(name, result)
    source = (TUTORIALS / "ported" / name).read_text(encoding="utf-8").splitlines()
    line = source.index("torch.save(model, 'model.pth')") + 1
    assert f'{name}", line {line}, in <module>' in result.stderr, _report(name, result)
    last = result.stderr.strip().splitlines()[-1]
    assert "pickle" in last.lower() and "state_dict" in last, f"the refusal should say why and what to do: {last}"
    assert not (tmp_path / "model.pth").exists(), "a refused save must not leave a file behind"


# ----------------------------------------------------------------------------- the numbers are PyTorch's


def _statements(path: Path) -> list[ast.stmt]:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body


def _run(path: Path, statements: list[ast.stmt], namespace: dict[str, Any]) -> dict[str, Any]:
    """Execute some top-level statements of a tutorial (with their real line numbers) in `namespace`."""
    module = ast.Module(body=statements, type_ignores=[])
    exec(compile(module, str(path), "exec"), namespace)
    return namespace


def _definitions(path: Path, names: set[str]) -> list[ast.stmt]:
    """The tutorial's top-level classes, functions and assignments to `names`, in file order."""
    def wanted(node: ast.stmt) -> bool:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            return node.name in names
        return isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in names for t in node.targets)
    return [node for node in _statements(path) if wanted(node)]


def _until_loop_over(path: Path, iterable: str) -> list[ast.stmt]:
    """The tutorial's statements before its first top-level `for ... in <iterable>` loop."""
    body = _statements(path)
    for i, node in enumerate(body):
        if isinstance(node, ast.For) and ast.unparse(node.iter) == iterable:
            return body[:i]
    raise AssertionError(f"{path.name}: no top-level `for ... in {iterable}` loop")


def _code_blocks_in_comments(path: Path) -> list[str]:
    """The `.. code:: python` blocks that a tutorial shows in its comments (sphinx-gallery text)."""
    blocks, lines = [], path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "# .. code:: python":
            body = []
            for nxt in lines[i + 1:]:
                text = nxt[1:] if nxt.startswith("#") else None
                if text is None or (text.strip() and not text.startswith("    ")):
                    break
                body.append(text)
            blocks.append(textwrap.dedent("\n".join(body)).strip() + "\n")
    return blocks


def _port_imports(code: str) -> str:
    """A code block's imports as the port writes them (the blocks live in comments, which the port keeps)."""
    return re.sub(r"^import torch\.(\w+) as", r"import tinygrad_cnn.\1 as", code, flags=re.MULTILINE)


@contextlib.contextmanager
def _quiet() -> Iterator[io.StringIO]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        yield out


def _recording(loss_fn: Callable[..., Any], losses: list[float]) -> Callable[..., Any]:
    """`loss_fn`, remembering each value it returns: how the training loops' losses are read."""
    def record(pred: Any, y: Any) -> Any:
        loss = loss_fn(pred, y)
        losses.append(loss.item())
        return loss
    return record


def _numpy(t: Any) -> np.ndarray:
    return t.detach().numpy() if hasattr(t, "detach") and hasattr(t, "numpy") else np.asarray(t.data)


def _copy_weights_into_torch(ours: Any, theirs: Any, torch: Any) -> None:
    ours_state = {k: np.array(_numpy(v)) for k, v in ours.state_dict().items()}
    assert list(ours_state) == list(theirs.state_dict()), "state_dict keys or their order differ from PyTorch's"
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours_state.items()})


def _assert_same_weights(ours: Any, theirs: Any, atol: float) -> None:
    theirs_state = theirs.state_dict()
    for key, value in ours.state_dict().items():
        np.testing.assert_allclose(_numpy(value), theirs_state[key].numpy(), rtol=0, atol=atol, err_msg=key)


def _quickstart_in_both(torch: Any, epochs: int) -> tuple[dict[str, list[float]], dict, dict]:
    """The quickstart's own `train` and `test` for `epochs` epochs, from the same weights, on the same batches.

    Ours is the ported script itself, run up to its epoch loop (data, model, loss_fn, optimizer,
    train, test); PyTorch's is the original's class, functions, loss_fn and optimizer lines, fed
    the same float32 batches by torch's DataLoader. Returns the losses each side computed.
    """
    name = "quickstart_tutorial.py"
    ported, original = TUTORIALS / "ported" / name, TUTORIALS / "original" / name
    with _quiet():
        ours = _run(ported, _until_loop_over(ported, "range(epochs)"), {"__name__": "__main__"})
    theirs = _run(original, _definitions(original, {"NeuralNetwork", "train", "test"}),
                  {"torch": torch, "nn": torch.nn, "device": "cpu"})
    theirs["model"] = theirs["NeuralNetwork"]()
    _copy_weights_into_torch(ours["model"], theirs["model"], torch)
    _run(original, _definitions(original, {"loss_fn", "optimizer"}), theirs)

    def torch_loader(dataset: Any) -> Any:
        images = torch.from_numpy(to_float_images(dataset.images))
        labels = torch.from_numpy(dataset.labels)
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels),
                                           batch_size=ours["batch_size"])

    theirs["train_dataloader"] = torch_loader(ours["training_data"])
    theirs["test_dataloader"] = torch_loader(ours["test_data"])
    losses: dict[str, list[float]] = {}
    for side, ns in (("ours", ours), ("torch", theirs)):
        train_losses, test_losses = losses.setdefault(f"{side} train", []), losses.setdefault(f"{side} test", [])
        with _quiet():
            for _ in range(epochs):
                ns["train"](ns["train_dataloader"], ns["model"], _recording(ns["loss_fn"], train_losses),
                            ns["optimizer"])
                ns["test"](ns["test_dataloader"], ns["model"], _recording(ns["loss_fn"], test_losses))
    assert len(losses["ours train"]) == epochs * len(ours["train_dataloader"])
    return losses, ours, theirs


def test_quickstart_losses_match_pytorch(small_fashion_mnist: Path, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    """Two epochs on the small data set: every training and test loss, then the weights."""
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("TINYGRAD_CNN_DATA", str(small_fashion_mnist))
    monkeypatch.chdir(tmp_path)
    losses, ours, theirs = _quickstart_in_both(torch, epochs=2)
    # Measured: losses differ by at most 2e-7 relative (4.8e-7 absolute), weights by 4e-9 (one float32 ulp
    # at their size). The bounds leave room for another BLAS's summation order; a wrong update rule or
    # gradient would show in the losses first, which move by 1e-3 to 1e-2 per step here.
    np.testing.assert_allclose(losses["ours train"], losses["torch train"], rtol=2e-6, atol=0)
    np.testing.assert_allclose(losses["ours test"], losses["torch test"], rtol=2e-6, atol=0)
    _assert_same_weights(ours["model"], theirs["model"], atol=1e-6)


@pytest.mark.slow
def test_quickstart_full_epoch_matches_pytorch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """One epoch on the data set as installed (60,000 images with the full set): 938 steps, not 20."""
    torch = pytest.importorskip("torch")
    monkeypatch.delenv("TINYGRAD_CNN_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    losses, ours, theirs = _quickstart_in_both(torch, epochs=1)
    # Measured on the full set (14 s): losses differ by at most 1.5e-6 relative (3.1e-6 absolute),
    # weights by 3.4e-6: rounding differences that 938 SGD steps carry along, nothing more.
    np.testing.assert_allclose(losses["ours train"], losses["torch train"], rtol=1e-5, atol=0)
    np.testing.assert_allclose(losses["ours test"], losses["torch test"], rtol=1e-5, atol=0)
    _assert_same_weights(ours["model"], theirs["model"], atol=2e-5)


def test_blitz_code_in_comments_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The LeNet tutorial shows its weight updates in comments (`f.data.sub_(...)`, then `torch.optim`):
    they run after the ported script, with the port's imports, and the second one lowers the loss."""
    name = "neural_networks_tutorial.py"
    monkeypatch.chdir(tmp_path)
    with _quiet():
        ns = _run(TUTORIALS / "ported" / name, _statements(TUTORIALS / "ported" / name), {"__name__": "__main__"})
    _, manual_step, optim_loop = _code_blocks_in_comments(TUTORIALS / "ported" / name)
    before = {k: np.array(v.data) for k, v in ns["net"].named_parameters()}
    exec(manual_step, ns)
    for key, param in ns["net"].named_parameters():
        np.testing.assert_allclose(param.data, before[key] - 0.01 * _numpy(param.grad), rtol=1e-6, atol=1e-7,
                                   err_msg=key)
    losses = []
    for _ in range(5):
        exec(_port_imports(optim_loop), ns)
        losses.append(ns["loss"].item())
    assert losses[-1] < losses[0], f"five SGD steps on one example should lower its loss: {losses}"


def test_lenet_matches_pytorch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The blitz tutorial's LeNet: output, loss and gradients, then its two update rules shown in comments."""
    torch = pytest.importorskip("torch")
    name = "neural_networks_tutorial.py"
    monkeypatch.chdir(tmp_path)
    with _quiet():  # ours: the whole ported script (random weights, input and target drawn by tinygrad_cnn)
        ours = _run(TUTORIALS / "ported" / name, _statements(TUTORIALS / "ported" / name), {"__name__": "__main__"})
    theirs = _run(TUTORIALS / "original" / name, _definitions(TUTORIALS / "original" / name, {"Net"}),
                  {"torch": torch, "nn": torch.nn, "F": torch.nn.functional})
    net = theirs["net"] = theirs["Net"]()
    _copy_weights_into_torch(ours["net"], net, torch)
    theirs["input"] = torch.from_numpy(np.array(_numpy(ours["input"])))
    theirs["target"] = torch.from_numpy(np.array(_numpy(ours["target"])))
    theirs["criterion"] = torch.nn.MSELoss()
    # The script's own steps, in PyTorch:
    out = net(theirs["input"])
    np.testing.assert_allclose(_numpy(ours["out"]), out.detach().numpy(), rtol=1e-5, atol=1e-6)
    theirs["output"] = output = net(theirs["input"])
    loss = theirs["criterion"](output, theirs["target"])
    assert ours["loss"].item() == pytest.approx(loss.item(), rel=2e-6)
    net.zero_grad()
    loss.backward()
    for key, param in net.named_parameters():
        ours_grad = dict(ours["net"].named_parameters())[key].grad
        np.testing.assert_allclose(_numpy(ours_grad), param.grad.numpy(), rtol=1e-5, atol=1e-7, err_msg=key)
    # Then the code the tutorial shows in comments: the hand-written SGD step, and torch.optim's loop.
    _, manual_step, optim_loop = _code_blocks_in_comments(TUTORIALS / "original" / name)
    assert "f.data.sub_(f.grad.data * learning_rate)" in manual_step
    for ns in (ours, theirs):
        exec(_port_imports(manual_step) if ns is ours else manual_step, ns)
    _assert_same_weights(ours["net"], net, atol=1e-7)
    step_losses: dict[str, list[float]] = {"ours": [], "torch": []}
    for _ in range(5):
        for side, ns in (("ours", ours), ("torch", theirs)):
            exec(_port_imports(optim_loop) if side == "ours" else optim_loop, ns)
            step_losses[side].append(ns["loss"].item())
    np.testing.assert_allclose(step_losses["ours"], step_losses["torch"], rtol=2e-6, atol=0)
    _assert_same_weights(ours["net"], net, atol=1e-7)


def test_autograd_tutorial_gradients_match_pytorch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The autograd tutorial's w.grad and b.grad, and its accumulated Jacobian products, are PyTorch's."""
    torch = pytest.importorskip("torch")
    name = "autogradqs_tutorial.py"
    monkeypatch.chdir(tmp_path)
    with _quiet():
        ours = _run(TUTORIALS / "ported" / name, _statements(TUTORIALS / "ported" / name), {"__name__": "__main__"})
    w = torch.tensor(np.array(_numpy(ours["w"])), requires_grad=True)
    b = torch.tensor(np.array(_numpy(ours["b"])), requires_grad=True)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(torch.matmul(torch.ones(5), w) + b, torch.zeros(3))
    loss.backward()
    np.testing.assert_allclose(_numpy(ours["w"].grad), w.grad.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(_numpy(ours["b"].grad), b.grad.numpy(), rtol=1e-6, atol=1e-7)
    # the last cell: two accumulated backward calls, a zero_(), and one more
    expected = 2 * (torch.eye(4, 5) + 1)
    np.testing.assert_allclose(_numpy(ours["inp"].grad), expected.numpy(), rtol=0, atol=0)
    assert isinstance(ours["inp"].grad, tinygrad_cnn.Tensor)
