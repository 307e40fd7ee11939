"""The zoo's dynamic models, registered builders named by the model cards
(`"compression.dynamic:lenet5_exits"`): multi-exit lenet5, cnn, resnet and vit, and the slimmable cnn."""

from __future__ import annotations

from typing import Sequence

import torch.nn as nn

from compression.dynamic.exits import ExitHead, MultiExitNet
from compression.dynamic.slimmable import SLIM_WIDTHS, SlimmableCNN
from compression.models import conv_bn_relu, register_model
from compression.zoo_resnet_vit import Block, ClassTokenHead, PatchEmbed, resnet_stages, vit_dims

@register_model
def lenet5_exits(*, num_classes: int = 10, in_channels: int = 1, image_size: int = 28, exit_pool: int = 2,
                 exit_hidden: int = 0, exit_loss_weights: Sequence[float] = (1.0, 1.0),
                 distill: Sequence[float] = (0.0, 1.0)) -> nn.Module:
    """LeNet-5 (the zoo's lenet5 layers) with one early exit on the max-pooled first-block
    features (zoo card: 294-32-10 head). The full path is exactly lenet5 (416,520 MACs). No exit
    after the second block: it would save at most 14 % of the MACs for the images leaving there,
    and at batch 1 its head costs more time than the three small linear layers it skips."""
    s1 = image_size // 2                  # after conv1 (padding 2) and pool
    s2 = (s1 - 4) // 2                    # after conv2 (no padding) and pool
    stages = [
        nn.Sequential(nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)),  # (B, 6, 14, 14)
        nn.Sequential(nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),                        # (B, 16, 5, 5)
                      nn.Flatten(), nn.Linear(16 * s2 * s2, 120), nn.ReLU(),
                      nn.Linear(120, 84), nn.ReLU()),                                         # (B, 84)
    ]
    exits = [ExitHead(6, s1, num_classes, exit_pool, exit_hidden), nn.Linear(84, num_classes)]
    return MultiExitNet(stages, exits, exit_loss_weights, distill)


@register_model
def cnn_exits(*, num_classes: int = 10, in_channels: int = 1, image_size: int = 28, exit_hidden: int = 0,
              exit_loss_weights: Sequence[float] = (1.0, 1.0, 1.0), distill: Sequence[float] = (0.0, 1.0)) -> nn.Module:
    """The zoo's cnn (16-32-64 conv blocks, 128 hidden) with an exit on the max-pooled features of
    the first and of the second block: 3 exits. The full path is exactly cnn (1,994,240 MACs)."""
    s1, s2, s3 = image_size // 2, image_size // 4, image_size // 8
    stages = [
        nn.Sequential(*conv_bn_relu(in_channels, 16), nn.MaxPool2d(2)),  # (B, 16, 14, 14)
        nn.Sequential(*conv_bn_relu(16, 32), nn.MaxPool2d(2)),           # (B, 32, 7, 7)
        nn.Sequential(*conv_bn_relu(32, 64), nn.MaxPool2d(2), nn.Flatten(),
                      nn.Linear(64 * s3 * s3, 128), nn.ReLU(inplace=True), nn.Dropout(0.2)),  # (B, 128)
    ]
    exits = [ExitHead(16, s1, num_classes, 2, exit_hidden), ExitHead(32, s2, num_classes, 2, exit_hidden),
             nn.Linear(128, num_classes)]
    return MultiExitNet(stages, exits, exit_loss_weights, distill)


@register_model
def cnn_slim(*, num_classes: int = 10, in_channels: int = 1, image_size: int = 28,
             widths: Sequence[float] = SLIM_WIDTHS) -> nn.Module:
    """Slimmable cnn: one set of weights run at 0.25, 0.5, 0.75 or 1.0 of its channels."""
    return SlimmableCNN(num_classes=num_classes, in_channels=in_channels, image_size=image_size, widths=widths)


@register_model
def resnet_exits(*, num_classes: int = 10, in_channels: int = 1, image_size: int = 28, depth: int = 8,
                 exit_hidden: int = 0, exit_loss_weights: Sequence[float] = (1.0, 1.0, 1.0),
                 distill: Sequence[float] = (0.0, 1.0)) -> nn.Module:
    """The resnet (16-32-64 stages) with an exit after stage 1 and after stage 2 (max-pooled to 7x7
    features): 3 exits. The full path is resnet's layers plus its pooled linear classifier."""
    stem, stage1, stage2, stage3 = resnet_stages(depth, in_channels, (16, 32, 64))
    s1, s2 = image_size, image_size // 2
    exits = [ExitHead(16, s1, num_classes, 4, exit_hidden), ExitHead(32, s2, num_classes, 2, exit_hidden),
             nn.Linear(64, num_classes)]
    return MultiExitNet([nn.Sequential(stem, stage1), stage2, nn.Sequential(stage3, nn.AdaptiveAvgPool2d(1), nn.Flatten())],
                        exits, exit_loss_weights, distill)


@register_model
def vit_exits(*, num_classes: int = 10, in_channels: int = 1, image_size: int = 28, patch: int = 7, dim: int = 64,
              depth: int = 4, heads: int = 4, mlp: int = 128, exit_loss_weights: Sequence[float] | None = None,
              distill: Sequence[float] = (0.0, 1.0)) -> nn.Module:
    """The vit with an exit (LayerNorm + linear on the class token) after every block; the first
    stage also embeds the patches. The last exit is vit's own head."""
    head_dim, heads, hidden = vit_dims(1.0, dim, heads, mlp)
    blocks = [Block(dim, heads, head_dim, hidden) for _ in range(depth)]
    stages = [nn.Sequential(PatchEmbed(in_channels, image_size, patch, dim), blocks[0]), *blocks[1:]]
    return MultiExitNet(stages, [ClassTokenHead(dim, num_classes) for _ in blocks], exit_loss_weights, distill)
