"""Unstructured pruning: zero the smallest |w|. The network keeps its shape with zeros inside, so a
dense kernel runs it exactly as fast as before; `sparse_macs` says what a sparse kernel could reach."""

from __future__ import annotations

import torch
import torch.nn as nn

from compression.models import clone_model
from compression.pruning.config import PRUNABLE, PruneConfig

def prunable_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Weights and biases of conv and linear layers (BatchNorm and other parameters stay)."""
    out = []
    for module_name, module in model.named_modules():
        if isinstance(module, PRUNABLE):
            for pname in ("weight", "bias"):
                p = getattr(module, pname, None)
                if isinstance(p, nn.Parameter):
                    out.append((f"{module_name}.{pname}" if module_name else pname, p))
    return out


def _zero_smallest_(tensors: list[torch.Tensor], ratio: float) -> None:
    """Zero exactly round(ratio * n) of the n entries of `tensors` with the smallest magnitude,
    ranked together (ties broken by position). Entries already zero rank first."""
    flat = torch.cat([t.detach().reshape(-1).abs().float() for t in tensors])
    k = int(round(ratio * flat.numel()))
    if k == 0:
        return
    # the k smallest, ties by position (what a stable argsort's first k are), in linear time: the k-th
    # smallest value by selection, every entry below it, then the first of those equal to it
    threshold = torch.kthvalue(flat, k).values
    drop = flat < threshold
    ties = (flat == threshold).nonzero().flatten()[:k - int(drop.sum())]
    drop[ties] = True
    start = 0
    with torch.no_grad():
        for t in tensors:
            t.masked_fill_(drop[start:start + t.numel()].view_as(t), 0)
            start += t.numel()


def prune_weights(model: nn.Module, ratio: float, *, scope: str = "layer") -> nn.Module:
    """A copy of `model` with `ratio` of its conv/linear weights and biases set to zero, by
    magnitude: in every layer (scope='layer') or with one threshold over all of them ('global')."""
    PruneConfig(method="unstructured", ratio=ratio, scope=scope)  # validates
    model = clone_model(model)
    params = prunable_parameters(model)
    if scope == "global":
        _zero_smallest_([p for _, p in params], ratio)
    else:
        by_layer: dict[str, list[torch.Tensor]] = {}
        for name, p in params:
            by_layer.setdefault(name.rpartition(".")[0], []).append(p)
        for tensors in by_layer.values():
            _zero_smallest_(tensors, ratio)
    return model


def weight_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """{parameter name: bool mask of the entries kept} for the prunable parameters."""
    return {name: p.detach() != 0 for name, p in prunable_parameters(model)}


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Zero the masked-out entries in place (after each optimizer step while fine-tuning)."""
    with torch.no_grad():
        for name, p in prunable_parameters(model):
            if name in masks:
                p.mul_(masks[name].to(p.device))


def sparsity(model: nn.Module) -> float:
    """Fraction of the prunable entries (conv/linear weights and biases) that are zero."""
    params = prunable_parameters(model)
    total = sum(p.numel() for _, p in params)
    zeros = sum(int((p.detach() == 0).sum()) for _, p in params)
    return zeros / total if total else 0.0


@torch.inference_mode()
def sparse_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """MACs for one input if only nonzero weights were multiplied: what a sparse kernel could
    reach. Theoretical: the dense kernels we run still do every multiply."""
    total = 0
    hooks = []

    def count(m, _inp, out):
        nonlocal total
        nnz = int(torch.count_nonzero(m.weight))
        # a conv weight is used once per output position; a linear one once per leading row
        uses = out[0, 0].numel() if isinstance(m, nn.modules.conv._ConvNd) else out[0].numel() // out.shape[-1]
        total += nnz * uses

    for m in model.modules():
        if isinstance(m, PRUNABLE):
            hooks.append(m.register_forward_hook(count))
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        model(torch.zeros(1, *input_shape, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return total
