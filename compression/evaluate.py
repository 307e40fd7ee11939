"""Evaluate a model as shipped: the `evaluate` command and the app's baseline card."""

from __future__ import annotations

from pathlib import Path

import torch

from compression import CompressionError
from compression.data import Dataset
from compression.metrics import Metrics, Result, measure
from compression.models import expected_input, model_card


def dataset_for(model: str, dataset: str | Dataset | None = None) -> Dataset:
    """The dataset to evaluate model reference `model` on (its own by default), checked for shape
    and classes (compression.refs: zoo names, torchvision:<arch>, entry:<name>)."""
    from compression.refs import dataset_for as for_reference
    return for_reference(model, dataset)


def check_compatible(model: str, data: Dataset) -> None:
    c, h, w, classes = expected_input(model)
    if data.input_shape != (c, h, w) or data.num_classes != classes:
        got = "x".join(map(str, data.input_shape))
        raise CompressionError(
            f"model {model!r} takes {c}x{h}x{w} images and {classes} classes; "
            f"dataset {data.name!r} has {got} images and {data.num_classes} classes")


def evaluate(model: str, *, dataset: str | None = None, weights: str | Path | None = None,
             device: torch.device | str = "cpu", limit: int | None = None, pretrained: bool = False,
             **options) -> Result:
    """Measure any model reference (compression.refs: a zoo or named model, an architecture with
    the user's weights, torchvision/timm/hf, an entry point, a stored run) on a dataset. `options`:
    normalize, mean, std, input_size. A baseline near chance gets a warning naming the contract."""
    from compression.contract import chance_warning
    from compression.refs import baseline, resolve
    device = torch.device(device)
    resolved = resolve(model, dataset, device=device, weights=weights, pretrained=pretrained, **options)
    from compression.predictions import Predictions
    from compression.training import predict
    metrics: Metrics = baseline(resolved, device, limit=limit)
    ref = resolved.ref
    config = {"weights": Path(ref.weights).name if ref.weights else None, "limit": limit}
    if ref.kind in ("torchvision", "timm"):
        config["pretrained"] = ref.pretrained
    metrics, extra = _on_runtime(resolved, metrics, device)
    extra["model_source"] = resolved.provenance
    warning = chance_warning(metrics.accuracy, resolved.dataset.num_classes, resolved.contract)
    if warning:
        extra["warning"] = warning
    extra["classes"] = resolved.dataset.num_classes  # chance level = 1 / classes (compression.honesty)
    # kept with the run like every family's, so a baseline run compares with any run on its images
    predictions = Predictions.from_logits(predict(resolved.model, resolved.dataset, "test", device=device, limit=limit))
    return Result(model=resolved.name, dataset=resolved.dataset.name, method="baseline", config=config,
                  device=device.type, metrics=metrics, baseline=metrics, extra=extra, predictions=predictions)


def _on_runtime(resolved, metrics: Metrics, device: torch.device) -> tuple[Metrics, dict]:
    """The batch-1 latency timed now on the default runtime (compression.runtimes; the CLI's
    --runtime), with its spread, any fallback and the other programs' load (re-timed once when they
    were busy; compression.timing.quiet): a baseline run's latency is never the shared cached one."""
    import dataclasses
    from compression.device import synchronize
    from compression.runtimes import default_runtime, prepare
    from compression.timing import interleaved, quiet
    runner = prepare(resolved.model, resolved.dataset.input_shape, device, default_runtime())
    x = torch.randn(1, *resolved.dataset.input_shape, device=device)
    timed, load = quiet(lambda: interleaved({"model": lambda: runner.run(x)}, sync=lambda: synchronize(device))["model"],
                        alone=True)
    extra = {"runtime": runner.runtime, "latency_spread_ms": timed.spread_ms, **load}
    if runner.fallback:
        extra["runtime_fallback"] = runner.fallback
    return dataclasses.replace(metrics, latency_ms=timed.median_ms), extra


def add_user_model(base: str, weights: bytes | Path, *, name: str | None = None,
                   filename: str | None = None, device: torch.device | str = "cpu", **options) -> dict:
    """Keep a user's weights for an architecture (`base`: a zoo name or any model reference) as a
    named model every page and command can use (compression.models.named.add_named_model: the file
    is parsed without unpickling, checked against the architecture, evaluated, and described by a
    model card like the zoo's). `options`: dataset, normalize, mean, std, input_size."""
    import hashlib

    from compression.models.named import add_named_model
    if name is None:
        blob = weights if isinstance(weights, (bytes, bytearray)) else Path(weights).read_bytes()
        safe = "".join(c if c.isalnum() or c in "_.-" else "-" for c in base.split("?")[0])[:40]
        name = f"{safe}-mine-{hashlib.sha256(blob).hexdigest()[:8]}"
    return add_named_model(name, base, weights=weights, filename=filename, device=device, **options)
