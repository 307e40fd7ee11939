"""Sensitivity: accuracy when only one layer (unstructured) or one dependency group (structured) is
pruned, per layer or group and ratio (`sensitivity`), kept on disk per checkpoint and settings
(`cached_sensitivity`).

Structured pruning cannot remove a channel from one layer of a residual addition alone: every layer
that writes into the addition loses it too (Torch-Pruning's dependency group). So the structured
rows are groups: a plain stack's groups are its layers (rows as before), a residual group's row
is named by its layers joined with " + " and lists them under "coupled", and each attention
module's heads are one row ("<attention> heads")."""

from __future__ import annotations

import json
import os
import threading
from typing import Iterable

import torch
import torch.nn as nn

from compression.data import Dataset
from compression.models import clone_model
from compression.pruning.config import PRUNABLE, PruneConfig
from compression.pruning.heads import attention_modules, prune_heads_
from compression.pruning.structured import _taylor_gradients, channel_counts, channel_groups, prune_channels
from compression.pruning.unstructured import _zero_smallest_, prunable_parameters
from compression.training import ProgressFn, StopFn, accuracy_on

def sensitivity(model: nn.Module, dataset: Dataset, *, method: str, ratios: Iterable[float],
                importance: str = "l1", device: torch.device | str = "cpu", limit: int | None = 2000,
                progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> list[dict]:
    """Rows {layer, ratio, accuracy}: each prunable layer (unstructured) or dependency group
    (structured; rows of coupled layers add "coupled") pruned alone at each ratio, accuracy on the
    first `limit` validation images. Structured skips the output layer (its outputs are the
    classes); unstructured includes it."""
    device = torch.device(device)
    model = clone_model(model).to(device).eval()
    if method == "structured":
        units = [(" + ".join(g), g) for g in channel_groups(model, dataset.input_shape)]
        units += [(f"{name} heads", ["heads", name]) for name in attention_modules(model)]
    else:
        units = [(n, [n]) for n, m in model.named_modules() if isinstance(m, PRUNABLE)]
    ratios = list(ratios)
    for r in ratios:
        PruneConfig(method, r, "layer", importance)
    calibration = (list(dataset.batches("val", 64, device=device, limit=256))
                   if method == "structured" and importance == "taylor" else None)
    rows, total = [], len(units) * len(ratios)
    for label, members in units:
        for r in ratios:
            if should_stop is not None and should_stop():
                return rows
            pruned = _prune_one(model, members, r, method, importance, dataset.input_shape, calibration)
            row = {"layer": label, "ratio": r, "accuracy": accuracy_on(pruned, dataset, "val", device, limit=limit)}
            rows.append({**row, "coupled": members} if len(members) > 1 else row)
            if progress is not None:
                progress({"step": len(rows), "steps": total, "layer": label, "ratio": r})
    return rows


def _prune_one_layer(model, layer, ratio, method, importance, input_shape, calibration):
    return _prune_one(model, [layer], ratio, method, importance, input_shape, calibration)


def _prune_one(model, members, ratio, method, importance, input_shape, calibration):
    """A copy of `model` with only `members` pruned: one layer's weights (unstructured), one
    dependency group's channels, or (["heads", name]) one attention module's heads."""
    if method == "unstructured":
        pruned = clone_model(model)
        tensors = [p for n, p in prunable_parameters(pruned) if n.rpartition(".")[0] in members]
        _zero_smallest_(tensors, ratio)
        return pruned
    if members[0] == "heads":
        pruned = clone_model(model)
        if importance == "taylor":
            _taylor_gradients(pruned, calibration or [])
        prune_heads_(pruned, ratio, importance, only=members[1])
        pruned.zero_grad(set_to_none=True)
        return pruned
    # every other group keeps all its channels: their `original` count is what they have / (1 - ratio)
    counts = channel_counts(model)
    original = {n: (c if n in members else c / (1 - ratio)) for n, c in counts.items()}
    return prune_channels(model, ratio, input_shape=input_shape, scope="layer", importance=importance,
                          calibration=calibration, original=original)


def cached_sensitivity(name: str, dataset: Dataset, *, method: str, ratios: tuple[float, ...],
                       importance: str = "l1", device: torch.device | str = "cpu", limit: int | None = 2000,
                       progress: ProgressFn | None = None, should_stop: StopFn | None = None,
                       only_cached: bool = False) -> list[dict] | None:
    """`sensitivity` of a model reference, kept on disk per weights, dataset, settings and device.
    With only_cached, returns None instead of computing what is not on disk yet."""
    from compression.paths import home_dir
    from compression.refs import parse, weights_fingerprint

    device = torch.device(device)
    unit = "groups" if method == "structured" else "layers"  # structured rows are dependency groups
    key = "|".join(map(str, [name, weights_fingerprint(parse(name)), dataset.name, method, importance,
                             list(ratios), limit, device.type, torch.__version__, unit]))
    cache = home_dir() / "cache" / "sensitivity.json"
    try:
        table = json.loads(cache.read_text()) if cache.is_file() else {}
    except (OSError, ValueError):
        table = {}
    if key in table or only_cached:
        return table.get(key)
    from compression.refs import resolve
    rows = sensitivity(resolve(name, dataset, device=device).model, dataset, method=method, ratios=ratios,
                       importance=importance, device=device, limit=limit, progress=progress,
                       should_stop=should_stop)
    if should_stop is not None and should_stop():
        return rows  # incomplete: not cached
    table[key] = rows
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".tmp{os.getpid()}-{threading.get_ident()}")
    tmp.write_text(json.dumps(table))
    os.replace(tmp, cache)
    return rows
