"""Structured pruning of attention by whole heads.

An attention module is recognised by what it has, not by its class: a `qkv` linear layer whose
outputs are laid out (3, num_heads, head_dim), an output projection `proj` taking num_heads *
head_dim inputs, and the integers `num_heads` and `head_dim` (compression.zoo_resnet_vit.Attention,
and timm's Attention). Removing a channel of qkv on its own would leave q, k and v of different
widths or split a head, so structured pruning leaves these layers (and the residual stream they
read and write) to this module: it removes the least important whole heads from q, k, v and the
matching input columns of proj together, so head_dim stays and num_heads drops.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def attention_modules(model: nn.Module) -> dict[str, nn.Module]:
    """name -> module for every attention module with whole heads in `model`."""
    found = {}
    for name, m in model.named_modules():
        qkv, proj = getattr(m, "qkv", None), getattr(m, "proj", None)
        heads, dim = getattr(m, "num_heads", None), getattr(m, "head_dim", None)
        if (isinstance(qkv, nn.Linear) and isinstance(proj, nn.Linear) and isinstance(heads, int)
                and isinstance(dim, int) and qkv.out_features == 3 * heads * dim == 3 * proj.in_features):
            found[name] = m
    return found


def attention_layers(model: nn.Module) -> set[nn.Module]:
    """The qkv and proj layers of every attention module: pruned by head, never channel by channel."""
    return {layer for m in attention_modules(model).values() for layer in (m.qkv, m.proj)}


def head_scores(attn: nn.Module, importance: str = "l1") -> torch.Tensor:
    """(num_heads,) importance of each head: the L1 (or squared L2) norm of its q, k, v rows and
    biases and its proj columns; for 'taylor', |weight x gradient| summed the same way."""
    h, d = attn.num_heads, attn.head_dim

    def part(t: torch.Tensor) -> torch.Tensor:
        if importance == "taylor":
            t = t * t.grad if t.grad is not None else torch.zeros_like(t)
        t = t.detach()
        return t.abs() if importance != "l2" else t.pow(2)

    score = part(attn.qkv.weight).view(3, h, d, -1).sum(dim=(0, 2, 3))
    if attn.qkv.bias is not None:
        score = score + part(attn.qkv.bias).view(3, h, d).sum(dim=(0, 2))
    return score + part(attn.proj.weight).view(-1, h, d).sum(dim=(0, 2))


def keep_heads_(attn: nn.Module, keep: list[int]) -> None:
    """Keep only the heads `keep` (in place on a model that is already a copy)."""
    h, d = attn.num_heads, attn.head_dim
    keep = sorted(keep)
    cols = torch.tensor([hd * d + i for hd in keep for i in range(d)], dtype=torch.long)
    rows = torch.cat([s * h * d + cols for s in range(3)])
    qkv, proj = attn.qkv, attn.proj
    new_qkv = nn.Linear(qkv.in_features, len(rows), bias=qkv.bias is not None).to(qkv.weight)
    new_proj = nn.Linear(len(cols), proj.out_features, bias=proj.bias is not None).to(proj.weight)
    with torch.no_grad():
        new_qkv.weight.copy_(qkv.weight[rows])
        new_proj.weight.copy_(proj.weight[:, cols])
        if qkv.bias is not None:
            new_qkv.bias.copy_(qkv.bias[rows])
        if proj.bias is not None:
            new_proj.bias.copy_(proj.bias)
    attn.qkv, attn.proj, attn.num_heads = new_qkv, new_proj, len(keep)


def prune_heads_(model: nn.Module, ratio: float, importance: str = "l1", original: dict[str, int] | None = None,
                 only: str | None = None) -> dict[str, int]:
    """Remove round(heads * ratio) heads of every attention module (at least one head stays), the
    least important first; `original` (layer name -> output channels of the unpruned model) sets
    what the ratio refers to when pruning iteratively; `only` prunes one attention module. Returns
    name -> heads kept."""
    kept = {}
    for name, attn in attention_modules(model).items():
        if only is not None and name != only:
            continue
        qkv_name = f"{name}.qkv" if name else "qkv"
        heads = (original or {}).get(qkv_name, attn.qkv.out_features) / (3 * attn.head_dim)
        target = max(1, round(heads * (1 - ratio)))
        if target < attn.num_heads:
            order = torch.argsort(head_scores(attn, importance).float().cpu(), stable=True, descending=True)
            keep_heads_(attn, order[:target].tolist())
        kept[name] = attn.num_heads
    return kept


def match_heads_(model: nn.Module) -> None:
    """After layers were resized to a stored pruned state_dict: num_heads from proj's inputs."""
    for name, m in model.named_modules():
        qkv, proj, d = getattr(m, "qkv", None), getattr(m, "proj", None), getattr(m, "head_dim", None)
        if isinstance(qkv, nn.Linear) and isinstance(proj, nn.Linear) and isinstance(d, int) and d > 0 \
                and isinstance(getattr(m, "num_heads", None), int) and proj.in_features % d == 0:
            m.num_heads = proj.in_features // d
