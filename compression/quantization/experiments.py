"""Quantization of zoo models, measured: one run -> Result, bit-width sweeps, per-layer
sensitivity and the data behind the weight histogram."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn as nn

from compression.data import Dataset
from compression.metrics import Result
from compression.models import model_card
from compression.quantization.config import QuantConfig
from compression.quantization.core import QuantizedModel, encode_weight, quantizable_layers, quantize
from compression.training import accuracy_on


def architecture_of(name: str) -> dict[str, Any]:
    """What the artifact records so it alone rebuilds the model."""
    card = model_card(name)
    return {"name": name, "builder": card["builder"], "kwargs": card.get("builder_kwargs", {})}


def _options(kernel: bool, runtime: str | None) -> dict[str, Any]:
    """The run options: the int8 kernel search, and the runtime latency is timed on when given."""
    return {"kernel": kernel, **({"runtime": runtime} if runtime else {})}


def quantize_zoo_model(name: str, config: QuantConfig, *, dataset: str | None = None,
                       device: torch.device | str | None = None, limit: int | None = None,
                       progress: Callable[[dict], None] | None = None,
                       should_stop: Callable[[], bool] | None = None,
                       kernel: bool = True, runtime: str | None = None) -> tuple[Result, QuantizedModel]:
    """Quantize model reference `name` through the method registry's one path and measure it:
    accuracy and bytes of the artifact, latency of the real int8 kernel where one runs (chosen by
    measurement), else of the simulated model, on `runtime` (None: the process default)."""
    from compression.methods import compress
    run = compress(name, dataset, "quantize", config, device=device, limit=limit, progress=progress,
                   should_stop=should_stop, options=_options(kernel, runtime))
    # the container file (header + packed weights) is what the user downloads: size_bytes counts it
    return run.result, dataclasses.replace(run.compressed.handle, artifact=run.artifact)


def staged_quantize(name: str, config: QuantConfig, *, dataset: Any = None, device: torch.device | str | None = None,
                    model: nn.Module | None = None, first: int | None = None, kernel: bool = True,
                    cancelled: Callable[[], bool] = lambda: False, runtime: str | None = None) -> Iterator[Any]:
    """`quantize_zoo_model` in stages (compression.progressive.staged_compress): a Stage "subset"
    (a Partial: accuracy on the preview's test images, the packed file's bytes) as soon as it is
    quantized, then the Stage "full" whose value is what quantize_zoo_model returns (Result,
    QuantizedModel): all test images, latency, the int8 kernel where one runs. `model`: the
    reference's model already loaded (not modified)."""
    from compression.device import get_device
    from compression.progressive import Stage, staged_compress
    device = torch.device(device) if device is not None else get_device()
    for stage in staged_compress(name, dataset, "quantize", config, device=device, model=model,
                                 first=first, cancelled=cancelled,
                                 options=_options(kernel, runtime)):
        if stage.final:
            run = stage.value
            stage = Stage(stage.name, (run.result, dataclasses.replace(run.compressed.handle, artifact=run.artifact)),
                          final=True)
        yield stage


def sweep_jobs(name: str, configs: Iterable[QuantConfig], *, dataset: str | None = None,
               device: torch.device | str | None = None, limit: int | None = None, kernel: bool = True,
               runtime: str | None = None) -> list:
    """One sweep job (compression.sweep.Job) per config: what `quantize_zoo_model` runs, as plain data."""
    from compression.device import get_device
    from compression.knobs import spec_of
    from compression.sweep import Job
    device = torch.device(device) if device is not None else get_device()
    timed = {"runtime": runtime} if runtime else {}  # else the Job's default: the process's runtime
    return [Job(name, dataset, spec_of("quantize", cfg), device=device.type, limit=limit, kernel=kernel, **timed)
            for cfg in configs]


def sweep(name: str, configs: Iterable[QuantConfig], *, dataset: str | None = None,
          device: torch.device | str | None = None, limit: int | None = None,
          progress: Callable[[dict], None] | None = None,
          should_stop: Callable[[], bool] | None = None, kernel: bool = True,
          store: Any = False, executor: Any = None, runtime: str | None = None) -> Iterator[Result]:
    """One measured Result per config (e.g. bits 2..8), yielded as each finishes. Every config is a
    sweep job on `executor` (default: the configured one: in-process, or a Dask cluster); Stop acts
    between configs. With `store` (True or a RunStore) each result is stored once, here, with its
    artifact file (its extra then holds run_id and artifact). A config the method refuses raises."""
    from compression import CompressionError
    from compression.sweep import run_jobs
    configs = list(configs)
    jobs = sweep_jobs(name, configs, dataset=dataset, device=device, limit=limit, kernel=kernel, runtime=runtime)
    done = 0
    for point in run_jobs(jobs, executor=executor, store=store, should_stop=should_stop):
        if not point.ok:
            raise CompressionError(point.error)
        result, cfg, done = point.result.result, configs[point.index], done + 1
        if progress is not None:
            progress({"step": done, "steps": len(configs), "bits": cfg.bits, "method": cfg.method,
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
