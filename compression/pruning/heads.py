"""Structured pruning of attention by whole heads.

An attention module is recognised by what it has, not by its class: an integer head count
(`num_heads`, or transformers' `num_attention_heads`), an integer `head_dim`, and either

    fused   a `qkv` linear layer whose outputs are laid out (3, num_heads, head_dim) and an output
            projection `proj` taking num_heads * head_dim inputs (compression.zoo_resnet_vit.Attention,
            timm's Attention), or
    split   `q_proj`, `k_proj`, `v_proj` each giving num_heads * head_dim outputs and `o_proj` (or
            `out_proj`) taking them (transformers' ViT, DeiT and their kin).

Removing a channel of q, k or v on its own would leave them of different widths or split a head,
so structured pruning leaves these layers (and the residual stream they read and write) to this
module: it removes the least important whole heads from q, k, v and the matching input columns
of the output projection together, so head_dim stays and the head count drops.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

SPLIT_NAMES = ("q_proj", "k_proj", "v_proj")
OUT_NAMES = ("o_proj", "out_proj")


@dataclass
class Heads:
    """One attention module's layout: where its heads are."""
    module: nn.Module
    heads_attr: str                  # num_heads | num_attention_heads
    inputs: tuple[str, ...]          # ("qkv",) fused, or ("q_proj", "k_proj", "v_proj")
    output: str                      # proj | o_proj | out_proj

    @property
    def fused(self) -> bool:
        return self.inputs == ("qkv",)

    @property
    def num_heads(self) -> int:
        return getattr(self.module, self.heads_attr)

    @property
    def head_dim(self) -> int:
        return self.module.head_dim

    def layers(self) -> list[nn.Linear]:
        return [getattr(self.module, n) for n in (*self.inputs, self.output)]


def _layout(m: nn.Module) -> Heads | None:
    attr = next((a for a in ("num_heads", "num_attention_heads") if isinstance(getattr(m, a, None), int)), None)
    d = getattr(m, "head_dim", None)
    if attr is None or not isinstance(d, int) or d <= 0:
        return None
    h = getattr(m, attr)
    qkv, proj = getattr(m, "qkv", None), getattr(m, "proj", None)
    if (isinstance(qkv, nn.Linear) and isinstance(proj, nn.Linear)
            and qkv.out_features == 3 * h * d == 3 * proj.in_features):
        return Heads(m, attr, ("qkv",), "proj")
    ins = [getattr(m, n, None) for n in SPLIT_NAMES]
    out_name = next((n for n in OUT_NAMES if isinstance(getattr(m, n, None), nn.Linear)), None)
    if out_name and all(isinstance(x, nn.Linear) and x.out_features == h * d for x in ins) \
            and getattr(m, out_name).in_features == h * d:
        return Heads(m, attr, SPLIT_NAMES, out_name)
    return None


def attention_heads(model: nn.Module) -> dict[str, Heads]:
    """name -> layout of every attention module with whole heads in `model`."""
    return {name: found for name, m in model.named_modules() if (found := _layout(m)) is not None}


def attention_modules(model: nn.Module) -> dict[str, nn.Module]:
    """name -> module for every attention module with whole heads in `model`."""
    return {name: h.module for name, h in attention_heads(model).items()}


def attention_layers(model: nn.Module) -> set[nn.Module]:
    """The q/k/v and output layers of every attention module: pruned by head, never channel by channel."""
    return {layer for h in attention_heads(model).values() for layer in h.layers()}


def _part(t: torch.Tensor, importance: str) -> torch.Tensor:
    if importance == "taylor":
        t = t * t.grad if t.grad is not None else torch.zeros_like(t)
    t = t.detach()
    return t.abs() if importance != "l2" else t.pow(2)


def head_scores(attn: nn.Module | Heads, importance: str = "l1") -> torch.Tensor:
    """(num_heads,) importance of each head: the L1 (or squared L2) norm of its q, k, v rows and
    biases and its output-projection columns; for 'taylor', |weight x gradient| summed the same way."""
    heads = attn if isinstance(attn, Heads) else _layout(attn)
    h, d, m = heads.num_heads, heads.head_dim, heads.module
    score = torch.zeros(h, device=getattr(m, heads.output).weight.device)
    for name in heads.inputs:
        layer = getattr(m, name)
        rows = 3 if heads.fused else 1  # fused: (3, h, d, in); split: (1, h, d, in) per layer
        score = score + _part(layer.weight, importance).view(rows, h, d, -1).sum(dim=(0, 2, 3))
        if layer.bias is not None:
            score = score + _part(layer.bias, importance).view(rows, h, d).sum(dim=(0, 2))
    return score + _part(getattr(m, heads.output).weight, importance).view(-1, h, d).sum(dim=(0, 2))


def _linear(old: nn.Linear, rows: torch.Tensor | None, cols: torch.Tensor | None) -> nn.Linear:
    w = old.weight
    w = w[rows] if rows is not None else w
    w = w[:, cols] if cols is not None else w
    new = nn.Linear(w.shape[1], w.shape[0], bias=old.bias is not None).to(old.weight)
    with torch.no_grad():
        new.weight.copy_(w)
        if old.bias is not None:
            new.bias.copy_(old.bias[rows] if rows is not None else old.bias)
    return new


def keep_heads_(attn: nn.Module | Heads, keep: list[int]) -> None:
    """Keep only the heads `keep` (in place on a model that is already a copy)."""
    heads = attn if isinstance(attn, Heads) else _layout(attn)
    h, d, m = heads.num_heads, heads.head_dim, heads.module
    cols = torch.tensor([hd * d + i for hd in sorted(keep) for i in range(d)], dtype=torch.long)
    if heads.fused:
        rows = torch.cat([s * h * d + cols for s in range(3)])
        m.qkv = _linear(m.qkv, rows, None)
    else:
        for name in heads.inputs:
            setattr(m, name, _linear(getattr(m, name), cols, None))
    setattr(m, heads.output, _linear(getattr(m, heads.output), None, cols))
    _set_heads(m, heads.heads_attr, len(keep), d)


WIDTH_ATTRS = ("attn_dim", "all_head_size")  # heads x head_dim, kept by timm (attn_dim) and older transformers


def _set_heads(m: nn.Module, attr: str, heads: int, head_dim: int) -> None:
    setattr(m, attr, heads)
    for name in WIDTH_ATTRS:
        if isinstance(getattr(m, name, None), int):
            setattr(m, name, heads * head_dim)


def prune_heads_(model: nn.Module, ratio: float, importance: str = "l1", original: dict[str, int] | None = None,
                 only: str | None = None) -> dict[str, int]:
    """Remove round(heads * ratio) heads of every attention module (at least one head stays), the
    least important first; `original` (layer name -> output channels of the unpruned model) sets
    what the ratio refers to when pruning iteratively; `only` prunes one attention module. Returns
    name -> heads kept."""
    kept = {}
    for name, heads in attention_heads(model).items():
        if only is not None and name != only:
            continue
        first = heads.inputs[0]
        layer_name = f"{name}.{first}" if name else first
        width = getattr(heads.module, first).out_features
        count = (original or {}).get(layer_name, width) / ((3 if heads.fused else 1) * heads.head_dim)
        target = max(1, round(count * (1 - ratio)))
        if target < heads.num_heads:
            order = torch.argsort(head_scores(heads, importance).float().cpu(), stable=True, descending=True)
            keep_heads_(heads, order[:target].tolist())
        kept[name] = heads.num_heads
    return kept


def match_heads_(model: nn.Module) -> None:
    """After layers were resized to a stored pruned state_dict: the head count from the output
    projection's inputs."""
    for m in model.modules():
        attr = next((a for a in ("num_heads", "num_attention_heads") if isinstance(getattr(m, a, None), int)), None)
        d = getattr(m, "head_dim", None)
        out = next((getattr(m, n) for n in ("proj", *OUT_NAMES) if isinstance(getattr(m, n, None), nn.Linear)), None)
        has_inputs = isinstance(getattr(m, "qkv", None), nn.Linear) or all(
            isinstance(getattr(m, n, None), nn.Linear) for n in SPLIT_NAMES)
        if attr and isinstance(d, int) and d > 0 and out is not None and has_inputs and out.in_features % d == 0:
            _set_heads(m, attr, out.in_features // d, d)
