"""Plot builders for the Dynamic computation page: pure functions from DataFrames to figures."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from compression.charts.runs import METHOD_COLORS

EXIT_COLOR = METHOD_COLORS["early-exit"]
WIDTH_COLOR = METHOD_COLORS["width"]


def exit_curve(curve: pd.DataFrame, *, current: dict, full: dict, title: str = "") -> go.Figure:
    """Accuracy against mean MACs per image for every threshold of the sweep (one line), the
    current setting marked, and the full network as a star.

    curve: columns threshold, accuracy (0-1), macs; current/full: dicts with accuracy, macs."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=curve["macs"], y=curve["accuracy"] * 100, mode="lines+markers", name="all thresholds",
        line=dict(color=EXIT_COLOR, width=2), marker=dict(size=4, color=EXIT_COLOR),
        customdata=curve[["threshold"]].values,
        hovertemplate="threshold %{customdata[0]:.4f}<br>accuracy %{y:.2f} %<br>mean MACs %{x:,.0f}<extra></extra>"))
    fig.add_trace(go.Scatter(
        x=[current["macs"]], y=[current["accuracy"] * 100], mode="markers", name="current threshold",
        marker=dict(size=16, color="white", symbol="circle", line=dict(color=EXIT_COLOR, width=3)),
        hovertemplate="current<br>accuracy %{y:.2f} %<br>mean MACs %{x:,.0f}<extra></extra>"))
    fig.add_trace(go.Scatter(
        x=[full["macs"]], y=[full["accuracy"] * 100], mode="markers", name="full network",
        marker=dict(size=16, color="#222", symbol="star"),
        hovertemplate="full network<br>accuracy %{y:.2f} %<br>MACs %{x:,.0f}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="mean MACs per image", yaxis_title="test accuracy (%)",
                      height=400, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      legend=dict(orientation="h", y=-0.2))
    return fig


def exit_bars(exits: pd.DataFrame) -> go.Figure:
    """Share of images leaving at each exit (bars) with the accuracy of those images (labels).

    exits: columns exit (label), share (0-1), accuracy (0-1 or NaN when none left there), macs."""
    text = [f"{a * 100:.1f} % right" if pd.notna(a) else "none" for a in exits["accuracy"]]
    fig = go.Figure(go.Bar(
        x=exits["exit"], y=exits["share"] * 100, text=text, textposition="outside", marker_color=EXIT_COLOR,
        customdata=exits[["macs"]].values,
        hovertemplate="%{x}<br>%{y:.1f} % of images leave here<br>cost %{customdata[0]:,.0f} MACs<extra></extra>"))
    fig.update_layout(yaxis_title="images leaving here (%)", yaxis_range=[0, 115], height=300,
                      margin=dict(l=10, r=10, t=10, b=10))
    return fig


def width_chart(widths: pd.DataFrame, *, current: float | None = None) -> go.Figure:
    """Accuracy (left axis) and MACs and latency relative to full width (right axis) per width.

    widths: columns width, accuracy (0-1), macs_ratio, latency_ratio, macs, latency_ms."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(
        x=widths["width"], y=widths["accuracy"] * 100, mode="lines+markers", name="accuracy (%)",
        line=dict(color=WIDTH_COLOR, width=3), marker=dict(size=10),
        hovertemplate="width %{x}<br>accuracy %{y:.2f} %<extra></extra>"), secondary_y=False)
    for col, label, dash, raw, unit in (("macs_ratio", "MACs (x full)", "dash", "macs", "MACs"),
                                        ("latency_ratio", "latency (x full)", "dot", "latency_ms", "ms")):
        fig.add_trace(go.Scatter(
            x=widths["width"], y=widths[col], mode="lines+markers", name=label,
            line=dict(color="#555", dash=dash), customdata=widths[[raw]].values,
            hovertemplate=f"width %{{x}}<br>{label} %{{y:.3f}}<br>%{{customdata[0]:,.3f}} {unit}<extra></extra>"),
            secondary_y=True)
    if current is not None:
        fig.add_vline(x=current, line=dict(color=WIDTH_COLOR, width=1, dash="dot"))
    fig.update_xaxes(title_text="width multiplier", tickvals=list(widths["width"]))
    fig.update_yaxes(title_text="test accuracy (%)", secondary_y=False)
    fig.update_yaxes(title_text="cost relative to width 1.0", rangemode="tozero", secondary_y=True)
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=-0.2))
    return fig
