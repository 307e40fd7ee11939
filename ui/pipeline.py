"""Streamlit-side helpers for the pipelines page: the step builder's state, the background job,
the per-step progress bars. The work itself is compression.pipeline's."""

from __future__ import annotations

import streamlit as st

from compression.charts.format import plural
from compression.pipeline import PipelineConfig, run_and_store
from ui import cache, jobs

KNOBS = {  # kind -> the builder's widgets: (option, label, widget kind, choices / range, default)
    "prune": [("method", "Granularity", "select", ["unstructured", "structured"], "unstructured"),
              ("ratio", "Ratio removed", "slider", (0.0, 0.95, 0.05), 0.5),
              ("scope", "Threshold", "select", ["global", "layer"], "global"),
              ("steps", "Prune -> fine-tune cycles", "number", (1, 5), 1),
              ("epochs", "Fine-tuning epochs per cycle", "number", (0, 10), 1)],
    "finetune": [("epochs", "Epochs", "number", (1, 10), 1)],
    "distill": [("epochs", "Epochs", "number", (1, 10), 1),
                ("T", "Temperature T", "slider", (1.0, 10.0, 0.5), 4.0),
                ("alpha", "Soft-label weight alpha", "slider", (0.05, 1.0, 0.05), 0.7)],
    "quantize": [("method", "Method", "select", ["uniform", "cluster", "cluster-huffman", "ternary", "binary"], "uniform"),
                 ("bits", "Bits", "select", [8, 6, 5, 4, 3, 2], 8)],
}


def knob_widgets(kind: str) -> str:
    """The knobs of one step kind, in columns; returns the step's spec text."""
    parts, opts = [kind], []
    cols = st.columns(len(KNOBS[kind]))
    for col, (name, label, widget, choices, default) in zip(cols, KNOBS[kind]):
        key = f"pipe_{kind}_{name}"
        if widget == "select":
            value = col.selectbox(label, choices, index=choices.index(default), key=key)
        elif widget == "slider":
            lo, hi, step = choices
            value = col.slider(label, lo, hi, default, step=step, key=key)
        else:
            value = col.number_input(label, choices[0], choices[1], default, key=key)
        positional = {"prune": ("method", "ratio"), "quantize": ("method", "bits"),
                      "finetune": ("epochs",), "distill": ("epochs",)}[kind]
        text = f"{value:g}" if isinstance(value, float) else str(value)
        if name in positional:
            parts.append(text)
        else:
            opts.append(f"{name}={text}")
    return ":".join(parts + opts)


def start(model: str, dataset: str, device: str, cfg: PipelineConfig, runtime: str = "eager") -> None:
    """Run the pipeline in the background; every finished step is stored (chained) at once, so
    Stop keeps the finished steps. Each step's latency is timed on `runtime`."""
    data, base, store = cache.model_dataset(model, device, dataset), cache.model(model, device, dataset), cache.run_store()

    def work(job) -> list[dict]:
        done: list[dict] = []
        job.result = done  # visible while it runs
        for outcome, run_id in run_and_store(model, data, cfg, store, device=device, model=base,
                                             progress=job.progress, should_stop=job.should_stop, runtime=runtime):
            done.append({**outcome.result.to_dict(), "run_id": run_id})
        return done
    jobs.start("pipe_job", f"pipeline {model}: {plural(len(cfg.steps), 'step')}", work, device=device)


def stage_bars(job, steps: list[str]) -> None:
    """One progress bar per step: finished, running (its own fraction) or waiting."""
    last = job.events[-1] if job.events else {}
    stage = last.get("stage", 1)
    finished = len(job.result or [])
    for i, spec in enumerate(steps, start=1):
        if i <= finished:
            frac, state = 1.0, "done"
        elif i == stage:
            frac = min(1.0, last.get("stage_step", 0) / max(1, last.get("stage_steps", 1)))
            state = "running"
        else:
            frac, state = 0.0, "waiting"
        st.progress(frac, text=f"Step {i}: {spec} — {state}")

