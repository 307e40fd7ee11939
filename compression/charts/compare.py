"""Two runs compared image by image (compression.compare), and the shown runs' knobs side by side:
pure figures and frames (no streamlit), for the Pareto explorer's compare view and the report.

per_class_chart        accuracy per class of each run (top) and the difference b - a (bottom),
                       classes sorted by the difference
confusion_diff_chart   the confusion matrices' difference (rows true, columns predicted): where errors moved
flip_rows              the flipped images (right -> wrong, wrong -> right), filterable by true class
layer_frame            per-layer kept / zero / bits of two runs side by side (their stored "layers" tables)
parallel_chart         parallel coordinates of runs: config knobs and metrics as axes, colored by accuracy
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from compression.charts.format import fmt_bytes, fmt_count

A_COLOR, B_COLOR = "#7f7f7f", "#1f77b4"
WORSE, BETTER = "#d62728", "#2ca02c"


def _wrapped(text: str, width: int) -> str:
    """Text on lines of at most `width` characters (<br>, HTML-escaped): a name is never cut off."""
    import html
    import textwrap
    return "<br>".join(html.escape(line) for line in textwrap.wrap(text, width, break_long_words=False,
                                                                    break_on_hyphens=False)) or html.escape(text)


def _title(text: str, detail: str) -> dict:
    """A chart title with the runs' names on lines of their own (wrapped, never cut off by the
    chart's width: names can be 80 characters), at the top of a margin tall enough for its lines."""
    return dict(text=f"{text}<br><span style='font-size:12px;color:#555'>{_wrapped(detail, 60)}</span>",
                y=1, yref="container", yanchor="top", pad=dict(t=12))


def _top(title: dict) -> int:
    """The top margin a _title needs: 34 px for its first line, 17 for each line after."""
    return 44 + 17 * title["text"].count("<br>")


def per_class_chart(cmp: dict, name_a: str = "A", name_b: str = "B", height: int = 520) -> go.Figure:
    """Top: accuracy of a and of b per class; bottom: b - a in points, red where b is worse.
    Classes sorted by the difference (worst first); classes without images are left out."""
    rows = sorted((c for c in cmp["per_class"] if c["n"]), key=lambda c: (c["diff"], c["class"]))
    names = [c["class"] for c in rows]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.55, 0.45])
    for key, name, color in (("a", name_a, A_COLOR), ("b", name_b, B_COLOR)):
        fig.add_trace(go.Bar(x=names, y=[c[key] * 100 for c in rows], name=_wrapped(name, 40), marker_color=color,
                             customdata=[c["n"] for c in rows],
                             hovertemplate="%{x}: %{y:.1f} % of %{customdata} images<extra>" + name + "</extra>"),
                      row=1, col=1)
    diff = [c["diff"] * 100 for c in rows]
    fig.add_trace(go.Bar(x=names, y=diff, name=f"{name_b} − {name_a}", showlegend=False,
                         marker_color=[WORSE if d < 0 else BETTER for d in diff],
                         text=[f"{d:+.1f}" for d in diff], textposition="outside",
                         hovertemplate="%{x}: %{y:+.2f} points<extra>difference</extra>"), row=2, col=1)
    fig.update_yaxes(title_text="accuracy (%)", range=[0, 105], row=1, col=1)
    fig.update_yaxes(title_text="difference (points)", zeroline=True, zerolinecolor="#444", row=2, col=1)
    fig.update_xaxes(automargin=True, row=2, col=1)  # slanted class names are given the room they need
    title = _title(f"Per-class accuracy, sorted by the difference ({cmp['n']:,} test images)",
                   f"difference: {name_b} minus {name_a}")
    fig.update_layout(barmode="group", height=height, margin=dict(l=60, r=20, t=_top(title), b=120), title=title,
                      # at the foot of the figure, below the slanted class names (never over them)
                      legend=dict(orientation="h", yref="container", y=0, yanchor="bottom", x=1, xanchor="right"))
    return fig


def confusion_diff_chart(cmp: dict, classes: Sequence[str], name_a: str = "A", name_b: str = "B",
                         height: int = 520) -> go.Figure:
    """Heatmap of confusion(b) - confusion(a): red off the diagonal = b makes more of that error."""
    z = np.asarray(cmp["confusion_diff"], dtype=float)
    lim = max(1.0, float(np.abs(z).max()))
    text = [[("" if v == 0 else f"{int(v):+d}") for v in row] for row in z]
    fig = go.Figure(go.Heatmap(
        z=z, x=list(classes), y=list(classes), zmin=-lim, zmax=lim, zmid=0, text=text, texttemplate="%{text}",
        colorscale=[[0, "#2166ac"], [0.5, "#f7f7f7"], [1, "#b2182b"]], colorbar=dict(title="images"),
        hovertemplate="true %{y}, predicted %{x}: %{z:+d} images<extra></extra>"))
    title = _title("Where errors moved", f"confusion of {name_b} minus {name_a}")
    fig.update_layout(title=title, height=height, xaxis=dict(title="predicted class", side="bottom"),
                      yaxis=dict(title="true class", autorange="reversed"), margin=dict(l=60, r=20, t=_top(title), b=40))
    return fig


def flip_rows(cmp: dict, pred_a: np.ndarray, pred_b: np.ndarray, labels: np.ndarray,
              classes: Sequence[str], *, kind: str = "both", true_class: str | None = None,
              limit: int | None = None) -> list[dict[str, Any]]:
    """The flipped images as rows {index, kind, true, a, b}: kind 'right_to_wrong', 'wrong_to_right'
    or 'both'; true_class keeps only images of that class; right -> wrong first, then by index."""
    kinds = ("right_to_wrong", "wrong_to_right") if kind == "both" else (kind,)
    if any(k not in ("right_to_wrong", "wrong_to_right") for k in kinds):
        raise ValueError(f"kind must be right_to_wrong, wrong_to_right or both, got {kind!r}")
    want = None if true_class is None else list(classes).index(true_class)
    rows = []
    for k in kinds:
        for i in cmp[f"{k}_indices"]:
            if want is not None and int(labels[i]) != want:
                continue
            rows.append({"index": int(i), "kind": k, "true": classes[int(labels[i])],
                         "a": classes[int(pred_a[i])], "b": classes[int(pred_b[i])]})
            if limit is not None and len(rows) >= limit:
                return rows
    return rows


def thumbnail(image: np.ndarray) -> np.ndarray:
    """A test image (C, H, W) uint8 as st.image / PIL take it: (H, W) or (H, W, C)."""
    image = np.asarray(image)
    return image[0] if image.shape[0] == 1 else np.transpose(image, (1, 2, 0))


def _layer_stats(row: dict) -> tuple[str, float | None, float | None, float | None]:
    """(layer name, kept fraction, zero fraction, bits per weight) from any family's layer row."""
    name = str(row.get("name", row.get("layer", "?")))
    kept = zero = None
    if "kept_weights" in row:                                   # pruning
        kept = float(row["kept_weights"])
        if row.get("weights_after"):
            zero = 1 - row.get("nonzero_after", row["weights_after"]) / row["weights_after"]
    elif row.get("params_before"):                              # architecture
        kept = row.get("params_after", 0) / row["params_before"]
    bits = row.get("bits_per_weight", row.get("bits"))          # quantization
    if bits is not None and row.get("quantized") is False:
        bits = 32
    return name, kept, zero, None if bits is None else float(bits)


def layer_frame(run_a: dict | None, run_b: dict | None, name_a: str = "A", name_b: str = "B") -> pd.DataFrame | None:
    """Per-layer statistics of two runs side by side, from their stored extra "layers" tables; a run
    None is the uncompressed model (every weight kept, none zero, 32 bits). None when neither has a
    table, or when both have one and they share no layer (different architectures)."""
    tables = {}
    for key, run in (("a", run_a), ("b", run_b)):
        layers = ((run or {}).get("extra") or {}).get("layers")
        if isinstance(layers, list) and layers and all(isinstance(r, dict) for r in layers):
            tables[key] = {s[0]: s[1:] for s in map(_layer_stats, layers)}
    if not tables:
        return None
    if len(tables) == 2 and not set(tables["a"]) & set(tables["b"]):
        return None
    names = list(dict.fromkeys([*tables.get("a", {}), *tables.get("b", {})]))
    dense = (1.0, 0.0, 32.0)
    rows = []
    for name in names:
        row = {"layer": name}
        for key, label, run in (("a", name_a, run_a), ("b", name_b, run_b)):
            stats = tables[key].get(name, (None,) * 3) if key in tables else (dense if run is None else (None,) * 3)
            for col, v in zip(("kept (%)", "zero (%)", "bits"), stats):
                row[f"{label}: {col}"] = (None if v is None else (v * 100 if "%" in col else v))
        rows.append(row)
    return pd.DataFrame(rows)


# ---- parallel coordinates --------------------------------------------------------------------------

_METRIC_AXES = (("accuracy", "accuracy (%)", False), ("size_bytes", "stored size", True),
                ("params", "parameters", True), ("macs", "MACs / image", True), ("latency_ms", "latency (ms)", False))


MAX_CATEGORIES = 8   # a text knob with more values than this is left out: its ticks would overlap
MAX_TICK_TEXT = 12   # characters of a category written beside its axis (longer ones end in "…")
LABEL_ANGLE = -30    # axis titles at a slant: parallel, so neighbours never overlap at any width


def _knob_values(runs: pd.DataFrame, max_knobs: int) -> dict[str, list]:
    """Config knobs whose value differs between runs (two values at least: a knob that only some
    methods have, with one value, says no more than the method axis), plain values only, the most
    varied first; text knobs with long values (a pipeline's spec) or too many values are left out."""
    seen: dict[str, int] = {}
    for cfg in runs["config"]:
        for k, v in (cfg or {}).items():
            if isinstance(v, (int, float, str, bool)) or v is None:
                seen[k] = seen.get(k, 0) + 1
    out = {}
    distinct = {k: len({str((cfg or {}).get(k)) for cfg in runs["config"]}) for k in seen}
    for k in sorted(seen, key=lambda k: (-distinct[k], -seen[k], k)):
        vals = [(cfg or {}).get(k) for cfg in runs["config"]]
        present = {v for v in vals if v is not None and not isinstance(v, (dict, list, tuple))}
        text = [v for v in present if isinstance(v, str)]
        if len(present) < 2 or (text and (len(present) > MAX_CATEGORIES or max(map(len, text)) > 24)):
            continue
        out[k] = vals
        if len(out) >= max_knobs:
            break
    return out


def _short(text: str, limit: int = MAX_TICK_TEXT) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _knob_label(key: str) -> str:
    """A config key as an axis title: 'finetune_epochs' -> 'fine-tune epochs'."""
    words = {"finetune": "fine-tune", "calibration": "calib.", "activation": "act.", "student": "student",
             "temperature": "temperature (T)"}
    return " ".join(words.get(w, w) for w in key.split("_"))


def _axis(label: str, values: list) -> dict:
    """One Parcoords dimension: numeric (missing values drawn below the range, tick '–'; whole numbers
    ticked at their own values) or categorical (ticks cut at MAX_TICK_TEXT characters)."""
    numeric = all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values)
    if numeric:
        nums = [float(v) for v in values if v is not None and math.isfinite(float(v))]
        lo, hi = min(nums), max(nums)
        if None not in values:
            return dict(label=label, values=[float(v) for v in values])
        span = (hi - lo) or 1.0
        missing = lo - 0.15 * span
        whole = sorted({v for v in nums}) if all(v.is_integer() for v in nums) and len(set(nums)) <= 6 else None
        ticks = [missing, *(whole or (np.linspace(lo, hi, 4) if hi > lo else [lo]))]
        return dict(label=label, values=[missing if v is None else float(v) for v in values],
                    range=[missing, hi], tickvals=ticks, ticktext=["–", *(f"{t:.3g}" for t in ticks[1:])])
    cats = sorted({str(v) for v in values if v is not None})
    order = (["–"] if None in values else []) + cats
    return dict(label=label, values=[order.index("–" if v is None else str(v)) for v in values],
                tickvals=list(range(len(order))), ticktext=[_short(t) for t in order],
                range=[-0.2, len(order) - 0.8] if len(order) > 1 else [-1, 1])


def _log_axis(label: str, values: Sequence[float], fmt) -> dict:
    """A cost on a log scale, ticked at 1, 2 and 5 times the powers of ten in its range (its own
    lowest and highest value when the range holds fewer than two of them)."""
    logs = [math.log10(max(float(v), 1.0)) for v in values]
    lo, hi = min(logs), max(logs)
    ticks = [math.log10(m * 10 ** e) for e in range(math.floor(lo), math.ceil(hi) + 1) for m in (1, 2, 5)
             if lo - 1e-9 <= math.log10(m * 10 ** e) <= hi + 1e-9]
    if len(ticks) < 2:
        ticks = sorted({lo, hi})
    return dict(label=label + " (log)", values=logs, tickvals=ticks, ticktext=[fmt(10 ** t) for t in ticks])


def parallel_chart(runs: pd.DataFrame, *, max_knobs: int = 4, height: int = 480) -> go.Figure:
    """One line per run: method, model, the knobs that vary, then the metrics; colored by accuracy.
    `runs` is the explorer's frame (compression.charts.pareto.explorer_frame)."""
    runs = runs.reset_index(drop=True)
    dims = [_axis("method", list(runs["method"]))]
    if runs["model"].nunique() > 1:
        dims.append(_axis("model", list(runs["model"])))
    dims += [_axis("kind" if k == "method" else f"{k} (config)" if k == "model" else _knob_label(k), v)
             for k, v in _knob_values(runs, max_knobs).items()]
    for col, label, log in _METRIC_AXES:
        vals = [float(v) * (100 if col == "accuracy" else 1) for v in runs[col]]
        dims.append(_log_axis(label, vals, fmt_bytes if col == "size_bytes" else fmt_count) if log
                    else dict(label=label, values=vals))
    acc = [float(a) * 100 for a in runs["accuracy"]]
    fig = go.Figure(go.Parcoords(
        dimensions=dims, labelangle=LABEL_ANGLE, labelside="top", labelfont=dict(size=12),
        tickfont=dict(size=10), rangefont=dict(size=9),
        line=dict(color=acc, colorscale="Viridis", showscale=True, colorbar=dict(title="accuracy (%)"))))
    fig.update_layout(height=height, margin=dict(l=80, r=70, t=140, b=30),
                      title=dict(text=f"{len(runs):,} runs: knobs and metrics (drag along an axis to filter)", y=0.98))
    return fig
