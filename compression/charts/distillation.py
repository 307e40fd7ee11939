"""Plot builders for the Distillation page: pure functions from lists/dicts to plotly figures."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

HARD_COLOR = "#7f7f7f"
SOFT_COLORS = ("#ff7f0e", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#1f77b4")


def soft_label_bars(probs_t1: list[float], probs_t: list[float], classes: list[str], temperature: float) -> go.Figure:
    """The teacher's class probabilities for one image at T = 1 and at the chosen T, side by side."""
    fig = go.Figure([
        go.Bar(x=list(classes), y=[p * 100 for p in probs_t1], name="T = 1 (the teacher's output)",
               marker_color="#1f77b4", hovertemplate="%{x}: %{y:.2f} %<extra>T = 1</extra>"),
        go.Bar(x=list(classes), y=[p * 100 for p in probs_t], name=f"T = {temperature:g} (soft labels)",
               marker_color="#ff7f0e", hovertemplate=f"%{{x}}: %{{y:.2f}} %<extra>T = {temperature:g}</extra>"),
    ])
    fig.update_layout(barmode="group", yaxis_title="probability (%)", yaxis_range=[0, 100], height=300,
                      margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=1.12))
    return fig


def curves_frame(events: list[dict]) -> pd.DataFrame:
    """Progress events -> one row per (run, epoch): validation accuracy in %."""
    rows = [{"run": e["run"], "role": e.get("role", ""), "epoch": e["epoch"],
             "val_accuracy": e["val_accuracy"] * 100, "partial": bool(e.get("partial"))}
            for e in events if "val_accuracy" in e and "run" in e]
    return pd.DataFrame(rows, columns=["run", "role", "epoch", "val_accuracy", "partial"])


def training_curves(events: list[dict], *, teacher_accuracy: float | None = None) -> go.Figure:
    """Validation accuracy per epoch: the student on hard labels (grey, dashed) and with the teacher."""
    df = curves_frame(events)
    fig = go.Figure()
    soft = 0
    for run, part in df.groupby("run", sort=False):
        hard = (part["role"] == "hard labels").all()
        color = HARD_COLOR if hard else SOFT_COLORS[soft % len(SOFT_COLORS)]
        soft += 0 if hard else 1
        fig.add_trace(go.Scatter(
            x=part["epoch"], y=part["val_accuracy"], mode="lines+markers", name=str(run),
            line=dict(color=color, dash="dash" if hard else "solid", width=2),
            hovertemplate="epoch %{x}: %{y:.2f} %<extra>" + str(run) + "</extra>"))
    if teacher_accuracy is not None:
        fig.add_hline(y=teacher_accuracy * 100, line=dict(color="#222", dash="dot", width=1),
                      annotation_text=f"teacher (test) {teacher_accuracy * 100:.2f} %", annotation_position="bottom right")
    fig.update_layout(xaxis_title="epoch", yaxis_title="validation accuracy (%)", height=360,
                      margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=1.15))
    fig.update_xaxes(dtick=1 if df.empty or df["epoch"].max() <= 20 else None)
    return fig


def results_frame(rows: list[dict]) -> pd.DataFrame:
    """Measured students (result dicts) -> the table the page shows, numbers with units in the headers."""
    hard = next((r["accuracy"] for r in rows if r.get("role") == "hard labels" and not r.get("stopped")), None)
    out = []
    for r in rows:
        cfg = r.get("config", {})
        out.append({
            "student": r.get("student", cfg.get("student")),
            "trained on": r.get("role", ""),
            "T": cfg.get("temperature"),
            "alpha": cfg.get("alpha"),
            "labeled images": _count(r.get("labeled_images"), "all"),
            "transfer images": _count(r.get("transfer_images"), "–"),
            "epochs": f"{r.get('epochs_done')}/{cfg.get('epochs')}" + (" (stopped)" if r.get("stopped") else ""),
            "test accuracy (%)": r["accuracy"] * 100,
            "vs hard labels": "–" if hard is None or r.get("role") == "hard labels"
            else f"{(r['accuracy'] - hard) * 100:+.2f} points",
            "size (KiB)": r["size_bytes"] / 1024,
            "params": r["params"],
            "MACs / image": r["macs"],
            "latency (ms)": r["latency_ms"],
            "train time (s)": r.get("train_seconds"),
            "run": r.get("run_id"),
        })
    return pd.DataFrame(out)


def _count(n, missing: str) -> str:
    """An image count as the table shows it (no 'None' in a cell)."""
    return missing if n is None else f"{int(n):,}"


def sweep_curve(rows: list[dict], knob: str, *, teacher_accuracy: float | None = None) -> go.Figure:
    """Student test accuracy against the swept knob ('temperature' or 'alpha'), the hard-label
    student as a horizontal line (it does not depend on the knob)."""
    soft = [r for r in rows if r.get("role") == "distilled"]
    soft.sort(key=lambda r: r["config"][knob])
    fig = go.Figure(go.Scatter(
        x=[r["config"][knob] for r in soft], y=[r["accuracy"] * 100 for r in soft], mode="lines+markers",
        name="distilled student", line=dict(color=SOFT_COLORS[0], width=2),
        hovertemplate=("T" if knob == "temperature" else "alpha") + " %{x}: %{y:.2f} %<extra></extra>"))
    hard = next((r for r in rows if r.get("role") == "hard labels"), None)
    if hard is not None:
        fig.add_hline(y=hard["accuracy"] * 100, line=dict(color=HARD_COLOR, dash="dash"),
                      annotation_text=f"hard labels only {hard['accuracy'] * 100:.2f} %")
    if teacher_accuracy is not None:
        fig.add_hline(y=teacher_accuracy * 100, line=dict(color="#222", dash="dot", width=1),
                      annotation_text=f"teacher {teacher_accuracy * 100:.2f} %", annotation_position="bottom right")
    fig.update_layout(xaxis_title="temperature T" if knob == "temperature" else "alpha (weight of the soft labels)",
                      yaxis_title="student test accuracy (%)", height=340, margin=dict(l=10, r=10, t=10, b=10))
    return fig
