"""'Time on every runtime' under a result card: the result and its baseline timed on eager,
torch.compile and ONNX Runtime at batch 1 and 256 (compression.runtime_table), as a background job
(ui.jobs: it holds the device like every heavy job, with progress and Stop). Tables are kept per
(model, dataset, device, method, config), shared by every session, so a result timed once shows
its table at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import streamlit as st

from compression.charts.format import fmt_ms_spread
from compression.runtime_table import BATCH_SIZES
from compression.runtimes import DESCRIPTIONS
from ui import cache, jobs


@st.cache_resource
def _tables() -> dict[tuple, list[dict]]:
    """Finished tables by table_key, shared by every session."""
    return {}


def table_key(run: Mapping[str, Any], batch_sizes=BATCH_SIZES) -> tuple:
    """What a table is for: the model, dataset, device, method and config of the result (and the batch sizes)."""
    config = json.dumps(run.get("config") or {}, sort_keys=True, default=str)
    return (run["model"], run["dataset"], run["device"], run["method"], config, tuple(batch_sizes))


def frame(rows: list[dict], what: str = "baseline") -> pd.DataFrame:
    """The table as the page shows it: medians ± spreads in ms, the ratio in words, the fallback;
    `what` names the baseline's columns (the unpruned model, the teacher, ...)."""
    return pd.DataFrame([{
        "runtime": DESCRIPTIONS.get(r["runtime"], r["runtime"]), "batch": r["batch"],
        what: fmt_ms_spread(r["baseline_ms"], r["baseline_spread_ms"]),
        "result": fmt_ms_spread(r["result_ms"], r["result_spread_ms"]),
        f"result vs {what}": r["change"] if r["fallback"] is None else "could not run",
        f"ratio ({what} / result)": round(r["ratio"], 2) if r["ratio"] else None,
        "setup (s)": r.get("setup_s"),
        "note": r["fallback"] or "",
    } for r in rows])


def _artifact_bytes(run: Mapping[str, Any], artifact: bytes | None) -> bytes:
    if artifact is not None:
        return bytes(artifact)
    return Path(run["artifact"]).read_bytes()  # a stored run: its file


def start(job_key: str, run: Mapping[str, Any], artifact: bytes | None, *, batch_sizes=BATCH_SIZES) -> jobs.Job:
    """Time the result (its artifact) against the reference's model on every runtime, in the background."""
    from compression.artifact import load_artifact
    from compression.honesty import simulated_metrics
    from compression.runtime_table import all_runtimes
    key, tables = table_key(run, batch_sizes), _tables()
    source = (run.get("extra") or {}).get("model_source") or {}
    reference = source.get("spec") or run["model"]  # a run of --weights records the reference that loads them
    base = cache.model(reference, run["device"], run["dataset"])  # shared, read only: all_runtimes copies
    shape = cache.model_dataset(reference, run["device"], run["dataset"]).input_shape
    blob = _artifact_bytes(run, artifact)
    simulated = "latency_ms" in simulated_metrics(run)

    def work(job: jobs.Job) -> list[dict]:
        result_model = load_artifact(blob)
        rows = all_runtimes(base, result_model, shape, run["device"], batch_sizes=batch_sizes, simulated=simulated,
                            progress=job.progress, should_stop=job.should_stop)
        if not job.should_stop():
            tables[key] = rows
        return rows
    return jobs.start(job_key, f"{run['model']} ({run['method']}) on every runtime", work, device=run["device"])


def section(job_key: str, run: Mapping[str, Any], artifact: bytes | None = None, *, what: str = "baseline") -> None:
    """The button (or the table, once timed) under a result card. `run`: the result's dict (model,
    dataset, device, method, config; `artifact` the file's path when `artifact` bytes are not given)."""
    rows = _tables().get(table_key(run))
    if rows is not None:
        show(rows, what)
    elif st.button("Time on every runtime", key=f"{job_key}_start", icon=":material/speed:",
                   help="The result and the " + what + " timed side by side on PyTorch eager, torch.compile and "
                        f"ONNX Runtime at batch {' and '.join(map(str, BATCH_SIZES))}: medians with the spread of "
                        "the 95 % interval of each. torch.compile compiles each model per batch size: a minute "
                        "or more here."):
        try:
            start(job_key, run, artifact)
        except Exception as exc:  # an unreadable file: said, the page stays usable
            st.error(f"Could not time this result on every runtime: {exc}")

    def partial(job: jobs.Job) -> None:
        if job.status == "stopped" and job.result:
            show(job.result, what)
    jobs.panel(job_key, lambda job: None, partial)


def show(rows: list[dict], what: str = "baseline") -> None:
    st.dataframe(frame(rows, what), hide_index=True, width="stretch")
    st.caption(f"Milliseconds per batch, median ± the half-width of its 95 % interval, the result and the {what} "
               "timed interleaved on each runtime. Overlapping intervals read \"no measurable change\". "
               "Accuracy is the same on every runtime (the same function); a runtime that could not run a model "
               "says why instead of numbers.")
