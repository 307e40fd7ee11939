"""How a pruned model recovers, for a user's own model as for the zoo's: the fine-tuning split
"auto" (val when it holds 5,000 images, else train: a small folder's val split is a tenth of it)
and BatchNorm statistics re-estimated after structured pruning, both stored with the run."""

import pytest
import torch
import torch.nn as nn

from compression import CompressionError
from compression.data import VAL_SIZE, Dataset, Split
from compression.models import load_pretrained
from compression.pruning import FinetuneConfig, PruneConfig, prune_finetune
from compression.pruning import schedule
from compression.pruning.batchnorm import recalibrate_bn
from compression.pruning.config import BN_IMAGES, resolve_split


def _small(n_train=300, n_val=30, n_test=40, shape=(3, 8, 8), classes=3, seed=0) -> Dataset:
    g = torch.Generator().manual_seed(seed)

    def split(n):
        return Split(torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=g),
                     torch.randint(0, classes, (n,), generator=g))
    return Dataset(name="small", classes=tuple(str(i) for i in range(classes)), mean=(0.5,) * shape[0],
                   std=(0.25,) * shape[0], train=split(n_train), val=split(n_val), test=split(n_test), source="test")


def _bn_net(classes=3, channels=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(channels, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, classes)).eval()


def test_auto_fine_tunes_on_val_only_when_it_holds_the_full_val_size(fmnist):
    small = _small()
    assert len(fmnist.val) == VAL_SIZE and resolve_split("auto", fmnist) == "val"  # the zoo: as before
    assert resolve_split("auto", small) == "train"  # 30 val images: a few optimizer steps per epoch
    assert resolve_split("val", small) == "val" and resolve_split("train", fmnist) == "train"  # said: kept
    assert FinetuneConfig().split == "auto" and FinetuneConfig().for_dataset(small).split == "train"


def test_auto_must_be_resolved_before_training():
    with pytest.raises(CompressionError, match="auto"):
        FinetuneConfig(epochs=1).train_config()
    with pytest.raises(CompressionError, match="'test'"):
        FinetuneConfig(split="test")


def test_recalibration_gives_the_exact_statistics_of_the_images():
    """One batch (<= 128 images): the running mean and variance become that batch's, exactly (the
    cumulative average of one batch), whatever they were; the mode and momentum are restored."""
    data, net = _small(n_train=100), _bn_net()
    bn = net[1]
    bn.running_mean.fill_(5.0)
    bn.running_var.fill_(9.0)
    assert recalibrate_bn(net, data, data.train, BN_IMAGES) == 2
    x = next(data.batches(data.train, 1000))[0]
    with torch.no_grad():
        act = net[0](x)
    torch.testing.assert_close(bn.running_mean, act.mean((0, 2, 3)), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bn.running_var, act.var((0, 2, 3), unbiased=True), rtol=1e-4, atol=1e-5)
    assert not net.training and bn.momentum == 0.1


def test_recalibration_draws_a_random_subset_of_a_split_stored_in_class_order():
    data, net = _small(n_train=600), _bn_net()
    first = recalibrate_bn(net, data, data.train, 64, seed=0) and net[1].running_mean.clone()
    again = recalibrate_bn(net, data, data.train, 64, seed=0) and net[1].running_mean.clone()
    other = recalibrate_bn(net, data, data.train, 64, seed=1) and net[1].running_mean.clone()
    head = _bn_net()
    recalibrate_bn(head, data, data.train.head(64), 64, seed=0)
    assert torch.equal(first, again)  # the same seed, the same images
    assert not torch.equal(first, other) and not torch.equal(first, head[1].running_mean)  # not the first 64


def test_a_model_without_batchnorm_is_left_alone():
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 3))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert recalibrate_bn(net, _small(), _small().train, 64) == 0
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize("method, epochs, on, called", [
    ("structured", 1, True, True), ("structured", 0, True, False),  # no fine-tuning: the preview as before
    ("structured", 1, False, False), ("unstructured", 1, True, False)])
def test_recalibrated_after_structured_pruning_before_fine_tuning(monkeypatch, method, epochs, on, called):
    calls = []
    real = schedule.recalibrate_bn
    monkeypatch.setattr(schedule, "recalibrate_bn", lambda *a, **k: calls.append(len(a[2])) or real(*a, **k))
    data = _small()
    run = prune_finetune(_bn_net(), data, PruneConfig(method, 0.5),
                         FinetuneConfig(epochs=epochs, steps=2, recalibrate_bn=on, monitor_images=20))
    assert calls == ([len(data.train)] * 2 if called else [])  # each step, on the split "auto" fine-tunes on
    if epochs:
        assert run.history[0]["monitor"] == "val[:20]"  # trained on train: monitored on val


def test_the_zoo_keeps_its_split_and_a_stale_bn_model_recovers_with_recalibration(fmnist):
    """The zoo cnn on Fashion-MNIST: auto is val (its 5,000 images), as before. Its BN statistics
    planted stale (as a pruned network's are): recalibrated, the pruned model is measured with the
    statistics of what it computes instead of a mean of 3 and a variance of 100 in every channel."""
    cnn = load_pretrained("cnn")
    for m in cnn.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.fill_(3.0)
            m.running_var.fill_(100.0)
    accs = {}
    for on in (False, True):
        run = prune_finetune(cnn, fmnist, PruneConfig("structured", 0.3),
                             FinetuneConfig(epochs=1, subset=256, recalibrate_bn=on, monitor_images=500))
        accs[on] = run.history[0]["accuracy"]
        assert run.history[0]["monitor"] == "test[:500]"  # fine-tuned on val: monitored on test
    assert accs[True] > accs[False] + 0.2
