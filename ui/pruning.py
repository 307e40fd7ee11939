"""Streamlit-side helpers for the pruning page: a ratio's result in stages (ui.live: the first test
images at once, then all of them), the background job, the result card. The work itself is
compression.pruning's."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st
import torch

from compression.charts.format import fmt_accuracy_ci, fmt_bytes, fmt_count, fmt_ms, fmt_pct, plural
from compression.charts.pruning import layer_bars, magnitude_histograms
from compression.metrics import Metrics
from compression.previews import to_preview
from compression.progressive import Stage
from compression.pruning import (FinetuneConfig, PruneConfig, PruneOutcome, cached_sensitivity, prunable_parameters,
                                 staged_prune, sweep)
from ui import cache, jobs, live, results, runtime_table
from ui.downloads import model_download
from ui.keep import keep_button

SENSITIVITY_RATIOS = (0.2, 0.4, 0.6, 0.8, 0.9)
HIST_EDGES = np.linspace(-6, 1, 57)  # log10 |w|


def _log_magnitudes(model: torch.nn.Module) -> tuple[np.ndarray, int]:
    w = torch.cat([p.detach().reshape(-1).abs().float().cpu() for n, p in prunable_parameters(model)
                   if n.endswith("weight")]).numpy()
    nz = w[w > 0]
    return np.log10(nz), int(w.size - nz.size)


def _histogram(base_model: torch.nn.Module, pruned: torch.nn.Module) -> dict:
    before, zeros_before = _log_magnitudes(base_model)
    after, zeros_after = _log_magnitudes(pruned)
    return {"edges": HIST_EDGES.tolist(), "before": np.histogram(before, HIST_EDGES)[0].tolist(),
            "after": np.histogram(after, HIST_EDGES)[0].tolist(), "before_zeros": zeros_before,
            "after_zeros": zeros_after}


def outcome_view(outcome: PruneOutcome, base_model: torch.nn.Module, run_id: int | None) -> dict:
    """Plain values for the page (and for st.cache_data): result, histogram, artifact bytes; a
    result not stored (run_id None) carries its preview, which the page's Keep button stores."""
    view = {"result": {**outcome.result.to_dict(), "run_id": run_id}, "hist": _histogram(base_model, outcome.model),
            "artifact": outcome.artifact}
    if run_id is None:
        view["preview"] = to_preview(outcome.result, outcome.artifact)
    return view


def subset_view(part, base_model: torch.nn.Module, model: str, dataset: str, device: str) -> dict:
    """The first stage for the page: accuracy on the preview sample of test images (with its interval, against
    the unpruned model on the same images), the counts, the file's bytes, the layers and the
    histogram; no latency yet (the full stage brings it, with the file to keep or download)."""
    unstructured = part.config["method"] == "unstructured"
    r = {**part.to_dict(), "model": model, "dataset": dataset, "device": device, "method": "prune",
         "baseline": {"accuracy": part.baseline_accuracy, "accuracy_n": part.accuracy_n},
         "simulated": unstructured, "simulated_metrics": ["latency_ms"] if unstructured else [], "run_id": None}
    return {"stage": "subset", "result": r, "hist": _histogram(base_model, part.model)}


def live_prune(model: str, dataset: str, device: str, method: str, ratio: float, scope: str,
               importance: str, steps: int, runtime: str = "eager"):
    """One ratio without fine-tuning, in stages (ui.live): the entry now (None while nothing is
    ready; its latest stage's value a subset_view, then the full outcome_view, a preview)."""
    return live.result("prune", *prune_work(model, dataset, device, method, ratio, scope, importance, steps,
                                            runtime=runtime))


def prune_work(model: str, dataset: str, device: str, method: str, ratio: float, scope: str, importance: str,
               steps: int, *, runtime: str = "eager") -> tuple[tuple, Any]:
    """(key, work) of one ratio without fine-tuning: what live_prune asks for (ui.warm too). The
    key holds the runtime latency is timed on (not for eager: the keys the warm start computes)."""
    data, base = cache.model_dataset(model, device, dataset), cache.model(model, device, dataset)
    cfg, ft = PruneConfig(method, ratio, scope, importance), FinetuneConfig(steps=steps)

    def view(stage: Stage) -> dict:
        return (outcome_view(stage.value, base, None) if stage.final
                else subset_view(stage.value, base, model, dataset, device))

    def work(cancelled):
        return live.on_device(staged_prune(model, data, cfg, ft, device=device, model=base, cancelled=cancelled,
                                           runtime=runtime), f"prune {model} {method} {ratio:.2f}", device, view)
    key = (model, dataset, device, method, float(ratio), scope, importance, int(steps))
    return key + (() if runtime == "eager" else (runtime,)), work


def start_job(model: str, dataset: str, device: str, cfg: PruneConfig, ft: FinetuneConfig,
              ratios: list[float], runtime: str = "eager") -> None:
    """Fine-tuning or a sweep in the background, each ratio a sweep job (compression.sweep: in-process,
    or on the configured cluster); each finished ratio is stored at once, with its artifact."""
    data, base = cache.model_dataset(model, device, dataset), cache.model(model, device, dataset)
    store = cache.run_store()

    def work(job: jobs.Job) -> list[dict]:
        views = []
        progress = job.progress if len(ratios) == 1 else None
        for outcome in sweep(model, data, cfg, ratios, ft, device=device, progress=progress,
                             should_stop=job.should_stop, store=store, runtime=runtime):
            views.append(outcome_view(outcome, base, outcome.result.extra["run_id"]))
            if len(ratios) > 1:
                r = outcome.result
                job.progress({"step": len(views), "steps": len(ratios), "ratio": r.config["ratio"],
                              "accuracy": r.metrics.accuracy, "phase": "measured", "monitor": "test"})
        return views

    what = f"{len(ratios)} ratios" if len(ratios) > 1 else f"ratio {ratios[0]:.2f}"
    jobs.start("prune_job", f"prune {model} {cfg.method} {what}", work, device=device)


def start_sensitivity(model: str, dataset: str, device: str, method: str, importance: str) -> None:
    data = cache.model_dataset(model, device, dataset)

    def work(job: jobs.Job) -> list[dict]:
        return cached_sensitivity(model, data, method=method, ratios=SENSITIVITY_RATIOS, importance=importance,
                                  device=device, progress=job.progress, should_stop=job.should_stop)
    jobs.start("prune_sens_job", f"sensitivity of {model} ({method})", work, device=device)


def stored_sensitivity(model: str, dataset: str, device: str, method: str, importance: str) -> list[dict] | None:
    return cached_sensitivity(model, cache.model_dataset(model, device, dataset), method=method, ratios=SENSITIVITY_RATIOS,
                              importance=importance, device=device, only_cached=True)


def result_card(view: dict, base: dict) -> None:
    """The measured numbers against the unpruned model, and in words whether the gain is real. A
    first stage (view["stage"] == "subset") says on how many test images its accuracy is, against
    the unpruned model on the same images; size and latency say they are still being measured."""
    r = view["result"]
    b = Metrics.from_dict(base)
    partial = view.get("stage") == "subset"
    cols = st.columns(5)
    if partial:
        ref = r["baseline"]["accuracy"]
        results.accuracy_metric(cols[0], "Test accuracy", fmt_pct(r["accuracy"]), r, r["baseline"],
                                help=f"{fmt_accuracy_ci(r['accuracy'], r['accuracy_n'])}; the unpruned model on the "
                                     f"same images: {fmt_pct(ref)}. All {r['of']:,} test images follow.")
    else:
        results.accuracy_metric(cols[0], "Test accuracy", fmt_pct(r["accuracy"]), r, b,
                                help=f"{fmt_accuracy_ci(r['accuracy'], r['accuracy_n'])}; unpruned "
                                     f"{fmt_pct(b.accuracy)}.")
    results.cost_metric(cols[1], "Nonzero parameters", fmt_count(r["nonzero_params"]), r, b, "nonzero_params",
                        help=f"{r['params']:,} parameters stored, {r['nonzero_params']:,} nonzero; unpruned "
                             f"{fmt_count(b.nonzero_params)}.")
    results.cost_metric(cols[2], "Stored size", fmt_bytes(r["size_bytes"]), r, b, "size_bytes",
                        help=f"Length of the file you can download below; unpruned {fmt_bytes(b.size_bytes)}.")
    results.cost_metric(cols[3], "MACs / image", fmt_count(r["macs"]), r, b, "macs",
                        help="Counted on the model as it executes (dense kernels).")
    base_ms = r.get("baseline_latency_ms") or b.latency_ms  # the unpruned model timed beside it, when it was
    if partial:
        cols[4].metric("Latency (batch 1)", "measuring…", help="Timed with the full result.")
    else:
        results.cost_metric(cols[4], "Latency (batch 1)", fmt_ms(r["latency_ms"]), r, b, "latency_ms",
                            help=results.latency_help(r, b, "unpruned model"))
    results.accuracy_caption(r, partial, "the unpruned model")
    results.sanity_note(r)
    structured = r["config"]["method"] == "structured"
    if partial:
        more = ""
    elif structured:
        more = (f"Latency {fmt_ms(base_ms)} → {fmt_ms(r['latency_ms'])} timed side by side on {r['device']} "
                f"({results.runtime_name(r)}): {results.change_of(r, b, 'latency_ms').text}.")
    else:
        more = (f"Stored: {fmt_bytes(b.size_bytes)} → {fmt_bytes(r['size_bytes'])}. A sparse kernel would need "
                f"{fmt_count(r['sparse_macs'])} MACs instead of {fmt_count(r['macs'])} (theoretical, not run here).")
    for key in ("runtime_fallback", "latency_retimed"):  # said, not hidden: the runtime it fell back from, a re-time
        if r.get(key):
            more += f" Latency {r[key]}." if key == "latency_retimed" else f" Runtime: {r[key]}."
    results.honesty_note(r, more)
    if r.get("stopped"):
        st.info(f"Stopped after {r['steps_done']} of {plural(r['config']['steps'], 'step')}: ratio reached "
                f"{r['ratio_reached'] * 100:.0f} %, not {r['config']['ratio'] * 100:.0f} %.")
    left, right = st.columns(2)
    left.plotly_chart(layer_bars(r["layers"], r["config"]["method"]), width="stretch")
    right.plotly_chart(magnitude_histograms(view["hist"]), width="stretch")
    if partial:
        return  # Keep and the download come with the full result
    if view.get("preview"):
        keep_button(view["preview"], what="pruned model")
    runtime_table.section("prune_runtimes_job", r, view["artifact"], what="unpruned model")
    model_download(f"prune_{r['run_id'] or view['preview']['key']}", r, artifact=view["artifact"],
                   preview=view.get("preview") if not r["run_id"] else None, what="pruned model")
