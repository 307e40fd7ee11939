"""Streamlit-side helpers for the pruning page: cached quick results, the background job, the
result card. The work itself is compression.pruning's."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from compression.device import heavy_job
from compression.metrics import Metrics
from compression.pruning import (FinetuneConfig, PruneConfig, PruneOutcome, cached_sensitivity, prunable_parameters,
                                 run_prune, sweep)
from ui import cache, jobs
from ui.charts_pruning import layer_bars, magnitude_histograms
from ui.format import fmt_bytes, fmt_count, fmt_ms, fmt_pct, fmt_ratio

SENSITIVITY_RATIOS = (0.2, 0.4, 0.6, 0.8, 0.9)
HIST_EDGES = np.linspace(-6, 1, 57)  # log10 |w|


def _log_magnitudes(model: torch.nn.Module) -> tuple[np.ndarray, int]:
    w = torch.cat([p.detach().reshape(-1).abs().float().cpu() for n, p in prunable_parameters(model)
                   if n.endswith("weight")]).numpy()
    nz = w[w > 0]
    return np.log10(nz), int(w.size - nz.size)


def outcome_view(outcome: PruneOutcome, base_model: torch.nn.Module, run_id: int) -> dict:
    """Plain values for the page (and for st.cache_data): result, histogram, artifact bytes."""
    before, zeros_before = _log_magnitudes(base_model)
    after, zeros_after = _log_magnitudes(outcome.model)
    hist = {"edges": HIST_EDGES.tolist(), "before": np.histogram(before, HIST_EDGES)[0].tolist(),
            "after": np.histogram(after, HIST_EDGES)[0].tolist(), "before_zeros": zeros_before,
            "after_zeros": zeros_after}
    return {"result": {**outcome.result.to_dict(), "run_id": run_id}, "hist": hist, "artifact": outcome.artifact}


def _store(outcome: PruneOutcome) -> int:
    return cache.run_store().add(outcome.result)


@st.cache_data(max_entries=64, show_spinner="Pruning and measuring (accuracy on all test images, latency)…")
def quick_prune(model: str, dataset: str, device: str, method: str, ratio: float, scope: str,
                importance: str, steps: int) -> dict:
    """One ratio without fine-tuning: about a second on a CPU. Stored once per setting."""
    data, base = cache.dataset(dataset), cache.model(model, device)
    with heavy_job(f"prune {model} {method} {ratio:.2f}", device):
        outcome = run_prune(model, data, PruneConfig(method, ratio, scope, importance), FinetuneConfig(steps=steps),
                            device=device, model=base)
    return outcome_view(outcome, base, _store(outcome))


def start_job(model: str, dataset: str, device: str, cfg: PruneConfig, ft: FinetuneConfig,
              ratios: list[float]) -> None:
    """Fine-tuning or a sweep in the background; each finished ratio is stored at once."""
    data, base = cache.dataset(dataset), cache.model(model, device)
    store = cache.run_store()

    def work(job: jobs.Job) -> list[dict]:
        views = []
        progress = job.progress if len(ratios) == 1 else None
        for outcome in sweep(model, data, cfg, ratios, ft, device=device, model=base, progress=progress,
                             should_stop=job.should_stop):
            views.append(outcome_view(outcome, base, store.add(outcome.result)))
            if len(ratios) > 1:
                r = outcome.result
                job.progress({"step": len(views), "steps": len(ratios), "ratio": r.config["ratio"],
                              "accuracy": r.metrics.accuracy, "phase": "measured", "monitor": "test"})
        return views

    what = f"{len(ratios)} ratios" if len(ratios) > 1 else f"ratio {ratios[0]:.2f}"
    jobs.start("prune_job", f"prune {model} {cfg.method} {what}", work, device=device)


def start_sensitivity(model: str, dataset: str, device: str, method: str, importance: str) -> None:
    data = cache.dataset(dataset)

    def work(job: jobs.Job) -> list[dict]:
        return cached_sensitivity(model, data, method=method, ratios=SENSITIVITY_RATIOS, importance=importance,
                                  device=device, progress=job.progress, should_stop=job.should_stop)
    jobs.start("prune_sens_job", f"sensitivity of {model} ({method})", work, device=device)


def stored_sensitivity(model: str, dataset: str, device: str, method: str, importance: str) -> list[dict] | None:
    return cached_sensitivity(model, cache.dataset(dataset), method=method, ratios=SENSITIVITY_RATIOS,
                              importance=importance, device=device, only_cached=True)


def result_card(view: dict, base: dict) -> None:
    """The measured numbers against the unpruned model, and in words whether the gain is real."""
    r = view["result"]
    b = Metrics.from_dict(base)
    cols = st.columns(5)
    cols[0].metric("Test accuracy", fmt_pct(r["accuracy"]), f"{(r['accuracy'] - b.accuracy) * 100:+.2f} points",
                   help=f"On {r['accuracy_n']:,} test images; unpruned {fmt_pct(b.accuracy)}.")
    cols[1].metric("Nonzero parameters", fmt_count(r["nonzero_params"]),
                   f"{fmt_ratio(r['nonzero_params'], b.nonzero_params)} of {fmt_count(b.nonzero_params)}",
                   delta_color="off", delta_arrow="off", help=f"{r['params']:,} parameters stored, {r['nonzero_params']:,} nonzero.")
    cols[2].metric("Stored size", fmt_bytes(r["size_bytes"]), f"{fmt_ratio(r['size_bytes'], b.size_bytes)} of "
                   f"{fmt_bytes(b.size_bytes)}", delta_color="off", delta_arrow="off", help="Length of the file you can download below.")
    cols[3].metric("MACs / image", fmt_count(r["macs"]), f"{fmt_ratio(r['macs'], b.macs)}", delta_color="off", delta_arrow="off",
                   help="Counted on the model as it executes (dense kernels).")
    cols[4].metric("Latency (batch 1)", fmt_ms(r["latency_ms"]), f"{fmt_ratio(r['latency_ms'], b.latency_ms)}",
                   delta_color="off", delta_arrow="off", help=f"Median of 50 timed passes on {r['device']}; unpruned {fmt_ms(b.latency_ms)}.")
    structured = r["config"]["method"] == "structured"
    words = r["gain"]
    if structured:
        words += (f" Latency {fmt_ms(b.latency_ms)} → {fmt_ms(r['latency_ms'])} measured on {r['device']} "
                  f"({b.latency_ms / r['latency_ms']:.2f}x faster).")
        st.success(words)
    else:
        words += (f" Stored: {fmt_bytes(b.size_bytes)} → {fmt_bytes(r['size_bytes'])}. A sparse kernel would need "
                  f"{fmt_count(r['sparse_macs'])} MACs instead of {fmt_count(r['macs'])} (theoretical, not run here).")
        st.warning(words)
    if r.get("stopped"):
        st.info(f"Stopped after {r['steps_done']} of {r['config']['steps']} steps: ratio reached "
                f"{r['ratio_reached'] * 100:.0f} %, not {r['config']['ratio'] * 100:.0f} %.")
    left, right = st.columns(2)
    left.plotly_chart(layer_bars(r["layers"], r["config"]["method"]), width="stretch")
    right.plotly_chart(magnitude_histograms(view["hist"]), width="stretch")
    suffix = "pt" if structured else "sparse"
    st.download_button(f"Download the pruned model ({fmt_bytes(r['size_bytes'])})", view["artifact"],
                       file_name=f"{r['model']}-{r['config']['method']}-{r['config']['ratio']:.2f}.{suffix}",
                       key=f"prune_download_{r['run_id']}",
                       help="Structured: a torch.save state_dict (load it with compression.pruning.load_structured). "
                            "Unstructured: the sparse container (compression.pruning.load_sparse).")
