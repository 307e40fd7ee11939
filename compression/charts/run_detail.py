"""One run in detail, as the Pareto explorer's details show it: its metrics next to its uncompressed
baseline, and its pipeline's steps. Pure frames (no streamlit)."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from compression.charts.format import fmt_change, fmt_ms, latency_change
from compression.charts.format import run_field as latency_value
from compression.charts.pareto import fmt_cost
from compression.honesty import METRIC_WORDS, simulated_metrics
from compression.run_labels import describe

METRIC_ROWS = [("accuracy", "test accuracy"), ("size_bytes", "stored size"), ("params", "parameters"),
               ("nonzero_params", "nonzero parameters"), ("macs", "MACs per image"), ("latency_ms", "latency (batch 1)")]


def comparison_frame(run: dict) -> pd.DataFrame:
    """One run's metrics next to its uncompressed baseline: value, baseline, and the change
    (compression.charts.format.fmt_change; "(simulated)" where simulated_metrics lists the metric)."""
    base = run.get("baseline") or {}
    sim = simulated_metrics(run)
    rows = []
    for key, label in METRIC_ROWS:
        value, ref = run.get(key), base.get(key)
        if key == "accuracy":
            shown = [f"{value * 100:.2f} % (n={run['accuracy_n']:,})",
                     f"{ref * 100:.2f} % (n={base.get('accuracy_n', 0):,})" if ref is not None else "–",
                     f"{(value - ref) * 100:+.2f} points" if ref is not None else "–"]
        else:
            fmt = {"size_bytes": lambda v: fmt_cost("size_bytes", v), "latency_ms": fmt_ms}.get(key, lambda v: f"{v:,.0f}")
            change = fmt_change(value, ref, key, simulated=key in sim).text if ref else "–"
            if key == "latency_ms" and ref:  # the baseline re-timed beside the run, on its runtime, when it has one
                ref = latency_value(run, "baseline_latency_ms") or ref
                change = latency_change(run).text
            shown = [fmt(value), fmt(ref) if ref is not None else "–", change]
        rows.append({"metric": label, "this run": shown[0], "uncompressed": shown[1], "change": shown[2]})
    return pd.DataFrame(rows)


def path_frame(path: Sequence[dict]) -> pd.DataFrame:
    """A pipeline's steps, first first: run, method, config, accuracy, size."""
    return pd.DataFrame([{"step": i + 1, "run": r["id"], "method": r["method"], "config": describe(r["method"], r["config"]),
                          "accuracy (%)": round(r["accuracy"] * 100, 2), "stored size": fmt_cost("size_bytes", r["size_bytes"]),
                          "simulated": ", ".join(METRIC_WORDS[k] for k in simulated_metrics(r)) or "no"}
                         for i, r in enumerate(path)])
