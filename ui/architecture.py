"""Cached calls and the recovery job for the Architecture page.

The conversion is quick (a copy, an SVD per Linear layer, one pass over the test images), so it
runs inline under st.cache_data; it does not queue behind a running recovery job, so moving the
rank slider stays responsive while a model trains. Recovery is slow and runs through ui.jobs."""

from __future__ import annotations

from typing import Any

import streamlit as st

from compression.architecture import (ArchitectureConfig, RecoveryConfig, convert, converted_result,
                                      recovered_result)
from compression.charts.format import plural
from compression.methods import save_run
from compression.metrics import count_macs, count_params
from compression.models import zoo_names
from compression.previews import to_preview
from compression.refs import baseline as reference_baseline
from compression.refs import resolve
from ui import cache, jobs

JOB_KEY = "architecture_job"


@st.cache_data(max_entries=8, show_spinner="Measuring the original model…")
def baseline(name: str, dataset_name: str, device: str) -> dict[str, Any]:
    """The original model's metrics on the dataset (any model reference)."""
    return reference_baseline(resolve(name, cache.dataset(dataset_name), device=device), device).to_dict()


@st.cache_data(max_entries=64, show_spinner="Converting and measuring on the test images…")
def converted(name: str, dataset_name: str, device: str, cfg: tuple, runtime: str = "eager") -> dict[str, Any]:
    """The converted model's measured result: a preview (with its file), stored when kept; latency
    timed on `runtime` (passed only when not eager: ui.results.runtime_kwargs)."""
    config = ArchitectureConfig(**dict(cfg))
    model, result = converted_result(name, config, dataset=cache.dataset(dataset_name), device=device,
                                     model=cache.model(name, device, dataset_name), runtime=runtime)
    preview = to_preview(result, result.artifact)
    shape = cache.dataset(dataset_name).input_shape
    original = cache.model(name, device, dataset_name)
    totals = {"params_before": count_params(original), "params_after": count_params(model),
              "macs_before": count_macs(original, shape, device), "macs_after": count_macs(model, shape, device)}
    return {**preview["result"], "run_id": None, "totals": totals, "preview": preview}


def references(name: str, dataset_name: str, device: str) -> dict[str, dict]:
    """Models designed small to compare with: ds_cnn beside the cnn it was derived from."""
    if name == "cnn" and "ds_cnn" in zoo_names():
        return {"ds_cnn (designed small, from scratch)": baseline("ds_cnn", dataset_name, device)}
    return {}


def start_recovery(name: str, dataset_name: str, device: str, cfg: ArchitectureConfig,
                   recovery: RecoveryConfig, runtime: str = "eager") -> jobs.Job:
    """Convert again (seeded: the same model as shown) and recover in a worker thread; the worker
    stores the recovered result, so leaving the page keeps it."""
    data, original, store = cache.dataset(dataset_name), cache.model(name, device, dataset_name), cache.run_store()

    def work(job: jobs.Job) -> dict[str, Any] | None:
        model = convert(original, cfg)  # the cached model is read only: convert copies it
        result = recovered_result(name, model, cfg, recovery, original=original, dataset=data, device=device,
                                  progress=job.progress, should_stop=job.should_stop, runtime=runtime)
        if result is None:
            return None
        run_id = save_run(result, result.artifact, store=store)
        return {**result.to_dict(), "run_id": run_id}
    label = f"{recovery.method} {name} ({'+'.join(cfg.convert)}) for {plural(recovery.epochs, 'epoch')}"
    return jobs.start(JOB_KEY, label, work, device=device)
