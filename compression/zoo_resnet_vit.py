"""The two architectures people actually compress, sized for 1x28x28 Fashion-MNIST: a CIFAR-style
residual network (`resnet`) and a small vision transformer (`vit`), registered builders.

They are *not* zoo entries until they have weights: `zoo_names()` lists model cards in
assets/models/, and these have only a training recipe in assets/recipes/ (`python -m compression
zoo train resnet` trains one and writes its card and checkpoint there).

The attention module keeps q, k and v in one `qkv` linear layer laid out (3, heads, head_dim) and
records `num_heads` and `head_dim`: structured pruning (compression.pruning.heads) recognises it by
those attributes and removes whole heads from qkv and the output projection together.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from compression import CompressionError
from compression.models import _scaled, register_model

RESNET_DEPTHS = (8, 14, 20)  # 6n + 2: n basic blocks per stage


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers and a shortcut: the identity, or a strided 1x1 conv + BN projection
    when the width or the resolution changes (He et al. 2016, option B)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = (nn.Identity() if stride == 1 and cin == cout else
                         nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


def resnet_stages(depth: int, in_channels: int, widths: tuple[int, int, int]) -> list[nn.Sequential]:
    """stem, stage 1, stage 2, stage 3 (each later stage halves the image): the parts that `resnet`
    chains and `resnet_exits` puts exits between."""
    if depth not in RESNET_DEPTHS:
        raise CompressionError(f"resnet depth must be one of {', '.join(map(str, RESNET_DEPTHS))}, got {depth!r}")
    n = (depth - 2) // 6
    c1, c2, c3 = widths

    def stage(cin: int, cout: int, stride: int) -> nn.Sequential:
        return nn.Sequential(BasicBlock(cin, cout, stride), *[BasicBlock(cout, cout) for _ in range(n - 1)])

    stem = nn.Sequential(nn.Conv2d(in_channels, c1, 3, padding=1, bias=False), nn.BatchNorm2d(c1), nn.ReLU(inplace=True))
    return [stem, stage(c1, c1, 1), stage(c1, c2, 2), stage(c2, c3, 2)]


class ResNet(nn.Module):
    def __init__(self, stages: list[nn.Sequential], channels: int, num_classes: int):
        super().__init__()
        self.stem, self.stage1, self.stage2, self.stage3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage3(self.stage2(self.stage1(self.stem(x))))
        return self.fc(self.pool(x).flatten(1))


@register_model
def resnet(*, num_classes: int = 10, in_channels: int = 1, image_size: int = 28, width: float = 1.0,
           depth: int = 8) -> nn.Module:
    """CIFAR-style ResNet (He et al. 2016): a 3x3 stem, three stages of basic blocks at 16-32-64
    channels (28x28, 14x14, 7x7 on Fashion-MNIST), global average pooling, one linear layer.
    depth 8 (one block per stage) by default; 14 and 20 have two and three."""
    widths = (_scaled(16, width), _scaled(32, width), _scaled(64, width))
    return ResNet(resnet_stages(depth, in_channels, widths), widths[2], num_classes)


# ---------------------------------------------------------------------------------------------
# vision transformer

class Attention(nn.Module):
    """Multi-head self-attention with q, k, v in one linear layer, output laid out (3, heads,
    head_dim); explicit matmuls, so FlopCounterMode counts the attention's own MACs."""

    def __init__(self, dim: int, num_heads: int, head_dim: int):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, head_dim
        self.qkv = nn.Linear(dim, 3 * num_heads * head_dim)
        self.proj = nn.Linear(num_heads * head_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]                                   # (B, heads, N, head_dim)
        attn = ((q * self.head_dim ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(b, n, self.num_heads * self.head_dim)
        return self.proj(out)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, num_heads: int, head_dim: int, mlp_hidden: int):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, num_heads, head_dim)
        self.norm2, self.mlp = nn.LayerNorm(dim), Mlp(dim, mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """patch x patch patches -> tokens, a class token in front, learned position embeddings."""

    def __init__(self, in_channels: int, image_size: int, patch: int, dim: int):
        super().__init__()
        if image_size % patch:
            raise CompressionError(f"vit patch size {patch} must divide the image size {image_size}")
        self.proj = nn.Conv2d(in_channels, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, (image_size // patch) ** 2 + 1, dim) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x).flatten(2).transpose(1, 2)                          # (B, patches, dim)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return x + self.pos_embed


class ClassTokenHead(nn.Module):
    """LayerNorm, then a linear classifier on the class token: the ViT's head and its exits."""

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.norm, self.linear = nn.LayerNorm(dim), nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm(x[:, 0]))


def vit_dims(width: float, dim: int, heads: int, mlp: int) -> tuple[int, int, int]:
    """(head_dim, heads, mlp hidden) for a width multiplier: the head count stays, head_dim scales."""
    if not isinstance(heads, int) or heads < 1 or dim % heads:
        raise CompressionError(f"vit heads must divide the width {dim}, got {heads!r}")
    return _scaled(dim // heads, width), heads, _scaled(mlp, width)


class ViT(nn.Module):
    def __init__(self, embed: PatchEmbed, blocks: list[Block], head: ClassTokenHead):
        super().__init__()
        self.embed, self.blocks, self.head = embed, nn.Sequential(*blocks), head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.embed(x)))


@register_model
def vit(*, num_classes: int = 10, in_channels: int = 1, image_size: int = 28, width: float = 1.0,
        patch: int = 7, dim: int = 64, depth: int = 4, heads: int = 4, mlp: int = 128) -> nn.Module:
    """A small vision transformer (Dosovitskiy et al. 2021): 7x7 patches -> 16 tokens plus a class
    token, width 64, 4 pre-norm blocks with 4 heads and MLP 128, ~0.14 M parameters."""
    head_dim, heads, hidden = vit_dims(width, dim, heads, mlp)
    dim = head_dim * heads
    if not isinstance(depth, int) or depth < 1:
        raise CompressionError(f"vit depth must be a positive integer, got {depth!r}")
    return ViT(PatchEmbed(in_channels, image_size, patch, dim),
               [Block(dim, heads, head_dim, hidden) for _ in range(depth)], ClassTokenHead(dim, num_classes))
