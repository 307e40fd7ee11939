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
    """The run's name, else what it did in a few words (compression.run_labels.run_title: the one
    label every picker, chart and table uses)."""
    from compression.run_labels import run_title as title
    return title(row)


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


# the story table's columns as a page shows them: the words a reader looks for first
STORY_ORDER = ["name", "accuracy (%)", "accuracy change", "size vs baseline", "latency vs baseline",
               "MACs vs baseline", "warning", "model", "method", "run", "test images", "stored size (bytes)",
               "simulated", "tags"]


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


WRAP = 24  # characters per line of a name written on a chart


def wrap(text: str, width: int = WRAP) -> str:
    """A label as lines of at most `width` characters (broken at spaces; a longer word stays whole),
    joined with <br> for plotly, HTML-escaped: a long name is written in full, never cut off."""
    import html
    import textwrap
    return "<br>".join(html.escape(line) for line in textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)) or html.escape(text)


def _positions(x, y, log_x: bool, x_all=(), y_all=()) -> list[str]:
    """Where each name goes, so that none runs out of the plot, over its marker's interval bar or
    over a neighbour: to the right of a marker in the left 60 % of the plot, to its left beyond;
    below a marker near the top of the plot (above elsewhere), and on the other side of the marker
    than the name of a close neighbour."""
    def scale(v):
        return math.log10(v) if log_x and v > 0 else float(v)
    xs, ys = [scale(v) for v in x], [float(v) for v in y]
    if not xs:
        return []
    ex = xs + [scale(v) for v in x_all]  # the plot's extent: every marker drawn, not only these
    ey = ys + [float(v) for v in y_all]
    (x0, x1), (y0, y1) = (min(ex), max(ex)), (min(ey), max(ey))
    fx = [(v - x0) / (x1 - x0) if x1 > x0 else 0.5 for v in xs]
    fy = [(v - y0) / (y1 - y0) if y1 > y0 else 0.5 for v in ys]
    side = ["right" if f < 0.6 else "left" for f in fx]
    above = [f < 0.85 for f in fy]
    order = sorted(range(len(xs)), key=lambda i: (fx[i], fy[i]))
    for prev, i in zip(order, order[1:]):  # a close pair: names on either side, else one above, one below
        if abs(fx[i] - fx[prev]) < 0.15 and side[i] == side[prev] and fx[prev] > 0.2 and fx[i] < 0.8:
            side[prev], side[i] = "left", "right"
        elif abs(fx[i] - fx[prev]) < 0.15 and abs(fy[i] - fy[prev]) < 0.2 and above[i] == above[prev]:
            above[i] = not above[prev]
    return [f"{'top' if a else 'bottom'} {s}" for a, s in zip(above, side)]


def label_runs(fig: go.Figure, df: pd.DataFrame, cost: str, *, log_x: bool = True) -> go.Figure:
    """Write each run's name (else what it did) beside its marker, wrapped, never clipped: a
    text-only trace (clicks still reach the markers) drawn outside the axes where it must be, with
    room above and below the markers for the names of the highest and lowest runs."""
    x, y = df[cost].to_numpy(), df["accuracy"].to_numpy() * 100
    points = [(float(a), float(b)) for t in fig.data if t.x is not None and t.y is not None
              for a, b in zip(t.x, t.y) if a is not None and b is not None and a == a and b == b and (a > 0 or not log_x)]
    positions = _positions(x, y, log_x, [a for a, _ in points], [b for _, b in points])
    fig.add_trace(go.Scatter(  # invisible markers the size of the runs' keep the names off them and their bars
        x=x, y=y, mode="markers+text", name="names", marker=dict(size=14, opacity=0),
        text=[wrap(run_title(r)) for r in df.to_dict("records")], textposition=positions,
        textfont=dict(size=12, color="#222", shadow="auto"), hoverinfo="skip", showlegend=False, cliponaxis=False))
    drawn = [float(v) for t in fig.data for v in (t.y if t.y is not None else ()) if v is not None and v == v]
    if "ci_low" in df:  # the runs' confidence intervals too
        drawn += [float(v) * 100 for v in (*df["ci_low"], *df["ci_high"]) if v == v]
    if drawn:  # the y range padded by a few lines' height, so names above / below the extremes fit
        lo, hi = min(drawn), max(drawn)
        pad = max((hi - lo) * 0.2, 1.0)
        fig.update_yaxes(range=[lo - pad, hi + pad])
    return fig


def story_chart(df: pd.DataFrame, cost: str = "size_bytes", *, log_x: bool = True, frontier: Sequence[int] = (),
                selected: int | None = None, title: str = "", height: int = 520) -> go.Figure:
    """The explorer's chart of these runs, each labelled with its name."""
    from compression.charts.pareto import pareto_chart
    fig = pareto_chart(df, cost, log_x=log_x, frontier=frontier, selected=selected, title=title, height=height)
    return label_runs(fig, df, cost, log_x=log_x)
