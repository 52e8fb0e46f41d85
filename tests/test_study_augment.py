"""Shift augmentation (`TrainConfig.augment`, `train --augment shift`) and the compare options it comes with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_training import write_fashion_like

from tinygrad_cnn import models
from tinygrad_cnn.checkpoint import load_checkpoint
from tinygrad_cnn.cli import build_parser, main
from tinygrad_cnn.data import TensorDataset
from tinygrad_cnn.study.experiments import shift_images
from tinygrad_cnn.tensor import Tensor
from tinygrad_cnn.training import MAX_AUGMENT_SHIFT, TrainConfig, Trainer, augment_batch, seed_everything, shift_augment


def test_each_image_is_shifted_by_at_most_two_pixels() -> None:
    """Every output image is shift_images(input, dy, dx) for one (dy, dx) in [−2, 2]², drawn per image."""
    rng = np.random.default_rng(0)
    images = rng.random((64, 1, 9, 9)).astype(np.float32) + 0.1  # no zeros: every shift is recognisable
    out = shift_augment(images, np.random.default_rng(1))
    assert out.shape == images.shape and out.dtype == images.dtype
    shifts = []
    for x, y in zip(images, out):
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if np.array_equal(shift_images(x, dy, dx), y)]
        assert len(found) == 1
        shifts.append(found[0])
    assert len(set(shifts)) > 10  # drawn per image, not once per batch
    assert {dy for dy, _ in shifts} == {dx for _, dx in shifts} == set(range(-MAX_AUGMENT_SHIFT, MAX_AUGMENT_SHIFT + 1))


def test_shift_augment_is_reproducible_and_leaves_the_batch_alone() -> None:
    images = np.random.default_rng(0).random((8, 1, 6, 6)).astype(np.float32)
    before = images.copy()
    a, b = shift_augment(images, np.random.default_rng(5)), shift_augment(images, np.random.default_rng(5))
    assert np.array_equal(a, b) and np.array_equal(images, before)
    assert np.array_equal(shift_augment(images, np.random.default_rng(5), max_shift=0), images)


def test_augment_batch() -> None:
    x = Tensor(np.ones((2, 1, 5, 5), dtype=np.float32))
    assert augment_batch(TrainConfig(), x) is x
    seed_everything(0)
    assert augment_batch(TrainConfig(augment="shift"), x).shape == (2, 1, 5, 5)
    with pytest.raises(ValueError, match="unknown augmentation 'flip'"):
        augment_batch(TrainConfig(augment="flip"), x)


def _fit(augment: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    data = TensorDataset(rng.random((32, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 32))
    seed_everything(0)
    model = models.cnn_gap(channels=(2, 4))
    Trainer(TrainConfig(epochs=1, batch_size=16, augment=augment), model, data, data, progress=False).fit()
    return model.features[0].weight.numpy().copy()


def test_training_with_shifts_is_reproducible_and_differs() -> None:
    shifted = _fit("shift")
    assert np.array_equal(shifted, _fit("shift")) and not np.array_equal(shifted, _fit("none"))


def test_train_command_stores_augment_and_a_resume_keeps_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_fashion_like(tmp_path)
    out = tmp_path / "run"
    common = ["--model", "mlp", "--batch-size", "32", "--data", str(tmp_path), "--out", str(out)]
    assert main(["train", "--epochs", "1", "--augment", "shift", *common]) == 0
    assert load_checkpoint(out / "checkpoint.safetensors")["config"]["augment"] == "shift"
    code = main(["train", "--resume", "--epochs", "2", "--augment", "none", "--out", str(out)])
    assert code == 2 and "--augment none" in capsys.readouterr().err
    assert main(["train", "--resume", "--epochs", "2", "--out", str(out)]) == 0
    assert load_checkpoint(out / "checkpoint.safetensors")["config"]["augment"] == "shift"


def test_compare_options() -> None:
    parser = build_parser()
    args = parser.parse_args(["compare"])
    assert (args.seeds, args.augment, args.seed) == (None, "shift", 0)
    args = parser.parse_args(["compare", "--quick", "--seeds", "4", "--augment", "none"])
    assert (args.quick, args.seeds, args.augment) == (True, 4, "none")
    for bad in (["--seeds", "0"], ["--augment", "flip"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["compare", *bad])
    assert parser.parse_args(["train", "--augment", "shift"]).augment == "shift"
