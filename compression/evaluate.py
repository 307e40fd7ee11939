"""Evaluate a model as shipped: the `evaluate` command and the app's baseline card."""

from __future__ import annotations

from pathlib import Path

import torch

from compression import CompressionError
from compression.data import Dataset, load_dataset
from compression.metrics import Metrics, Result, baseline_metrics, measure
from compression.models import expected_input, load_model, model_card


def dataset_for(model: str, dataset: str | None = None) -> Dataset:
    """The dataset to evaluate `model` on (its own by default), checked for shape and classes."""
    name = dataset or model_card(model)["dataset"]
    data = load_dataset(name)
    check_compatible(model, data)
    return data


def check_compatible(model: str, data: Dataset) -> None:
    c, h, w, classes = expected_input(model)
    if data.input_shape != (c, h, w) or data.num_classes != classes:
        got = "x".join(map(str, data.input_shape))
        raise CompressionError(
            f"model {model!r} takes {c}x{h}x{w} images and {classes} classes; "
            f"dataset {data.name!r} has {got} images and {data.num_classes} classes")


def evaluate(model: str, *, dataset: str | None = None, weights: str | Path | None = None,
             device: torch.device | str = "cpu", limit: int | None = None) -> Result:
    """Measure a zoo model (or its architecture with the user's weights) on a dataset."""
    device = torch.device(device)
    data = dataset_for(model, dataset)
    if weights is None:
        metrics: Metrics = baseline_metrics(model, data, device, limit=limit)
        label = model
    else:
        metrics = measure(load_model(model, weights=weights, device=device), data, device=device, limit=limit)
        label = f"{model}+{Path(weights).name}"
    return Result(model=label, dataset=data.name, method="baseline",
                  config={"weights": str(weights) if weights else None, "limit": limit},
                  device=device.type, metrics=metrics, baseline=metrics)
