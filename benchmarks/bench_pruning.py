"""Pruning against the issue's targets, measured side by side in one run on the default device.

1. Structured 0.5 on `cnn` (L1; layer scope, and global scope, which takes more channels from the
   layers that cost the most): params and MACs ratios, batch-64 throughput and
   batch-1 latency ratios (baseline and pruned timed in alternating rounds), accuracy before and
   after 2 fine-tuning epochs; next to PyTorch's `torch.nn.utils.prune.ln_structured` at the same
   ratio (channels zeroed, not removed).
2. Unstructured global 0.9 on `mlp`: stored bytes and nonzero ratios, accuracy one-shot, one-shot
   + 3 epochs, and 3 steps of 4 epochs ramping to 0.9; next to `torch.nn.utils.prune.global_unstructured`
   (its state_dict with masks attached, and after `prune.remove`).
3. A sweep of 10 ratios on `lenet5` without fine-tuning, each measured on all 10k test images.

Fine-tuning uses the split and learning rate in FINETUNE (see docs/pruning.md for why); the cnn
is also fine-tuned at 2e-3, its training peak, side by side."""

from __future__ import annotations

import io
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.utils.prune as torch_prune

from benchmarks import common
from compression.data import load_dataset
from compression.device import get_device
from compression.metrics import baseline_metrics, count_macs, count_nonzero, count_params, latency_ms
from compression.models import load_pretrained, state_dict_bytes
from compression.pruning import (FinetuneConfig, PruneConfig, channel_counts, prune_channels, prune_finetune,
                                 prune_weights, sparse_bytes, sweep)
from compression.training import accuracy_on

FINETUNE = {"split": "train", "lr": 1e-3}  # what the numbers below used
ROUNDS = 5


def _side_by_side(models: dict[str, nn.Module], shape, device, batch_size: int) -> dict[str, float]:
    """Median ms per forward at `batch_size`, the models timed in alternating rounds so that
    load on the machine hits them alike."""
    times: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(ROUNDS):
        for name, m in models.items():
            reps = 40 if batch_size == 1 else 10
            times[name].append(latency_ms(m, shape, device, batch_size=batch_size, warmup=5, repeats=reps))
    return {k: statistics.median(v) for k, v in times.items()}


def _torch_pruned_channels(model: nn.Module, ratio: float) -> nn.Module:
    """PyTorch's own structured pruning: L1 over output channels, masks made permanent."""
    import copy
    model = copy.deepcopy(model)
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))][:-1]
    for m in layers:
        torch_prune.ln_structured(m, "weight", amount=ratio, n=1, dim=0)
        torch_prune.remove(m, "weight")
    return model


def _torch_pruned_global(model: nn.Module, ratio: float, *, keep_masks: bool) -> nn.Module:
    import copy
    model = copy.deepcopy(model)
    params = [(m, name) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
              for name in ("weight", "bias") if getattr(m, name, None) is not None]
    torch_prune.global_unstructured(params, pruning_method=torch_prune.L1Unstructured, amount=ratio)
    if not keep_masks:
        for m, name in params:
            torch_prune.remove(m, name)
    return model


def _bytes_of(model: nn.Module) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return len(buffer.getvalue())


def structured_cnn(data, device) -> list[dict]:
    base = load_pretrained("cnn", device)
    shape = data.input_shape
    scopes = ("layer", "global")
    models = {"baseline": base, **{scope: prune_channels(base, 0.5, input_shape=shape, scope=scope) for scope in scopes},
              "torch": _torch_pruned_channels(base, 0.5)}
    acc_tuned: dict[str, dict[float, float]] = {scope: {} for scope in scopes}
    ft_s: dict[str, list[float]] = {scope: [] for scope in scopes}
    for scope in scopes:
        for lr in (FINETUNE["lr"], 2e-3):  # the default, and the cnn's own training peak
            t0 = time.perf_counter()
            tuned = prune_finetune(base, data, PruneConfig("structured", 0.5, scope),
                                   FinetuneConfig(epochs=2, **{**FINETUNE, "lr": lr}), device=device).model
            ft_s[scope].append(time.perf_counter() - t0)
            acc_tuned[scope][lr] = accuracy_on(tuned, data, "test", device)
    b1 = _side_by_side(models, shape, device, 1)
    b64 = _side_by_side(models, shape, device, 64)
    acc = {k: accuracy_on(m, data, "test", device) for k, m in models.items()}
    macs = {k: count_macs(m, shape, device) for k, m in models.items()}
    rows = []
    for k, label in (("layer", "cnn structured 0.5, layer scope (Torch-Pruning, channels removed)"),
                     ("global", "cnn structured 0.5, global scope (Torch-Pruning, channels removed)"),
                     ("torch", "cnn torch.nn.utils.prune.ln_structured 0.5 (zeroed)")):
        rows.append({
            "what": label, "channels": "-".join(str(v) for v in channel_counts(models[k]).values()),
            "params x": count_params(models[k]) / count_params(base),
            "nonzero x": count_nonzero(models[k]) / count_nonzero(base),
            "MACs x": macs[k] / macs["baseline"], "bytes": _bytes_of(models[k]),
            "bytes x": _bytes_of(models[k]) / _bytes_of(base),
            "batch-64 throughput x": b64["baseline"] / b64[k], "batch-1 speed-up x": b1["baseline"] / b1[k],
            "batch-1 ms": b1[k], "baseline batch-1 ms": b1["baseline"],
            "batch-64 ms": b64[k], "baseline batch-64 ms": b64["baseline"],
            "acc before FT %": acc[k] * 100, "baseline acc %": acc["baseline"] * 100,
            **{f"acc after 2 FT epochs, lr {lr:g} %": (acc_tuned[k][lr] * 100 if k in acc_tuned else None)
               for lr in (FINETUNE["lr"], 2e-3)},
            "FT s (each)": statistics.mean(ft_s[k]) if k in ft_s else None, "device": device.type})
    return rows


def unstructured_mlp(data, device) -> list[dict]:
    base = load_pretrained("mlp", device)
    shape = data.input_shape
    cfg = PruneConfig("unstructured", 0.9, "global")
    oneshot = prune_weights(base, 0.9, scope="global")
    runs = {"one-shot, no FT": oneshot}
    for label, ft in (("one-shot + 3 epochs", FinetuneConfig(epochs=3, **FINETUNE)),
                      ("3 steps x 4 epochs", FinetuneConfig(epochs=4, steps=3, **FINETUNE))):
        runs[label] = prune_finetune(base, data, cfg, ft, device=device).model
    torch_masked = _torch_pruned_global(base, 0.9, keep_masks=True)
    torch_removed = _torch_pruned_global(base, 0.9, keep_masks=False)
    lat = _side_by_side({"baseline": base, "ours": oneshot, "torch masks": torch_masked,
                         "torch removed": torch_removed}, shape, device, 1)
    dense = len(state_dict_bytes(base))
    base_acc = accuracy_on(base, data, "test", device)
    rows = []
    from compression.artifact import write_artifact
    from compression.pipeline import architecture_of
    arch = architecture_of("mlp")
    for label, m in runs.items():
        art = write_artifact(sparse_bytes(m), "sparse", arch)  # the downloadable file: container + sparse payload
        rows.append({"what": f"mlp unstructured global 0.9, ours: {label}", "bytes": len(art),
                     "bytes x": len(art) / dense, "nonzero x": count_nonzero(m) / count_nonzero(base),
                     "batch-1 ms": lat["ours"], "baseline batch-1 ms": lat["baseline"],
                     "acc %": accuracy_on(m, data, "test", device) * 100, "baseline acc %": base_acc * 100,
                     "acc drop points": (base_acc - accuracy_on(m, data, "test", device)) * 100,
                     "device": device.type})
    for label, m, key in (("torch global_unstructured (masks attached)", torch_masked, "torch masks"),
                          ("torch global_unstructured + prune.remove", torch_removed, "torch removed")):
        rows.append({"what": f"mlp {label}", "bytes": _bytes_of(m), "bytes x": _bytes_of(m) / dense,
                     "nonzero x": count_nonzero(m) / count_nonzero(base) if key == "torch removed" else None,
                     "batch-1 ms": lat[key], "baseline batch-1 ms": lat["baseline"],
                     "acc %": accuracy_on(m, data, "test", device) * 100, "device": device.type})
    return rows


def sweep_lenet5(data, device) -> list[dict]:
    ratios = [round(0.1 * i, 1) for i in range(10)]
    model = load_pretrained("lenet5", device)
    baseline_metrics("lenet5", data, device)  # measured once, then read from the disk cache
    rows = []
    for method in ("unstructured", "structured"):
        start = time.perf_counter()
        outcomes = list(sweep("lenet5", data, PruneConfig(method, 0.0), ratios, device=device, model=model))
        seconds = time.perf_counter() - start
        rows.append({"what": f"lenet5 sweep of 10 ratios ({method}, no FT, 10k test images each)",
                     "seconds": seconds, "images evaluated": sum(o.result.metrics.accuracy_n for o in outcomes),
                     "acc at 0.9 %": outcomes[-1].result.metrics.accuracy * 100, "device": device.type})
    return rows


def run() -> list[dict]:
    device = get_device()
    data = load_dataset("fashion-mnist")
    parts = {"structured": structured_cnn, "unstructured": unstructured_mlp, "sweep": sweep_lenet5}
    return [row for part in common.parts(list(parts)) for row in parts[part](data, device)]
