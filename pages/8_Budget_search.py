"""Budget search: the most accurate configuration within a budget of stored bytes, MACs or latency,
among the methods allowed. Every point tried is measured and stored; over-budget points are greyed."""

import pandas as pd
import streamlit as st

from compression import CompressionError
from compression.budget import BudgetConfig, candidates
from ui import jobs
from ui import pipeline as ui_pipe
from ui.charts_pipeline import budget_chart
from ui.format import fmt_bytes, fmt_count, fmt_ms, fmt_pct
from ui.sidebar import load_selection, show_error, sidebar

st.set_page_config(page_title="Budget search · Compression Explorer", layout="wide")
sel = sidebar()
st.title("Budget search")
st.caption("Set a budget and the methods you allow: the search tries a grid of pruning ratios, bit widths and "
           "prune-then-quantize pipelines, measures every one (each is stored as a run) and returns the most "
           "accurate one whose measured cost fits. Nothing is predicted.")
data, base = load_selection(sel)

UNITS = {"size_bytes": "stored size (KiB)", "macs": "MACs per image (millions)", "latency_ms": "batch-1 latency (ms)"}
SCALE = {"size_bytes": 1024, "macs": 1e6, "latency_ms": 1.0}
FMT = {"size_bytes": fmt_bytes, "macs": fmt_count, "latency_ms": fmt_ms}
c1, c2, c3, c4 = st.columns([2, 2, 3, 2])
metric = c1.radio("Budget on", list(UNITS), key="budget_metric", format_func=lambda m: UNITS[m].split(" (")[0])
default = base[metric] / SCALE[metric] / (8 if metric == "size_bytes" else 2)
amount = c2.number_input(UNITS[metric], min_value=0.001, value=float(f"{default:.3g}"), key=f"budget_amount_{metric}_{sel.model}",
                         help=f"The uncompressed model: {FMT[metric](base[metric])}.")
methods = c3.multiselect("Methods allowed", ["prune", "quantize"], default=["prune", "quantize"], key="budget_methods",
                         help="Both: also pruning followed by quantization.")
epochs = c4.number_input("Fine-tuning epochs after pruning", 0, 5, 0, key="budget_epochs",
                         help="0: one-shot pruning (fast). More: better accuracy, slower search.")
subset = st.select_slider("Fine-tuning images", ["1,000", "5,000", "all"], value="5,000", key="budget_subset",
                          disabled=not epochs)
try:
    cfg = BudgetConfig(metric=metric, limit=amount * SCALE[metric], methods=tuple(methods), finetune_epochs=int(epochs),
                       subset=None if subset == "all" else int(subset.replace(",", "")))
except CompressionError as exc:
    show_error(exc)
    st.stop()
st.caption(f"{len(candidates(cfg))} configurations to try; budget {FMT[metric](cfg.limit)} "
           f"({cfg.limit / base[metric]:.3f}x of the uncompressed {FMT[metric](base[metric])}).")


def show(job, final: bool) -> None:
    points = list(job.result.points) if job.result else []
    if not points:
        return
    outcome = job.result
    best = outcome.best
    if final and best is None:
        st.warning(f"No configuration tried fits {FMT[metric](cfg.limit)}: the cheapest measured "
                   f"{FMT[metric](min(p[metric] for p in points))}. Raise the budget or allow more methods.")
    elif best is not None:
        (st.success if final else st.info)(
            f"{'Chosen' if final else 'Best so far'}: **{best['label']}** — {fmt_pct(best['accuracy'])} "
            f"({(best['accuracy'] - base['accuracy']) * 100:+.2f} points), {fmt_bytes(best['size_bytes'])}, "
            f"{fmt_count(best['macs'])} MACs, {fmt_ms(best['latency_ms'])}"
            + (" (speed gain simulated)" if best["simulated"] else "") + f" · run {best.get('run_id')}")
    st.plotly_chart(budget_chart(points, metric, cfg.limit, best=best and best["index"], log_x=metric != "latency_ms"),
                    key=f"budget_chart_{'final' if final else 'live'}", width="stretch")
    if final:
        table = pd.DataFrame([{"configuration": p["label"], "accuracy (%)": round(100 * p["accuracy"], 2),
                               "stored size (bytes)": p["size_bytes"], "MACs per image": int(p["macs"]),
                               "latency (ms)": round(p["latency_ms"], 3), "within budget": p["fits"],
                               "gain": "simulated" if p["simulated"] else "real", "run id": p.get("run_id")}
                              for p in points]).sort_values("accuracy (%)", ascending=False)
        st.dataframe(table, hide_index=True, width="stretch")
        for spec, error in outcome.refused:
            st.caption(f"Refused: {spec} — {error}")


if st.button("Search", key="budget_run", type="primary", disabled=not methods):
    ui_pipe.start_budget(sel.model, sel.dataset, sel.device, cfg)
jobs.panel("budget_job", lambda job: show(job, final=False), lambda job: show(job, final=True))
