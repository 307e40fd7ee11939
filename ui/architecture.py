"""Cached calls and the recovery job for the Architecture page.

The conversion answers in stages (ui.live, as the Pruning slider): the converted model's accuracy on
a stratified sample of the test images (compression.preview_subset) and its counts at once, then the whole test set, the file and latency (which
hold the device). Recovery is slow and runs through ui.jobs."""

from __future__ import annotations

from typing import Any, Iterator

import streamlit as st

from compression.architecture import (ArchitectureConfig, RecoveryConfig, convert, converted_result,
                                      recovered_result)
from compression.charts.format import plural
from compression.methods import save_run
from compression.metrics import count_macs, count_params
from compression.models import zoo_names
from compression.previews import to_preview
from compression.progressive import Cancelled, Entry, Stage, preview_count, subset_accuracy
from compression.refs import baseline as reference_baseline
from compression.refs import resolve
from ui import cache, jobs, live

JOB_KEY = "architecture_job"


@st.cache_data(max_entries=8, show_spinner="Measuring the original model…")
def baseline(name: str, dataset_name: str, device: str) -> dict[str, Any]:
    """The original model's metrics on the dataset (any model reference)."""
    return reference_baseline(resolve(name, cache.dataset(dataset_name), device=device), device).to_dict()


@st.cache_data(max_entries=64, show_spinner="Converting and measuring on the test images…")
def converted(name: str, dataset_name: str, device: str, cfg: tuple, runtime: str = "eager") -> dict[str, Any]:
    """The converted model's measured result: a preview (with its file), stored when kept; latency
    timed on `runtime` (passed only when not eager: ui.results.runtime_kwargs)."""
    return _converted(name, cache.model_dataset(name, device, dataset_name), cache.model(name, device, dataset_name), device, cfg, runtime)


def _converted(name: str, data, original, device: str, cfg: tuple, runtime: str = "eager",
               converted: Any = None) -> dict[str, Any]:
    """converted()'s value from the loaded dataset and model (no Streamlit call: a live worker runs
    it); `converted`: the converted model when the caller has it already."""
    config = ArchitectureConfig(**dict(cfg))
    model, result = converted_result(name, config, dataset=data, device=device, model=original, runtime=runtime,
                                     converted=converted)
    preview = to_preview(result, result.artifact)
    shape = data.input_shape
    totals = {"params_before": count_params(original), "params_after": count_params(model),
              "macs_before": count_macs(original, shape, device), "macs_after": count_macs(model, shape, device)}
    return {**preview["result"], "run_id": None, "totals": totals, "preview": preview, "stage": "full"}


def live_converted(name: str, dataset_name: str, device: str, cfg: tuple, runtime: str = "eager") -> Entry | None:
    """The conversion in stages (ui.live): first the accuracy on the preview sample of test images (with the
    original on the same images) and the counts, then the whole converted() result; the entry now."""
    return live.result("architecture", *converted_work(name, dataset_name, device, cfg, runtime))


def converted_work(name: str, dataset_name: str, device: str, cfg: tuple, runtime: str = "eager") -> tuple[tuple, Any]:
    """(key, work) of one conversion without recovery: what live_converted asks for (ui.warm too)."""
    data, original = cache.model_dataset(name, device, dataset_name), cache.model(name, device, dataset_name)

    def stages(cancelled) -> Iterator[Stage]:
        model = convert(original, ArchitectureConfig(**dict(cfg))).to(device).eval()  # a copy; the full stage measures it
        n = min(preview_count(original, data, device), len(data.test))
        if n < len(data.test):
            if cancelled():
                raise Cancelled()
            acc, _ = subset_accuracy(model, data, n, device)
            base_acc, _ = subset_accuracy(original, data, n, device, remember=True)
            yield Stage("subset", {"accuracy": acc, "accuracy_n": n, "of": len(data.test), "baseline_accuracy": base_acc,
                                   "classes": len(data.test.labels.unique()),
                                   "params": count_params(model), "macs": count_macs(model, data.input_shape, device)})
            if cancelled():
                raise Cancelled()
        yield Stage("full", _converted(name, data, original, device, cfg, runtime, model), final=True)

    def work(cancelled):
        return live.on_device(stages(cancelled), f"convert {name}", device, lambda stage: stage.value)
    frozen = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in cfg)  # a key: hashable
    return (name, dataset_name, device, frozen, runtime), work


def references(name: str, dataset_name: str, device: str) -> dict[str, dict]:
    """Models designed small to compare with: ds_cnn beside the cnn it was derived from."""
    if name == "cnn" and "ds_cnn" in zoo_names():
        return {"ds_cnn (designed small, from scratch)": baseline("ds_cnn", dataset_name, device)}
    return {}


def start_recovery(name: str, dataset_name: str, device: str, cfg: ArchitectureConfig,
                   recovery: RecoveryConfig, runtime: str = "eager") -> jobs.Job:
    """Convert again (seeded: the same model as shown) and recover in a worker thread; the worker
    stores the recovered result, so leaving the page keeps it."""
    data, original, store = cache.model_dataset(name, device, dataset_name), cache.model(name, device, dataset_name), cache.run_store()

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


def subset_card(res: dict[str, Any], base: dict[str, Any]) -> None:
    """The first stage: accuracy on the preview sample against the original on the same images,
    the counts; the file's size and latency follow with the whole test set."""
    from compression.charts.format import fmt_accuracy_ci, fmt_count, fmt_pct, fmt_short_count
    from ui import results
    cols = st.columns(5)
    results.accuracy_metric(cols[0], "Accuracy before training", fmt_pct(res["accuracy"]), res,
                            {"accuracy": res["baseline_accuracy"]},
                            help=f"{fmt_accuracy_ci(res['accuracy'], res['accuracy_n'])}; the original on the same "
                                 f"images: {fmt_pct(res['baseline_accuracy'])}. All {res['of']:,} test images follow.")
    results.cost_metric(cols[1], "Parameters", fmt_short_count(res["params"]), res, base, "params",
                        help=f"{res['params']:,} parameters")  # the tile cuts long values: compact from a million
    results.cost_metric(cols[2], "MACs / image", fmt_count(res["macs"]), res, base, "macs")
    cols[3].metric("Size on disk", "measuring…")
    cols[4].metric("Latency (batch 1)", "measuring…")
    st.caption(live.stage_caption(res["accuracy_n"], res["of"], classes=res.get("classes")))
