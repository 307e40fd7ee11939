"""Reproducible from the card: the same command twice gives the same prediction on every test image
and the same artifact, byte for byte, on the same machine, for every family. Every random draw a
method makes (data order, augmentation, dropout masks, a new layer's initial weights, the
calibration sample) comes from the run's seed, never from torch's global generator as whatever ran
before left it: so each test disturbs that generator differently before each of its two runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from compression.methods import compress

LIMIT, SUBSET = 200, 256  # test images, training images: small, so the tests stay fast


def _twice(run):
    """run() twice, torch's global generator left in a different state before each."""
    out = []
    for noise in (1, 2):
        torch.manual_seed(1000 * noise)
        torch.rand(17 * noise)
        out.append(run())
    return out


def _same_run(a, b) -> None:
    assert a.result.metrics.accuracy == b.result.metrics.accuracy
    assert np.array_equal(a.result.predictions.predicted, b.result.predictions.predicted)  # image by image
    assert a.artifact == b.artifact  # the file, byte for byte


@pytest.mark.parametrize("method, config", [
    ("prune", "structured:0.5:scope=layer:epochs=1:augment=True"),  # fine-tuning: order, shifts, dropout
    ("quantize", "uniform:4:activation_bits=4:qat_epochs=1"),        # calibration sample, QAT with dropout
    ("student", "lenet5:epochs=1:alpha=0.7"),                         # a new network, seeded, distilled
    ("architecture", "depthwise:recover=distill:recover_epochs=1:match_steps=20"),
])
def test_a_method_run_twice_gives_the_same_predictions_and_file(method, config):
    # cnn: dropout in its classifier, so an unseeded mask would show in the predictions
    runs = _twice(lambda: compress("cnn", None, method, config, device="cpu", limit=LIMIT, subset=SUBSET, seed=3))
    _same_run(*runs)


def test_architecture_recovery_through_the_command_path_is_reproducible():
    """`architecture --recover distill` runs convert -> match -> distill outside the registry
    (compression.architecture.run): the numbers the README quotes for it must repeat too."""
    from compression.architecture import ArchitectureConfig, RecoveryConfig, architecture_results
    from compression.data import load_dataset
    data = load_dataset("fashion-mnist")
    cfg = ArchitectureConfig(("depthwise",), seed=0)
    recovery = RecoveryConfig(method="distill", epochs=1, subset=SUBSET, match_steps=20, seed=0)

    def run():
        *_, recovered = architecture_results("cnn", cfg, recovery, dataset=data, device="cpu", limit=LIMIT)
        return recovered
    a, b = _twice(run)
    assert a.metrics.accuracy == b.metrics.accuracy
    assert np.array_equal(a.predictions.predicted, b.predictions.predicted) and a.artifact == b.artifact


def test_exit_heads_attached_twice_start_and_end_the_same():
    from compression.data import load_dataset
    from compression.dynamic.attach import attach_exits, default_blocks, train_heads
    from compression.models import load_pretrained
    from compression.training import TrainConfig
    data, base = load_dataset("fashion-mnist"), load_pretrained("cnn")
    x = data.normalize(data.test.images[:LIMIT])

    def run():
        model = attach_exits(base, default_blocks(base), data.input_shape, data.num_classes)
        trained = train_heads(model, data, TrainConfig(epochs=1, subset=SUBSET), device="cpu").model.eval()
        with torch.no_grad():
            return [p.detach().clone() for p in model.parameters()], [y.argmax(1) for y in trained.forward_all(x)]
    (init_a, out_a), (init_b, out_b) = _twice(run)
    assert all(torch.equal(p, q) for p, q in zip(init_a, init_b))  # the heads' initial weights
    assert len(out_a) >= 2 and all(torch.equal(p, q) for p, q in zip(out_a, out_b))  # every exit, image by image
