import gzip

import pytest
import torch

from compression import CompressionError
from compression.data import VAL_SIZE, load_dataset, read_idx


def test_fashion_mnist_splits(fmnist):
    assert fmnist.input_shape == (1, 28, 28) and fmnist.num_classes == 10
    assert len(fmnist.train) + len(fmnist.val) == 60000 and len(fmnist.val) == VAL_SIZE
    assert len(fmnist.test) == 10000
    assert fmnist.test.images.dtype == torch.uint8
    # every class appears in the validation split, roughly in proportion (500 each +- 25%)
    counts = torch.bincount(fmnist.val.labels, minlength=10)
    assert counts.min() > 375 and counts.max() < 625


def test_validation_split_is_fixed_and_disjoint(fmnist):
    from compression.data import _load_cached  # a second, independent assembly
    _load_cached.cache_clear()
    again = load_dataset("fashion-mnist")
    assert torch.equal(again.val.images, fmnist.val.images)
    # no validation image equals a training image at the same position set: check by hashing rows
    train_rows = {bytes(r) for r in fmnist.train.images[:20000].flatten(1).numpy()}
    overlap = sum(bytes(r) in train_rows for r in fmnist.val.images.flatten(1).numpy())
    assert overlap < 50  # Fashion-MNIST has a few exact duplicates, not thousands


def test_batches_are_normalized(fmnist):
    x, y = next(fmnist.batches("train", 4096))
    assert x.dtype == torch.float32 and x.shape == (4096, 1, 28, 28)
    assert abs(float(x.mean())) < 0.1 and abs(float(x.std()) - 1) < 0.1


def test_unknown_dataset_names_choices():
    with pytest.raises(CompressionError, match="unknown dataset 'nope'.*fashion-mnist"):
        load_dataset("nope")


def test_missing_data_folder_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("COMPRESSION_DATA", str(tmp_path / "missing"))
    with pytest.raises(CompressionError, match="missing"):
        load_dataset("fashion-mnist")


def test_nowhere_to_find_says_where_it_looked(monkeypatch, tmp_path):
    import compression.data as data
    monkeypatch.setenv("COMPRESSION_DATA", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(data, "_search_roots", lambda system: [("$COMPRESSION_DATA", tmp_path), ("./data", tmp_path / "data")])
    with pytest.raises(CompressionError, match=r"looked in \$COMPRESSION_DATA, ./data.*apt-get install dataset-fashion-mnist"):
        data._fashion_mnist("fashion-mnist")


def test_corrupt_idx_file_is_refused(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x10" + b"\x01" * 5))  # says 16, has 5
    with pytest.raises(CompressionError, match="truncated"):
        read_idx(path)


def test_image_folder(tmp_path):
    from PIL import Image
    for split in ("train", "test"):
        for cls, color in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (40, 20), color).save(tmp_path / split / cls / f"{i}.png")
    ds = load_dataset(f"imagefolder:{tmp_path}")
    assert ds.classes == ("blue", "red") and ds.input_shape == (3, 32, 32)
    assert len(ds.test) == 6 and sorted(ds.test.labels.tolist()) == [0, 0, 0, 1, 1, 1]
    assert int(ds.test.images[ds.test.labels == 1][:, 0].min()) == 255  # red channel of "red"


def test_image_folder_without_splits(tmp_path):
    (tmp_path / "cats").mkdir()
    with pytest.raises(CompressionError, match="train/<class>"):
        load_dataset(f"imagefolder:{tmp_path}")


def test_image_folder_size_option(tmp_path):
    from PIL import Image
    for split in ("train", "test"):
        for cls in ("a", "b"):
            (tmp_path / split / cls).mkdir(parents=True)
            Image.new("RGB", (10, 10), (9, 9, 9)).save(tmp_path / split / cls / "0.png")
    assert load_dataset(f"imagefolder:{tmp_path}?size=64").input_shape == (3, 64, 64)
    with pytest.raises(CompressionError, match="'5'"):
        load_dataset(f"imagefolder:{tmp_path}?size=5")


def test_availability_tells_installed_from_not_installed(tmp_path, monkeypatch):
    from compression.data_status import dataset_availability
    monkeypatch.chdir(tmp_path)  # no ./data here
    assert dataset_availability("fashion-mnist") == (True, "installed")  # the apt package's files
    ok, words = dataset_availability("cifar10")  # offline in tests: no download either
    assert not ok and words.startswith("not installed: put cifar-10-batches-py")
    assert dataset_availability("nope") == (False, "unknown dataset 'nope'")
