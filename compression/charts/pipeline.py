"""Plot builders for pipelines and budget search: pure functions from plain rows to figures."""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import plotly.graph_objects as go

from compression.charts.format import fmt_change
from compression.honesty import METRIC_WORDS, simulated_metrics
from compression.pareto import COSTS, frontier_mask

AXIS = {"size_bytes": "stored size (bytes)", "params": "parameters", "macs": "MACs per image",
        "latency_ms": "latency, batch 1 (ms)"}


def steps_frame(results: Sequence[dict]) -> pd.DataFrame:
    """One row per finished step: what it did and what it measured (units in the column names)."""
    rows = []
    for r in results:
        base = r.get("baseline") or {}
        rows.append({
            "step": r["extra"]["step"] if "extra" in r else r.get("step"),
            "what": r.get("step_spec") or r["config"].get("step_spec"),
            "accuracy (%)": round(100 * r["accuracy"], 2),
            "change (points)": round(100 * (r["accuracy"] - base.get("accuracy", r["accuracy"])), 2),
            "stored size (bytes)": int(r["size_bytes"]),
            "size vs fp32": fmt_change(r["size_bytes"], base.get("size_bytes"), "size_bytes",
                                       simulated="size_bytes" in simulated_metrics(r)).text,
            "nonzero params": int(r["nonzero_params"]),
            "MACs per image": int(r["macs"]),
            "latency (ms)": round(r["latency_ms"], 3),
            "simulated": ", ".join(METRIC_WORDS[k] for k in simulated_metrics(r)) or "nothing",
            "run id": r.get("run_id"),
        })
    return pd.DataFrame(rows)


def path_chart(results: Sequence[dict], cost: str = "size_bytes", *, log_x: bool = True) -> go.Figure:
    """The pipeline's path: the uncompressed model (star), then each step, joined in order."""
    if cost not in COSTS:
        raise ValueError(f"unknown cost {cost!r}")
    fig = go.Figure()
    if not results:
        return fig
    base = results[0].get("baseline") or {}
    xs = ([base[cost]] if base else []) + [r[cost] for r in results]
    ys = ([100 * base["accuracy"]] if base else []) + [100 * r["accuracy"] for r in results]
    labels = (["uncompressed"] if base else []) + [f"step {i}: {r['config'].get('step_spec', '')}"
                                                  for i, r in enumerate(results, start=1)]
    n, star = len(results), bool(base)
    fig.add_trace(go.Scatter(
        x=xs, y=ys, mode="lines+markers+text", name="pipeline", hovertext=labels, hoverinfo="text+x+y",
        text=["fp32"] * star + [str(i) for i in range(1, n + 1)], textposition="top center",
        line=dict(color="#555", dash="dot"),
        marker=dict(size=[16] * star + [11] * n, color=["#111"] * star + ["#1f77b4"] * n,
                    symbol=["star"] * star + ["circle-open" if cost in simulated_metrics(r) else "circle"
                                              for r in results])))
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=40, b=10), showlegend=False,
                      title=f"Each step of the pipeline (hollow: {METRIC_WORDS[cost]} simulated for that step)",
                      xaxis=dict(title=AXIS[cost] + (", log scale" if log_x else ""), type="log" if log_x else "linear",
                                 tickformat="~s", dtick="D2" if log_x else None),
                      yaxis=dict(title="test accuracy (%)"))
    return fig


def live_chart(events: Sequence[dict]) -> go.Figure:
    """Monitor accuracy after each pruning cycle / epoch while the pipeline runs."""
    pts = [(i, 100 * e["accuracy"] if e.get("accuracy") is not None else 100 * e["val_accuracy"], e.get("stage"))
           for i, e in enumerate(events, start=1) if e.get("accuracy") is not None or e.get("val_accuracy") is not None]
    fig = go.Figure(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers",
                               hovertext=[f"step {p[2]}" for p in pts], name="held-out accuracy"))
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=40, b=10), title="Held-out accuracy while it runs",
                      xaxis=dict(title="progress report (pruning cycle or epoch)"), yaxis=dict(title="accuracy (%)"))
    return fig


def budget_chart(rows: Sequence[dict], cost: str, budget: float, *, best: int | None = None,
                 log_x: bool = True) -> go.Figure:
    """Every configuration the search tried: within budget in color, over it greyed; the budget
    as a vertical line; the frontier of the points within budget as a step line; the best ringed."""
    df = pd.DataFrame(rows)
    fig = go.Figure()
    if df.empty:
        return fig
    df["acc"] = 100 * df["accuracy"]
    df["fits"] = df[cost] <= budget
    df["hollow"] = [cost in simulated_metrics(r) for r in rows]  # this cost is simulated for that point
    for fits, part in df.groupby("fits"):
        fig.add_trace(go.Scatter(
            x=part[cost], y=part["acc"], mode="markers", name="within budget" if fits else "over budget",
            hovertext=part["label"], hoverinfo="text+x+y",
            marker=dict(size=10, color="#1f77b4" if fits else "#bbbbbb",
                        symbol=["circle-open" if s else "circle" for s in part["hollow"]],
                        line=dict(width=1.5, color="#1f77b4" if fits else "#999999"))))
    inside = df[df["fits"]]
    if len(inside):
        on = inside[frontier_mask(inside[cost].tolist(), inside["acc"].tolist())].sort_values(cost)
        fig.add_trace(go.Scatter(x=on[cost], y=on["acc"], mode="lines", name="best within each budget",
                                 line=dict(shape="hv", dash="dash", color="#111"), hoverinfo="skip"))
    if best is not None and best in set(df["index"]):
        b = df[df["index"] == best]
        fig.add_trace(go.Scatter(x=b[cost], y=b["acc"], mode="markers", name="chosen: most accurate within budget",
                                 marker=dict(size=22, color="rgba(0,0,0,0)", line=dict(color="#d62728", width=3)),
                                 hovertext=b["label"], hoverinfo="text"))
    fig.add_vline(x=budget, line=dict(color="#d62728", dash="dot"), annotation_text="budget")
    fig.update_layout(height=460, margin=dict(l=10, r=10, t=40, b=10), title="Configurations tried",
                      xaxis=dict(title=AXIS[cost] + (", log scale" if log_x else ""), type="log" if log_x else "linear",
                                 tickformat="~s", dtick="D2" if log_x else None),
                      yaxis=dict(title="test accuracy (%)"))
    return fig
