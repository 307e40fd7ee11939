"""The runs a reviewer follows: the starred runs with their names, as a table (accuracy, size and
the ratios against each run's uncompressed baseline) and as the explorer's chart labelled with
their names. Pure functions of the explorer's frame (compression.charts.pareto.explorer_frame);
the page's story view and the HTML report both use them."""

from __future__ import annotations

import math
from typing import Sequence

import pandas as pd
import plotly.graph_objects as go


def sig(value, digits: int = 3):
    """A number rounded to `digits` significant digits (None / NaN stay None): ratios mean no more."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(f"{value:.{digits}g}")


def run_title(row) -> str:
    """The run's name, or "run N" when it has none."""
    name = row.get("name") if isinstance(row, dict) else getattr(row, "name", None)
    run_id = row["id"] if isinstance(row, dict) else row.id
    return name if isinstance(name, str) and name else f"run {int(run_id)}"


from compression.charts.format import CHANGE_COLUMNS as RATIO_COLUMNS


def ratios(row: dict) -> dict:
    """Against the run's baseline, said the one way (compression.charts.format.run_changes: the CSV,
    the report and `runs --json` say the same): "4.2x smaller", "1.5x faster", "no measurable
    change", "latency baseline unreliable", "(simulated)" where that number is; and the accuracy
    change in points."""
    from compression.charts.format import fmt_points, run_changes
    base = row.get("baseline") if isinstance(row.get("baseline"), dict) else {}
    changes = run_changes(row)
    out = {column: changes[key].text if changes.get(key) else "–" for key, column in RATIO_COLUMNS.items()}
    acc = base.get("accuracy")
    out["accuracy change"] = fmt_points(row["accuracy"], acc) if acc is not None else "–"
    return out


def story_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run of `df` (the story view passes the starred ones), largest first: how the
    story goes from the model as trained to its smallest version; `warning` says a run at chance
    level or far below its baseline (compression.honesty.sanity_flag)."""
    from compression.honesty import sanity_flag
    rows = []
    for r in df.sort_values(["size_bytes", "id"], ascending=[False, True]).to_dict("records"):
        rows.append({"run": int(r["id"]), "name": run_title(r), "model": r["model"], "method": r["method"],
                     "accuracy (%)": round(r["accuracy"] * 100, 2), "test images": int(r["accuracy_n"]),
                     "stored size (bytes)": int(r["size_bytes"]), **ratios(r),
                     "warning": sanity_flag(r),
                     "simulated": bool(r["simulated"]), "tags": ", ".join(r.get("tags") or []),
                     "owner": r.get("owner") or "local"})
    return pd.DataFrame(rows, columns=["run", "name", "model", "method", "accuracy (%)", "test images",
                                       "stored size (bytes)", *RATIO_COLUMNS.values(), "accuracy change",
                                       "warning", "simulated", "tags", "owner"])


def _positions(x, log_x: bool) -> list[str]:
    """Where each name goes: to the right of a marker near the left edge, to the left near the
    right edge, centred above it elsewhere, so that no name runs into the axis or out of the plot."""
    xs = [math.log10(v) if log_x and v > 0 else float(v) for v in x]
    lo, hi = (min(xs), max(xs)) if xs else (0.0, 0.0)
    span = hi - lo
    return ["top center" if not span else "top right" if (v - lo) / span < 0.25
            else "top left" if (v - lo) / span > 0.75 else "top center" for v in xs]


def label_runs(fig: go.Figure, df: pd.DataFrame, cost: str, *, log_x: bool = True) -> go.Figure:
    """Write each run's name beside its marker (a text-only trace: clicks still reach the markers)."""
    x = df[cost].to_numpy()
    fig.add_trace(go.Scatter(
        x=x, y=df["accuracy"].to_numpy() * 100, mode="text", name="names",
        text=[run_title(r) for r in df.to_dict("records")], textposition=_positions(x, log_x),
        textfont=dict(size=12, color="#222"), hoverinfo="skip", showlegend=False, cliponaxis=False))
    return fig


def story_chart(df: pd.DataFrame, cost: str = "size_bytes", *, log_x: bool = True, frontier: Sequence[int] = (),
                selected: int | None = None, title: str = "", height: int = 520) -> go.Figure:
    """The explorer's chart of these runs, each labelled with its name."""
    from compression.charts.pareto import pareto_chart
    fig = pareto_chart(df, cost, log_x=log_x, frontier=frontier, selected=selected, title=title, height=height)
    return label_runs(fig, df, cost, log_x=log_x)
