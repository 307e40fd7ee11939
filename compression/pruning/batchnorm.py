"""BatchNorm statistics re-estimated after structured pruning.

Removing channels changes what every later layer receives, but a BatchNorm layer keeps the running
mean and variance it learned on the unpruned network's activations, so the pruned network is
normalized with stale statistics: a torchvision ResNet-18 trained outside this project fell from
78.5 % to chance at ratio 0.5, and to 62 % once its statistics were re-estimated on 2,048 training
images (no weight changed). Fine-tuning uses batch statistics while it trains, so the stale running
ones only matter when there are few optimizer steps to wash them out (running averages with
momentum 0.1: 18 steps in one epoch of a 2,500-image folder): one epoch ended at 61 % without, 77 %
with (docs/benchmarks.md, issue 27). On the zoo's cnn (860 steps in 2 epochs) it changes nothing.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from compression.data import Dataset, Split

BATCH = 128


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, dataset: Dataset, part: Split, images: int, *,
                   device: torch.device | str = "cpu", seed: int = 0) -> int:
    """Replace the running statistics of every BatchNorm layer of `model` (in place: give it a copy)
    by their plain average over `images` images of `part` (a split of `dataset`, normalized as it
    says) drawn at random with `seed` (a split may be stored class by class). Returns the number of layers recalibrated (0: nothing to do)."""
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    pick = torch.randperm(len(part), generator=torch.Generator().manual_seed(seed))[:images].sort().values
    was_training, momenta = model.training, [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    model.train()
    try:
        for x, _ in dataset.batches(part.take(pick), BATCH, device=device):
            model(x)
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
        model.train(was_training)
    return len(layers)
