"""Quantization of zoo models, measured: one run -> Result, bit-width sweeps, per-layer
sensitivity and the data behind the weight histogram."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn as nn

from compression.data import Dataset
from compression.device import get_device
from compression.evaluate import dataset_for
from compression.metrics import Result, baseline_metrics, measure
from compression.models import load_pretrained, model_card
from compression.quantization.config import QuantConfig
from compression.quantization.core import QuantizedModel, encode_weight, quantizable_layers, quantize
from compression.quantization.kernels import kernel_eligibility, with_int8_kernel
from compression.training import accuracy_on


def architecture_of(name: str) -> dict[str, Any]:
    """What the artifact records so it alone rebuilds the model."""
    card = model_card(name)
    return {"name": name, "builder": card["builder"], "kwargs": card.get("builder_kwargs", {})}


def quantize_zoo_model(name: str, config: QuantConfig, *, dataset: str | None = None,
                       device: torch.device | str | None = None, limit: int | None = None,
                       progress: Callable[[dict], None] | None = None,
                       should_stop: Callable[[], bool] | None = None,
                       kernel: bool = True) -> tuple[Result, QuantizedModel]:
    """Quantize a zoo model and measure it: accuracy and bytes of the artifact, latency of the
    real int8 kernel where one runs (chosen by measurement), else of the simulated model."""
    device = torch.device(device) if device is not None else get_device()
    data = dataset_for(name, dataset)
    baseline = baseline_metrics(name, data, device, limit=limit)
    qm = quantize(load_pretrained(name, device), config, dataset=data, device=device,
                  architecture=architecture_of(name), progress=progress, should_stop=should_stop)
    metrics = measure(qm.model, data, device=device, artifact=qm.artifact, simulated=True, limit=limit)
    if kernel:
        metrics, kernel_report, reason = with_int8_kernel(qm.model, data, config, device, metrics, limit=limit)
    else:
        kernel_report = None
        eligible, reason = kernel_eligibility(config, device)
        if eligible:
            reason = "int8 kernel not measured for this run"
    extra = {
        "coverage": qm.coverage(),
        "label": config.label(),
        "layers": qm.layers,
        "bits_per_weight": round(8 * metrics.size_bytes / max(1, sum(r["params"] for r in qm.layers)), 3),
        "compression_ratio": round(baseline.size_bytes / metrics.size_bytes, 3),
        "latency_source": (kernel_report["description"] if not metrics.simulated else
                           f"dequantized float model on {device.type} ({reason})"),
        "kernel": kernel_report,
        "qat_history": qm.history,
        "stopped": qm.stopped,
        "activation_ranges": {k: {kk: v[kk] for kk in ("bits", "scale", "zero_point")} for k, v in qm.activations.items()},
    }
    return Result(model=name, dataset=data.name, method="quantize", config=config.to_dict(),
                  device=device.type, metrics=metrics, baseline=baseline, extra=extra), qm


def sweep(name: str, configs: Iterable[QuantConfig], *, dataset: str | None = None,
          device: torch.device | str | None = None, limit: int | None = None,
          progress: Callable[[dict], None] | None = None,
          should_stop: Callable[[], bool] | None = None, kernel: bool = True) -> Iterator[Result]:
    """One measured Result per config (e.g. bits 2..8), yielded as each finishes."""
    configs = list(configs)
    for i, cfg in enumerate(configs):
        if should_stop is not None and should_stop():
            return
        result, _ = quantize_zoo_model(name, cfg, dataset=dataset, device=device, limit=limit, kernel=kernel)
        if progress is not None:
            progress({"step": i + 1, "steps": len(configs), "bits": cfg.bits, "method": cfg.method,
                      "accuracy": result.metrics.accuracy, "size_bytes": result.metrics.size_bytes})
        yield result


def bit_configs(base: QuantConfig, bits: Iterable[int]) -> list[QuantConfig]:
    return [dataclasses.replace(base, bits=b) for b in bits]


def layer_sensitivity(model: nn.Module, config: QuantConfig, dataset: Dataset, *,
                      device: torch.device | str = "cpu", limit: int = 2000) -> list[dict[str, Any]]:
    """Validation accuracy with only one layer quantized (at its bits in `config`), per layer;
    weights only, no fine-tuning. The float model's accuracy on the same images is `float_accuracy`."""
    layers = [n for n, _ in quantizable_layers(model)]
    reference = accuracy_on(model, dataset, "val", device, limit=limit)
    rows = []
    for name, module in quantizable_layers(model):
        only = dataclasses.replace(config, layer_bits={n: (config.bits_for(n) if n == name else 32) for n in layers},
                                   activation_bits=None, qat_epochs=0)
        qm = quantize(model, only, device=device)
        acc = accuracy_on(qm.model, dataset, "val", device, limit=limit)
        row = next(r for r in qm.layers if r["name"] == name)
        rows.append({"layer": name, "kind": type(module).__name__, "params": row["params"], "bits": row["bits"],
                     "accuracy": acc, "float_accuracy": reference, "drop_points": (reference - acc) * 100,
                     "sqnr_db": row["sqnr_db"], "images": min(limit, len(dataset.val))})
    return rows


def weight_histogram(model: nn.Module, layer: str, config: QuantConfig) -> dict[str, Any]:
    """The layer's float weights, their quantized values and the levels they can take (for
    per-channel scales: the levels of the channel with the widest range)."""
    module = dict(model.named_modules())[layer]
    w = module.weight.detach().cpu().float().numpy()
    enc = encode_weight(w, config.bits_for(layer), config)
    channel = None
    if enc.encoding in ("affine", "binary", "ternary") and len(enc.arrays["scale"]) > 1:
        channel = int(np.argmax(np.abs(w.reshape(w.shape[0], -1)).max(axis=1)))
    return {"layer": layer, "weights": w.ravel(), "quantized": enc.decode().ravel(),
            "levels": enc.levels(channel), "channel": channel, "encoding": enc.encoding,
            "bits": config.bits_for(layer)}
