"""A self-contained HTML report of stored runs, for people who will not open the app.

One file: plotly.js is inlined once, so the interactive charts (accuracy against stored size,
parameters, MACs and latency, each with its Pareto frontier) open offline; under each chart the
frontier's runs, and at the end every run with its full config. Runs of different datasets get
sections of their own (accuracies on different test sets are not comparable). When runs are
starred, each section starts with them: their names on a chart and a table against their baselines.

Sized to the page: charts take the width of the text column (never wider than the window; redrawn
when it changes and for printing), axes grow their margins to fit their labels, wide tables scroll
inside the page, and a print stylesheet lays it out on A4.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from typing import Any, Iterable, Sequence

from compression import CompressionError
from compression.charts.format import plural
from compression.pareto import COSTS

_STYLE = """
*, *::before, *::after { box-sizing: border-box; }
html, body { max-width: 100%; overflow-x: hidden; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #222; }
h1 { margin-bottom: 0.2rem; } .meta { color: #666; margin-top: 0; }
.chart, .plotly-graph-div { width: 100%; max-width: 100%; }
.chart { margin: 0 0 0.5rem; }
.scroll { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: right; vertical-align: top; }
th { background: #f4f4f4; } td.text { text-align: left; }
td.config { text-align: left; font-family: monospace; min-width: 16rem; max-width: 32rem; overflow-wrap: anywhere; }
td.name { text-align: left; font-weight: 600; }
td.warn { color: #b00020; font-weight: 600; }
.note { background: #f7f7ff; border-left: 4px solid #88a; padding: 0.5rem 1rem; }
@page { size: A4; margin: 12mm; }
@media print {
  body { margin: 0; padding: 0; max-width: none; font-size: 10pt; }
  .chart { break-inside: avoid; page-break-inside: avoid; }
  .scroll { overflow: visible; }
  table { font-size: 7pt; width: 100%; }
  th, td { padding: 0.1rem 0.2rem; }
  td { overflow-wrap: anywhere; }  /* the full runs table fits the paper's width */
  td.config { min-width: 0; max-width: none; }
  table.runs { font-size: 6.5pt; }
  table.runs th:nth-child(4) { width: 26%; }  /* the config column: the rest fit their numbers */
  h2, h3, h4 { break-after: avoid; page-break-after: avoid; }
}
"""

# Charts follow their column's width: plotly's `responsive` redraws them when the window changes;
# printing lays the page out on paper without a resize event, so the charts are drawn at the
# paper's width before printing and given back to the window after.
_RESIZE = """
(function () {
  function charts() { return Array.prototype.slice.call(document.querySelectorAll('.plotly-graph-div')); }
  function fit(width) {
    charts().forEach(function (div) {
      if (!window.Plotly || !div.layout) { return; }
      if (width) { Plotly.relayout(div, {autosize: false, width: width}); }
      else { Plotly.relayout(div, {autosize: true, width: null}).then(function () { Plotly.Plots.resize(div); }); }
    });
  }
  window.addEventListener('beforeprint', function () { fit(680); });  /* A4 less 12 mm margins, at 96 px/in */
  window.addEventListener('afterprint', function () { fit(null); });
})();
"""

_HOW_TO_READ = (
    "Each marker is one stored run: test accuracy (bars: 95% confidence interval for the number "
    "of test images used) against a cost. Color: method; shape: model; hollow markers: this run's "
    "number on that axis is simulated (e.g. the latency of a sparse model that still runs dense "
    "kernels), not realized in the stored or executed model; black stars: the uncompressed models. "
    "The dashed step line is the Pareto frontier: no other run is both at least as accurate and at "
    "most as costly. Each frontier is drawn from the runs whose number on its axis is real. "
    "Every number was measured; the device is given per run.")


def report_html(runs: Iterable[dict], *, title: str = "Compression Explorer report",
                costs: Sequence[str] = tuple(COSTS), description: str = "", store: Any = None) -> str:
    """The report for `runs` (RunStore.runs rows) as one HTML document. With the `store` they came
    from, each frontier run with stored predictions gets a "compared with baseline" section."""
    import plotly.offline

    from compression.charts.pareto import explorer_frame  # the page's own figures, so the report matches it

    runs = list(runs)
    if not runs:
        raise CompressionError("no stored runs to report; run a compression command or use a page first")
    bad = [c for c in costs if c not in COSTS]
    if bad:
        raise CompressionError(f"report: unknown cost {bad[0]!r}; choose from {', '.join(COSTS)}")
    df = explorer_frame(runs)
    datasets = sorted(df["dataset"].unique())
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    versions = ", ".join(sorted(str(v) for v in df["code_version"].dropna().unique()))
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">', f"<title>{html.escape(title)}</title>", f"<style>{_STYLE}</style>",
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>', "</head>", "<body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">Generated {now} · {plural(len(df), "run")} · dataset{"s" if len(datasets) > 1 else ""}: '
        f'{html.escape(", ".join(datasets))} · code {html.escape(versions or "unknown")}</p>',
    ]
    if description:
        parts.append(f"<p>{html.escape(description)}</p>")
    parts.append(f'<p class="note">{html.escape(_HOW_TO_READ)}</p>')
    for name in datasets:
        parts += _dataset_section(df[df["dataset"] == name], name, costs, store)
    parts += [f'<script type="text/javascript">{_RESIZE}</script>', "</body>", "</html>", ""]
    return "\n".join(parts)


def _dataset_section(df, dataset: str, costs: Sequence[str], store: Any = None) -> list[str]:
    from compression.charts.pareto import frontier_ids, pareto_chart

    slug = "".join(ch if ch.isalnum() else "-" for ch in dataset)
    n_sim = int(df["simulated"].sum())
    on_frontier: list[int] = []
    out = [f'<section id="dataset-{slug}">', f"<h2>{html.escape(dataset)}</h2>",
           f"<p>{plural(len(df), 'run')} of {plural(df['model'].nunique(), 'model')} with {plural(df['method'].nunique(), 'method')}"
           f"{f'; {n_sim} with a simulated gain' if n_sim else ''}.</p>"]
    out += _starred_section(df, slug)
    for cost in costs:
        front = frontier_ids(df, cost)
        on_frontier += [i for i in front if i not in on_frontier]
        label = COSTS[cost][0]
        fig = pareto_chart(df, cost, log_x=True, frontier=front, height=480)
        out += [f"<h3>Accuracy against {html.escape(label)}</h3>", _chart_html(fig, f"chart-{slug}-{cost}"),
                f"<h4>Pareto frontier: accuracy against {html.escape(label)} ({plural(len(front), 'run')}, cheapest first)</h4>",
                _table(df.set_index("id").loc[front].reset_index() if front else df.iloc[0:0],
                       table_id=f"frontier-{slug}-{cost}", css="frontier")]
    if store is not None:
        out += _compared_with_baseline(df.set_index("id").loc[on_frontier].reset_index(), store, slug)
    out += [f"<h3>All runs and their configs ({len(df):,})</h3>",
            _table(df.sort_values("id"), table_id=f"runs-{slug}", css="runs", full_config=True),
            "</section>"]
    return out


def _chart_html(fig, div_id: str) -> str:
    """A chart that fits its column: no fixed width, axes that grow their margins to fit their tick
    labels and titles (nothing clipped at a narrow window or on paper), redrawn on resize."""
    fig.update_layout(autosize=True, width=None, margin=dict(l=20, r=20, t=fig.layout.margin.t or 30, b=20))
    fig.update_xaxes(automargin=True, title_standoff=8)
    fig.update_yaxes(automargin=True, title_standoff=8)
    div = fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, default_width="100%",
                      config={"displaylogo": False, "responsive": True})
    return f'<div class="chart">{div}</div>'


def _starred_section(df, slug: str) -> list[str]:
    """The starred runs first, with their names: a chart labelled with them and their table."""
    from compression.charts.pareto import fmt_cost, frontier_ids
    from compression.charts.story import RATIO_COLUMNS, ratios, run_title, story_chart, story_table

    starred = df[df["starred"]]
    if starred.empty:
        return []
    fig = story_chart(starred, "size_bytes", log_x=True, frontier=frontier_ids(starred, "size_bytes"), height=440)
    head = ["run", "name", "model", "method", "accuracy", "stored size", *RATIO_COLUMNS.values(),
            "accuracy change", "warning", "simulated", "tags", "owner"]
    rows = []
    by_id = starred.set_index("id")
    for t in story_table(starred).to_dict("records"):
        r = {**by_id.loc[t["run"]].to_dict(), "id": t["run"]}
        q = ratios(r)
        cells = [(str(t["run"]), ""), (run_title(r), "name"), (r["model"], "text"), (r["method"], "text"),
                 (f"{t['accuracy (%)']:.2f} % (n={t['test images']:,})", ""), (fmt_cost("size_bytes", r["size_bytes"]), ""),
                 *[(q[k], "") for k in RATIO_COLUMNS.values()], (q["accuracy change"], ""),
                 (t["warning"], "warn" if t["warning"] else ""),
                 ("yes" if r["simulated"] else "no", "text"), (t["tags"], "text"), (t["owner"], "text")]
        rows.append(_row(cells))
    return [f"<h3>Starred runs ({len(starred)}): what a reviewer follows</h3>",
            "<p>The runs kept on purpose, with their names; ratios against each run's uncompressed baseline.</p>",
            _chart_html(fig, f"story-{slug}"), _html_table(head, rows, f"starred-{slug}", "starred")]


def _row(cells) -> str:
    return "<tr>" + "".join(f'<td class="{c}">{html.escape(str(v))}</td>' if c else f"<td>{html.escape(str(v))}</td>"
                            for v, c in cells) + "</tr>"


def _html_table(head, rows, table_id: str, css: str) -> str:
    if not rows:
        rows = [f'<tr><td class="text" colspan="{len(head)}">no runs</td></tr>']
    header = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
    return (f'<div class="scroll"><table id="{table_id}" class="{css}"><thead>{header}</thead><tbody>'
            + "\n".join(rows) + "</tbody></table></div>")


def _table(df, *, table_id: str, css: str, full_config: bool = False) -> str:
    from compression.charts.export import iso_utc
    from compression.charts.pareto import fmt_cost

    from compression.charts.format import run_changes
    from compression.honesty import METRIC_WORDS, sanity_flag, simulated_metrics

    head = ["run", "model", "method", "config", "accuracy (95% CI)", "warning", "stored size", "size vs uncompressed",
            "params (nonzero)", "MACs / image", "latency", "latency vs uncompressed", "device", "simulated", "parent run", "name", "tags",
            "owner", "created (UTC)"]
    rows = []
    for r in df.to_dict("records"):
        base = r["baseline"] if isinstance(r["baseline"], dict) else {}
        sim = simulated_metrics(r)
        changes = run_changes(r)  # the words the story table, the CSV and `runs --json` use
        smaller = changes["size_bytes"].text if changes.get("size_bytes") else "–"
        faster = changes["latency_ms"].text if changes.get("latency_ms") else "–"
        flag = sanity_flag(r)  # chance level or far below its baseline
        config = json.dumps(r["config"], sort_keys=True) if full_config else r["label"]
        parent = r["parent_id"]
        cells = [(str(r["id"]), ""), (r["model"], "text"), (r["method"], "text"), (config, "config"),
                 (f"{r['accuracy'] * 100:.2f} % [{r['ci_low'] * 100:.2f}–{r['ci_high'] * 100:.2f}] n={r['accuracy_n']:,}", ""),
                 (flag, "warn" if flag else ""),
                 (fmt_cost("size_bytes", r["size_bytes"]), ""), (smaller, ""),
                 (f"{r['params']:,} ({r['nonzero_params']:,})", ""), (fmt_cost("macs", r["macs"]), ""),
                 (fmt_cost("latency_ms", r["latency_ms"]), ""), (faster, ""), (r["device"], "text"),
                 (", ".join(METRIC_WORDS[k] for k in sim) if sim else "no", "text"),
                 ("" if parent is None or parent != parent else str(int(parent)), ""),
                 (r.get("name") or "", "name"), (", ".join(r.get("tags") or []), "text"),
                 (r.get("owner") or "local", "text"), (iso_utc(r["created"].timestamp()), "text")]
        rows.append(_row(cells))
    return _html_table(head, rows, table_id, css)


def _compared_with_baseline(front, store: Any, slug: str) -> list[str]:
    """Per frontier run with stored predictions: its per-class accuracy against the model it came
    from (evaluated once per model and image count) and the right -> wrong / wrong -> right counts."""
    from compression.compare import baseline_predictions, compare_predictions
    from compression.data import load_dataset

    out, baselines = [], {}
    for r in front.sort_values("id").to_dict("records"):
        if r["method"] == "baseline":
            continue
        pred = store.predictions(int(r["id"]))
        if pred is None or pred.n != r["accuracy_n"]:
            continue
        key = (r["model"].split("+")[0], r["dataset"], pred.n)
        try:
            if key not in baselines:
                baselines[key] = baseline_predictions(r)
            data = load_dataset(r["dataset"])
            cmp = compare_predictions(baselines[key].predicted, pred.predicted, data.test.head(pred.n).labels.numpy(),
                                      data.classes)
        except CompressionError as exc:
            out.append(f'<p class="note">Run {r["id"]}: not compared with its baseline ({html.escape(str(exc))}).</p>')
            continue
        rows = "".join(f'<tr><td class="text">{html.escape(c["class"])}</td><td>{c["n"]:,}</td>'
                       f'<td>{c["a"] * 100:.2f}</td><td>{c["b"] * 100:.2f}</td><td>{c["diff"] * 100:+.2f}</td></tr>'
                       for c in sorted((c for c in cmp["per_class"] if c["n"]), key=lambda c: c["diff"]))
        out += [f'<h4 id="compare-{slug}-{int(r["id"])}">Run {int(r["id"])} ({html.escape(r["method"])}, '
                f'{html.escape(r["model"])}) compared with its baseline</h4>',
                f"<p>Agreement {cmp['agreement'] * 100:.2f} % on {cmp['n']:,} test images; accuracy "
                f"{cmp['accuracy_a'] * 100:.2f} % → {cmp['accuracy_b'] * 100:.2f} %; "
                f"<b>{cmp['right_to_wrong']:,}</b> right → wrong, <b>{cmp['wrong_to_right']:,}</b> wrong → right.</p>",
                f'<table class="compare"><thead><tr><th>class</th><th>images</th><th>baseline (%)</th>'
                f"<th>run (%)</th><th>difference (points)</th></tr></thead><tbody>{rows}</tbody></table>"]
    if out:
        out.insert(0, "<h3>Frontier runs compared with their baseline</h3>")
    return out


def write_report(path, runs: Iterable[dict], **kwargs: Any) -> int:
    """Write the report to `path`; returns the number of bytes written."""
    from pathlib import Path

    data = report_html(runs, **kwargs).encode("utf-8")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise CompressionError(f"cannot write the report to {str(path)!r}: {exc.strerror or exc}") from None
    return len(data)
