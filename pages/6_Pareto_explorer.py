"""Pareto explorer: every stored run of the dataset, accuracy against a cost of your choice, the
frontier of the best trade-offs, filters, one run in detail, two runs compared image by image,
the knobs of every shown run, and a report to send around.
The view (axes, filters, selection) lives in the URL: copy the link to share it."""

import streamlit as st

from compression.charts.compare import parallel_chart
from compression.charts.explorer_scale import DRAWN_MAX, PARALLEL_MAX, drawn_runs, parallel_runs, shown_words
from compression.charts.export import csv_frame
from compression.charts.format import NO_CHANGE, UNRELIABLE, fmt_pct, plural
from compression.charts.glossary import explain, glossary_markdown
from compression.charts.pareto import AXIS_TITLES, filter_frame, frontier_ids, run_id_of, simulated_on
from compression.charts.story import STORY_ORDER, story_table
from compression.honesty import METRIC_WORDS
from compression.pareto import COSTS, pipeline_path
from compression.report import report_html
from compression.run_labels import run_title
from ui import cache
from ui.compare import compare_section
from ui.explorer import (compared_pair, filters, keep_valid, load_frame, open_on_story, restore_url_state,
                         run_choice_id, run_details, run_picker, save_url_state, story_default, table_columns,
                         table_rows, view)
from ui.run_manage import flash
from ui.share_view import share_box
from ui.sidebar import show_error, sidebar

st.set_page_config(page_title="Pareto explorer", layout="wide")
restore_url_state()
sel = sidebar()
flash()  # what the last change to a run did

st.title("Pareto explorer")
t = st.columns([6, 1])
t[0].caption("Every stored run for the dataset: test accuracy (bars: 95% confidence interval) against what it "
             "costs. The dashed step line is the Pareto frontier: the best trade-offs. Click a marker (or pick a "
             "run below) for its details.")
with t[1].popover("Glossary", icon=":material/help:"):
    st.markdown(glossary_markdown())

try:
    store = cache.run_store()
    df = load_frame(store, sel.dataset)
except Exception as exc:  # an unreadable store is a message, not a dead page
    show_error(exc)
    st.stop()
if df.empty:
    st.info(f"No runs stored for **{sel.dataset}** yet. Every page and every `python -m compression ... "
            "--json` command stores its results; they appear here, one marker each.")
    save_url_state(sel.dataset, story=story_default(df))
    st.stop()

# ---- the view, then the filters folded away (all kept in the URL) -------------------------------------
open_on_story(df)  # starred runs: the explorer opens on their story
c = st.columns([2, 1, 3])
cost = c[0].selectbox("x-axis", list(COSTS), key="explorer_x", format_func=AXIS_TITLES.get,
                      help=explain("stored size", "MACs") + "\n\nLatency: one image at a time, median of timed runs.")
log_x = c[1].toggle("Log scale", key="explorer_log")
story = c[2].toggle("Story view: starred runs only", key="explorer_story",
                    help="The runs a reviewer follows: only the starred ones, labelled with their names, and a "
                         "table of them against their baselines. Star a run in its details below.")
chosen = filters(df)
with_sim, with_hidden = chosen.pop("with_sim"), chosen["hidden"]
shown = filter_frame(df, **chosen, starred_only=story)
visible = df if with_hidden else df[~df["hidden"]]
n_hidden = int(df["hidden"].sum())
if shown.empty:
    st.warning(f"None of the {plural(len(df), 'stored run')} matches these filters" + (
        " and is starred: switch the story view off, pick a run below the chart and star it." if story else "."))
    save_url_state(sel.dataset, story=story_default(df))
    st.stop()

front = frontier_ids(shown, cost, include_simulated=with_sim)
run_choice_id("explorer_run")  # a renamed run stays chosen
keep_valid("explorer_run", [int(i) for i in shown["id"]])
selected = st.session_state.get("explorer_run")
path = [int(r["id"]) for r in pipeline_path(selected, store.get)] if selected is not None else []
draw_all = story or len(shown) <= DRAWN_MAX or st.toggle(
    f"Draw all {len(shown):,} runs", key="explorer_draw_all",
    help=f"The chart draws {DRAWN_MAX:,} of them: every frontier, starred and uncompressed run, the selected run "
         "with its pipeline and a fixed sample of the rest. All of them take longer to draw (WebGL).")
drawn = shown if draw_all else drawn_runs(shown, front, [selected, *path])


def pick_from_chart() -> None:
    """A click on a marker selects that run (before the script reruns, so the selectbox follows)."""
    ids = [run_id_of(p) for p in st.session_state["explorer_chart"]["selection"]["points"]]
    ids = [i for i in ids if i is not None]
    if ids:
        st.session_state["explorer_run"] = ids[0]


fig = (view(store, sel.dataset, shown, "story_chart", cost, log_x=log_x, frontier=front, selected=selected) if story
       else view(store, sel.dataset, drawn, "pareto_chart", cost, log_x=log_x, frontier=front, path=path, selected=selected))
st.plotly_chart(fig, key="explorer_chart", on_select=pick_from_chart, selection_mode="points", width="stretch")
n_sim = int(simulated_on(shown, cost).sum())
if cost == "latency_ms" and shown["runtime"].nunique() > 1:  # a frontier across runtimes mixes what it compares
    st.caption(f"These latencies were timed on {', '.join(sorted(shown['runtime'].unique()))} (the table's runtime "
               "column): each run against its baseline on its own runtime, but not comparable across runtimes. "
               "Pick one under Filters, Latency runtime, to compare like with like.")
st.caption(f"{len(shown):,} of {plural(len(df), 'run')} shown · {plural(shown['model'].nunique(), 'model')} · "
           f"{len(front)} on the frontier"
           + (f" · {n_sim} hollow: {METRIC_WORDS[cost]} simulated for that run" if n_sim else "")
           + " · black stars: uncompressed models" + (f" · {n_hidden} hidden" if n_hidden and not with_hidden else "")
           + "." + (f" The chart draws {len(drawn):,} of them: every frontier, starred and uncompressed run, the selected "
                    "one and a fixed sample of the rest (the frontier, tables and CSV use all; “Draw all” draws each)."
                    if len(drawn) < len(shown) else ""))
if story:
    st.subheader("The story: starred runs against their baselines",
                 help=explain(NO_CHANGE, UNRELIABLE, "simulated", "interval (95 % CI)"))
    st.dataframe(story_table(shown), hide_index=True, width="stretch", key="explorer_story_table",
                 column_config=table_columns(), column_order=STORY_ORDER)  # what a reader wants first

# ---- the frontier ---------------------------------------------------------------------------------
st.subheader(f"Pareto frontier: accuracy against {COSTS[cost][0]}", help=explain("Pareto frontier"))
if front:
    best = shown.set_index("id").loc[front[-1]]
    st.markdown(f"{plural(len(front), 'run')}, cheapest first. The most accurate is run {front[-1]}, "
                f"“{run_title(best.to_dict())}” ({best['method']} of {best['model']}, {fmt_pct(best['accuracy'])}).")
    st.dataframe(view(store, sel.dataset, shown, "frontier_table", front), hide_index=True, width="stretch",
                 key="explorer_frontier_table", column_config=table_columns())
else:
    st.caption(f"No run qualifies (every shown run's {METRIC_WORDS[cost]} is simulated; switch on "
               "“Simulated gains on the frontier”).")

# ---- one run in detail --------------------------------------------------------------------------------
st.subheader("Run details")
picked = run_picker(shown, front, selected)  # with many runs: the frontier, the newest, and a run-id box
if picked is not None:
    try:
        run = store.get(picked)
        if run is None:
            st.warning(f"Run {picked} is no longer in the store.")
        else:
            run_details(run, store.get, store)
    except Exception as exc:
        show_error(exc)

# ---- two runs compared image by image; every shown run's knobs; a review link -------------------------
compare_section(store, visible, picked, front)
share_box(store, [int(i) for i in shown[shown["starred"]]["id"]], compared_pair(), f"Review: {sel.dataset}")
st.subheader("Knobs and metrics of the shown runs")
# folded, built when opened: plotly draws it by WebGL, which took 1.2 s of a 50-run page's 2.7 s and 2 of a 1,000-run
# page's 4 s in Chromium without a GPU; at most PARALLEL_MAX lines (the frontier's and the newest)
lines = min(len(shown), PARALLEL_MAX)
knobs = st.expander(f"Parallel coordinates of {shown_words(lines, len(shown), 'shown runs')} (drawn when opened)",
                    key="explorer_knobs", on_change="rerun", icon=":material/timeline:")
if knobs.open:
    with knobs:
        st.plotly_chart(parallel_chart(parallel_runs(shown, front)), key="explorer_parallel", width="stretch")
        if lines < len(shown):
            st.caption(f"{PARALLEL_MAX:,} of the {len(shown):,} shown runs drawn here: the frontier's and the "
                       "newest (the chart above and the table below have them all).")

# ---- all shown runs, downloads ------------------------------------------------------------------------
st.subheader("Runs")
table = view(store, sel.dataset, table_rows(shown), "table_frame", front)  # many runs: a page, and a caption
st.dataframe(table, hide_index=True, width="stretch", key="explorer_table", column_config=table_columns())
shown_ids = [int(i) for i in shown["id"]]


def report() -> str:
    """Built only when the button is pressed (several MB: plotly.js is inlined so it opens offline)."""
    keep = set(shown_ids)
    return report_html([r for r in store.runs(dataset=sel.dataset, include_hidden=True) if r["id"] in keep], store=store,
                       title=f"Compression Explorer report: {sel.dataset}",
                       description=f"{plural(len(keep), 'run')} as shown in the Pareto explorer.")


d = st.columns(2)
d[0].download_button(f"Download {'this run' if len(shown) == 1 else f'these {len(shown):,} runs'} (CSV)", lambda: csv_frame(shown, front).to_csv(index=False).encode(),
                     file_name=f"runs-{sel.dataset}.csv", mime="text/csv", key="explorer_csv", on_click="ignore",
                     icon=":material/table:")
d[1].download_button("Download a report (HTML, opens offline)", report, file_name=f"report-{sel.dataset}.html",
                     mime="text/html", key="explorer_report", on_click="ignore", icon=":material/description:",
                     help="Interactive charts for every x-axis, the frontier tables and every run's config, in one file.")
save_url_state(sel.dataset, story=story_default(df))
