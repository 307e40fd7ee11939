"""Cached core calls for the Dynamic computation page. The exit table (every exit's verdict on
every test image) is computed once per model and device; everything the threshold slider shows is
then a vectorized sweep over it (milliseconds), so the page answers the slider at once."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import torch

from compression.device import heavy_job
from compression.dynamic import (EarlyExitConfig, ExitTable, MultiExitNet, SlimmableCNN, WidthConfig, choose_thresholds,
                                 curve_thresholds, early_exit_result, exit_table, slim_to_static, sweep,
                                 sweep_shared, width_result)
from compression.evaluate import dataset_for
from compression.metrics import Result, measure
from compression.models import build_from_card, model_card, zoo_names
from ui import cache


@st.cache_data(max_entries=8)
def models_of_kind(dataset: str, kind: str) -> list[str]:
    """Zoo models trained on `dataset` that have early exits (kind 'exits') or widths ('slim')."""
    cls = MultiExitNet if kind == "exits" else SlimmableCNN
    return [n for n in zoo_names() if model_card(n)["dataset"] == dataset and isinstance(build_from_card(n), cls)]


@st.cache_resource(max_entries=16, show_spinner="Running every exit over the images (once per model)…")
def table(name: str, dataset: str, device: str, split: str = "test") -> ExitTable:
    """Read only: shared by every session."""
    data = cache.dataset(dataset)
    dataset_for(name, dataset)
    with heavy_job(f"exit table of {name}", device):
        return exit_table(cache.model(name, device), data, split=split, device=device)


@st.cache_data(max_entries=64)
def suggested(name: str, dataset: str, device: str, criterion: str, shared: bool) -> tuple[float, ...]:
    """Thresholds with the fewest mean MACs within 1 point of the full network, chosen on val."""
    return choose_thresholds(table(name, dataset, device, "val"), criterion, shared=shared)


@st.cache_data(max_entries=64)
def curve(name: str, dataset: str, device: str, criterion: str) -> pd.DataFrame:
    """The accuracy-vs-mean-MACs curve over 200 thresholds shared by every exit."""
    t = table(name, dataset, device)
    taus = curve_thresholds(t, criterion, 200)
    s = sweep_shared(t, criterion, taus)
    return pd.DataFrame({"threshold": taus.numpy(), "accuracy": s.accuracy.numpy(), "macs": s.macs.numpy()})


def point(name: str, dataset: str, device: str, cfg: EarlyExitConfig) -> dict:
    """Accuracy, mean MACs, per-exit shares and accuracy, and where each image left (a few ms)."""
    t = table(name, dataset, device)
    s = sweep(t, cfg.criterion, [cfg.per_exit(t.num_exits)])
    exits = pd.DataFrame({"exit": [f"exit {k + 1}" + (" (full)" if k == t.num_exits - 1 else "")
                                   for k in range(t.num_exits)],
                          "share": s.shares[0].numpy(), "accuracy": s.exit_accuracy[0].numpy(),
                          "macs": list(t.costs)})
    return {"accuracy": float(s.accuracy[0]), "macs": float(s.macs[0]), "exits": exits,
            "exit_index": s.exit_index[0], "n": t.n,
            "full": {"accuracy": float(t.correct[-1].float().mean()), "macs": float(t.full_macs)}}


def examples(name: str, dataset: str, device: str, exit_index: torch.Tensor, k: int = 6) -> dict[str, list[dict]]:
    """Test images that left at the first exit and images that went all the way, with each exit's
    prediction and confidence (first k of each in test order)."""
    t = table(name, dataset, device)
    out = {}
    for group, where in (("first", 0), ("last", t.num_exits - 1)):
        idx = (exit_index == where).nonzero().flatten()[:k].tolist()
        out[group] = [{"index": i, "exit": where, "steps": [(int(t.preds[e, i]), float(t.confidence[e, i]))
                                                              for e in range(where + 1)]} for i in idx]
    return out


def measure_and_store(name: str, dataset: str, device: str, cfg: EarlyExitConfig) -> dict:
    """Time real early exit at batch 1 and batched against the full network; store the result."""
    with heavy_job(f"early-exit timing of {name}", device):
        result = early_exit_result(cache.model(name, device), cache.dataset(dataset), cfg, name=name,
                                   device=device, table=table(name, dataset, device))
    return {**result.to_dict(), "run_id": cache.run_store().add(result)}


@st.cache_data(max_entries=8, show_spinner="Measuring every width (accuracy on the test set, MACs, latency)…")
def width_results(name: str, dataset: str, device: str) -> list[Result]:
    data = cache.dataset(dataset)
    dataset_for(name, dataset)
    model = cache.model(name, device)
    with heavy_job(f"widths of {name}", device):
        full = measure(slim_to_static(model, model.widths[-1]).to(device), data, device=device)
        return [width_result(model, data, WidthConfig(w), name=name, device=device, baseline=full)
                for w in model.widths]


def width_frame(results: list[Result]) -> pd.DataFrame:
    return pd.DataFrame([{"width": r.config["width"], "accuracy": r.metrics.accuracy, "macs": r.metrics.macs,
                          "latency_ms": r.metrics.latency_ms, "params": r.metrics.params,
                          "size_bytes": r.metrics.size_bytes, "macs_ratio": r.extra["macs_ratio"],
                          "latency_ratio": r.extra["latency_ratio"]} for r in results])
