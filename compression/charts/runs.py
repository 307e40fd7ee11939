"""Stored runs on every page: the method colors, one row per run, accuracy against stored size."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from compression.honesty import simulated_metrics
from compression.metrics import wilson_interval
from compression.run_labels import run_title

METHOD_COLORS = {
    "baseline": "#444444", "prune": "#1f77b4", "distill": "#ff7f0e", "quantize": "#2ca02c",
    "architecture": "#9467bd", "early-exit": "#d62728", "width": "#e377c2", "pipeline": "#17becf",
}


def runs_frame(runs: list[dict]) -> pd.DataFrame:
    """Stored runs -> one row each with the metric columns and a label (compression.run_labels.run_title)."""
    if not runs:
        return pd.DataFrame(columns=["id", "model", "method", "accuracy", "accuracy_n", "size_bytes",
                                     "params", "macs", "latency_ms", "simulated", "label"])
    df = pd.DataFrame(runs)
    df["label"] = [run_title(r) for r in runs]  # the name, else what the run did (never the raw config)
    ci = [wilson_interval(a, n) for a, n in zip(df["accuracy"], df["accuracy_n"])]
    df["ci_low"] = [lo for lo, _ in ci]
    df["ci_high"] = [hi for _, hi in ci]
    return df


def axis_simulated(df: pd.DataFrame, axis: str) -> list[bool]:
    """Per row: is the run's number on `axis` simulated? (Old rows with `simulated`: every cost is.)"""
    if df.empty:
        return []
    return [axis in simulated_metrics(r) for r in df.to_dict("records")]


def accuracy_vs_size(df: pd.DataFrame, *, baseline: dict | None = None, title: str = "") -> go.Figure:
    """Accuracy (with 95% CI) against stored bytes, log x; runs whose size is simulated drawn hollow
    (compression.honesty.simulated_metrics: an unstructured prune's sparse file is real, so filled)."""
    fig = go.Figure()
    df = df.assign(axis_simulated=axis_simulated(df, "size_bytes"))
    for method, group in df.groupby("method", sort=True):
        for simulated, part in group.groupby("axis_simulated"):
            color = METHOD_COLORS.get(str(method), "#8c564b")
            fig.add_trace(go.Scatter(
                x=part["size_bytes"], y=part["accuracy"] * 100, mode="markers",
                name=f"{method}{' (size simulated)' if simulated else ''}",
                marker=dict(size=10, color="white" if simulated else color,
                            line=dict(color=color, width=2)),
                error_y=dict(type="data", symmetric=False,
                             array=(part["ci_high"] - part["accuracy"]) * 100,
                             arrayminus=(part["accuracy"] - part["ci_low"]) * 100, thickness=1),
                customdata=part[["id", "label", "latency_ms", "macs"]].values,
                hovertemplate=("run %{customdata[0]}<br>%{customdata[1]}<br>accuracy %{y:.2f} %"
                               "<br>size %{x:,} B<br>latency %{customdata[2]:.3f} ms"
                               "<br>MACs %{customdata[3]:,.0f}<extra>" + str(method) + "</extra>"),
            ))
    if baseline:
        fig.add_trace(go.Scatter(
            x=[baseline["size_bytes"]], y=[baseline["accuracy"] * 100], mode="markers",
            name="uncompressed", marker=dict(symbol="star", size=16, color="#222"),
            hovertemplate="uncompressed<br>accuracy %{y:.2f} %<br>size %{x:,} B<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="stored size (bytes, log scale)",
                      yaxis_title="test accuracy (%)", xaxis_type="log", xaxis_tickformat="~s", xaxis_dtick="D2", height=420,
                      margin=dict(l=10, r=10, t=40 if title else 10, b=10), legend_title="method")
    return fig


def class_probabilities(probs: list[float], classes: list[str], title: str = "") -> go.Figure:
    fig = go.Figure(go.Bar(x=list(classes), y=[p * 100 for p in probs]))
    fig.update_layout(title=title, yaxis_title="probability (%)", height=260,
                      margin=dict(l=10, r=10, t=30, b=10))
    return fig
