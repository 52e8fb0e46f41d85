"""Tests for saving.save / saving.load: torch.save and torch.load for tensors and state dicts, as safetensors.

Round trips (dtypes, a lone Tensor, key order, requires_grad), a model's state_dict
into a fresh model, the errors that replace pickling, atomic writes, and interop:
our files read with safetensors and into a torch model, and torch.save's semantics
for what both can save.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

from tinygrad_cnn import Tensor, nn, optim
from tinygrad_cnn.saving import load, save

safetensors_numpy = pytest.importorskip("safetensors.numpy")

DTYPES = [np.float32, np.float64, np.int64, np.bool_, np.int32, np.uint8, np.float16]


def _model():
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3))


def _torch_model(torch):
    tnn = torch.nn
    return tnn.Sequential(tnn.Conv2d(1, 2, 3), tnn.BatchNorm2d(2), tnn.ReLU(), tnn.Flatten(), tnn.Linear(8, 3))


def _values(dtype, shape=(2, 3), seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 5).astype(dtype) if np.dtype(dtype).kind != "b" else rng.random(shape) < 0.5


# ============================================================================ round trips
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (2, 3), (1, 2, 1, 3)])
def test_a_single_tensor_comes_back_as_a_tensor(tmp_path, dtype, shape):
    t = Tensor(_values(dtype, shape))
    path = tmp_path / "x.pt"
    save(t, path)
    back = load(path)
    assert isinstance(back, Tensor) and back.dtype == t.dtype and back.shape == t.shape
    np.testing.assert_array_equal(back.data, t.data)
    assert not back.requires_grad and back.is_leaf


def test_a_dict_comes_back_in_order_with_every_dtype(tmp_path):
    state = {f"{i}.{np.dtype(d).name}": Tensor(_values(d, seed=i)) for i, d in enumerate(DTYPES)}
    state = {k: state[k] for k in reversed(state)}  # not alphabetical: safetensors sorts, we restore the order
    state["zero_d"] = np.array(7, dtype=np.int64)  # numpy arrays too (our state_dict's values)
    state["transposed"] = np.arange(6.0).reshape(2, 3).T  # not C-contiguous
    path = str(tmp_path / "state.pth")
    save(state, path)
    back = load(path, weights_only=True)
    assert list(back) == list(state)
    for key, value in state.items():
        expected = value.data if isinstance(value, Tensor) else value
        assert isinstance(back[key], Tensor) and back[key].dtype == expected.dtype, key
        np.testing.assert_array_equal(back[key].data, expected)
        assert back[key].data.flags.writeable  # loaded tensors can be written in place
    save({}, path)
    assert load(path) == {}


def test_requires_grad_is_restored_like_torch(tmp_path):
    """torch.load gives back leaves that require grad where the saved tensors did (computed ones included)."""
    w = Tensor(np.ones(3), requires_grad=True)
    path = tmp_path / "w.pt"
    save(w, path)
    back = load(path)
    assert back.requires_grad and back.is_leaf
    save({"w": w, "computed": w * 2, "plain": Tensor(np.ones(2))}, path)
    back = load(path)
    assert [k for k, v in back.items() if v.requires_grad] == ["w", "computed"]
    assert all(v.is_leaf for v in back.values())
    np.testing.assert_array_equal(back["computed"].data, 2 * np.ones(3))


def test_file_objects_work_like_paths():
    buffer = io.BytesIO()
    save({"a": Tensor(np.arange(3.0))}, buffer)
    buffer.seek(0)
    back = load(buffer)
    np.testing.assert_array_equal(back["a"].data, np.arange(3.0))


def test_state_dict_round_trip_into_a_fresh_model(tmp_path):
    model = _model()
    x = Tensor(np.random.default_rng(0).standard_normal((4, 1, 4, 4)).astype(np.float32))
    model(x)  # move BatchNorm's running statistics and num_batches_tracked off their initial values
    model.eval()
    path = tmp_path / "model.pth"
    save(model.state_dict(), path)
    fresh = _model().eval()
    result = fresh.load_state_dict(load(path, weights_only=True))
    assert result.missing_keys == [] and result.unexpected_keys == []
    for (key, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=key)
    np.testing.assert_array_equal(fresh(x).data, model(x).data)


# ============================================================================ what cannot be saved, and why
def test_saving_a_module_explains_why_and_what_to_do(tmp_path):
    with pytest.raises(TypeError, match=r"whole module \(Sequential\).*never runs code.*model\.state_dict\(\)"):
        save(_model(), tmp_path / "model.pth")
    assert not (tmp_path / "model.pth").exists()


def test_saving_an_optimizer_or_a_scheduler_points_to_checkpoints(tmp_path):
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with pytest.raises(TypeError, match=r"optimizer SGD.*save_checkpoint"):
        save(opt, tmp_path / "opt.pth")
    with pytest.raises(TypeError, match=r"learning-rate scheduler StepLR.*save_checkpoint"):
        save(optim.StepLR(opt, step_size=1), tmp_path / "sched.pth")
    with pytest.raises(TypeError, match=r"value under 'state' has type dict.*save_checkpoint"):
        save(opt.state_dict(), tmp_path / "opt.pth")


@pytest.mark.parametrize("obj, match", [
    ({"epoch": 3, "w": Tensor(np.ones(1))}, r"value under 'epoch' has type int.*never runs code"),
    ({"model": {"w": np.ones(1)}}, r"value under 'model' has type dict"),
    ({1: Tensor(np.ones(1))}, r"keys must be strings"),
    ([Tensor(np.ones(1))], r"object of type list.*a Tensor, or a dict of str -> Tensor"),
    (np.ones(3), r"object of type ndarray"),
    ({"s": np.array(["a", "b"])}, r"dtype <U1"),
    ({"o": np.array([None])}, r"dtype object"),
])
def test_other_objects_raise_type_errors(tmp_path, obj, match):
    with pytest.raises(TypeError, match=match):
        save(obj, tmp_path / "x.pth")


def test_unpickling_options_are_refused(tmp_path):
    path = tmp_path / "x.pth"
    save(Tensor(np.ones(2)), path)
    with pytest.raises(ValueError, match=r"weights_only=False.*can run code.*weights_only=True"):
        load(path, weights_only=False)
    with pytest.raises(ValueError, match="pickle_module"):
        load(path, pickle_module=object())
    assert isinstance(load(path, weights_only=None), Tensor)  # PyTorch's default spelling of True
    with pytest.raises(TypeError, match="path or a binary file object"):
        save(Tensor(np.ones(2)), 3)
    with pytest.raises(TypeError, match="path or a binary file object"):
        load(3)


def test_map_location_names_the_cpu_or_is_refused(tmp_path):
    path = tmp_path / "x.pth"
    save({"a": Tensor(np.ones(2))}, path)
    for location in (None, "cpu", "cpu:0", {"cuda:0": "cpu"}, lambda storage, loc: storage):
        assert list(load(path, map_location=location)) == ["a"]
    assert list(load(path, "cpu", mmap=True)) == ["a"]  # map_location is second, as in torch.load
    for location in ("cuda", "mps", "cuda:1", {"cpu": "cuda"}):
        with pytest.raises(RuntimeError, match=r"map_location=.*(cuda|mps).*CPU"):
            load(path, map_location=location)


def test_map_location_accepts_torch_devices(tmp_path, torch):
    path = tmp_path / "x.pth"
    save({"a": Tensor(np.ones(2))}, path)
    assert list(load(path, map_location=torch.device("cpu"))) == ["a"]
    with pytest.raises(RuntimeError, match=r"device\(type='cuda'"):
        load(path, map_location=torch.device("cuda", 0))


def test_a_file_that_is_not_safetensors_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.pth"):
        load(tmp_path / "missing.pth")
    junk = tmp_path / "notes.pth"
    junk.write_text("hello, not a checkpoint")
    with pytest.raises(ValueError, match=r"notes\.pth' is not a safetensors file"):
        load(junk)
    truncated = tmp_path / "truncated.pth"
    save({"a": Tensor(np.ones(100))}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"truncated\.pth' is not a safetensors file"):
        load(truncated)


@pytest.mark.parametrize("zipfile", [True, False])
def test_a_torch_pickle_gets_a_clear_error_and_a_conversion_recipe(tmp_path, torch, zipfile):
    path = tmp_path / "model.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), path, _use_new_zipfile_serialization=zipfile)
    with pytest.raises(ValueError, match=r"model\.pth' was written by PyTorch's torch\.save.*save_file"):
        load(path)


# ============================================================================ atomic writes
@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_a_failed_save_leaves_the_old_file_intact(tmp_path, monkeypatch, failing):
    path = tmp_path / "model.pth"
    save({"w": Tensor(np.ones(3))}, path)
    old = path.read_bytes()

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(OSError, match="disk full"):
        save({"w": Tensor(np.zeros(1000))}, path)
    monkeypatch.undo()
    assert path.read_bytes() == old and os.listdir(tmp_path) == ["model.pth"]  # no temporary file left behind
    with pytest.raises(TypeError):
        save({"w": Tensor(np.zeros(3)), "epoch": 1}, path)  # checked before anything is written
    np.testing.assert_array_equal(load(path)["w"].data, np.ones(3))


# ============================================================================ interop
def test_our_file_is_plain_safetensors(tmp_path):
    state = {"b": Tensor(np.arange(3, dtype=np.int64)), "a": Tensor(np.ones((2, 2), dtype=np.float32))}
    path = tmp_path / "model.pth"
    save(state, path)
    raw = safetensors_numpy.load_file(str(path))
    assert set(raw) == {"a", "b"}
    for key, value in state.items():
        assert raw[key].dtype == value.dtype
        np.testing.assert_array_equal(raw[key], value.data)
    save(Tensor(np.arange(4.0)), path)
    assert list(safetensors_numpy.load_file(str(path))) == ["tensor"]


def test_a_file_from_safetensors_itself_loads_as_a_dict(tmp_path):
    path = str(tmp_path / "other.safetensors")
    safetensors_numpy.save_file({"tensor": np.ones(2), "x": np.zeros(1, dtype=np.int32)}, path)
    back = load(path)
    assert isinstance(back, dict) and set(back) == {"tensor", "x"}  # no record of a lone Tensor: a dict
    assert back["x"].dtype == np.int32


def test_torch_loads_our_state_dict_and_we_load_torchs(tmp_path, torch):
    from safetensors.torch import load_file, save_file

    ours = _model()
    ours(Tensor(np.random.default_rng(0).standard_normal((4, 1, 4, 4)).astype(np.float32)))
    ours.eval()
    path = tmp_path / "model.pth"
    save(ours.state_dict(), path)
    theirs = _torch_model(torch).eval()
    theirs.load_state_dict(load_file(str(path)))  # strict: same keys, shapes and dtypes
    x = np.random.default_rng(1).standard_normal((2, 1, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(theirs(torch.tensor(x)).detach().numpy(), ours(Tensor(x)).data, atol=1e-5)

    other = _torch_model(torch).eval()
    save_file(other.state_dict(), str(tmp_path / "theirs.safetensors"))
    ours.load_state_dict(load(tmp_path / "theirs.safetensors", weights_only=True))
    np.testing.assert_allclose(other(torch.tensor(x)).detach().numpy(), ours(Tensor(x)).data, atol=1e-5)


def test_what_comes_back_matches_torch_save_and_load(torch):
    """Type, keys, order, dtypes and requires_grad, for each kind of object both can save."""
    values = {"z": np.ones(2, dtype=np.float32), "a": np.arange(3), "m": np.array([True, False])}

    def ours_and_theirs(grad):
        ours = {k: Tensor(v, requires_grad=grad and v.dtype.kind == "f") for k, v in values.items()}
        theirs = {k: torch.tensor(v, requires_grad=grad and v.dtype.kind == "f") for k, v in values.items()}
        return ours, theirs

    for grad in (False, True):
        ours, theirs = ours_and_theirs(grad)
        cases = ((ours, theirs), (ours["z"], theirs["z"]), ({"z": ours["z"] * 2}, {"z": theirs["z"] * 2}))
        for mine, reference in cases:
            buffer, torch_buffer = io.BytesIO(), io.BytesIO()
            save(mine, buffer)
            torch.save(reference, torch_buffer)
            buffer.seek(0)
            torch_buffer.seek(0)
            got, expected = load(buffer), torch.load(torch_buffer, weights_only=True)
            if isinstance(expected, torch.Tensor):
                got, expected = {"": got}, {"": expected}
            assert isinstance(got, dict) and list(got) == list(expected)
            for key in expected:
                assert isinstance(got[key], Tensor)
                np.testing.assert_array_equal(got[key].data, expected[key].detach().numpy())
                assert str(got[key].dtype) == str(expected[key].dtype).removeprefix("torch.")
                assert got[key].requires_grad == expected[key].requires_grad and got[key].is_leaf
