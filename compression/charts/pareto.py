"""The Pareto explorer's frames and figures: pure functions of stored runs (no streamlit here), so
the page, the HTML report and the tests draw the same thing."""

from __future__ import annotations

import datetime as dt
import html
import json
from typing import Iterable, Sequence

import pandas as pd
import plotly.graph_objects as go

from compression.charts.format import fmt_bytes, fmt_change, fmt_count, fmt_ms, fmt_points, latency_change, plural
from compression.charts.runs import METHOD_COLORS
from compression.honesty import METRIC_WORDS, SIMULATABLE, sanity_flag, simulated_metrics
from compression.metrics import wilson_interval
from compression.pareto import COSTS, frontier_mask, runtime_of
from compression.run_labels import describe

AXIS_TITLES = {"size_bytes": "stored size (bytes)", "params": "parameters stored",
               "macs": "MACs per image", "latency_ms": "latency, batch 1 (ms)"}
# one shape per model (the star is kept for the uncompressed baselines)
SYMBOLS = ["circle", "square", "diamond", "triangle-up", "pentagon", "hexagon", "triangle-down",
           "cross", "x", "hourglass", "bowtie", "triangle-left", "triangle-right", "octagon"]
OTHER_COLORS = ["#8c564b", "#bcbd22", "#7f7f7f", "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5"]
# the latency pair each run was timed with (compression.methods LATENCY_KEYS, kept in the run's extra):
# every ratio the frame's users show is computed from it (compression.charts.format.latency_change)
LATENCY_COLUMNS = ("baseline_latency_ms", "latency_spread_ms", "baseline_latency_spread_ms", "latency_busy")
_COLUMNS = ["id", "created", "model", "dataset", "method", "config", "label", "device", "accuracy",
            "accuracy_n", "ci_low", "ci_high", "params", "nonzero_params", "size_bytes", "macs",
            "latency_ms", "simulated", "simulated_metrics", "parent_id", "artifact_path", "baseline", "code_version",
            "hover", "hover_data", "name", "tags", "starred", "hidden", "group_id", "runtime", *LATENCY_COLUMNS, "classes", "owner"]


def fmt_cost(cost: str, value: float) -> str:
    if cost == "size_bytes":
        return f"{fmt_bytes(value)} ({int(value):,} B)"
    if cost == "latency_ms":
        return fmt_ms(value)
    return fmt_count(value)


def config_label(config: dict | None, limit: int = 120) -> str:
    """A config as key=value text (cut at `limit`): for the CLI and debugging. Views label a run with
    compression.run_labels.describe / run_title, never with this."""
    text = ", ".join(f"{k}={v}" for k, v in (config or {}).items() if v is not None)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def method_color(method: str, methods: Sequence[str] = ()) -> str:
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    others = sorted(m for m in methods if m not in METHOD_COLORS)
    return OTHER_COLORS[others.index(method) % len(OTHER_COLORS)] if method in others else OTHER_COLORS[0]


def _hover_data(r: dict) -> list:
    """A run's hover as fields (its name, method · model, what it did, the CI, n, size, params,
    nonzero, MACs, latency and where, then the warning and the change against its baseline): filled
    into LEAN_HOVER in the browser, or joined here by _hover."""
    lo, hi = wilson_interval(r["accuracy"], r["accuracy_n"])
    sim = r["simulated_metrics"]
    tail = []
    flag = sanity_flag(r)
    if flag:
        tail.append(f"<b>⚠ {html.escape(flag)}</b>")
    base = r.get("baseline")
    if base and base.get("size_bytes") and r["size_bytes"]:
        size = fmt_change(r["size_bytes"], base["size_bytes"], "size_bytes", simulated="size_bytes" in sim)
        tail.append(f"vs uncompressed: {size.text}, {fmt_points(r['accuracy'], base.get('accuracy'))}")
    return [f" “{html.escape(r['name'])}”" if isinstance(r.get("name"), str) and r["name"] else "",
            f"{html.escape(r['method'])} · {html.escape(r['model'])}"
            + (f" · <i>simulated: {', '.join(METRIC_WORDS[k] for k in sim)}</i>" if sim else ""),
            html.escape(r["label"]), round(lo * 100, 2), round(hi * 100, 2), int(r["accuracy_n"]), fmt_cost("size_bytes", r["size_bytes"]),
            int(r["params"]), int(r["nonzero_params"]), fmt_count(r["macs"]),
            f"{fmt_ms(r['latency_ms'])} on {html.escape(r['device'])}, {html.escape(r['runtime'])}",
            "".join("<br>" + t for t in tail)]


# Past WEBGL_FROM runs the hover is this template filled from each run's _hover_data (customdata, the
# run id first as a click reads it): the same words as _hover in a third of the bytes (10,000 runs sent
# 4.3 MB of hover text; dropping it opened the page 0.4-1.8 s sooner at load 4, docs/benchmarks.md)
LEAN_HOVER = ("<b>run %{customdata[0]}</b>%{customdata[1]} · %{customdata[2]}<br>%{customdata[3]}<br>accuracy "
              "%{y:.2f} % (95% CI %{customdata[4]:.2f}–%{customdata[5]:.2f}, n=%{customdata[6]:,})<br>size "
              "%{customdata[7]}<br>params %{customdata[8]:,} (%{customdata[9]:,} nonzero)<br>MACs %{customdata[10]} · "
              "latency %{customdata[11]}%{customdata[12]}<extra></extra>")


def _hover(r: dict, d: list) -> str:
    return (f"<b>run {r['id']}</b>{d[0]} · {d[1]}<br>{d[2]}<br>accuracy {r['accuracy'] * 100:.2f} % (95% CI "
            f"{d[3]:.2f}–{d[4]:.2f}, n={d[5]:,})<br>size {d[6]}<br>params {d[7]:,} ({d[8]:,} nonzero)<br>MACs {d[9]} · "
            f"latency {d[10]}{d[11]}")


def explorer_frame(runs: Iterable[dict]) -> pd.DataFrame:
    """Stored runs (RunStore.runs rows) -> one row each, with the CI, a config label and hover text."""
    runs = list(runs)
    if not runs:
        return pd.DataFrame(columns=_COLUMNS)
    df = pd.DataFrame(runs)
    for col in ("parent_id", "artifact_path", "baseline", "code_version", "name", "group_id"):
        if col not in df:
            df[col] = None
    for col in ("name", "group_id"):  # text or None (pandas reads a missing value as NaN)
        df[col] = pd.Series([v if isinstance(v, str) and v else None for v in df[col]], index=df.index, dtype=object)
    df["tags"] = [list(t) if isinstance(t, (list, tuple)) else [] for t in df.get("tags", [None] * len(df))]
    df["owner"] = [o if isinstance(o, str) and o else "local" for o in df.get("owner", [None] * len(df))]
    for col in ("starred", "hidden"):  # rows from before schema 3 (or made by hand) have neither
        df[col] = df[col].fillna(False).astype(bool) if col in df else False
    ci = [wilson_interval(a, n) for a, n in zip(df["accuracy"], df["accuracy_n"])]
    df["ci_low"] = [lo for lo, _ in ci]
    df["ci_high"] = [hi for _, hi in ci]
    df["label"] = [describe(m, c) for m, c in zip(df["method"], df["config"])]  # what it did, in a few words
    df["runtime"] = [runtime_of(r) for r in df.to_dict("records")]
    df["created"] = pd.to_datetime(df["created_at"], unit="s")  # UTC
    df["simulated"] = df["simulated"].astype(bool)
    df["simulated_metrics"] = [simulated_metrics(r) for r in df.to_dict("records")]  # old rows: from `simulated`
    extras = [e if isinstance(e, dict) else {} for e in df.get("extra", [None] * len(df))]
    for col in (*LATENCY_COLUMNS, "classes"):  # "classes": chance level (compression.honesty.run_classes)
        df[col] = pd.Series([e.get(col) for e in extras], index=df.index, dtype=object)
    records = df.to_dict("records")
    df["hover_data"] = [_hover_data(r) for r in records]
    df["hover"] = [_hover(r, d) for r, d in zip(records, df["hover_data"])]
    return df[_COLUMNS]


def filter_frame(df: pd.DataFrame, *, models: Sequence[str] = (), methods: Sequence[str] = (),
                 devices: Sequence[str] = (), dates: Sequence[dt.date] = (), tags: Sequence[str] = (),
                 runtimes: Sequence[str] = (), hidden: bool = True, starred_only: bool = False,
                 owners: Sequence[str] = ()) -> pd.DataFrame:
    """Rows matching every filter; an empty filter lets everything through. `dates` is
    (first day,) or (first day, last day), both included, in UTC; `tags`: runs with any of them;
    `runtimes`: where latency was timed (`runtime_of`); `owners`: who made them; hidden=False leaves hidden runs out;
    starred_only keeps the starred runs (the story view)."""
    keep = pd.Series(True, index=df.index)
    if tags:
        wanted = set(tags)
        keep &= pd.Series([bool(wanted & set(t)) for t in df["tags"]], index=df.index)
    if not hidden:
        keep &= ~df["hidden"].astype(bool)
    if starred_only:
        keep &= df["starred"].astype(bool)
    for col, allowed in (("model", models), ("method", methods), ("device", devices), ("runtime", runtimes),
                         ("owner", owners)):
        if allowed:
            keep &= df[col].isin(list(allowed))
    if dates:
        day = df["created"].dt.date
        keep &= day >= dates[0]
        if len(dates) > 1:
            keep &= day <= dates[1]
    return df[keep]


def simulated_on(df: pd.DataFrame, cost: str) -> pd.Series:
    """Per row: is this run's number on the `cost` axis simulated? (Accuracy and parameters never are.)"""
    if cost not in SIMULATABLE:
        return pd.Series(False, index=df.index)
    lists = df["simulated_metrics"] if "simulated_metrics" in df else [simulated_metrics(r) for r in df.to_dict("records")]
    return pd.Series([cost in (m or ()) for m in lists], index=df.index, dtype=bool)


def frontier_ids(df: pd.DataFrame, cost: str, *, include_simulated: bool = False) -> list[int]:
    """Run ids on the accuracy-vs-cost frontier, cheapest first, from every run whose number on
    this axis is real (an unstructured prune counts on size, not on latency); all with include_simulated."""
    pool = df if include_simulated else df[~simulated_on(df, cost)]
    if pool.empty:
        return []
    mask = frontier_mask(pool[cost].tolist(), pool["accuracy"].tolist())
    on = pool[mask].sort_values([cost, "accuracy", "id"], ascending=[True, False, True])
    return [int(i) for i in on["id"]]


_BASE_KEY = ("accuracy", "accuracy_n", "size_bytes", "params", "macs")


def baseline_points(df: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct uncompressed model measurement: the `baseline` dicts of the runs
    (model, device, metrics), leaving out those already stored as a method == "baseline" run. Its
    latency is the median of the baselines timed beside those runs (`baseline_latency_ms`; the
    stored pair every ratio uses), NaN when none was: a shared baseline timing is not drawn."""
    import statistics

    def key(model, device, m):
        return (model, device) + tuple(m.get(k) for k in _BASE_KEY)

    stored = {key(mo, de, {"accuracy": a, "accuracy_n": n, "size_bytes": s, "params": p, "macs": c})
              for mo, de, a, n, s, p, c in df.loc[df["method"] == "baseline", ["model", "device", *_BASE_KEY]]
              .itertuples(index=False)}
    timed = df["baseline_latency_ms"] if "baseline_latency_ms" in df else pd.Series([None] * len(df), index=df.index)
    rows: dict[tuple, dict] = {}
    beside: dict[tuple, list[float]] = {}
    for run_id, model, device, b, ms in zip(df["id"], df["model"], df["device"], df["baseline"], timed):
        if not isinstance(b, dict) or b.get("accuracy") is None or key(model, device, b) in stored:
            continue
        k = key(model, device, b)
        rows.setdefault(k, {"model": model, "device": device, "from_run": int(run_id), **b})
        if ms is not None and ms == ms:
            beside.setdefault(k, []).append(float(ms))
    for k, row in rows.items():
        row["latency_ms"] = statistics.median(beside[k]) if k in beside else float("nan")
    return pd.DataFrame(list(rows.values()))


# Above this many runs the CI bars merge into a smear and double what the browser draws (1,000 runs:
# 2.2 s -> see docs/explorer.md); the interval stays in every point's hover and in the table.
CI_BARS_UP_TO = 400
# Above this many runs their markers are drawn by WebGL (scattergl: same shapes, hollow ones too, and
# clicks): 10,000 SVG markers took seconds to draw in Chromium (docs/benchmarks.md, issue 29).
WEBGL_FROM = 1000


def pareto_chart(df: pd.DataFrame, cost: str = "size_bytes", *, log_x: bool = True,
                 frontier: Sequence[int] = (), path: Sequence[int] = (), selected: int | None = None,
                 title: str = "", height: int = 520) -> go.Figure:
    """Accuracy (95% CI bars) against a cost. Color: method; shape: model; hollow: this axis is
    simulated for this run (simulated_metrics);
    black stars: uncompressed baselines; dashed step line: the frontier; dotted: a pipeline path."""
    traces: list[dict] = []  # plain dicts, validated once by go.Figure at the end (plotly is slow per trace)
    methods = sorted(df["method"].unique())
    models = sorted(df["model"].unique())
    symbol = {m: SYMBOLS[i % len(SYMBOLS)] for i, m in enumerate(models)}
    runs = df[df["method"] != "baseline"]
    bars, kind = len(runs) <= CI_BARS_UP_TO, "scattergl" if len(runs) > WEBGL_FROM else "scatter"
    hollow = simulated_on(runs, cost)
    for method, part in runs.groupby("method", sort=True):  # one trace per method, shapes per point
        color = method_color(method, methods)
        shapes = [symbol[m] + ("-open" if sim else "") for m, sim in zip(part["model"], hollow[part.index])]
        traces.append(dict(
            type=kind, mode="markers", name=method, legendgroup=method, showlegend=False,
            **_xy(part, cost), error_y=_ci_bars(part, color) if bars else None,
            marker=dict(size=9, color=color, symbol=shapes, line=dict(width=1.5, color=color)),
            **(dict(customdata=[[int(i), *d] for i, d in zip(part["id"], part["hover_data"])], hovertemplate=LEAN_HOVER)
               if kind == "scattergl" else dict(customdata=_ids(part), hovertext=part["hover"].tolist(), hoverinfo="text"))))
    traces += _baselines(df, cost)
    by_id = df.set_index("id")
    if frontier:
        traces.append(dict(
            type="scatter", mode="lines", name=f"Pareto frontier ({plural(len(frontier), 'run')})",
            **_xy(by_id.loc[list(frontier)], cost), hoverinfo="skip",
            line=dict(shape="hv", color="#111", dash="dash", width=1.5)))
    if len(path) > 1:
        p = by_id.loc[[i for i in path if i in by_id.index]]
        traces.append(dict(
            type="scatter", mode="lines+markers", name=f"pipeline of run {path[-1]}", **_xy(p, cost),
            line=dict(color="#555", dash="dot", width=2), marker=dict(size=6, color="#555", symbol="arrow", angleref="previous"),
            customdata=[int(i) for i in p.index], hovertext=p["hover"].tolist(), hoverinfo="text"))
    if selected is not None and selected in by_id.index:
        s = by_id.loc[[selected]]
        traces.append(dict(
            type="scatter", mode="markers", name=f"selected: run {selected}", **_xy(s, cost),
            marker=dict(size=22, color="rgba(0,0,0,0)", line=dict(color="#d62728", width=3)),
            customdata=[int(selected)], hovertext=s["hover"].tolist(), hoverinfo="text"))
    if kind == "scattergl":  # WebGL draws above SVG: the frontier, stars, path and ring too, to stay on top
        for t in traces:
            t["type"] = "scattergl"
            if t.get("marker", {}).pop("angleref", None):  # no angled arrows in WebGL: dots on the path
                t["marker"]["symbol"] = "circle"
    traces += _legend_keys(sorted(runs["method"].unique()), methods, models, symbol,
                           METRIC_WORDS[cost] if bool(hollow.any()) else "")
    return go.Figure(data=traces, layout=dict(
        title=title, height=height, hovermode="closest", clickmode="event+select",
        xaxis=dict(title=AXIS_TITLES[cost] + (", log scale" if log_x else ""), type="log" if log_x else "linear",
                   tickformat="~s", dtick="D2" if log_x else None),
        yaxis=dict(title="test accuracy (%), 95% CI"), margin=dict(l=10, r=10, t=60 if title else 30, b=10),
        legend=dict(title="method", y=1, yanchor="top", x=1.02, tracegroupgap=2),
        legend2=dict(title="model", y=0.35, yanchor="top", x=1.02)))


def _xy(df: pd.DataFrame, cost: str) -> dict:
    return dict(x=df[cost].to_numpy(), y=df["accuracy"].to_numpy() * 100)


def _ci_bars(df: pd.DataFrame, color: str) -> dict:
    """Error bars from the Wilson interval, in accuracy points."""
    acc = df["accuracy"].to_numpy()
    return dict(type="data", symmetric=False, array=(df["ci_high"].to_numpy() - acc) * 100,
                arrayminus=(acc - df["ci_low"].to_numpy()) * 100, thickness=1, width=0, color=color)


def _ids(df: pd.DataFrame) -> list[int]:
    """Run ids as plain ints: numpy arrays travel as typed arrays, which come back from a click as
    {"0": id} objects instead of numbers."""
    return [int(i) for i in df["id"]]


def run_id_of(point: dict) -> int | None:
    """The run id of a clicked point (its customdata), or None for markers that are not runs."""
    data = point.get("customdata")
    if isinstance(data, dict):
        data = next(iter(data.values()), None)
    if isinstance(data, (list, tuple)):
        data = data[0] if data else None
    try:
        return int(data) if data is not None else None
    except (TypeError, ValueError):
        return None


def _baselines(df: pd.DataFrame, cost: str) -> list[dict]:
    """Black stars: baseline runs (clickable), and the recorded baselines not stored as runs."""
    traces = []
    stored = df[df["method"] == "baseline"]
    if not stored.empty:
        traces.append(dict(
            type="scatter", mode="markers", name="uncompressed (baseline run)", **_xy(stored, cost),
            marker=dict(symbol="star", size=16, color="#111", line=dict(color="white", width=1)),
            error_y=_ci_bars(stored, "#111"), customdata=_ids(stored), hovertext=stored["hover"].tolist(), hoverinfo="text"))
    recorded = baseline_points(df)
    if not recorded.empty and cost in recorded:
        recorded = recorded[recorded[cost].notna()]  # latency: only baselines timed beside a run
    if not recorded.empty and cost in recorded:
        cols = ["model", "device", "from_run", "accuracy", "accuracy_n", cost]
        text = [f"<b>uncompressed {html.escape(m)}</b> on {html.escape(d)} (recorded with run {r})<br>"
                f"accuracy {a * 100:.2f} % (n={n:,})<br>{COSTS[cost][0]} {fmt_cost(cost, c)}"
                for m, d, r, a, n, c in recorded[cols].itertuples(index=False)]
        traces.append(dict(
            type="scatter", mode="markers", name="uncompressed (recorded baseline)", **_xy(recorded, cost),
            marker=dict(symbol="star-diamond", size=14, color="#111", line=dict(color="white", width=1)),
            hovertext=text, hoverinfo="text"))
    return traces


def _legend_keys(shown: Sequence[str], methods: Sequence[str], models: Sequence[str], symbol: dict[str, str],
                 simulated: str) -> list[dict]:
    """Legend entries only (no data): a filled circle per method (a click toggles that method, its
    group), then a second legend with the shape of each model and what hollow means."""
    keys = [dict(type="scatter", x=[None], y=[None], mode="markers", name=m, legendgroup=m,
                 marker=dict(size=10, color=method_color(m, methods), symbol="circle")) for m in shown]
    keys += [dict(type="scatter", x=[None], y=[None], mode="markers", name=model, legend="legend2",
                  marker=dict(size=10, color="#888", symbol=symbol[model])) for model in models]
    if simulated:
        keys.append(dict(type="scatter", x=[None], y=[None], mode="markers",
                         name=f"hollow: {simulated} simulated for this run",
                         legend="legend2", marker=dict(size=10, color="#888", symbol="circle-open", line=dict(width=2))))
    return keys


def table_frame(df: pd.DataFrame, frontier: Sequence[int] = ()) -> pd.DataFrame:
    """The sortable table (and its CSV): plain numbers with units in the column names."""
    on = set(frontier)
    base = [b if isinstance(b, dict) else {} for b in df["baseline"]]
    out = pd.DataFrame({
        "run": df["id"].astype(int),
        "name": [n if isinstance(n, str) else "" for n in (df["name"] if "name" in df else [None] * len(df))],
        "created (UTC)": df["created"],
        "model": df["model"], "method": df["method"], "config": df["label"],
        "accuracy (%)": df["accuracy"] * 100,
        "95% CI low (%)": df["ci_low"] * 100, "95% CI high (%)": df["ci_high"] * 100,
        "test images": df["accuracy_n"],
        "stored size (bytes)": df["size_bytes"],
        "x smaller than baseline": [b["size_bytes"] / s if b.get("size_bytes") and s else None
                                    for b, s in zip(base, df["size_bytes"])],
        "size vs baseline": [fmt_change(s, b.get("size_bytes"), "size_bytes", simulated="size_bytes" in (m or ())).text
                             for b, s, m in zip(base, df["size_bytes"], _lists(df))],  # said the one way
        "accuracy change (points)": [(a - b["accuracy"]) * 100 if b.get("accuracy") is not None else None
                                     for b, a in zip(base, df["accuracy"])],
        "warning": [sanity_flag(r) for r in df.to_dict("records")],
        "params": df["params"], "nonzero params": df["nonzero_params"],
        "MACs / image": df["macs"], "latency (ms)": df["latency_ms"],
        "latency vs baseline": [latency_change(r).text for r in df.to_dict("records")],
        "device": df["device"], "runtime": df["runtime"] if "runtime" in df else "eager", "simulated": df["simulated"],
        "on frontier": [int(i) in on for i in df["id"]],
        "parent run": df["parent_id"],
        "owner": df["owner"] if "owner" in df else "local",
    })
    return out.reset_index(drop=True)


def _lists(df: pd.DataFrame) -> list:
    return list(df["simulated_metrics"]) if "simulated_metrics" in df else \
        [simulated_metrics(r) for r in df.to_dict("records")]


def frontier_table(df: pd.DataFrame, frontier: Sequence[int]) -> pd.DataFrame:
    """The frontier's runs, cheapest first, as table_frame rows plus their full config (JSON)."""
    if not frontier:
        return table_frame(df.iloc[0:0])
    rows = df.set_index("id").loc[list(frontier)].reset_index()
    out = table_frame(rows, frontier).drop(columns=["on frontier"])
    out["config (JSON)"] = [json.dumps(c, sort_keys=True) for c in rows["config"]]
    return out
