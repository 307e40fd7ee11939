"""Cached core calls and background jobs for the Quantization page (the core does the work)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from compression.charts.format import plural
from compression.device import heavy_job
from compression.methods import save_run
from compression.previews import to_preview
from compression.quantization import (QuantConfig, bit_configs, layer_sensitivity, quantizable_layers,
                                      quantize_zoo_model, sweep, weight_histogram)
from ui import cache, jobs


def config_from(d: dict[str, Any]) -> QuantConfig:
    return QuantConfig(**d)


def _stored(result, artifact: bytes) -> dict[str, Any]:
    """A finished job's result, stored with its artifact file."""
    run_id = save_run(result, artifact, store=cache.run_store())
    return {"result": {**result.to_dict(), "run_id": run_id}, "artifact": artifact}


def _preview(result, artifact: bytes) -> dict[str, Any]:
    """A slider's result: shown and cached, stored only when kept (ui.keep)."""
    preview = to_preview(result, artifact)
    return {"result": {**preview["result"], "run_id": None}, "artifact": artifact, "preview": preview}


@st.cache_data(max_entries=64, show_spinner="Quantizing, packing and measuring (accuracy on the test set, latency)…")
def run_once(model: str, dataset: str, device: str, config: dict[str, Any]) -> dict[str, Any]:
    """One post-training run: a preview, stored when the user keeps it."""
    cfg = config_from(config)
    with heavy_job(f"quantize {model} {cfg.label()}", device):
        result, qm = quantize_zoo_model(model, cfg, dataset=dataset, device=device)
    return _preview(result, qm.artifact)


def start_qat(key: str, model: str, dataset: str, device: str, config: dict[str, Any]) -> None:
    """QAT in the background: progress per epoch, Stop keeps the epochs done, result stored."""
    cfg = config_from(config)

    def work(job: jobs.Job) -> dict[str, Any]:
        result, qm = quantize_zoo_model(model, cfg, dataset=dataset, device=device, progress=job.progress,
                                        should_stop=job.should_stop)
        return _stored(result, qm.artifact)
    jobs.start(key, f"QAT {model}: {cfg.label()}", work, device=device)


def start_sweep(key: str, model: str, dataset: str, device: str, configs: list[dict[str, Any]]) -> None:
    """Sweep in the background, each point a sweep job (compression.sweep: in-process, or on the
    configured cluster): one stored result per point, with its artifact; Stop keeps the points measured."""
    cfgs = [config_from(c) for c in configs]

    def work(job: jobs.Job) -> list[dict[str, Any]]:
        return [result.to_dict() for result in sweep(model, cfgs, dataset=dataset, device=device, progress=job.progress,
                                                     should_stop=job.should_stop, store=cache.run_store())]
    jobs.start(key, f"sweep {model}: {plural(len(cfgs), 'point')}", work, device=device)


def sweep_configs(base: dict[str, Any], methods: list[str], bits: list[int]) -> list[dict[str, Any]]:
    out = []
    for method in methods:
        cfg = QuantConfig(**{**base, "method": method, "bits": 8, "layer_bits": {}, "qat_epochs": 0})
        if method in ("binary", "ternary"):
            out.append(cfg.to_dict())
        else:
            out += [c.to_dict() for c in bit_configs(cfg, [b for b in bits if b <= 8 or method == "uniform"])]
    return out


@st.cache_data(max_entries=32)
def layers(model: str, dataset: str, device: str) -> list[dict[str, Any]]:
    return [{"layer": n, "type": type(m).__name__, "weights": int(m.weight.numel())}
            for n, m in quantizable_layers(cache.model(model, device, dataset))]


@st.cache_data(max_entries=64, show_spinner="Quantizing one layer at a time…")
def sensitivity(model: str, dataset: str, device: str, config: dict[str, Any]) -> list[dict[str, Any]]:
    with heavy_job(f"sensitivity {model}", device):
        return layer_sensitivity(cache.model(model, device, dataset), config_from(config), cache.dataset(dataset),
                                 device=device, limit=2000)


@st.cache_data(max_entries=64)
def histogram(model: str, dataset: str, device: str, layer: str, config: dict[str, Any]) -> dict[str, Any]:
    return weight_histogram(cache.model(model, device, dataset), layer, config_from(config))
