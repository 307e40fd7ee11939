"""Sensitivity: accuracy when only one layer is pruned, per layer and ratio (`sensitivity`), kept on
disk per checkpoint and settings (`cached_sensitivity`)."""

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
from compression.pruning.structured import channel_counts, prune_channels
from compression.pruning.unstructured import _zero_smallest_, prunable_parameters
from compression.training import ProgressFn, StopFn, accuracy_on

def sensitivity(model: nn.Module, dataset: Dataset, *, method: str, ratios: Iterable[float],
                importance: str = "l1", device: torch.device | str = "cpu", limit: int | None = 2000,
                progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> list[dict]:
    """Rows {layer, ratio, accuracy}: each prunable layer pruned alone at each ratio, accuracy on
    the first `limit` validation images. Structured skips the output layer (its outputs are
    the classes); unstructured includes it."""
    device = torch.device(device)
    model = clone_model(model).to(device).eval()
    layers = [n for n, m in model.named_modules() if isinstance(m, PRUNABLE)]
    if method == "structured":
        layers = layers[:-1]
    ratios = list(ratios)
    for r in ratios:
        PruneConfig(method, r, "layer", importance)
    calibration = (list(dataset.batches("val", 64, device=device, limit=256))
                   if method == "structured" and importance == "taylor" else None)
    rows, total = [], len(layers) * len(ratios)
    for layer in layers:
        for r in ratios:
            if should_stop is not None and should_stop():
                return rows
            pruned = _prune_one_layer(model, layer, r, method, importance, dataset.input_shape, calibration)
            rows.append({"layer": layer, "ratio": r,
                         "accuracy": accuracy_on(pruned, dataset, "val", device, limit=limit)})
            if progress is not None:
                progress({"step": len(rows), "steps": total, "layer": layer, "ratio": r})
    return rows


def _prune_one_layer(model, layer, ratio, method, importance, input_shape, calibration):
    if method == "unstructured":
        pruned = clone_model(model)
        tensors = [p for n, p in prunable_parameters(pruned) if n.rpartition(".")[0] == layer]
        _zero_smallest_(tensors, ratio)
        return pruned
    # every other layer keeps all its channels: their `original` count is what they have / (1 - ratio)
    counts = channel_counts(model)
    original = {n: (c if n == layer else c / (1 - ratio)) for n, c in counts.items()}
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
    key = "|".join(map(str, [name, weights_fingerprint(parse(name)), dataset.name, method, importance,
                             list(ratios), limit, device.type, torch.__version__]))
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
