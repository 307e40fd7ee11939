"""Architecture design, measured side by side in one run on the default device: the calculator's
answer time; the zoo cnn against its depthwise-separable conversions and against ds_cnn (the same
network designed small and trained from scratch): parameters, MACs, bytes, batch-1 latency,
batch-256 throughput, accuracy on all 10k test images before any training; the mlp factorized at
90% kept energy before and after 3 epochs of fine-tuning; and the converted cnn after recovery
(fine-tuned, or layers matched then distilled): $BENCH_ARCHITECTURE_EPOCHS epochs each (default 8,
about 20 minutes on 2 idle cores; 0 skips them)."""

from __future__ import annotations

import os
import statistics
import time

import torch

from compression.architecture import (ArchitectureConfig, RecoveryConfig, compare_conv, convert,
                                      recovered_result)
from compression.data import load_dataset
from compression.device import get_device
from compression.metrics import count_macs, count_params, latency_ms, throughput
from compression.models import load_pretrained, state_dict_bytes, zoo_names
from compression.training import accuracy_on

TARGET = ArchitectureConfig(convert=("depthwise", "low-rank"), rank=16, min_in_channels=2)


def _calculator_us() -> float:
    n = 20_000
    start = time.perf_counter()
    for i in range(n):
        compare_conv(3, 1 + i % 512, 1 + (i * 7) % 512, 1 + i % 112)
    return (time.perf_counter() - start) / n * 1e6


def _row(what: str, model: torch.nn.Module, data, device, ref: dict | None = None) -> dict:
    shape = data.input_shape
    row = {"what": what, "params": count_params(model), "MACs": count_macs(model, shape, device),
           "bytes": len(state_dict_bytes(model)),
           "test accuracy %": accuracy_on(model, data, "test", device) * 100,
           "batch-256 images/s": throughput(model, shape, device, repeats=20), "device": device.type,
           "_model": model, "_ref": ref}
    if ref:
        row["params ratio"] = row["params"] / ref["params"]
        row["MACs ratio"] = row["MACs"] / ref["MACs"]
    return row


def _latencies(rows: list[dict], shape: tuple[int, ...], device, rounds: int = 5) -> None:
    """Batch-1 latency of every model, measured in interleaved rounds (median per model), so a
    change in machine load hits all models alike; then the ratio to the row's reference."""
    timed = [r for r in rows if "_model" in r]
    samples: dict[int, list[float]] = {id(r): [] for r in timed}
    for _ in range(rounds):
        for r in timed:
            samples[id(r)].append(latency_ms(r["_model"], shape, device, warmup=10, repeats=60))
    for r in timed:
        r["batch-1 latency ms"] = statistics.median(samples[id(r)])
    for r in timed:
        ref = r.pop("_ref")
        r.pop("_model")
        if ref:
            r["latency ratio"] = r["batch-1 latency ms"] / ref["batch-1 latency ms"]


def _recovered(name: str, what: str, cfg: ArchitectureConfig, recovery: RecoveryConfig, original, data,
               device, ref: dict) -> dict:
    result = recovered_result(name, convert(original, cfg), cfg, recovery, original=original,
                              dataset=data, device=device)
    m = result.metrics
    return {"what": what, "params": m.params, "MACs": m.macs, "bytes": m.size_bytes,
            "test accuracy %": m.accuracy * 100, "device": device.type,
            "params ratio": m.params / ref["params"], "MACs ratio": m.macs / ref["MACs"],
            "train s": result.extra["train_seconds"]}


def run() -> list[dict]:
    device = get_device()
    data = load_dataset("fashion-mnist")
    cnn_epochs, mlp_epochs = int(os.environ.get("BENCH_ARCHITECTURE_EPOCHS", "8")), 3
    rows = [{"what": "calculator: one compare_conv call", "µs": _calculator_us()}]

    cnn = load_pretrained("cnn", device)
    ref = _row("cnn (zoo)", cnn, data, device)
    rows.append(ref)
    for what, cfg in (("cnn → depthwise (every conv), untrained", ArchitectureConfig()),
                      ("cnn → depthwise (stem kept), untrained", ArchitectureConfig(min_in_channels=2)),
                      ("cnn → depthwise (stem kept) + low-rank K=16, untrained", TARGET)):
        rows.append(_row(what, convert(cnn, cfg).to(device), data, device, ref))
    if "ds_cnn" in zoo_names():
        rows.append(_row("ds_cnn (zoo: same network, from scratch)", load_pretrained("ds_cnn", device), data, device, ref))
    if cnn_epochs:
        for what, recovery in (
                (f"converted cnn, fine-tuned {cnn_epochs} epochs", RecoveryConfig(epochs=cnn_epochs)),
                (f"converted cnn, layers matched + distilled {cnn_epochs} epochs",
                 RecoveryConfig(method="distill", epochs=cnn_epochs, match_steps=300))):
            rows.append(_recovered("cnn", what, TARGET, recovery, cnn, data, device, ref))

    mlp = load_pretrained("mlp", device)
    mref = _row("mlp (zoo)", mlp, data, device)
    rows.append(mref)
    energy = ArchitectureConfig(convert=("low-rank",), energy=0.9)
    rows.append(_row("mlp → low-rank 90% energy, before retraining", convert(mlp, energy).to(device), data, device, mref))
    if mlp_epochs:
        rows.append(_recovered("mlp", f"mlp → low-rank 90% energy, fine-tuned {mlp_epochs} epochs", energy,
                               RecoveryConfig(epochs=mlp_epochs, augment=False, lr=1e-3), mlp, data, device, mref))
    _latencies(rows, data.input_shape, device)
    return rows
