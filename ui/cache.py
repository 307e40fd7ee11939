"""Cached core calls. Models from cache_resource are shared by every session: never mutate them
(compression functions copy first); results from cache_data are plain values keyed by plain values."""

from __future__ import annotations

import streamlit as st
import torch

from compression.data import Dataset, load_dataset
from compression.device import get_device, heavy_job
from compression.evaluate import dataset_for
from compression.metrics import baseline_metrics, throughput
from compression.models import load_pretrained
from compression.store import RunStore, default_path


@st.cache_resource(max_entries=4, show_spinner="Loading dataset…")
def dataset(name: str) -> Dataset:
    return load_dataset(name)


@st.cache_resource(max_entries=16, show_spinner="Loading model…")
def model(name: str, device: str) -> torch.nn.Module:
    """The zoo model, in eval mode, shared by all sessions. Read only."""
    return load_pretrained(name, device)


def run_store() -> RunStore:
    """The run store under the current $COMPRESSION_HOME (one shared instance per path)."""
    return _run_store(str(default_path()))


@st.cache_resource
def _run_store(path: str) -> RunStore:
    return RunStore(path)


@st.cache_data(max_entries=64, show_spinner="Measuring the baseline (accuracy on the test set, latency)…")
def baseline(name: str, dataset_name: str, device: str) -> dict:
    """The zoo model's metrics as shipped, plus batch-256 throughput (images/s)."""
    data = dataset(dataset_name)
    dataset_for(name, dataset_name)  # refuses a dataset of the wrong shape
    with heavy_job(f"baseline of {name}", device):
        metrics = baseline_metrics(name, data, device).to_dict()
        metrics["throughput"] = throughput(model(name, device), data.input_shape, device)
    return metrics


@st.cache_data(max_entries=64)
def gallery_predictions(name: str, dataset_name: str, device: str, indices: tuple[int, ...]) -> list[tuple[int, float]]:
    """(predicted class, confidence) for the chosen test images."""
    data = dataset(dataset_name)
    x = data.normalize(data.test.images[list(indices)], device)
    with torch.inference_mode():
        probs = torch.softmax(model(name, device)(x).float(), dim=1).cpu()
    conf, pred = probs.max(dim=1)
    return [(int(p), float(c)) for p, c in zip(pred, conf)]


def device_name() -> str:
    return get_device().type
