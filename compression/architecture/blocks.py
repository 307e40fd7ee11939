"""The building blocks: a depthwise-separable convolution (MobileNet) and a rank-K factorized
Linear layer, initialized from the truncated SVD of a trained one."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from compression import CompressionError

class SeparableConv2d(nn.Sequential):
    """Depthwise k x k (one filter per input channel) -> BatchNorm -> ReLU -> pointwise 1 x 1.

    A plain nn.Sequential underneath, so its state_dict keys are 0 (depthwise), 1 (BatchNorm)
    and 3 (pointwise): a converted model and a model built from these blocks load each other's
    weights. The original's bias, if any, moves to the pointwise step."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: Any = 1, padding: Any = 0, dilation: Any = 1, bias: bool = False,
                 padding_mode: str = "zeros"):
        super().__init__(
            nn.Conv2d(in_channels, in_channels, kernel_size, stride, padding, dilation,
                      groups=in_channels, bias=False, padding_mode=padding_mode),  # (B, I, H', W')
            nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, out_channels, 1, bias=bias),                    # (B, O, H', W')
        )

    @classmethod
    def like(cls, conv: nn.Conv2d) -> "SeparableConv2d":
        return cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                   conv.dilation, bias=conv.bias is not None,
                   padding_mode=conv.padding_mode).to(conv.weight.device)


class LowRankLinear(nn.Sequential):
    """Linear(N, K, no bias) -> Linear(K, M): the (M x N) weight as a rank-K product."""

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True):
        super().__init__(nn.Linear(in_features, rank, bias=False), nn.Linear(rank, out_features, bias=bias))

    @property
    def rank(self) -> int:
        return self[0].out_features


def factorize_linear(linear: nn.Linear, rank: int) -> LowRankLinear:
    """Rank-K factors from the truncated SVD W ~ U_K S_K V_K^T, split as (U_K sqrt(S_K)) (sqrt(S_K) V_K^T).
    At full rank (K = min(M, N)) the product is W up to float rounding."""
    w = linear.weight.detach().float()
    m, n = w.shape
    if not 1 <= rank <= min(m, n):
        raise CompressionError(f"rank must be in [1, {min(m, n)}] for a {n} -> {m} layer, got {rank}")
    u, s, vh = torch.linalg.svd(w, full_matrices=False)  # (M, R), (R,), (R, N)
    root = s[:rank].sqrt()
    layer = LowRankLinear(n, m, rank, bias=linear.bias is not None).to(w.device)
    with torch.no_grad():
        layer[0].weight.copy_(root[:, None] * vh[:rank])       # (K, N)
        layer[1].weight.copy_(u[:, :rank] * root[None, :])     # (M, K)
        if linear.bias is not None:
            layer[1].bias.copy_(linear.bias.detach())
    return layer.to(linear.weight.dtype)


def rank_for_energy(singular_values: torch.Tensor, energy: float) -> int:
    """The smallest K whose top-K singular values keep `energy` of sum(s^2)."""
    power = singular_values.double() ** 2
    kept = torch.cumsum(power, 0) / power.sum()
    k = int(torch.searchsorted(kept, torch.tensor(energy * (1 - 1e-9), dtype=torch.float64))) + 1
    return min(k, len(singular_values))


def kept_energy(singular_values: torch.Tensor, rank: int) -> float:
    power = singular_values.double() ** 2
    return float(power[:rank].sum() / power.sum())
