"""A self-contained HTML report of stored runs, for people who will not open the app.

One file: plotly.js is inlined once, so the interactive charts (accuracy against stored size,
parameters, MACs and latency, each with its Pareto frontier) open offline; under each chart the
frontier's runs, and at the end every run with its full config. Runs of different datasets get
sections of their own (accuracies on different test sets are not comparable).
"""

from __future__ import annotations

import datetime as dt
import html
import json
from typing import Any, Iterable, Sequence

from compression import CompressionError
from compression.pareto import COSTS

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #222; }
h1 { margin-bottom: 0.2rem; } .meta { color: #666; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: right; vertical-align: top; }
th { background: #f4f4f4; } td.text { text-align: left; } td.config { text-align: left; font-family: monospace; }
.note { background: #f7f7ff; border-left: 4px solid #88a; padding: 0.5rem 1rem; }
"""

_HOW_TO_READ = (
    "Each marker is one stored run: test accuracy (bars: 95% confidence interval for the number "
    "of test images used) against a cost. Color: method; shape: model; hollow markers: the gain is "
    "simulated (masks or fake quantization, not realized in the stored or executed model); black "
    "stars: the uncompressed models. The dashed step line is the Pareto frontier: no other run is "
    "both at least as accurate and at most as costly. Simulated runs are left out of the frontier. "
    "Every number was measured; the device is given per run.")


def report_html(runs: Iterable[dict], *, title: str = "Compression Explorer report",
                costs: Sequence[str] = tuple(COSTS), description: str = "") -> str:
    """The report for `runs` (RunStore.runs rows) as one HTML document."""
    import plotly.offline

    from ui.charts_pareto import explorer_frame  # the page's own figures, so the report matches it

    runs = list(runs)
    if not runs:
        raise CompressionError("no stored runs to report; run a compression command or use a page first")
    bad = [c for c in costs if c not in COSTS]
    if bad:
        raise CompressionError(f"report: unknown cost {bad[0]!r}; choose from {', '.join(COSTS)}")
    df = explorer_frame(runs)
    datasets = sorted(df["dataset"].unique())
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    versions = ", ".join(sorted(str(v) for v in df["code_version"].dropna().unique()))
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>", f"<style>{_STYLE}</style>",
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>', "</head>", "<body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">Generated {now} · {len(df):,} runs · dataset{"s" if len(datasets) > 1 else ""}: '
        f'{html.escape(", ".join(datasets))} · code {html.escape(versions or "unknown")}</p>',
    ]
    if description:
        parts.append(f"<p>{html.escape(description)}</p>")
    parts.append(f'<p class="note">{html.escape(_HOW_TO_READ)}</p>')
    for name in datasets:
        parts += _dataset_section(df[df["dataset"] == name], name, costs)
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _dataset_section(df, dataset: str, costs: Sequence[str]) -> list[str]:
    from ui.charts_pareto import frontier_ids, pareto_chart

    slug = "".join(ch if ch.isalnum() else "-" for ch in dataset)
    n_sim = int(df["simulated"].sum())
    out = [f'<section id="dataset-{slug}">', f"<h2>{html.escape(dataset)}</h2>",
           f"<p>{len(df):,} runs of {df['model'].nunique()} model(s) with {df['method'].nunique()} method(s)"
           f"{f'; {n_sim} with a simulated gain' if n_sim else ''}.</p>"]
    for cost in costs:
        front = frontier_ids(df, cost)
        label = COSTS[cost][0]
        fig = pareto_chart(df, cost, log_x=True, frontier=front, height=480)
        out += [f"<h3>Accuracy against {html.escape(label)}</h3>",
                fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"chart-{slug}-{cost}",
                            config={"displaylogo": False, "responsive": True}),
                f"<h4>Pareto frontier: accuracy against {html.escape(label)} ({len(front)} runs, cheapest first)</h4>",
                _table(df.set_index("id").loc[front].reset_index() if front else df.iloc[0:0],
                       table_id=f"frontier-{slug}-{cost}", css="frontier")]
    out += [f"<h3>All runs and their configs ({len(df):,})</h3>",
            _table(df.sort_values("id"), table_id=f"runs-{slug}", css="runs", full_config=True),
            "</section>"]
    return out


def _table(df, *, table_id: str, css: str, full_config: bool = False) -> str:
    from ui.charts_pareto import fmt_cost

    head = ["run", "model", "method", "config", "accuracy (95% CI)", "stored size", "x smaller",
            "params (nonzero)", "MACs / image", "latency", "device", "simulated", "parent run"]
    rows = []
    for r in df.to_dict("records"):
        base = r["baseline"] if isinstance(r["baseline"], dict) else {}
        smaller = (f"{base['size_bytes'] / r['size_bytes']:.2f}x" if base.get("size_bytes") and r["size_bytes"] else "–")
        config = json.dumps(r["config"], sort_keys=True) if full_config else r["label"]
        parent = r["parent_id"]
        cells = [(str(r["id"]), ""), (r["model"], "text"), (r["method"], "text"), (config, "config"),
                 (f"{r['accuracy'] * 100:.2f} % [{r['ci_low'] * 100:.2f}–{r['ci_high'] * 100:.2f}] n={r['accuracy_n']:,}", ""),
                 (fmt_cost("size_bytes", r["size_bytes"]), ""), (smaller, ""),
                 (f"{r['params']:,} ({r['nonzero_params']:,})", ""), (fmt_cost("macs", r["macs"]), ""),
                 (fmt_cost("latency_ms", r["latency_ms"]), ""), (r["device"], "text"),
                 ("yes" if r["simulated"] else "no", "text"),
                 ("" if parent is None or parent != parent else str(int(parent)), "")]
        rows.append("<tr>" + "".join(f'<td class="{c}">{html.escape(str(v))}</td>' if c else f"<td>{html.escape(str(v))}</td>"
                                     for v, c in cells) + "</tr>")
    if not rows:
        rows.append(f'<tr><td class="text" colspan="{len(head)}">no runs</td></tr>')
    header = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
    return (f'<table id="{table_id}" class="{css}"><thead>{header}</thead><tbody>'
            + "\n".join(rows) + "</tbody></table>")


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
