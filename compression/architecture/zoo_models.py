"""The zoo's ds_cnn: the cnn design built from depthwise-separable blocks, a registered builder named
by its model card (`"compression.architecture:ds_cnn"`)."""

from __future__ import annotations

import torch.nn as nn

from compression.architecture.blocks import LowRankLinear, SeparableConv2d
from compression.architecture.calculator import low_rank_saves
from compression.models import _scaled, register_model

@register_model
def ds_cnn(*, num_classes: int = 10, in_channels: int = 1, image_size: int = 28, width: float = 1.0,
           head_rank: int | None = None, separable_stem: bool = True) -> nn.Module:
    """The zoo cnn rebuilt from depthwise-separable blocks (MobileNet style), optionally with a
    rank-K hidden layer. Its state_dict keys are those of `convert(cnn, ...)` with the same
    choices, so "designed small" and "converted" are the same network, trained differently."""
    c1, c2, c3 = _scaled(16, width), _scaled(32, width), _scaled(64, width)
    hidden = _scaled(128, width)
    side = image_size // 8

    def block(cin: int, cout: int, separable: bool = True) -> list[nn.Module]:
        conv = (SeparableConv2d(cin, cout, 3, padding=1) if separable
                else nn.Conv2d(cin, cout, 3, padding=1, bias=False))
        return [conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.MaxPool2d(2)]

    flat = c3 * side * side
    fc1 = (LowRankLinear(flat, hidden, head_rank) if head_rank is not None and low_rank_saves(hidden, flat, head_rank)
           else nn.Linear(flat, hidden))
    return nn.Sequential(
        *block(in_channels, c1, separable_stem),  # (B, 16, 14, 14)
        *block(c1, c2),                           # (B, 32, 7, 7)
        *block(c2, c3),                           # (B, 64, 3, 3)
        nn.Flatten(),
        fc1, nn.ReLU(inplace=True), nn.Dropout(0.2),
        nn.Linear(hidden, num_classes),
    )

