"""Plot builders for the pruning page: pure functions from lists/DataFrames to plotly figures."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

COLORS = {"unstructured": "#1f77b4", "structured": "#d62728"}
_MARGIN = dict(l=10, r=10, t=40, b=10)


def pruning_frame(runs: list[dict]) -> pd.DataFrame:
    """Stored prune runs -> one row each: method, ratio reached, fine-tuning label, accuracy, bytes."""
    rows = []
    for r in runs:
        c = r.get("config") or {}
        extra = r.get("extra") or {}
        reached = extra.get("ratio_reached", c.get("ratio"))
        epochs, steps = c.get("finetune_epochs", 0), c.get("steps", 1)
        rows.append({
            "id": r.get("id"), "method": c.get("method", "?"), "scope": c.get("scope", "?"),
            "ratio": reached if reached is not None else c.get("ratio"),
            "finetune": "no fine-tuning" if not epochs else f"{steps}x{epochs} ep on {c.get('finetune_split', 'val')}",
            "accuracy": r["accuracy"] * 100, "size_bytes": r["size_bytes"], "latency_ms": r["latency_ms"],
            "nonzero_params": r["nonzero_params"], "simulated": bool(r.get("simulated")),
        })
    return pd.DataFrame(rows, columns=["id", "method", "scope", "ratio", "finetune", "accuracy", "size_bytes",
                                       "latency_ms", "nonzero_params", "simulated"])


def accuracy_vs_ratio(df: pd.DataFrame, *, baseline_accuracy: float | None = None, title: str = "") -> go.Figure:
    """Test accuracy against the pruning ratio reached, one line per method/scope/fine-tuning."""
    fig = go.Figure()
    for (method, scope, finetune), part in df.sort_values("ratio").groupby(["method", "scope", "finetune"], sort=True):
        fig.add_trace(go.Scatter(
            x=part["ratio"] * 100, y=part["accuracy"], mode="lines+markers",
            name=f"{method}, {scope}, {finetune}",
            line=dict(color=COLORS.get(method, "#555"), dash="solid" if finetune == "no fine-tuning" else "dot"),
            customdata=part[["id", "size_bytes", "latency_ms"]].values,
            hovertemplate=("ratio %{x:.0f} %<br>accuracy %{y:.2f} %<br>size %{customdata[1]:,} B"
                           "<br>latency %{customdata[2]:.3f} ms<br>run %{customdata[0]}<extra></extra>")))
    if baseline_accuracy is not None:
        fig.add_hline(y=baseline_accuracy * 100, line_dash="dash", line_color="#222",
                      annotation_text=f"unpruned {baseline_accuracy * 100:.2f} %", annotation_position="bottom left")
    fig.update_layout(title=title, xaxis_title="pruning ratio reached (%)", yaxis_title="test accuracy (%)",
                      height=400, margin=_MARGIN, legend=dict(orientation="h", y=-0.25),
                      xaxis_range=ratio_range(df["ratio"] * 100) if len(df) else None)
    return fig


def ratio_range(percent: pd.Series, span: float = 20.0) -> list[float]:
    """An x range of at least `span` points within 0..100 around the ratios: one run at 50 % draws
    on 40..60, not on Plotly's 49..51."""
    lo, hi = float(percent.min()), float(percent.max())
    pad = max(0.0, span - (hi - lo)) / 2 + 2
    lo, hi = max(0.0, lo - pad), min(100.0, hi + pad)
    return [lo, hi]


def layer_bars(layers: list[dict], method: str) -> go.Figure:
    """Per-layer kept weights (unstructured) or kept channels/neurons (structured)."""
    key, what = (("kept_channels", "channels/neurons kept") if method == "structured"
                 else ("kept_weights", "weights kept (nonzero)"))
    if method == "structured":
        text = [f"{r['channels_after']}/{r['channels_before']}" for r in layers]
    else:
        text = [f"{r['nonzero_after']:,}/{r['weights_before']:,}" for r in layers]
    fig = go.Figure(go.Bar(
        x=[f"{r['layer']} ({r['kind']})" for r in layers], y=[r[key] * 100 for r in layers],
        text=text, textposition="outside", marker_color=COLORS.get(method, "#555")))
    fig.update_layout(title=f"Per layer: {what}", yaxis_title="kept (%)", yaxis_range=[0, 115],
                      height=340, margin=_MARGIN)
    return fig


def magnitude_histograms(hist: dict) -> go.Figure:
    """|w| histograms (log10 bins) of the conv/linear weights before and after; zeros counted apart."""
    centers = [(a + b) / 2 for a, b in zip(hist["edges"][:-1], hist["edges"][1:])]
    fig = go.Figure()
    for label, color in (("before", "#7f7f7f"), ("after", "#1f77b4")):
        fig.add_trace(go.Bar(x=centers, y=hist[label], name=f"{label} ({hist[f'{label}_zeros']:,} zeros)",
                             marker_color=color, opacity=0.6))
    fig.update_layout(barmode="overlay", title="Weight magnitudes (zeros not on the log axis)",
                      xaxis_title="log10 |w|", yaxis_title="weights", height=340, margin=_MARGIN,
                      legend=dict(orientation="h", y=-0.3))
    return fig


def sensitivity_heatmap(rows: list[dict], *, baseline_accuracy: float | None = None) -> go.Figure:
    """Accuracy when only one layer is pruned (rows: layers, columns: ratios)."""
    df = pd.DataFrame(rows)
    grid = df.pivot(index="layer", columns="ratio", values="accuracy").reindex(list(dict.fromkeys(df["layer"])))
    z = grid.values * 100
    fig = go.Figure(go.Heatmap(
        z=z, x=[f"{c * 100:.0f} %" for c in grid.columns], y=list(grid.index), colorscale="RdYlGn",
        zmin=max(0.0, float(z.min())) if z.size else 0, zmax=(baseline_accuracy * 100) if baseline_accuracy else None,
        text=[[f"{v:.1f}" for v in row] for row in z], texttemplate="%{text}",
        colorbar=dict(title="acc %"),
        hovertemplate="layer %{y}<br>ratio %{x}<br>accuracy %{z:.2f} %<extra></extra>"))
    grouped = any(" + " in str(name) or str(name).endswith(" heads") for name in grid.index)
    unit = "layer or group" if grouped else "layer"
    fig.update_layout(title=f"Sensitivity: accuracy with only this {unit} pruned", xaxis_title="pruning ratio",
                      yaxis_title=unit, yaxis_autorange="reversed", height=120 + 40 * len(grid), margin=_MARGIN)
    return fig


def steps_chart(events: list[dict]) -> go.Figure:
    """Live view of prune -> fine-tune -> repeat: accuracy after each pruning step and epoch."""
    fig = go.Figure()
    events = [e for e in events if e.get("accuracy") is not None]
    if events:
        df = pd.DataFrame(events)
        fig.add_trace(go.Scatter(x=df["step"], y=df["accuracy"] * 100, mode="lines", line=dict(color="#999"),
                                 showlegend=False, hoverinfo="skip"))
        for phase, color in (("pruned", "#d62728"), ("fine-tuned", "#2ca02c")):
            part = df[df.get("phase", pd.Series(dtype=str)) == phase] if "phase" in df else df.iloc[0:0]
            if len(part):
                fig.add_trace(go.Scatter(
                    x=part["step"], y=part["accuracy"] * 100, mode="markers", name=f"after {phase}",
                    marker=dict(color=color, size=9), customdata=part[["ratio"]].values,
                    hovertemplate="ratio %{customdata[0]:.2f}<br>accuracy %{y:.2f} %<extra></extra>"))
        monitor = df["monitor"].iloc[-1] if "monitor" in df else ""
        fig.update_layout(yaxis_title=f"accuracy on {monitor} (%)")
    fig.update_layout(title="Accuracy per step", xaxis_title="step (pruning steps and epochs)",
                      height=320, margin=_MARGIN)
    return fig
