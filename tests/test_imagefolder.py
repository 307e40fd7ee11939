"""Image folders (compression.imagefolder, compression.lazy_images): photos of any size and mode,
a split on disk when the memory budget is small (the same numbers as in memory), the decoded cache,
and one line for each problem a folder has while the rest still loads."""

import numpy as np
import pytest
import torch

from compression import CompressionError
from compression.data import load_dataset
from compression.imagefolder import clear_loaded
from compression.lazy_images import LazyImages, memory_budget
from tests.support import write_tinted_folder


@pytest.fixture(autouse=True)
def _fresh(home):
    clear_loaded()  # each test sees its own folder and budget, decoded into its own data folder
    yield
    clear_loaded()


def _two_classes(root, n=3, split_dirs=("train", "test")):
    from PIL import Image
    for split in split_dirs:
        for cls, color in (("blue", (0, 0, 255)), ("red", (255, 0, 0))):
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.new("RGB", (40, 20), color).save(root / split / cls / f"{i}.png")
    return root


def test_any_size_and_mode_exif_rotation_applied(tmp_path):
    from PIL import Image
    root = _two_classes(tmp_path)
    red = root / "test" / "red"
    Image.new("L", (300, 200), 100).save(red / "gray.png")  # grayscale -> (100, 100, 100)
    Image.new("RGBA", (64, 64), (10, 200, 30, 90)).save(red / "rgba.png")  # alpha dropped, colour kept
    Image.new("RGB", (500, 375), (200, 20, 20)).save(red / "big.jpg", quality=95)
    Image.new("RGB", (50, 70), (255, 0, 0)).save(red / "w.webp", lossless=True)
    Image.new("P", (33, 33), 3).save(red / "palette.gif")
    # 40 wide x 20 high, left half red, right half blue, EXIF orientation 6: shown rotated 90 degrees
    # clockwise, so the left half is on top; without the rotation the top-right corner would be blue
    rotated = np.zeros((20, 40, 3), np.uint8)
    rotated[:, :20] = (255, 0, 0)
    rotated[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rotated).save(red / "rotated.jpg", exif=exif, quality=95)
    data = load_dataset(f"imagefolder:{root}")
    assert data.warnings == () and data.input_shape == (3, 32, 32) and len(data.test) == 12

    def image(name: str) -> torch.Tensor:
        from compression.imagefolder import decode_image
        return decode_image(red / name, 32)
    assert image("gray.png")[:, 5, 5].tolist() == [100, 100, 100]
    assert image("rgba.png")[:, 5, 5].tolist() == [10, 200, 30]
    r = image("rotated.jpg").int()
    assert r[0, 2, 29] > 200 and r[2, 2, 29] < 60  # top right: red (rotation applied)
    assert r[2, 29, 2] > 200 and r[0, 29, 2] < 60  # bottom left: blue
    # what the dataset holds is what decode_image gives, in the dataset's order
    rows = {tuple(data.test.images[i][:, 5, 5].tolist()) for i in range(len(data.test))}
    assert {(100, 100, 100), (10, 200, 30)} <= rows


def test_size_option_and_uploaded_name(tmp_path):
    from compression.imagefolder import datasets_dir
    _two_classes(datasets_dir() / "colours")
    assert load_dataset("colours?size=48").input_shape == (3, 48, 48)
    assert load_dataset("colours").source == str(datasets_dir() / "colours")
    with pytest.raises(CompressionError, match="'nope'.*colours"):
        load_dataset("nope")


def _tiny_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(16, 10))


def test_lazy_under_a_small_budget_gives_the_same_numbers_as_in_memory(tmp_path, monkeypatch):
    """The same files decoded once; read whole into memory, or a batch at a time from disk under a
    1 KiB budget: the same images in the same order, so the same logits, and a model trained on
    each reaches the same accuracy (well above the 10 % of chance: the tints are learnable)."""
    from compression.training import TrainConfig, accuracy_on, fit, predict
    ref = write_tinted_folder(tmp_path / "tinted", classes=10, train=16, test=8, tint=lambda c: (c % 3, 25 * c))
    eager = load_dataset(ref)
    assert not eager.test.on_disk and not eager.train.on_disk
    monkeypatch.setenv("COMPRESSION_MEMORY_BUDGET", "1K")
    lazy = load_dataset(ref)
    assert lazy.test.on_disk and lazy.train.on_disk and lazy.val.on_disk
    assert (lazy.mean, lazy.std, lazy.input_shape) == (eager.mean, eager.std, eager.input_shape)
    scaled = eager.train.images.double() / 255  # the normalization: of the train images (not val), in [0, 1]
    assert eager.mean == pytest.approx(scaled.mean((0, 2, 3)).tolist(), abs=1e-4)
    assert eager.std == pytest.approx(scaled.std((0, 2, 3)).tolist(), abs=1e-4)
    for split in ("train", "val", "test"):
        assert torch.equal(lazy.split(split).labels, eager.split(split).labels)
        assert torch.equal(lazy.split(split).images.load(), eager.split(split).images), split
    model = _tiny_model()
    assert torch.equal(predict(model, lazy, batch_size=7), predict(model, eager, batch_size=7))
    cfg = TrainConfig(epochs=10, batch_size=16, lr=0.01)
    accuracy = {}
    for name, data in (("eager", eager), ("lazy", lazy)):
        torch.manual_seed(0)
        trained = fit(_tiny_model(), data, cfg).model
        accuracy[name] = accuracy_on(trained, data)
    assert accuracy["lazy"] == accuracy["eager"] > 0.5


def test_lazy_images_index_like_a_tensor(tmp_path, monkeypatch):
    ref = write_tinted_folder(tmp_path / "t", classes=3, train=4, test=5, tint=lambda c: (c, 200))
    eager = load_dataset(ref).test.images
    monkeypatch.setenv("COMPRESSION_MEMORY_BUDGET", "100")
    lazy = load_dataset(ref).test.images
    assert isinstance(lazy, LazyImages) and lazy.shape == eager.shape and len(lazy) == 15
    mask = torch.arange(15) % 4 == 1
    for index in (3, -1, slice(2, 9), slice(None, None, 4), [7, 0, 7, 14], torch.tensor([5, 1]), mask, np.int64(4)):
        assert torch.equal(lazy[index], eager[index]), index
    view = lazy.select(torch.tensor([9, 2, 11, 3])).select(slice(1, 3))  # views of views read nothing
    assert torch.equal(view.load(), eager[[2, 11]]) and torch.equal(lazy[2, 0], eager[2, 0])
    with pytest.raises(IndexError):
        lazy[15]
    with open(lazy.path, "r+b") as f:  # a cache file cut short (a full disk): one line, not zeros
        f.truncate(lazy.row_bytes * 10)
    with pytest.raises(CompressionError, match="shorter than its index says"):
        lazy[12]


def test_memory_budget_setting(monkeypatch):
    monkeypatch.setenv("COMPRESSION_MEMORY_BUDGET", "512M")
    assert memory_budget() == 512 * 2 ** 20
    monkeypatch.setenv("COMPRESSION_MEMORY_BUDGET", "1.5GiB")
    assert memory_budget() == int(1.5 * 2 ** 30)
    monkeypatch.setenv("COMPRESSION_MEMORY_BUDGET", "lots")
    with pytest.raises(CompressionError, match="'lots'"):
        memory_budget()


def test_decoded_once_then_read_from_the_cache(tmp_path, monkeypatch):
    import os
    import compression.imagefolder as imagefolder
    root = _two_classes(tmp_path)
    real, calls = imagefolder.decode_image, []

    def counted(path, size):
        calls.append(path)
        return real(path, size)
    monkeypatch.setattr(imagefolder, "decode_image", counted)
    first = load_dataset(f"imagefolder:{root}")
    assert len(calls) == 12
    clear_loaded()
    again = load_dataset(f"imagefolder:{root}")
    assert len(calls) == 12 and torch.equal(again.test.images, first.test.images)  # read from the cache
    os.utime(root / "test" / "red" / "0.png", ns=(1, 1))  # a file changed: decoded again
    clear_loaded()
    load_dataset(f"imagefolder:{root}")
    assert len(calls) == 24
    assert len(load_dataset(f"imagefolder:{root}?size=40").test) == 6 and len(calls) == 36  # one cache per size


def test_every_problem_gets_its_line_and_the_rest_loads(tmp_path):
    from PIL import Image
    root = _two_classes(tmp_path)
    (root / "train" / "empty").mkdir()                                   # a class with no images
    (root / "train" / "cat").mkdir()                                     # a class missing from test
    Image.new("RGB", (8, 8)).save(root / "train" / "cat" / "0.png")
    (root / "test" / "red" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")  # unreadable
    (root / "test" / "blue" / "notes.txt").write_text("hello")           # not an image
    (root / "train" / "loose.png").write_bytes(b"x")                     # outside a class folder
    (root / "test" / "red" / ".DS_Store").write_bytes(b"\0")             # hidden: nobody's data, no line
    (root / "__MACOSX").mkdir()
    data = load_dataset(f"imagefolder:{root}")
    assert data.classes == ("blue", "cat", "empty", "red")
    text = "\n".join(data.warnings)
    assert len(data.warnings) == 6, text
    for expected in ("train/empty/: no image files; class 'empty' has no training images",
                     "test/empty/: missing; class 'empty' has no test images",
                     "test/cat/: missing; class 'cat' has no test images",
                     "test/red/broken.jpg: not a readable image",
                     "test/blue/notes.txt: not an image file (.txt)",
                     "train/loose.png: not in a class folder"):
        assert expected in text
    assert len(data.test) == 6 and len(data.train) + len(data.val) == 7  # the rest loaded


def test_a_folder_with_nothing_usable_is_refused_in_one_line(tmp_path):
    root = _two_classes(tmp_path, split_dirs=("train",))
    (root / "test" / "red").mkdir(parents=True)
    (root / "test" / "red" / "bad.png").write_bytes(b"nope")
    with pytest.raises(CompressionError, match=r"no readable image in test/ .*test/red/bad.png") as err:
        load_dataset(f"imagefolder:{root}")
    assert "\n" not in str(err.value)
    (tmp_path / "one" / "train" / "a").mkdir(parents=True)
    (tmp_path / "one" / "test" / "a").mkdir(parents=True)
    with pytest.raises(CompressionError, match="at least 2 class folders"):
        load_dataset(f"imagefolder:{tmp_path / 'one'}")


def test_a_class_sorted_folder_is_read_in_a_fixed_shuffled_order(tmp_path):
    """Whatever takes "the first n images" (--limit, a fine-tuning subset) gets every class."""
    ref = write_tinted_folder(tmp_path / "t", classes=10, train=20, test=10, tint=lambda c: (c % 3, 25 * c))
    data = load_dataset(ref)
    assert len(set(data.test.labels[:30].tolist())) >= 8 and len(set(data.train.labels[:30].tolist())) >= 8
    clear_loaded()
    assert torch.equal(load_dataset(ref).test.labels, data.test.labels)  # the same order every time


def test_cli_lists_a_folders_problems_and_the_images_it_used(tmp_path, capsys):
    from compression.cli import main
    ref = write_tinted_folder(tmp_path / "t", classes=3, train=4, test=3, tint=lambda c: (c, 150))
    (tmp_path / "t" / "test" / "class1" / "bad.jpg").write_bytes(b"garbage")
    assert main(["evaluate", "--model", "torchvision:resnet18", "--dataset", ref, "--no-store"]) == 0
    out, err = capsys.readouterr()
    assert "warning: " in err and "test/class1/bad.jpg: not a readable image" in err
    assert "(n=9)" in out  # 3 classes x 3 test images; the bad one left out
