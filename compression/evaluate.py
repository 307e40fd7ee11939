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
             device: torch.device | str = "cpu", limit: int | None = None, pretrained: bool = False) -> Result:
    """Measure any model reference (a zoo model, its architecture with the user's weights, a
    torchvision architecture, an installed entry point) on a dataset."""
    from compression.refs import baseline, resolve
    device = torch.device(device)
    resolved = resolve(model, dataset, device=device, weights=weights, pretrained=pretrained)
    from compression.predictions import Predictions
    from compression.training import predict
    metrics: Metrics = baseline(resolved, device, limit=limit)
    config = {"weights": str(weights) if weights else None, "limit": limit}
    if resolved.ref.kind == "torchvision":
        config["pretrained"] = pretrained
    metrics, extra = _on_runtime(resolved, metrics, device)
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
                   filename: str | None = None, device: torch.device | str = "cpu") -> dict:
    """Keep a user's weights for a zoo architecture as a named model every page and command can use.

    The file is parsed without unpickling (compression.weights), checked against the
    architecture (missing/unexpected keys and shapes listed), re-saved as a plain state_dict in
    $COMPRESSION_HOME/models/, evaluated, and described by a model card like the zoo's.
    """
    import datetime as dt
    import hashlib
    import json
    import os
    import uuid

    from compression.models import (NAME_PATTERN, MODELS_DIR, build_from_card, load_state_dict_checked,
                                    state_dict_bytes, user_models_dir)
    from compression.weights import read_weights

    base_card = model_card(base)
    filename = filename or (Path(weights).name if isinstance(weights, (str, Path)) else "weights.pt")
    state = read_weights(weights, filename)
    model = build_from_card(base)
    load_state_dict_checked(model, state, source=filename)
    blob = state_dict_bytes(model)
    name = name or f"{base}-mine-{hashlib.sha256(blob).hexdigest()[:8]}"
    if not NAME_PATTERN.match(name):
        raise CompressionError(f"model name {name!r} must be 1-64 letters, digits, '_', '-' or '.'")
    if (MODELS_DIR / f"{name}.json").is_file():
        raise CompressionError(f"model name {name!r} is taken by the zoo; choose another")
    folder = user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = f"{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"  # two sessions adding at once never share a temp file
    (folder / f".{name}.pt.{tmp}").write_bytes(blob)
    os.replace(folder / f".{name}.pt.{tmp}", folder / f"{name}.pt")
    data = dataset_for(base)
    metrics = measure(model.to(device), data, device=device, artifact=blob)
    card = {
        "name": name, "description": f"Your weights ({filename}) for the {base} architecture.",
        "builder": base_card["builder"], "builder_kwargs": base_card.get("builder_kwargs", {}),
        "dataset": base_card["dataset"], "checkpoint": f"{name}.pt", "source": "uploaded",
        "base": base, "uploaded_from": filename, "recipe": None,
        "test_accuracy": metrics.accuracy, "accuracy_n": metrics.accuracy_n, "params": metrics.params,
        "size_bytes": metrics.size_bytes, "macs": metrics.macs, "train_time_s": None,
        "trained_on": None, "added_at": dt.datetime.now().isoformat(timespec="seconds"),
    }
    (folder / f".{name}.json.{tmp}").write_text(json.dumps(card, indent=2) + "\n")
    os.replace(folder / f".{name}.json.{tmp}", folder / f"{name}.json")
    return card
