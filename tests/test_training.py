"""The training loop: it learns, it resumes exactly (after full epochs and after Ctrl-C), the CLI runs it."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest

from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.checkpoint import load_checkpoint, save_checkpoint
from tinygrad_cnn.cli import main
from tinygrad_cnn.data import TensorDataset, write_idx
from tinygrad_cnn.training import TrainConfig, Trainer, seed_everything


def bright_square_dataset(n: int, seed: int) -> TensorDataset:
    """Class k = a bright 7×7 square in cell k of a 3×3 grid (9 classes) on noise: easy, but not linear."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 9, n)
    images = rng.random((n, 1, 28, 28)).astype(np.float32) * 0.3
    for i, k in enumerate(labels):
        r, c = divmod(int(k), 3)
        images[i, 0, 2 + 9 * r:9 + 9 * r, 2 + 9 * c:9 + 9 * c] += 0.7
    return TensorDataset(images, labels)


def small_model() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 9))


def make_trainer(epochs: int, out=None, wrap=None, optimizer: str = "adam", schedule: str = "none") -> Trainer:
    """The same seeded run every time: seed, build the model (optionally wrapped), then the trainer."""
    seed_everything(0)
    model = small_model() if wrap is None else wrap(small_model())
    config = TrainConfig(model="mlp", epochs=epochs, batch_size=32, seed=0, optimizer=optimizer, schedule=schedule)
    return Trainer(config, model, bright_square_dataset(320, 0), bright_square_dataset(160, 1), out=out,
                   progress=False)


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    for (key, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert np.array_equal(x, y), key


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_learns(optimizer):
    trainer = make_trainer(4, optimizer=optimizer)
    history = trainer.fit()
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["test_acc"] > 0.8  # chance is 1/9


@pytest.mark.parametrize("schedule", ["none", "cosine"])
def test_resume_after_two_epochs_equals_three_uninterrupted(tmp_path, schedule):
    straight = make_trainer(3, tmp_path / "straight", schedule=schedule)
    straight.fit()
    interrupted = make_trainer(3, tmp_path / "resumed", schedule=schedule)
    interrupted.config.epochs = 2  # the same run, stopped after two of its three epochs
    interrupted.fit()
    resumed = make_trainer(3, tmp_path / "resumed", schedule=schedule)
    assert resumed.resume() and resumed.epoch == 2
    resumed.fit()
    assert_same_weights(straight.model, resumed.model)
    assert [r["test_loss"] for r in straight.history] == [r["test_loss"] for r in resumed.history]
    assert [r["lr"] for r in straight.history] == [r["lr"] for r in resumed.history]
    lines = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    assert (tmp_path / "resumed" / "curves.png").stat().st_size > 1000


class InterruptAfter(nn.Module):
    """Wraps a model and sends this process Ctrl-C (SIGINT) during its n-th forward call."""

    def __init__(self, model: nn.Module, n: int):
        super().__init__()
        self.model, self.n, self.calls = model, n, 0

    def forward(self, x: Tensor) -> Tensor:
        self.calls += 1
        if self.calls == self.n:
            signal.raise_signal(signal.SIGINT)
        return self.model(x)


def test_ctrl_c_saves_mid_epoch_and_resume_is_exact(tmp_path):
    straight = make_trainer(2)
    straight.fit()
    interrupted = make_trainer(2, tmp_path, wrap=lambda m: InterruptAfter(m, n=14))
    interrupted.fit()
    assert interrupted.interrupted and interrupted.epoch == 1  # stopped inside epoch 2 (10 steps per epoch)
    resumed = make_trainer(2, tmp_path, wrap=lambda m: InterruptAfter(m, n=-1))
    assert resumed.resume()
    resumed.fit()
    assert_same_weights(straight.model, resumed.model.model)
    assert straight.history[-1]["train_loss"] == pytest.approx(resumed.history[-1]["train_loss"], rel=1e-12)


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path):
    make_trainer(1, tmp_path).fit()
    other = make_trainer(2, tmp_path, optimizer="sgd")
    with pytest.raises(ValueError, match="different run"):
        other.resume()


def test_checkpoint_round_trip_and_corrupt_file(tmp_path):
    state = {"epoch": 3, "w": np.arange(6, dtype=np.float32).reshape(2, 3), "count": np.array(5),
             "opt": {"state": {0: {"m": np.ones(2)}}},
             "rng": {"state": {"state": 2**100, "inc": 7}}, "history": [{"loss": 0.5}]}
    save_checkpoint(tmp_path / "c.safetensors", state)
    back = load_checkpoint(tmp_path / "c.safetensors")
    assert back["epoch"] == 3 and back["rng"]["state"]["state"] == 2**100 and back["history"] == [{"loss": 0.5}]
    assert np.array_equal(back["w"], state["w"]) and np.array_equal(back["opt"]["state"][0]["m"], np.ones(2))
    assert back["count"].shape == () and back["count"] == 5
    (tmp_path / "bad.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"bad\.safetensors"):
        load_checkpoint(tmp_path / "bad.safetensors")
    with pytest.raises(FileNotFoundError, match=r"missing\.safetensors"):
        load_checkpoint(tmp_path / "missing.safetensors")


def write_fashion_like(folder, n_train: int = 128, n_test: int = 64) -> None:
    data = {True: bright_square_dataset(n_train, 2), False: bright_square_dataset(n_test, 3)}
    for train, prefix in ((True, "train"), (False, "t10k")):
        ds = data[train]
        images = (np.clip(ds.images[:, 0], 0, 1) * 255).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", ds.labels.astype(np.uint8))


def test_cli_train_writes_its_outputs(tmp_path, capsys):
    write_fashion_like(tmp_path)
    out = tmp_path / "run"
    code = main(["train", "--model", "cnn", "--epochs", "1", "--batch-size", "32", "--data", str(tmp_path),
                 "--out", str(out)])
    assert code == 0
    assert {p.name for p in out.iterdir()} >= {"checkpoint.safetensors", "model.safetensors", "metrics.jsonl",
                                               "curves.png"}
    assert "parameters" in capsys.readouterr().out
    code = main(["train", "--model", "cnn", "--epochs", "2", "--batch-size", "32", "--data", str(tmp_path),
                 "--out", str(out), "--resume"])
    assert code == 0
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2


def test_cli_resume_with_another_model_is_a_clear_error(tmp_path, capsys):
    write_fashion_like(tmp_path)
    common = ["--epochs", "1", "--batch-size", "32", "--data", str(tmp_path), "--out", str(tmp_path / "run")]
    assert main(["train", "--model", "mlp", *common]) == 0
    capsys.readouterr()
    assert main(["train", "--model", "cnn", "--resume", *common]) == 2
    err = capsys.readouterr().err
    assert "--model cnn: the run in" in err and "started with mlp" in err


def test_cli_train_without_data_says_how_to_get_it(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")]) == 2
    assert "dataset-fashion-mnist" in capsys.readouterr().err
