"""Pareto explorer: every stored run of the dataset, accuracy against a cost of your choice, the
frontier of the best trade-offs, filters, one run in detail, and a report to send around.
The view (axes, filters, selection) lives in the URL: copy the link to share it."""

import streamlit as st

from compression.pareto import COSTS, pipeline_path
from compression.report import report_html
from ui import cache
from ui.charts_pareto import (AXIS_TITLES, filter_frame, frontier_ids, frontier_table, pareto_chart,
                              run_id_of, table_frame)
from ui.explorer import (keep_valid, load_frame, restore_url_state, run_details, save_url_state,
                         table_columns)
from ui.format import fmt_pct
from ui.sidebar import show_error, sidebar

st.set_page_config(page_title="Pareto explorer", layout="wide")
restore_url_state()
sel = sidebar()

st.title("Pareto explorer")
st.caption("Every stored run for the dataset: test accuracy (bars: 95% confidence interval) against "
           "what it costs. The dashed step line is the Pareto frontier — no other run is both at least "
           "as accurate and at most as costly. Click a marker (or pick a run below) for its details.")

try:
    store = cache.run_store()
    df = load_frame(store, sel.dataset)
except Exception as exc:  # an unreadable store is a message, not a dead page
    show_error(exc)
    st.stop()
if df.empty:
    st.info(f"No runs stored for **{sel.dataset}** yet. Every page and every `python -m compression ... "
            "--json` command stores its results; they appear here, one marker each.")
    save_url_state(sel.dataset)
    st.stop()

# ---- view and filters (all kept in the URL) -----------------------------------------------------
for key, col in (("explorer_models", "model"), ("explorer_methods", "method"), ("explorer_devices", "device")):
    keep_valid(key, sorted(df[col].unique()))
c = st.columns([2, 1, 2])
cost = c[0].selectbox("x-axis", list(COSTS), key="explorer_x", format_func=AXIS_TITLES.get)
log_x = c[1].toggle("Log scale", key="explorer_log")
with_sim = c[2].toggle("Simulated gains on the frontier", key="explorer_sim",
                       help="Runs marked simulated (masks, fake quantization) do not realize their savings; "
                            "by default the frontier leaves them out.")
f = st.columns(4)
models = f[0].multiselect("Model", sorted(df["model"].unique()), key="explorer_models", placeholder="all models")
methods = f[1].multiselect("Method", sorted(df["method"].unique()), key="explorer_methods", placeholder="all methods")
devices = f[2].multiselect("Device", sorted(df["device"].unique()), key="explorer_devices", placeholder="all devices")
dates = f[3].date_input("Created between (UTC)", value=(), key="explorer_dates", format="YYYY-MM-DD",
                        help="Pick a first and a last day; leave empty for any date.")
shown = filter_frame(df, models=models, methods=methods, devices=devices, dates=dates)
if shown.empty:
    st.warning(f"None of the {len(df):,} stored runs matches these filters.")
    save_url_state(sel.dataset)
    st.stop()

front = frontier_ids(shown, cost, include_simulated=with_sim)
keep_valid("explorer_run", [int(i) for i in shown["id"]])
selected = st.session_state.get("explorer_run")
path = [int(r["id"]) for r in pipeline_path(selected, store.get)] if selected is not None else []


def pick_from_chart() -> None:
    """A click on a marker selects that run (before the script reruns, so the selectbox follows)."""
    ids = [run_id_of(p) for p in st.session_state["explorer_chart"]["selection"]["points"]]
    ids = [i for i in ids if i is not None]
    if ids:
        st.session_state["explorer_run"] = ids[0]


fig = pareto_chart(shown, cost, log_x=log_x, frontier=front, path=path, selected=selected)
st.plotly_chart(fig, key="explorer_chart", on_select=pick_from_chart, selection_mode="points", width="stretch")
n_sim = int(shown["simulated"].sum())
st.caption(f"{len(shown):,} of {len(df):,} runs shown · {shown['model'].nunique()} model(s) · "
           f"{len(front)} on the frontier" + (f" · {n_sim} hollow: simulated gain" if n_sim else "")
           + " · black stars: uncompressed models.")

# ---- the frontier ---------------------------------------------------------------------------------
st.subheader(f"Pareto frontier: accuracy against {COSTS[cost][0]}")
if front:
    best = shown.set_index("id").loc[front[-1]]
    st.markdown(f"{len(front)} runs, cheapest first. The most accurate is run {front[-1]} "
                f"({best['method']} of {best['model']}, {fmt_pct(best['accuracy'])}).")
    st.dataframe(frontier_table(shown, front), hide_index=True, width="stretch", key="explorer_frontier_table",
                 column_config=table_columns())
else:
    st.caption("No run qualifies (every shown run is simulated; switch on “Simulated gains on the frontier”).")

# ---- one run in detail --------------------------------------------------------------------------------
st.subheader("Run details")
labels = {int(r.id): f"run {r.id} · {r.method} · {r.model} · {r.accuracy * 100:.2f} % · {r.label}"[:140]
          for r in shown[["id", "method", "model", "accuracy", "label"]].itertuples(index=False)}
picked = st.selectbox("Run", sorted(labels, reverse=True), key="explorer_run", format_func=labels.get,
                      index=None, placeholder="Click a marker on the chart, or pick a run here")
if picked is not None:
    try:
        run = store.get(picked)
        if run is None:
            st.warning(f"Run {picked} is no longer in the store.")
        else:
            run_details(run, store.get)
    except Exception as exc:
        show_error(exc)

# ---- all shown runs, downloads ------------------------------------------------------------------------
st.subheader("Runs")
table = table_frame(shown, front)
st.dataframe(table, hide_index=True, width="stretch", key="explorer_table", column_config=table_columns())
shown_ids = [int(i) for i in shown["id"]]


def report() -> str:
    """Built only when the button is pressed (several MB: plotly.js is inlined so it opens offline)."""
    keep = set(shown_ids)
    return report_html([r for r in store.runs(dataset=sel.dataset) if r["id"] in keep],
                       title=f"Compression Explorer report: {sel.dataset}",
                       description=f"{len(keep):,} runs as shown in the Pareto explorer.")


d = st.columns(2)
d[0].download_button(f"Download these {len(table):,} runs (CSV)", lambda: table.to_csv(index=False).encode(),
                     file_name=f"runs-{sel.dataset}.csv", mime="text/csv", key="explorer_csv",
                     icon=":material/table:")
d[1].download_button("Download a report (HTML, opens offline)", report, file_name=f"report-{sel.dataset}.html",
                     mime="text/html", key="explorer_report", icon=":material/description:",
                     help="Interactive charts for every x-axis, the frontier tables and every run's config, in one file.")
save_url_state(sel.dataset)
