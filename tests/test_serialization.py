"""Tests for nn.save / nn.load: safetensors round trips, PyTorch interop, atomic writes, damaged files."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.nn import serialization

pytest.importorskip("safetensors")


def _model():
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))


def _torch_model(torch):
    tnn = torch.nn
    return tnn.Sequential(tnn.Conv2d(1, 2, 3), tnn.BatchNorm2d(2), tnn.ReLU(), tnn.Flatten(), tnn.Linear(8, 3))


def test_round_trip_module_and_metadata(tmp_path):
    model = _model()
    model(Tensor(np.random.default_rng(0).standard_normal((4, 1, 4, 4)).astype(np.float32)))  # move the stats
    path = tmp_path / "m.safetensors"
    nn.save(model, path, metadata={"epoch": "3"})
    loaded = nn.load(path)
    expected = model.state_dict()
    assert set(loaded) == set(expected)
    for k, v in expected.items():
        assert loaded[k].dtype == v.dtype and loaded[k].shape == v.shape, k
        np.testing.assert_array_equal(loaded[k], v)
    assert nn.load_metadata(path) == {"epoch": "3"}
    fresh = _model()
    fresh.load_state_dict(loaded)
    for k, v in fresh.state_dict().items():
        np.testing.assert_array_equal(v, expected[k])


def test_save_a_dict_of_arrays_and_tensors(tmp_path):
    path = str(tmp_path / "d.safetensors")
    nn.save({"a": np.arange(6, dtype=np.int32).reshape(2, 3).T, "b": Tensor(np.ones(2, dtype=np.float64))}, path)
    loaded = nn.load(path)
    np.testing.assert_array_equal(loaded["a"], np.arange(6).reshape(2, 3).T)  # non-contiguous input is fine
    assert loaded["b"].dtype == np.float64
    assert nn.load_metadata(path) == {}


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="str to str"):
        nn.save(_model(), tmp_path / "x.safetensors", metadata={"epoch": 3})
    with pytest.raises(TypeError, match="keys must be strings"):
        nn.save({1: np.zeros(1)}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="Module or a dict"):
        nn.save([np.zeros(1)], tmp_path / "x.safetensors")


def test_pytorch_loads_ours_and_we_load_pytorchs(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file, save_file

    ours = _model()
    ours(Tensor(np.random.default_rng(0).standard_normal((4, 1, 4, 4)).astype(np.float32)))
    ours.eval()
    path = tmp_path / "ours.safetensors"
    nn.save(ours, path)
    theirs = _torch_model(torch).eval()
    theirs.load_state_dict(load_file(str(path)))  # strict: same keys, shapes and dtypes
    x = np.random.default_rng(1).standard_normal((2, 1, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(theirs(torch.tensor(x)).detach().numpy(), ours(Tensor(x)).data, atol=1e-5)

    other = _torch_model(torch).eval()
    back = tmp_path / "theirs.safetensors"
    save_file(other.state_dict(), str(back))
    ours.load_state_dict(nn.load(back))
    np.testing.assert_allclose(other(torch.tensor(x)).detach().numpy(), ours(Tensor(x)).data, atol=1e-5)


@pytest.mark.parametrize("failing", ["fsync", "replace", "serialize"])
def test_a_crash_mid_save_leaves_the_old_checkpoint(tmp_path, monkeypatch, failing):
    path = tmp_path / "m.safetensors"
    old = _model()
    nn.save(old, path)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("simulated crash")

    if failing == "serialize":
        import safetensors.numpy

        monkeypatch.setattr(safetensors.numpy, "save", crash)
    else:
        monkeypatch.setattr(serialization.os, failing, crash)
    with pytest.raises(OSError, match="simulated crash"):
        nn.save(_model(), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.safetensors"]  # no temporary file left behind
    loaded = nn.load(path)
    assert all(np.array_equal(loaded[k], v) for k, v in old.state_dict().items())


def test_missing_and_corrupt_files(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(FileNotFoundError, match=r"nope\.safetensors"):
        nn.load(missing)
    with pytest.raises(FileNotFoundError, match=r"nope\.safetensors"):
        nn.load_metadata(missing)
    good = tmp_path / "good.safetensors"
    nn.save(_model(), good)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-10])
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"this is not a checkpoint")
    for bad in (truncated, garbage):
        with pytest.raises(ValueError, match=re.escape(bad.name)):
            nn.load(bad)
        with pytest.raises(ValueError, match=re.escape(bad.name)):
            nn.load_metadata(bad)
