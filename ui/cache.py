"""Cached core calls. Models from cache_resource are shared by every session: never mutate them
(compression functions copy first); results from cache_data are plain values keyed by plain values.

Models are any reference compression.refs resolves (zoo and users' models, `torchvision:<arch>`,
`entry:<name>`). A zoo model is the same whatever dataset a page shows, so it is keyed by its own
dataset; the others are built for a dataset's input and classes, so the dataset is part of the key
(the sidebar's current dataset when a call site does not name one)."""

from __future__ import annotations

import streamlit as st
import torch

from compression import CompressionError
from compression.data import Dataset, load_dataset
from compression.device import get_device, heavy_job
from compression.refs import Resolved, default_dataset, parse, resolve
from compression.refs import baseline as reference_baseline
from compression.store import RunStore, store_url

CURRENT_DATASET = "sidebar_current_dataset"  # session state: the dataset the sidebar chose (ui.sidebar)


@st.cache_resource(max_entries=4, show_spinner="Loading dataset…")
def dataset(name: str) -> Dataset:
    return load_dataset(name)


def dataset_key(name: str, dataset_name: str | None = None) -> str:
    """The dataset a reference's model is built for: a zoo model's own; for the others the one
    named, else the sidebar's, else the entry point's default."""
    ref = parse(name)
    if ref.kind in ("zoo", "run"):  # built for their own dataset
        return default_dataset(ref)
    chosen = dataset_name or _sidebar_dataset() or default_dataset(ref)
    if chosen is None:
        raise CompressionError(f"{name} needs a dataset: choose cifar10 or an image folder in the sidebar")
    return chosen


def _sidebar_dataset() -> str | None:
    try:
        return st.session_state.get(CURRENT_DATASET)
    except Exception:  # called outside a script run (a worker thread, a test): no session
        return None


def resolved(name: str, device: str, dataset_name: str | None = None) -> Resolved:
    """The reference resolved (model, dataset, architecture), shared by all sessions. Read only."""
    return _resolved(name, dataset_key(name, dataset_name), device)


@st.cache_resource(max_entries=16, show_spinner="Loading model…")
def _resolved(name: str, dataset_name: str, device: str) -> Resolved:
    return resolve(name, dataset(dataset_name), device=device)


def model_dataset(name: str, device: str, dataset_name: str | None = None) -> Dataset:
    """The dataset as the model sees it: normalized and sized per its input contract (the same
    object as `dataset(...)` when they agree). Pass this, not `dataset(...)`, with the model."""
    return resolved(name, device, dataset_name).dataset


def model(name: str, device: str, dataset_name: str | None = None) -> torch.nn.Module:
    """The referenced model, in eval mode, shared by all sessions. Read only."""
    return resolved(name, device, dataset_name).model


def run_store() -> RunStore:
    """The run store ($COMPRESSION_STORE, else runs.sqlite under the current $COMPRESSION_HOME; one
    shared instance per store)."""
    return _run_store(store_url())


@st.cache_resource
def _run_store(url: str) -> RunStore:
    return RunStore(url)


@st.cache_data(max_entries=64, show_spinner="Measuring the baseline (accuracy on the test set, latency)…")
def baseline(name: str, dataset_name: str, device: str) -> dict:
    """The model's metrics as given on `dataset_name` (on disk across restarts: its latency_ms is
    the one timed then; the home page times latency and images/s now, ui.home_timing)."""
    if dataset_key(name, dataset_name) == dataset_name:  # the pages' shared model: its baseline seeds their previews
        r = resolved(name, device, dataset_name)
    else:
        r = resolve(name, dataset(dataset_name), device=device)  # refuses a dataset of the wrong shape
    with heavy_job(f"baseline of {name}", device):
        return reference_baseline(r, device).to_dict()


@st.cache_data(max_entries=64)
def gallery_predictions(name: str, dataset_name: str, device: str, indices: tuple[int, ...]) -> list[tuple[int, float]]:
    """(predicted class, confidence) for the chosen test images."""
    r = resolved(name, device, dataset_name)
    data = r.dataset  # seen through the model's input contract
    x = data.normalize(data.test.images[list(indices)], device)
    with torch.inference_mode():
        probs = torch.softmax(r.model(x).float(), dim=1).cpu()
    conf, pred = probs.max(dim=1)
    return [(int(p), float(c)) for p, c in zip(pred, conf)]


def device_name() -> str:
    return get_device().type
