"""Plot builders for the Quantization page: pure functions from results to plotly figures."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

METHOD_COLORS = {"uniform": "#2ca02c", "cluster": "#1f77b4", "cluster-huffman": "#9467bd",
                 "binary": "#d62728", "ternary": "#ff7f0e"}


def sweep_frame(results: list[dict[str, Any]]) -> pd.DataFrame:
    """Result dicts (Result.to_dict()) -> one row per point: method, bits, accuracy (%), bytes."""
    cols = ["method", "bits", "accuracy", "size_bytes", "latency_ms", "simulated", "bits_per_weight", "label"]
    if not results:
        return pd.DataFrame(columns=cols)
    rows = [{"method": r["config"]["method"], "bits": r["config"]["bits"], "accuracy": r["accuracy"] * 100,
             "size_bytes": r["size_bytes"], "latency_ms": r["latency_ms"], "simulated": r["simulated"],
             "bits_per_weight": r.get("bits_per_weight"), "label": r.get("label", "")} for r in results]
    return pd.DataFrame(rows, columns=cols).sort_values(["method", "bits"]).reset_index(drop=True)


def _baseline_line(fig: go.Figure, baseline: dict | None) -> None:
    if baseline:
        fig.add_hline(y=baseline["accuracy"] * 100, line_dash="dot", line_color="#444",
                      annotation_text=f"float32 {baseline['accuracy'] * 100:.2f} %", annotation_position="bottom right")


def accuracy_vs_bits(df: pd.DataFrame, baseline: dict | None = None) -> go.Figure:
    """Test accuracy against weight bits, one line per method."""
    fig = go.Figure()
    for method, part in df.groupby("method", sort=True):
        fig.add_trace(go.Scatter(
            x=part["bits_per_weight"].fillna(part["bits"]) if method == "cluster-huffman" else part["bits"],
            y=part["accuracy"], mode="lines+markers", name=str(method),
            line=dict(color=METHOD_COLORS.get(str(method))), customdata=part[["size_bytes", "bits"]].values,
            hovertemplate="%{customdata[1]} bits<br>accuracy %{y:.2f} %<br>%{customdata[0]:,} bytes<extra>"
                          + str(method) + "</extra>"))
    _baseline_line(fig, baseline)
    fig.update_layout(xaxis_title="weight bits (Huffman: stored bits per weight)", yaxis_title="test accuracy (%)",
                      height=380, margin=dict(l=10, r=10, t=30, b=10), legend_title="method")
    return fig


def accuracy_vs_bytes(df: pd.DataFrame, baseline: dict | None = None) -> go.Figure:
    """Test accuracy against the packed artifact's bytes (log x), one line per method."""
    fig = go.Figure()
    for method, part in df.groupby("method", sort=True):
        fig.add_trace(go.Scatter(
            x=part["size_bytes"], y=part["accuracy"], mode="lines+markers+text", name=str(method),
            text=[f"{b}b" for b in part["bits"]], textposition="top center",
            line=dict(color=METHOD_COLORS.get(str(method))),
            hovertemplate="%{x:,} bytes<br>accuracy %{y:.2f} %<extra>" + str(method) + "</extra>"))
    if baseline:
        fig.add_trace(go.Scatter(x=[baseline["size_bytes"]], y=[baseline["accuracy"] * 100], mode="markers",
                                 name="float32", marker=dict(symbol="star", size=14, color="#222")))
    fig.update_layout(xaxis_title="stored bytes (packed artifact, log scale)", yaxis_title="test accuracy (%)",
                      xaxis_type="log", xaxis_tickformat="~s", xaxis_dtick="D2", height=380,
                      margin=dict(l=10, r=10, t=30, b=10), legend_title="method")
    return fig


def weight_histogram(hist: dict[str, Any], bins: int = 120) -> go.Figure:
    """Float weights of one layer (bars) with the values the quantized layer can take (lines).

    Binned here (the page sends bins, not every weight) and the levels drawn as one trace of
    vertical segments: 64 layout shapes made the browser redraw the chart for ~0.5 s on each move of
    the bits slider, before the new numbers above it could show (2 cores, Chromium, 2026-12-06)."""
    w = np.asarray(hist["weights"], dtype=np.float64)
    counts, edges = np.histogram(w, bins=bins) if w.size else (np.zeros(0), np.zeros(1))
    fig = go.Figure(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges), name="float32 weights",
                           marker_color="#9ecae1", marker_line_width=0,
                           hovertemplate="%{x:.4g}: %{y} weights<extra></extra>"))
    levels = np.asarray(hist["levels"])
    shown = levels if len(levels) <= 64 else levels[:: max(1, len(levels) // 64)]
    top = float(counts.max()) * 1.05 if len(counts) and counts.max() > 0 else 1.0
    xs = [x for v in shown for x in (float(v), float(v), None)]
    ys = [y for _ in shown for y in (0.0, top, None)]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="levels", hoverinfo="skip",
                             line=dict(width=1, color="#d62728"), opacity=0.7))
    what = "cluster centers" if hist["encoding"] == "codebook" else "quantization levels"
    where = f" (channel {hist['channel']}, the widest)" if hist.get("channel") is not None else ""
    fig.update_layout(title=f"layer {hist['layer']}: {len(levels)} {what}{where}", xaxis_title="weight value",
                      yaxis_title="count", yaxis_range=[0, top], bargap=0, height=320,
                      margin=dict(l=10, r=10, t=40, b=10), showlegend=False)
    return fig


def sensitivity_bars(rows: list[dict[str, Any]]) -> go.Figure:
    """Accuracy drop (points) when only one layer is quantized, per layer."""
    df = pd.DataFrame(rows)
    fig = go.Figure(go.Bar(x=[f"{r.layer} ({r.kind})" for r in df.itertuples()], y=df["drop_points"],
                           marker_color="#d62728", customdata=df[["accuracy", "bits", "params"]].values,
                           hovertemplate="%{x}<br>drop %{y:.2f} points<br>accuracy %{customdata[0]:.2%}"
                                         "<br>%{customdata[1]} bits, %{customdata[2]:,} weights<extra></extra>"))
    fig.update_layout(xaxis_title="layer quantized alone", yaxis_title="accuracy drop (points)", height=300,
                      margin=dict(l=10, r=10, t=30, b=10))
    return fig


def qat_curve(events: list[dict[str, Any]]) -> go.Figure:
    """Validation accuracy of the quantized model per QAT epoch."""
    fig = go.Figure(go.Scatter(x=[e["epoch"] for e in events], y=[e["val_accuracy"] * 100 for e in events],
                               mode="lines+markers", name="validation accuracy (quantized)"))
    fig.update_layout(xaxis_title="QAT epoch", yaxis_title="validation accuracy (%)", height=280,
                      margin=dict(l=10, r=10, t=30, b=10))
    return fig


def layer_table(layers: list[dict[str, Any]]) -> pd.DataFrame:
    """Per-layer report for st.dataframe, with units in the column names."""
    return pd.DataFrame([{"layer": r["name"], "type": r["kind"], "weights": r["params"],
                          "bits": r["bits"] if r["quantized"] else "float32", "stored as": r["encoding"],
                          "stored bytes": r["stored_bytes"], "bits / weight": r["bits_per_weight"],
                          "SQNR (dB)": r["sqnr_db"]} for r in layers])
