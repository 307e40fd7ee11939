"""The live preview's test images (compression.preview_subset): a fixed, seeded, class-stratified
sample, every class in proportion, the same every time; its size from the model's measured speed."""

import pytest
import torch

from compression import CompressionError
from compression.preview_subset import (MAX_IMAGES, MIN_IMAGES, count_for_rate, describe, preview_indices,
                                        preview_order)


def test_class_sorted_labels_every_prefix_holds_every_class_in_proportion():
    """A folder sorted by class (100 of class 0, then 300 of class 1, ...): the first n of the
    order hold each class within one image of n x its share (r / n_c interleaving)."""
    counts = [100, 300, 50, 550]
    labels = torch.cat([torch.full((k,), c) for c, k in enumerate(counts)])
    order = preview_order(labels)
    assert sorted(order.tolist()) == list(range(len(labels)))  # a permutation: every image once
    assert set(labels[order[:4]].tolist()) == {0, 1, 2, 3}  # each class's first image in the first 4 places
    for n in (10, 100, 250, 999):
        got = torch.bincount(labels[order[:n]], minlength=4)
        want = torch.tensor(counts) * n / len(labels)
        assert (got - want).abs().max() <= 1, (n, got.tolist(), want.tolist())


def test_the_same_images_every_time_and_a_larger_sample_holds_a_smaller():
    labels = torch.arange(1000) % 7
    a, b = preview_indices(labels, 300), preview_indices(labels.clone(), 300)
    assert torch.equal(a, b) and torch.equal(a, a.sort().values)
    assert set(preview_indices(labels, 100).tolist()) <= set(a.tolist())
    assert not torch.equal(a, torch.arange(300))  # not "the first 300"


def test_a_class_sorted_folders_preview_covers_every_class(tmp_path, home):
    from compression.data import load_dataset
    from compression.imagefolder import clear_loaded
    from tests.support import write_tinted_folder
    ref = write_tinted_folder(tmp_path / "sorted", classes=10, train=2, test=30, tint=lambda c: (c % 3, 25 * c))
    clear_loaded()
    data = load_dataset(ref)
    sample = data.test.labels[preview_indices(data.test.labels, 100)]
    assert torch.bincount(sample, minlength=10).tolist() == [10] * 10  # 300 images, 10 classes of 30: 10 each


def test_count_follows_the_rate_with_a_floor_and_round_numbers():
    assert count_for_rate(1400, 10000) == 500            # a cnn on 2 cores: 560 in 0.4 s -> 500
    assert count_for_rate(30, 10000) == MIN_IMAGES       # a ResNet-18 at 224 px: at least 100
    assert count_for_rate(7000, 10000) == 2500           # 2,800 -> 2,500
    assert count_for_rate(1e6, 10000) == MAX_IMAGES
    assert count_for_rate(1e6, 60) == 60                 # a small test split: all of it (one stage)


def test_measured_count_and_its_logits(fmnist, monkeypatch):
    """Measured on the model itself: n follows its rate, and the logits kept are the model's own on
    those n images (subset_accuracy then computes nothing for the uncompressed model)."""
    from compression import preview_subset
    from compression.models import load_pretrained
    from compression.training import predict
    monkeypatch.delenv("COMPRESSION_PREVIEW_IMAGES", raising=False)
    monkeypatch.setattr(preview_subset, "_PREVIEW_COUNTS", preview_subset.weakref.WeakKeyDictionary())
    monkeypatch.setattr(preview_subset, "_SUBSET_BASELINES", preview_subset.weakref.WeakKeyDictionary())
    model = load_pretrained("mlp")
    n = preview_subset.preview_count(model, fmnist, "cpu")
    assert MIN_IMAGES <= n <= MAX_IMAGES and (n % 100 == 0)
    assert preview_subset.preview_count(model, fmnist, "cpu") == n  # measured once
    acc, logits = preview_subset.subset_accuracy(model, fmnist, n, "cpu", remember=True)
    sample = fmnist.test.take(preview_indices(fmnist.test.labels, n))
    assert torch.allclose(logits, predict(model, fmnist, sample), atol=1e-5)
    assert acc == pytest.approx(float((logits.argmax(1) == sample.labels).float().mean()))


def test_the_home_baseline_seeds_the_preview(tmp_path, monkeypatch):
    """The baseline of a non-zoo model evaluates every test image once: its rate gives the preview
    count and its logits the preview's baseline, so a slider's first move does not evaluate the
    uncompressed model again."""
    from compression import preview_subset
    from compression.data import load_dataset
    from compression.refs import baseline, resolve
    from compression.training import predict
    from support import colour_folder  # tests/support.py
    monkeypatch.setenv("COMPRESSION_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("COMPRESSION_PREVIEW_IMAGES", raising=False)
    monkeypatch.setattr(preview_subset, "_PREVIEW_COUNTS", preview_subset.weakref.WeakKeyDictionary())
    monkeypatch.setattr(preview_subset, "_SUBSET_BASELINES", preview_subset.weakref.WeakKeyDictionary())
    folder = load_dataset(f"imagefolder:{colour_folder(tmp_path / 'colours')}")
    resolved = resolve("torchvision:resnet18", folder, device="cpu")  # not the zoo: its baseline in memory
    data = resolved.dataset
    m = baseline(resolved, "cpu")
    monkeypatch.setattr(preview_subset, "measure_count", lambda *a: pytest.fail("the baseline was evaluated again"))
    n = preview_subset.preview_count(resolved.model, data, torch.device("cpu"))
    assert n == len(data.test)  # 18 images: a split under the minimum is previewed whole
    calls = []
    monkeypatch.setattr("compression.training.predict", lambda *a, **k: calls.append(a) or predict(*a, **k))
    acc, logits = preview_subset.subset_accuracy(resolved.model, data, n, torch.device("cpu"), remember=True)
    assert not calls and logits.shape[0] == n
    sample = data.test.take(preview_indices(data.test.labels, n))
    assert torch.allclose(logits, predict(resolved.model, data, sample), atol=1e-4)
    assert acc == pytest.approx(float((logits.argmax(1) == sample.labels).float().mean()))
    assert m.accuracy_n == len(data.test)


def test_fixed_count_setting(monkeypatch, fmnist):
    from compression.preview_subset import preview_count
    monkeypatch.setenv("COMPRESSION_PREVIEW_IMAGES", "250")
    assert preview_count(torch.nn.Identity(), fmnist, "cpu") == 250
    monkeypatch.setenv("COMPRESSION_PREVIEW_IMAGES", "many")
    with pytest.raises(CompressionError, match="'many'"):
        preview_count(torch.nn.Identity(), fmnist, "cpu")


def test_describe_says_which_images():
    assert describe(500, 10000, 10) == "a stratified sample of 500 of 10,000 test images, every class"
    assert describe(100, 50000, 1000) == "a stratified sample of 100 of 50,000 test images, 100 of its 1,000 classes"


def test_staged_first_stage_says_how_many_classes(fmnist):
    """The first stage carries the number of classes its caption names ("every class"); that the full
    stage's predictions are in test order is test_progressive's: exactly run_prune's."""
    from compression.models import load_pretrained
    from compression.pruning import PruneConfig, staged_prune
    stages = staged_prune("mlp", fmnist, PruneConfig("unstructured", 0.3, "layer"), model=load_pretrained("mlp"), first=300)
    part = next(stages).value
    stages.close()
    assert (part.accuracy_n, part.classes, part.to_dict()["classes"]) == (300, 10, 10)
