"""Search (at the old Budget search URL): a multi-objective Optuna study of pruning, quantization and
prune -> quantize configurations, for the front of accuracy against stored bytes, MACs or latency,
optionally under a hard budget. Every trial is measured and stored as a run; studies continue by name."""

import streamlit as st

from compression import CompressionError
from compression.charts.format import fmt_bytes, fmt_change, fmt_count, fmt_ms, plural
from compression.search import SEARCH_METHODS, SearchConfig
from ui import cluster as ui_cluster
from ui import jobs
from ui import search as ui_search
from ui.sidebar import load_selection, show_error, sidebar

st.set_page_config(page_title="Search · Compression Explorer", layout="wide")
sel = sidebar()
st.title("Search")
st.caption("Find the front of accuracy against one cost: each trial is a pruning, quantization or prune -> quantize "
           "configuration, measured and stored as a run. Stored bytes and MACs are predicted before a trial runs: "
           "one over a hard budget is not evaluated (greyed). The budget solver's candidates run first, best-predicted "
           "first, then Optuna's. A study is kept on disk: give its name again to continue it.")
data, base = load_selection(sel)
clu = ui_cluster.cluster()
ui_cluster.show(clu)

UNITS = {"size_bytes": "stored size (KiB)", "macs": "MACs per image (millions)", "latency_ms": "batch-1 latency (ms)"}
SCALE = {"size_bytes": 1024, "macs": 1e6, "latency_ms": 1.0}
FMT = {"size_bytes": fmt_bytes, "macs": fmt_count, "latency_ms": fmt_ms}
NEW = "New study"

known = ui_search.studies()
c0, c1 = st.columns([2, 3])
pick = c0.selectbox("Study", [NEW] + sorted(known), key="search_study_pick",
                    help="A new study, or one in the storage to continue (its trials so far count).")
if pick == NEW:
    objective = c1.radio("Objective: minimize, beside accuracy", list(UNITS), key="search_objective", horizontal=True,
                         format_func=lambda m: UNITS[m].split(" (")[0])
    name = c1.text_input("Study name", value=ui_search.fresh_name(sel.model, objective, known),
                         key=f"search_name_{sel.model}_{objective}").strip()
else:
    name, objective = pick, known[pick]["objective"] or "size_bytes"
prior = len(ui_search.complete_rows(name)) if name in known else 0
if name in known:
    c1.caption(f"Continues **{name}**: minimizes {UNITS[objective].split(' (')[0]}, {prior} complete trials so far.")

c2, c3, c4, c5 = st.columns([2, 2, 3, 2])
use_budget = c2.checkbox("Hard budget", value=True, key="search_use_budget",
                         help="Bytes or MACs over it: predicted before the trial runs, not evaluated. Latency over it: "
                              "measured, ranked after every trial that fits.")
default = base[objective] / SCALE[objective] / (8 if objective == "size_bytes" else 2)
amount = c3.number_input(UNITS[objective], min_value=0.001, value=float(f"{default:.3g}"), disabled=not use_budget,
                         key=f"search_budget_{objective}_{sel.model}",
                         help=f"The uncompressed model: {FMT[objective](base[objective])}.")
methods = c4.multiselect("Methods allowed", list(SEARCH_METHODS), default=["prune", "quantize"], key="search_methods",
                         help="Both: also pruning followed by quantization. deep-compression: prune -> fine-tune -> "
                              "cluster (+ Huffman) -> centroid fine-tuning, with its own knobs.")
trials = c5.number_input("Trials to run", 1, 500, 12, key="search_trials",
                         help="Evaluated trials added to the study's (configurations predicted over the budget "
                              "are listed, not counted).")
c6, c7, c8, c9, c10 = st.columns([2, 2, 2, 2, 2])
sampler = c6.radio("Sampler", ["tpe", "nsga2"], key="search_sampler", horizontal=True,
                   format_func=lambda s: {"tpe": "TPE", "nsga2": "NSGA-II"}[s])
epochs = c7.number_input("Fine-tuning epochs after pruning", 0, 5, 0, key="search_epochs",
                         help="0: one-shot pruning (fast). More: better accuracy, slower trials.")
subset = c8.select_slider("Fine-tuning images", ["1,000", "5,000", "all"], value="5,000", key="search_subset",
                          disabled=not epochs)
limit = c9.select_slider("Test images per trial", ["500", "2,000", "all"], value="all", key="search_limit",
                         help="Fewer: quicker trials, noisier accuracy.")
grid_first = c10.checkbox("Solver's candidates first", value=True, key="search_grid", disabled=name in known,
                          help="A new study first evaluates the budget solver's configurations predicted to fit, "
                               "best-predicted first (without a budget: one per halving of the cost), then the "
                               "sampler's own.")
try:
    if not name:
        raise CompressionError("give the study a name")
    cfg = SearchConfig(objective=objective, budget=amount * SCALE[objective] if use_budget else None,
                       methods=tuple(methods), trials=prior + int(trials), sampler=sampler, finetune_epochs=int(epochs),
                       subset=None if not epochs or subset == "all" else int(subset.replace(",", "")),
                       grid_first=grid_first)
except CompressionError as exc:
    show_error(exc)
    st.stop()
if cfg.budget is not None:
    st.caption(f"Budget {FMT[objective](cfg.budget)} ({fmt_change(cfg.budget, base[objective], objective).text} "
               f"than the uncompressed {FMT[objective](base[objective])}); {plural(trials, 'trial')} with {clu.width} at a time.")

if st.button("Search", key="search_run", type="primary", disabled=not methods):
    ui_search.start(sel.model, sel.dataset, sel.device, cfg, name, base=base, executor=clu.executor,
                    limit=None if limit == "all" else int(limit.replace(",", "")), runtime=sel.runtime)
jobs.panel(ui_search.JOB, lambda job: ui_search.show_live(job, clu.width), ui_search.show_final)
