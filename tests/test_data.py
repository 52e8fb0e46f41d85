"""Tests for tinygrad_cnn.data: IDX files, datasets and their search path, DataLoader."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn import Tensor
from tinygrad_cnn.data import MNIST, DataLoader, FashionMNIST, TensorDataset, read_idx, write_idx
from tinygrad_cnn.data import datasets as ds_module
from tinygrad_cnn.data.datasets import EMBEDDED_DIR
from tinygrad_cnn.tensor import default_generator

SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")


# ---------------------------------------------------------------------- helpers
def make_split(folder: Path, n: int = 20, train: bool = True, gz: bool = True, seed: int = 0) -> np.ndarray:
    """Write n random 28×28 images with labels 0..9 (cycling) as one split; return the images."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    image_stem, label_stem = ds_module.SPLIT_FILES[train]
    suffix = ".gz" if gz else ""
    write_idx(folder / (image_stem + suffix), images, gzip=gz)
    write_idx(folder / (label_stem + suffix), labels, gzip=gz)
    return images


@pytest.fixture
def no_data_anywhere(tmp_path, monkeypatch):
    """A world where only the embedded subset exists: empty env folder, empty HOME, no system folder."""
    monkeypatch.setenv("TINYGRAD_CNN_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(FashionMNIST, "system_dirs", (tmp_path / "system",))
    monkeypatch.setattr(ds_module, "_announced", set())
    return tmp_path


# ---------------------------------------------------------------------- IDX files
@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, dtype, gz):
    dt = np.dtype(dtype)  # extreme values, so a byte-order mistake shows
    low, high = (np.iinfo(dt).min, np.iinfo(dt).max) if dt.kind in "iu" else (-3e38, 3e38)
    array = np.linspace(low, high, 24).astype(dt).reshape(2, 3, 4)
    path = tmp_path / "a.idx"
    write_idx(path, array, gzip=gz)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)


def test_idx_gzip_decided_by_magic_not_name(tmp_path):
    array = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "looks-raw", array, gzip=True)
    write_idx(tmp_path / "looks-gzipped.gz", array, gzip=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "looks-raw"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "looks-gzipped.gz"), array)
    assert (tmp_path / "looks-raw").read_bytes()[:2] == b"\x1f\x8b"


def test_idx_default_gzip_follows_suffix_and_is_reproducible(tmp_path):
    array = np.arange(100, dtype=np.uint8).reshape(10, 10)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "b.gz", array)
    write_idx(tmp_path / "c", array)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()  # no timestamp in the header
    assert (tmp_path / "c").read_bytes()[:4] == b"\x00\x00\x08\x02"


def _raw_idx(shape: tuple[int, ...], payload_len: int, code: int = 0x08, magic: bytes = b"\x00\x00") -> bytes:
    return magic + bytes([code, len(shape)]) + np.asarray(shape, ">u4").tobytes() + bytes(payload_len)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_truncated_names_file_and_sizes(tmp_path, gz):
    content = _raw_idx((100, 28, 28), 1234)
    path = tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(content) if gz else content)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.*truncated.*100×28×28.*78,400 bytes.*1,234"):
        read_idx(path)


def test_idx_extra_bytes(tmp_path):
    path = tmp_path / "labels"
    path.write_bytes(_raw_idx((5,), 7))
    with pytest.raises(ValueError, match=r"labels: extra bytes.*5 uint8 = 5 bytes.*file has 7"):
        read_idx(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x00", r"truncated: an IDX header needs at least 4 bytes, file has 2"),
        (b"\x00\x00\x08\x03\x00\x00", r"truncated: header says 3 dimensions \(16 header bytes\)"),
        (_raw_idx((5,), 5, magic=b"\x01\x02"), r"not an IDX file: expected magic bytes 0x00 0x00.*found 0x01 0x02"),
        (b"PK\x03\x04" + bytes(20), r"not an IDX file"),
        (_raw_idx((5,), 5, code=0x07), r"unknown IDX data type code 0x07; expected one of 0x08 \(uint8\)"),
    ],
)
def test_idx_corrupt_header(tmp_path, content, message):
    path = tmp_path / "bad-file"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="bad-file: " + message):
        read_idx(path)


def test_idx_corrupt_gzip(tmp_path):
    good = gzip.compress(_raw_idx((1000,), 1000))
    path = tmp_path / "cut.gz"
    path.write_bytes(good[: len(good) // 2])  # an interrupted download
    with pytest.raises(ValueError, match=r"cut.gz: corrupt gzip data"):
        read_idx(path)
    path.write_bytes(good[:10] + b"\xff" * (len(good) - 10))
    with pytest.raises(ValueError, match=r"cut.gz: corrupt gzip data"):
        read_idx(path)


def test_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope-idx1-ubyte"):
        read_idx(tmp_path / "nope-idx1-ubyte")


def test_write_idx_rejects_unstorable_dtype(tmp_path):
    with pytest.raises(TypeError, match="IDX cannot store dtype int64"):
        write_idx(tmp_path / "x", np.arange(3))


# ---------------------------------------------------------------------- datasets from files
@pytest.mark.parametrize("gz", [True, False])
def test_dataset_from_explicit_root(tmp_path, gz):
    images = make_split(tmp_path, n=20, train=True, gz=gz)
    make_split(tmp_path, n=10, train=False, gz=gz, seed=1)
    train, test = FashionMNIST(tmp_path), FashionMNIST(tmp_path, train=False)
    assert len(train) == 20 and len(test) == 10
    assert train.images.dtype == np.uint8 and train.images.shape == (20, 28, 28)
    assert train.labels.dtype == np.int64 and train.labels.tolist() == [i % 10 for i in range(20)]
    x, y = train[3]
    assert isinstance(x, Tensor) and x.shape == (1, 28, 28) and x.dtype == np.float32 and y == 3
    np.testing.assert_allclose(x.data[0], images[3] / 255, rtol=1e-6)
    assert train[-1][1] == 9
    with pytest.raises(IndexError):
        train[20]
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot" and len(train.classes) == 10
    assert "20 images" in repr(train)


def test_mnist_reads_the_same_format(tmp_path):
    make_split(tmp_path, n=10)
    mnist = MNIST(tmp_path)
    assert len(mnist) == 10 and mnist.classes == [str(d) for d in range(10)]


def test_images_labels_count_mismatch_names_both_files(tmp_path):
    make_split(tmp_path, n=20)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(19, np.uint8))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz holds 20 images but .*labels.* holds 19 labels"):
        FashionMNIST(tmp_path)


def test_wrong_kind_of_images_or_labels(tmp_path):
    make_split(tmp_path, n=4)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((4, 28, 28), np.int32))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz: expected uint8 images N×H×W.*found int32"):
        FashionMNIST(tmp_path)
    make_split(tmp_path, n=4)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.array([0, 1, 2, 10], np.uint8))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.gz: labels must be in 0..9, found 10"):
        FashionMNIST(tmp_path)


def test_explicit_root_missing_folder_or_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"does-not-exist does not exist.*apt-get install dataset-fashion"):
        FashionMNIST(tmp_path / "does-not-exist")
    make_split(tmp_path, n=4)
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"train-labels-idx1-ubyte\[.gz\] not found.*github.com/zalando"):
        FashionMNIST(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"t10k-images-idx3-ubyte\[.gz\], .*t10k-labels"):
        FashionMNIST(tmp_path, train=False)


def test_explicit_root_is_the_only_place_looked_in(tmp_path, monkeypatch):
    make_split(tmp_path / "env" / "fashion-mnist")
    monkeypatch.setenv("TINYGRAD_CNN_DATA", str(tmp_path / "env"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        FashionMNIST(tmp_path / "empty")


def test_decoded_arrays_are_cached_per_file(tmp_path):
    make_split(tmp_path, n=8)
    first, second = FashionMNIST(tmp_path), FashionMNIST(tmp_path)
    assert first.images is second.images and not first.images.flags.writeable
    make_split(tmp_path, n=9)  # a rewritten file is read again
    assert len(FashionMNIST(tmp_path)) == 9


# ---------------------------------------------------------------------- search order and the embedded subset
def test_search_order(no_data_anywhere):
    tmp = no_data_anywhere
    make_split(tmp / "system", n=3)
    assert len(FashionMNIST()) == 3 and FashionMNIST().root == tmp / "system"
    make_split(tmp / "home" / ".cache" / "tinygrad_cnn" / "fashion-mnist", n=4)
    assert len(FashionMNIST()) == 4
    make_split(tmp / "env" / "fashion-mnist", n=5)
    assert len(FashionMNIST()) == 5
    make_split(tmp / "env" / "mnist", n=6)
    assert len(MNIST()) == 6 and len(FashionMNIST()) == 5  # each data set has its own subfolder
    cache = tmp / "home" / ".cache" / "tinygrad_cnn"
    assert FashionMNIST.search_path() == [tmp / "env" / "fashion-mnist", cache / "fashion-mnist", tmp / "system"]


def test_search_skips_a_folder_without_the_split(no_data_anywhere):
    tmp = no_data_anywhere
    make_split(tmp / "env" / "fashion-mnist", n=5, train=False)  # test split only
    make_split(tmp / "system", n=3)
    assert len(FashionMNIST(train=True)) == 3 and len(FashionMNIST(train=False)) == 5


def test_search_does_not_hide_a_half_present_split(no_data_anywhere):
    tmp = no_data_anywhere
    make_split(tmp / "env" / "fashion-mnist", n=5)
    (tmp / "env" / "fashion-mnist" / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        FashionMNIST()


def test_embedded_fallback_is_announced_once_and_balanced(no_data_anywhere, capsys):
    train, test = FashionMNIST(), FashionMNIST(train=False)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "embedded subset" in err and "apt-get install dataset-fashion-mnist" in err
    assert train.root is None and "embedded" in repr(train)
    assert len(train) == 6000 and len(test) == 1000
    assert train.class_counts().tolist() == [600] * 10 and test.class_counts().tolist() == [100] * 10
    assert train.images.shape == (6000, 28, 28) and train.images.dtype == np.uint8


def test_mnist_has_no_embedded_subset(no_data_anywhere):
    with pytest.raises(FileNotFoundError, match=r"MNIST has no embedded subset.*mnist"):
        MNIST()


def test_embedded_files_are_shipped():
    names = sorted(p.name for p in EMBEDDED_DIR.iterdir())
    assert "LICENSE" in names and "README.md" in names
    assert "Zalando SE" in (EMBEDDED_DIR / "LICENSE").read_text()
    assert sum(p.stat().st_size for p in EMBEDDED_DIR.iterdir()) < 4_000_000


# ---------------------------------------------------------------------- subsets and TensorDataset
def test_subset_and_balanced_subset():
    full = FashionMNIST(EMBEDDED_DIR)
    part = full.subset([5, 1, 3])
    assert isinstance(part, FashionMNIST) and len(part) == 3 and len(full) == 6000
    np.testing.assert_array_equal(part.images[0], full.images[5])
    small = full.balanced_subset(500)
    assert small.class_counts().tolist() == [50] * 10
    first_tshirts = np.flatnonzero(full.labels == 0)[:50]
    np.testing.assert_array_equal(small.images[small.labels == 0], full.images[first_tshirts])
    odd = full.balanced_subset(503)
    assert sorted(odd.class_counts().tolist()) == [50] * 7 + [51] * 3
    a, b, c = full.balanced_subset(100, seed=1), full.balanced_subset(100, seed=1), full.balanced_subset(100, seed=2)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images) and a.class_counts().tolist() == [10] * 10
    scarce = small.subset(np.r_[np.flatnonzero(small.labels == 0)[:5], np.flatnonzero(small.labels != 0)])
    with pytest.raises(ValueError, match="class 0 has only 5 examples, 10 asked for"):
        scarce.balanced_subset(100)
    with pytest.raises(IndexError):
        full.subset([6000])


def test_tensor_dataset():
    images = np.random.default_rng(0).standard_normal((10, 3, 5, 5)).astype(np.float64)
    ds = TensorDataset(Tensor(images), np.arange(10) % 4)
    assert ds.classes == ["0", "1", "2", "3"] and len(ds) == 10
    x, y = ds[2]
    assert x.shape == (3, 5, 5) and x.dtype == np.float32 and y == 2
    with pytest.raises(ValueError, match="same length"):
        TensorDataset(images, np.arange(9))
    with pytest.raises(TypeError, match="integer"):
        TensorDataset(images, np.zeros(10))


# ---------------------------------------------------------------------- DataLoader
def numbered(n: int) -> TensorDataset:
    """n tiny images whose label is their index, so batches show which samples they hold."""
    return TensorDataset(np.arange(n, dtype=np.float32)[:, None], np.arange(n))


def epoch_ids(loader: DataLoader) -> list[int]:
    return [i for _, y in loader for i in y.data.tolist()]


def test_loader_batches_of_fashion_mnist():
    loader = DataLoader(FashionMNIST(EMBEDDED_DIR, train=False), batch_size=64)
    batches = list(loader)
    assert len(loader) == len(batches) == 16
    x, y = batches[0]
    assert x.shape == (64, 1, 28, 28) and x.dtype == np.float32 and y.shape == (64,) and y.dtype == np.int64
    assert 0.0 <= x.data.min() and x.data.max() <= 1.0 and x.data.max() == 1.0
    assert batches[-1][0].shape == (1000 - 15 * 64, 1, 28, 28)
    assert not x.requires_grad and x.data.flags.c_contiguous


def test_loader_len_and_drop_last():
    assert len(DataLoader(numbered(10), batch_size=3)) == 4
    dropped = DataLoader(numbered(10), batch_size=3, drop_last=True)
    assert len(dropped) == 3 and [len(y) for _, y in dropped] == [3, 3, 3]
    assert epoch_ids(DataLoader(numbered(10), batch_size=3)) == list(range(10))  # unshuffled: file order


def test_loader_any_shape_and_pixels():
    float_data = TensorDataset(np.ones((6, 3, 4, 5), np.float64), np.zeros(6, np.int32))
    x, y = next(iter(DataLoader(float_data, batch_size=4)))
    assert x.shape == (4, 3, 4, 5) and x.dtype == np.float32 and y.dtype == np.int64
    pixels = TensorDataset(np.full((6, 8, 8), 255, np.uint8), np.zeros(6, np.int64))
    x, _ = next(iter(DataLoader(pixels, batch_size=4)))
    assert x.shape == (4, 1, 8, 8) and (x.data == 1.0).all()


def test_loader_batches_do_not_alias_the_dataset():
    ds = numbered(4)
    x, _ = next(iter(DataLoader(ds, batch_size=4)))
    x.data[:] = -1
    assert ds.images.min() == 0


def test_seeded_shuffle_reproducible_and_new_each_epoch():
    a, b = DataLoader(numbered(50), batch_size=8, shuffle=True, seed=7), DataLoader(numbered(50), 8, True, seed=7)
    epochs_a = [epoch_ids(a) for _ in range(3)]
    assert epochs_a == [epoch_ids(b) for _ in range(3)]
    assert epochs_a[0] != epochs_a[1] != epochs_a[2] and epochs_a[0] != list(range(50))
    for ids in epochs_a:
        assert sorted(ids) == list(range(50))  # every sample exactly once per epoch
    assert epoch_ids(DataLoader(numbered(50), 8, True, seed=8)) != epochs_a[0]
    dropped = DataLoader(numbered(50), 8, shuffle=True, drop_last=True, seed=7)
    assert len(set(epoch_ids(dropped))) == 48


def test_unseeded_shuffle_follows_manual_seed():
    Tensor.manual_seed(123)
    first = epoch_ids(DataLoader(numbered(30), 4, shuffle=True))
    Tensor.manual_seed(123)
    assert epoch_ids(DataLoader(numbered(30), 4, shuffle=True)) == first


def batches(loader: DataLoader) -> list[list[int]]:
    return [y.data.tolist() for _, y in loader]


@pytest.mark.parametrize("seed", [5, None])
@pytest.mark.parametrize("stop", [(0, 3), (1, 8), (1, None)], ids=["mid-epoch", "after-last-batch", "epoch-end"])
def test_resume_sees_the_same_batches(seed, stop):
    def make():
        return DataLoader(numbered(50), batch_size=7, shuffle=True, seed=seed)  # 8 batches per epoch

    Tensor.manual_seed(0)
    loader = make()
    uninterrupted = [batches(loader) for _ in range(3)]

    Tensor.manual_seed(0)
    loader = make()
    stop_epoch, stop_batch = stop
    seen = [batches(loader) for _ in range(stop_epoch)]
    current = []
    for _, y in loader:
        current.append(y.data.tolist())
        if len(current) == stop_batch:
            break
    # a checkpoint, through JSON; a trainer also saves the global generator (seed=None shares it)
    checkpoint = json.loads(json.dumps({"loader": loader.state_dict(), "rng": default_generator().bit_generator.state}))

    Tensor.manual_seed(99)  # a fresh process
    resumed = make()
    default_generator().bit_generator.state = checkpoint["rng"]
    resumed.load_state_dict(checkpoint["loader"])
    if stop_batch is not None:
        current += batches(resumed)  # the rest of the interrupted epoch
    seen.append(current)
    seen += [batches(resumed) for _ in range(3 - len(seen))]
    assert seen == uninterrupted


def test_state_dict_mismatch_and_bad_arguments():
    seeded, unseeded = DataLoader(numbered(5), shuffle=True, seed=1), DataLoader(numbered(5), shuffle=True)
    with pytest.raises(ValueError, match="seed"):
        unseeded.load_state_dict(seeded.state_dict())
    with pytest.raises(KeyError, match="batch"):
        seeded.load_state_dict({"rng_state": None, "epoch_rng_state": None})
    with pytest.raises(TypeError, match="images"):
        DataLoader([1, 2, 3])
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(numbered(5), batch_size=0)


# ---------------------------------------------------------------------- the real data set
@pytest.mark.slow
@pytest.mark.skipif(not (SYSTEM_DIR / "train-images-idx3-ubyte.gz").exists(), reason="dataset-fashion-mnist absent")
def test_real_fashion_mnist_and_embedded_subset_origin():
    train, test = FashionMNIST(SYSTEM_DIR), FashionMNIST(SYSTEM_DIR, train=False)
    assert train.images.shape == (60_000, 28, 28) and test.images.shape == (10_000, 28, 28)
    assert train.class_counts().tolist() == [6000] * 10 and test.class_counts().tolist() == [1000] * 10
    for split, per_class in ((True, 600), (False, 100)):
        full, embedded = FashionMNIST(SYSTEM_DIR, train=split), FashionMNIST(EMBEDDED_DIR, train=split)
        expected = full.balanced_subset(per_class * 10)  # first per_class of each class, file order
        np.testing.assert_array_equal(embedded.images, expected.images)
        np.testing.assert_array_equal(embedded.labels, expected.labels)


def test_a_loaded_state_is_what_state_dict_says_until_the_next_epoch_starts():
    """A checkpoint taken right after a resume (Ctrl-C before the first batch) keeps the position."""
    dataset = TensorDataset(Tensor(np.arange(20.0).reshape(20, 1)), Tensor(np.arange(20)))
    loader = DataLoader(dataset, batch_size=4, shuffle=True, seed=3)
    batches = iter(loader)
    next(batches), next(batches)
    saved = loader.state_dict()
    resumed = DataLoader(dataset, batch_size=4, shuffle=True, seed=3)
    resumed.load_state_dict(saved)
    again = resumed.state_dict()
    assert again["batch"] == 2 and again["epoch_rng_state"] == saved["epoch_rng_state"]
    rest = [labels.tolist() for _, labels in resumed]
    assert rest == [labels.tolist() for _, labels in batches]
