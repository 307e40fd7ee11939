"""Plot builders for the Architecture page: pure functions to plotly figures and DataFrames."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go

from compression.charts.runs import METHOD_COLORS, axis_simulated
from compression.honesty import METRIC_WORDS

if TYPE_CHECKING:  # a type only: drawing needs no architecture code
    from compression.architecture import ConvComparison

CHANNEL_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
MAX_DRAWN = 6  # channels drawn per stack; the rest are counted in the label


class _Canvas:
    """Shapes and annotations collected as dicts and given to the figure once: Plotly's
    add_shape/add_annotation revalidate the whole layout on every call, which made a 7x7 diagram
    (~350 cells) take seconds."""

    def __init__(self) -> None:
        self.shapes: list[dict] = []
        self.annotations: list[dict] = []

    def rect(self, **kw) -> None:
        self.shapes.append(dict(type="rect", **kw))

    def note(self, **kw) -> None:
        self.annotations.append(kw)


def _stack(cv: _Canvas, x: float, y: float, n: int, total: int, size: float, colors: list[str],
           label: str) -> None:
    """A stack of feature maps, drawn back to front, with a label under it."""
    for j in reversed(range(n)):
        off = j * 2.2
        cv.rect(x0=x + off, y0=y + off, x1=x + off + size, y1=y + off + size,
                fillcolor=colors[j % len(colors)], opacity=0.85, line=dict(color="white", width=1))
    more = f" (+{total - n} more)" if total > n else ""
    cv.note(x=x + size / 2 + 2, y=y - 4, text=label + more, showarrow=False, font=dict(size=12))


def _filter(cv: _Canvas, x: float, y: float, k: int, cell: float, color: str) -> None:
    """One k x k filter drawn as a grid of cells."""
    for r in range(k):
        for c in range(k):
            cv.rect(x0=x + c * cell, y0=y + r * cell, x1=x + (c + 1) * cell, y1=y + (r + 1) * cell,
                    fillcolor=color, opacity=0.7, line=dict(color="white", width=0.5))


def _arrow(cv: _Canvas, x0: float, x1: float, y: float, text: str) -> None:
    cv.note(x=x1, y=y, ax=x0, ay=y, xref="x", yref="y", axref="x", ayref="y", text="",
            showarrow=True, arrowhead=2, arrowwidth=1.5, arrowcolor="#555")
    cv.note(x=(x0 + x1) / 2, y=y + 4, text=text, showarrow=False, font=dict(size=11, color="#333"))


def separable_diagram(k: int, i: int, o: int) -> go.Figure:
    """The two steps: one k x k filter per input channel (depthwise), then O filters of 1 x 1 x I
    (pointwise) that mix the channels. Colors follow the input channels."""
    cv = _Canvas()
    n_in, n_out = min(i, MAX_DRAWN), min(o, MAX_DRAWN)
    cell = min(2.4, 14 / max(k, 1))
    _stack(cv, 2, 12, n_in, i, 14, CHANNEL_COLORS, f"input: {i} channel{'s' * (i != 1)}")
    _arrow(cv, 26, 36, 22, "depthwise")
    for j in range(n_in):  # one filter per channel, same color as its channel
        _filter(cv, 38 + (j % 3) * (k * cell + 1.5), 6 + (j // 3) * (k * cell + 3), k, cell, CHANNEL_COLORS[j])
    cv.note(x=47, y=2, text=f"{i} filter{'s' * (i != 1)} of {k}×{k}<br>(one per channel)",
            showarrow=False, font=dict(size=11))
    _stack(cv, 62, 12, n_in, i, 14, CHANNEL_COLORS, f"{i} filtered map{'s' * (i != 1)}")
    _arrow(cv, 84, 94, 22, "pointwise")
    for j in range(n_out):  # each 1x1 filter has one weight per channel: a column of colored cells
        for c in range(n_in):
            cv.rect(x0=96 + j * 3, y0=8 + c * 2.5, x1=98.2 + j * 3, y1=10.3 + c * 2.5,
                    fillcolor=CHANNEL_COLORS[c], opacity=0.7, line=dict(color="white", width=0.5))
    cv.note(x=104, y=2, text=f"{o} filter{'s' * (o != 1)} of 1×1×{i}<br>(mix channels)",
            showarrow=False, font=dict(size=11))
    _stack(cv, 122, 12, n_out, o, 14, ["#555555", "#777777", "#999999"], f"output: {o} channel{'s' * (o != 1)}")
    fig = go.Figure(go.Scatter(x=[-8, 150], y=[0, 40], mode="markers", marker=dict(opacity=0),
                               hoverinfo="skip", showlegend=False))  # fixes the extent
    fig.update_xaxes(visible=False, range=[-8, 150])
    fig.update_yaxes(visible=False, range=[-4, 44], scaleanchor="x")
    fig.update_layout(height=260, margin=dict(l=0, r=0, t=10, b=0), plot_bgcolor="white",
                      shapes=cv.shapes, annotations=cv.annotations)
    return fig


def weights_bars(c: ConvComparison) -> go.Figure:
    """Weights of the standard convolution beside the depthwise + pointwise split."""
    depthwise, pointwise = c.k * c.k * c.i, c.i * c.o
    bias = c.o if c.bias else 0
    fig = go.Figure()
    for name, values, color in (("k·k·I·O (standard)", [c.standard_params - bias, 0], "#7f7f7f"),
                                ("k·k·I (depthwise)", [0, depthwise], CHANNEL_COLORS[0]),
                                ("I·O (pointwise)", [0, pointwise], CHANNEL_COLORS[1]),
                                ("bias", [bias, bias], "#bbbbbb")):
        if any(values):
            fig.add_trace(go.Bar(y=["standard", "separable"], x=values, name=name, orientation="h",
                                 marker_color=color, hovertemplate="%{x:,} weights<extra>" + name + "</extra>"))
    fig.update_layout(barmode="stack", height=200, xaxis_title="weights", legend=dict(orientation="h", y=-0.45),
                      margin=dict(l=10, r=10, t=10, b=10))
    return fig


def layer_frame(rows: list[dict], totals: dict | None = None) -> pd.DataFrame:
    """The per-layer table for display: what became of each layer, weights and MACs before and after
    (measured) and the calculator's prediction for the new layer."""
    df = pd.DataFrame([{
        "layer": r["layer"], "kind": r["kind"], "change": r["change"],
        "weights before": r["params_before"], "weights after": r["params_after"],
        "predicted weights": r["predicted_params"], "MACs before": r["macs_before"],
        "MACs after": r["macs_after"], "predicted MACs": r["predicted_macs"],
    } for r in rows])
    if totals:  # the prediction for the whole model: the rest (BatchNorms, ...) is unchanged
        df = pd.concat([df, pd.DataFrame([{
            "layer": "whole model", "kind": "", "change": "",
            "weights before": totals["params_before"], "weights after": totals["params_after"],
            "predicted weights": totals["params_before"] - sum(r["params_before"] - r["predicted_params"] for r in rows),
            "MACs before": totals["macs_before"], "MACs after": totals["macs_after"],
            "predicted MACs": totals["macs_before"] - sum(r["macs_before"] - r["predicted_macs"] for r in rows),
        }])], ignore_index=True)
    df["weights ratio"] = df["weights after"] / df["weights before"]
    df["MACs ratio"] = df["MACs after"] / df["MACs before"]
    return df


def recovery_chart(events: list[dict], *, original: float, converted: float | None = None) -> go.Figure:
    """Validation accuracy after each recovery epoch, against the original's test accuracy."""
    points = [e for e in events if "epoch" in e and "val_accuracy" in e]  # not the layer-matching steps
    epochs = [e["epoch"] for e in points]
    acc = [e["val_accuracy"] * 100 for e in points]
    fig = go.Figure()
    if converted is not None:
        fig.add_trace(go.Scatter(x=[0], y=[converted * 100], mode="markers", name="converted, before training (test)",
                                 marker=dict(size=10, color="#999")))
    fig.add_trace(go.Scatter(x=epochs, y=acc, mode="lines+markers", name="recovering (validation images)",
                             line=dict(color=METHOD_COLORS["architecture"]),
                             hovertemplate="epoch %{x}<br>%{y:.2f} %<extra></extra>"))
    fig.add_hline(y=original * 100, line_dash="dash", line_color="#222",
                  annotation_text=f"original {original * 100:.2f} %", annotation_position="bottom right")
    fig.add_hline(y=(original - 0.02) * 100, line_dash="dot", line_color="#d62728",
                  annotation_text="original − 2 points", annotation_position="bottom left")
    fig.update_layout(xaxis_title="epoch", yaxis_title="accuracy (%)", height=320,
                      margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=-0.3))
    return fig


AXES = {"size_bytes": "stored size (bytes, log scale)", "params": "parameters (log scale)",
        "macs": "MACs per image (log scale)"}


def architecture_pareto(df: pd.DataFrame, x: str, *, baseline: dict | None = None,
                        references: dict[str, dict] | None = None) -> go.Figure:
    """Accuracy against size, parameters or MACs for the stored runs (hollow where that axis is simulated), the
    uncompressed model (star) and reference models designed small (diamonds)."""
    if x not in AXES:
        raise ValueError(f"x must be one of {', '.join(AXES)}")
    fig = go.Figure()
    df = df.assign(axis_simulated=axis_simulated(df, x))
    for (method, simulated), part in df.groupby(["method", "axis_simulated"], sort=True):
        color = METHOD_COLORS.get(str(method), "#8c564b")
        fig.add_trace(go.Scatter(
            x=part[x], y=part["accuracy"] * 100, mode="markers",
            name=f"{method}{' (' + METRIC_WORDS[x] + ' simulated)' if simulated else ''}",
            marker=dict(size=10, color="white" if simulated else color, line=dict(color=color, width=2)),
            customdata=part[["id", "label"]].values,
            hovertemplate="run %{customdata[0]}<br>%{customdata[1]}<br>accuracy %{y:.2f} %<br>%{x:,}<extra>"
                          + str(method) + "</extra>"))
    for name, metrics in {"uncompressed": baseline, **(references or {})}.items():
        if metrics:
            fig.add_trace(go.Scatter(
                x=[metrics[x]], y=[metrics["accuracy"] * 100], mode="markers", name=name,
                marker=dict(symbol="star" if name == "uncompressed" else "diamond", size=15,
                            color="#222" if name == "uncompressed" else "#bcbd22"),
                hovertemplate=name + "<br>accuracy %{y:.2f} %<br>%{x:,}<extra></extra>"))
    fig.update_layout(xaxis_title=AXES[x], yaxis_title="test accuracy (%)", xaxis_type="log",
                      xaxis_tickformat="~s", xaxis_dtick="D2", height=420,
                      margin=dict(l=10, r=10, t=10, b=10), legend_title="method")
    return fig
