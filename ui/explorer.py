"""The Pareto explorer page's Streamlit side: its state in the URL, the cached frame of stored
runs, and the details of one run (metrics against its baseline, pipeline path, artifact)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import streamlit as st

from compression.charts.format import NO_CHANGE, UNRELIABLE
from compression.charts.glossary import explain
from compression.charts.pareto import explorer_frame
from compression.charts.run_detail import comparison_frame, path_frame
from compression.pareto import COSTS, pipeline_path
from ui import results
from ui.downloads import model_download

# session key -> (URL parameter, default); a value equal to its default is left out of the URL
URL_STATE: dict[str, tuple[str, Any]] = {
    "explorer_x": ("x", "size_bytes"),
    "explorer_log": ("log", True),
    "explorer_sim": ("sim", False),
    "explorer_models": ("models", []),
    "explorer_methods": ("methods", []),
    "explorer_devices": ("devices", []),
    "explorer_runtimes": ("runtimes", []),  # where latency was timed (eager, compile, onnxruntime)
    "explorer_dates": ("dates", ()),
    "explorer_run": ("run", None),
    "explorer_cmp": ("cmp", ""),  # the compare view: "12,base" (run 12 against its baseline) or "12,15"
    "explorer_hidden": ("hidden", False),  # show hidden runs too
    "explorer_tags": ("tags", []),  # runs with any of these tags (tags have no commas)
    "explorer_story": ("story", False),  # the story view: the starred runs, with their names; without
    #                                      "story" in the URL, on when runs are starred (story_default)
    "explorer_owners": ("owners", []),  # who made the runs (e-mails have no commas)
}
FILTER_KEYS = {"explorer_models": "model", "explorer_methods": "method", "explorer_devices": "device",
               "explorer_runtimes": "runtime", "explorer_owners": "made by", "explorer_dates": "dates",
               "explorer_tags": "tags", "explorer_hidden": "hidden runs shown",
               "explorer_sim": "simulated gains on the frontier"}


def _decode(text: str, default: Any) -> Any:
    try:
        if default == "":  # the compare view's pair
            a, _, b = text.partition(",")
            return f"{int(a)},{'base' if b in ('', 'base') else int(b)}"
        if isinstance(default, bool):
            return text in ("1", "true", "yes")
        if isinstance(default, list):
            return [v for v in text.split(",") if v]
        if isinstance(default, tuple):  # dates: "2024-05-01..2024-05-31" or "2024-05-01.."
            first, _, last = text.partition("..")
            days = [dt.date.fromisoformat(d) for d in (first, last) if d]
            return tuple(days) if first else ()
        if default is None:
            return int(text)
        return text if text in COSTS else default
    except ValueError:
        return default  # a hand-edited link with a bad value: fall back, don't fail


def _encode(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, tuple):
        return "..".join(d.isoformat() for d in value) + (".." if len(value) == 1 else "")
    return str(value)


def restore_url_state() -> None:
    """On the page's first run in a session (its widgets not yet in session state), take the
    axes, filters, selection and dataset from the URL, so a shared link reproduces the view."""
    if "explorer_x" in st.session_state:
        return
    params = st.query_params
    if "dataset" in params:
        st.session_state["keep_sidebar_dataset"] = params["dataset"]  # the sidebar's kept choice
    for key, (name, default) in URL_STATE.items():
        if name in params:
            st.session_state[key] = _decode(params[name], default)
        elif key not in ("explorer_dates", "explorer_story"):  # dates: from `value`; story: story_default
            st.session_state[key] = default


def story_default(df: pd.DataFrame) -> bool:
    """The explorer opens on the story (the starred runs, named) when any shown run is starred."""
    return bool((df["starred"] & ~df["hidden"]).any()) if len(df) else False


def open_on_story(df: pd.DataFrame) -> None:
    """Without "story" in the URL, the story view is on when runs are starred."""
    if "explorer_story" not in st.session_state:
        st.session_state["explorer_story"] = story_default(df)


def save_url_state(dataset: str, *, story: bool = False) -> None:
    """Write the current view into the URL (only what differs from the defaults). The story view is
    written whenever it is on, and as off ("story=0") where it would open on (`story`: runs are
    starred, story_default), so a link keeps its view when runs are starred or unstarred later."""
    wanted = {"dataset": dataset}
    for key, (name, default) in URL_STATE.items():
        if key == "explorer_story":
            on = bool(st.session_state.get(key, story))
            if on or story:  # on: always said; off: where the page would open on it
                wanted[name] = _encode(on)
            continue
        value = st.session_state.get(key, default)
        if isinstance(value, list) or isinstance(default, tuple):
            value = type(default)(value or ())
        if value != default and value is not None:
            wanted[name] = _encode(value)
    if dict(st.query_params) != wanted:
        st.query_params.from_dict(wanted)


def run_choice_id(key: str) -> None:
    """A run picker's choice as its run id again after the run was renamed: a selectbox's browser
    side sends back the label it showed ("run 12 · “old name” · ..."), which is no longer an option
    once the label has changed, and would drop the choice."""
    import re
    value = st.session_state.get(key)
    match = re.match(r"run (\d+) · ", value) if isinstance(value, str) else None
    if match:
        st.session_state[key] = int(match.group(1))


def keep_valid(key: str, options: list) -> None:
    """Drop choices no longer offered (a link from another store, a filtered-out run)."""
    value = st.session_state.get(key)
    if isinstance(value, list):
        st.session_state[key] = [v for v in value if v in options]
    elif value is not None and value not in options:
        st.session_state[key] = None


def load_frame(store, dataset: str) -> pd.DataFrame:
    """Every stored run of the dataset, hidden ones too (the page filters them), as the explorer's
    frame; rebuilt only when the store changed (runs added, named, tagged, starred, hidden or
    deleted: RunStore.revision)."""
    return _frame(str(store.path), dataset, store.revision())


@st.cache_data(max_entries=8, show_spinner="Reading the run store…")
def _frame(path: str, dataset: str, revision: tuple) -> pd.DataFrame:
    from compression.store import RunStore
    return explorer_frame(RunStore(path).runs(dataset=dataset, include_hidden=True))


def view(store, dataset: str, rows: pd.DataFrame, what: str, *args, **kwargs):
    """`what` (pareto_chart, story_chart, table_frame or frontier_table) of `rows`, built once per
    store revision, rows and arguments and shared by every session: with 10,000 runs the chart
    takes about 0.5 s to build and validate and the tables 0.1 s, and any click on the page reruns
    the script. Read only (Streamlit copies what it sends)."""
    def frozen(v):
        return tuple(v) if isinstance(v, (list, tuple)) else v
    ids = hashlib.sha256(rows["id"].to_numpy(dtype="int64").tobytes()).hexdigest()  # hashed by us: fast
    key = (str(store.path), dataset, store.revision(), ids, what, repr(tuple(frozen(a) for a in args)),
           repr(tuple((k, frozen(v)) for k, v in sorted(kwargs.items()))))
    return _view(key, rows, args, kwargs)


@st.cache_resource(max_entries=16, show_spinner=False)
def _view(key: tuple, _rows: pd.DataFrame, _args: tuple, _kwargs: dict):
    from compression.charts import pareto, story
    build = {"pareto_chart": pareto.pareto_chart, "story_chart": story.story_chart,
             "table_frame": pareto.table_frame, "frontier_table": pareto.frontier_table}[key[4]]
    return build(_rows, *_args, **_kwargs)


def table_columns() -> dict:
    """Display formats of the runs tables (the numbers stay numbers, so sorting is numeric), with
    the glossary's words as the columns' help icons."""
    pct = st.column_config.NumberColumn(format="%.2f")
    ci = st.column_config.NumberColumn(format="%.2f", help=explain("interval (95 % CI)"))
    latency = explain(NO_CHANGE, UNRELIABLE, "simulated")
    return {"created (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
            "accuracy (%)": pct, "95% CI low (%)": ci, "95% CI high (%)": ci,
            "name": st.column_config.TextColumn(help="The run's name, else what it did in a few words."),
            "config": st.column_config.TextColumn(help="What the run did, in a few words; its full config is in "
                                                       "its details and in the report."),
            "x smaller than baseline": st.column_config.NumberColumn(format="%.2fx"),
            "size vs baseline": st.column_config.TextColumn(help=explain("stored size", "simulated")),
            "latency vs baseline": st.column_config.TextColumn(help=latency),
            "MACs vs baseline": st.column_config.TextColumn(help=explain("MACs", "simulated")),
            "accuracy change (points)": st.column_config.NumberColumn(format="%+.2f"),
            "latency (ms)": st.column_config.NumberColumn(format="%.3f"),
            "runtime": st.column_config.TextColumn(help="Where latency was timed: eager, compile (torch.compile) or "
                                                        "onnxruntime; runs stored before runtimes were recorded: eager."),
            "on frontier": st.column_config.CheckboxColumn(help=explain("Pareto frontier")),
            "MACs / image": st.column_config.NumberColumn(format="%,.0f", help=explain("MACs"))}


def filters(df: pd.DataFrame) -> dict[str, Any]:
    """The filters, folded away in an expander whose title says which are on (the chart and the story
    come first): model, method, device, runtime, who made the runs, dates, tags, hidden runs,
    simulated gains. Returns filter_frame's keyword arguments plus `with_sim` (simulated gains on
    the frontier)."""
    for key, col in (("explorer_models", "model"), ("explorer_methods", "method"), ("explorer_devices", "device"),
                     ("explorer_runtimes", "runtime"), ("explorer_owners", "owner")):
        keep_valid(key, sorted(df[col].unique()))
    all_tags = sorted({t for tags in df["tags"] for t in tags})
    keep_valid("explorer_tags", all_tags)
    on = [word for key, word in FILTER_KEYS.items() if st.session_state.get(key)]
    # keyed: its identity is the key, so it stays open while its title follows the filters
    with st.expander("Filters" + (f" (on: {', '.join(on)})" if on else ": all runs"), expanded=False,
                     key="explorer_filters", icon=":material/filter_list:"):
        f = st.columns([1, 1, 1, 1, 1, 1.5])
        out = dict(
            models=f[0].multiselect("Model", sorted(df["model"].unique()), key="explorer_models", placeholder="all models"),
            methods=f[1].multiselect("Method", sorted(df["method"].unique()), key="explorer_methods",
                                     placeholder="all methods"),
            devices=f[2].multiselect("Device", sorted(df["device"].unique()), key="explorer_devices",
                                     placeholder="all devices"),
            runtimes=f[3].multiselect("Latency runtime", sorted(df["runtime"].unique()), key="explorer_runtimes",
                                      placeholder="all runtimes", help="Where each run's latency was timed (its "
                                      "baseline on the same runtime). Latencies are comparable only within one runtime."),
            owners=f[4].multiselect("Made by", sorted(df["owner"].unique()), key="explorer_owners", placeholder="anyone",
                                    help="Who made each run: the signed-in user, or local (the app without sign-in, "
                                         "the CLI's --user or OS user name)."),
            dates=f[5].date_input("Created between (UTC)", value=(), key="explorer_dates", format="YYYY-MM-DD",
                                  help="Pick a first and a last day; leave empty for any date."))
        g = st.columns([3, 2, 3])
        out["tags"] = g[0].multiselect("Tags", all_tags, key="explorer_tags",
                                       placeholder="any tag (runs with any of those chosen)")
        out["hidden"] = g[1].toggle("Show hidden runs", key="explorer_hidden", help="Hidden runs stay in the store; "
                                    "they are left out of the chart, tables, CSV and report.")
        out["with_sim"] = g[2].toggle(
            "Simulated gains on the frontier", key="explorer_sim",
            help="By default the frontier on an axis uses every run whose number on that axis is real: an "
                 "unstructured prune counts on stored size (its sparse file is real) but not on latency (it runs "
                 "dense kernels). Switch on to let simulated numbers in too.\n\n" + explain("simulated"))
    return out


def compared_pair() -> tuple[int, int | None] | None:
    """The compare view's pair on screen: (run, other run or None for its baseline), or None."""
    from ui.compare import PAIR, _parse
    a, b = _parse(st.session_state.get(PAIR, ""))
    return None if a is None else (a, None if isinstance(b, str) else b)


def resolve_artifact(path: str | None) -> Path | None:
    """The artifact file of a run if it still exists (as written, or under the app's data folder)."""
    from compression.run_labels import artifact_file
    return artifact_file(path)


def run_details(run: dict, lookup: Callable[[int], dict | None], store=None) -> None:
    """Config, metrics against the uncompressed model, the pipeline path and the artifact download;
    with the `store`, the controls to name, tag, star, hide or delete the run."""
    created = dt.datetime.fromtimestamp(run["created_at"], dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    named = f" “{run['name']}”" if run.get("name") else ""
    st.markdown(f"**Run {run['id']}**{named}: `{run['method']}` on **{run['model']}** ({run['dataset']}), "
                f"measured on `{run['device']}` at {created}, code `{run['code_version']}`"
                + (f", made by `{run['group_id']}`" if run.get("group_id") else "")
                + f", owner **{run.get('owner') or 'local'}**.")
    if store is not None:
        from ui.run_manage import manage_run
        manage_run(run, store)
    results.sanity_note(run)
    results.honesty_note(run)
    left, right = st.columns([3, 2])
    with left:
        st.dataframe(comparison_frame(run), hide_index=True, width="stretch")
        if not run.get("baseline"):
            st.caption("No uncompressed baseline was recorded with this run.")
    with right:
        st.caption("Config")
        st.json(run["config"], expanded=True)
        if run.get("extra"):
            st.caption("Method details")
            st.json(run["extra"], expanded=False)
    path = pipeline_path(run["id"], lookup)
    if len(path) > 1:
        st.caption(f"Pipeline: {len(path)} steps, drawn as a dotted line on the chart")
        st.dataframe(path_frame(path), hide_index=True, width="stretch")
    # the file is read when the button is clicked (a callable), and the click does not rerun the
    # page, so it is served from this run of the script: a second click works too
    model_download(f"explorer_artifact_{run['id']}", run, what="compressed model")


def choice_labels(df: pd.DataFrame, ids) -> dict[int, str]:
    """{run id: its picker label (the name, else what the run did)} for the runs of `df` in `ids`."""
    from compression.run_labels import run_choice
    rows = df[df["id"].isin(list(ids))]
    return {int(r["id"]): run_choice(r)
            for r in rows[["id", "name", "method", "config", "model", "accuracy"]].to_dict("records")}


def run_picker(shown: pd.DataFrame, frontier: list[int], selected: int | None) -> int | None:
    """The run picker of the details: every shown run when they are few (compression.charts.
    explorer_scale.PICKER_MAX), else the frontier, the selected run and the newest, beside a run-id
    box that selects any shown run (the chart, table and CSV have them all). Returns the run picked."""
    from compression.charts.explorer_scale import picker_ids
    offered = picker_ids(shown, frontier=frontier, keep=[selected])
    labels = choice_labels(shown, offered)  # a rename keeps the choice: run_choice_id
    capped = len(offered) < len(shown)
    c = st.columns([4, 1]) if capped else [st.container()]
    picked = c[0].selectbox("Run", offered, key="explorer_run", format_func=labels.get, index=None,
                            placeholder="Click a marker on the chart, or pick a run here")
    if capped:
        c[1].number_input("Run id", min_value=1, step=1, value=None, key="explorer_run_id", placeholder="any run",
                          on_change=_go_to_run, args=(frozenset(int(i) for i in shown["id"]),),
                          help="Select any shown run by its id (the table and the CSV list them all).")
        st.caption(f"The picker lists {len(offered):,} of the {len(shown):,} shown runs (the frontier, the "
                   "selected run and the newest; type to search them): type any run's id in the box beside it.")
    return picked


def _go_to_run(ids: frozenset[int]) -> None:
    """The run-id box: select that run, or say it is not among the shown runs."""
    value = st.session_state.get("explorer_run_id")
    if value is None:
        return
    st.session_state["explorer_run_id"] = None  # emptied: the same id typed again selects it again
    if int(value) in ids:
        st.session_state["explorer_run"] = int(value)
    else:
        from ui.run_manage import FLASH
        st.session_state[FLASH] = ("error", f"Run {int(value)} is not among the shown runs (check the filters).")


def table_rows(shown: pd.DataFrame) -> pd.DataFrame:
    """The runs table's rows: every shown run when they fit one page (explorer_scale.TABLE_PAGE),
    else one page of them, newest first, with a page box and a caption saying how many are shown
    and that the CSV has them all."""
    from compression.charts.explorer_scale import TABLE_PAGE, table_page
    pages = max(1, -(-len(shown) // TABLE_PAGE))
    if pages == 1:
        return table_page(shown)[0]
    key = "explorer_table_page"
    if st.session_state.get(key, 1) > pages:  # fewer runs since (a filter): the last page
        st.session_state[key] = pages
    c = st.columns([1, 5])
    page = c[0].number_input(f"Page (of {pages})", min_value=1, max_value=pages, step=1, key=key)
    rows, _ = table_page(shown, page)
    first = (page - 1) * TABLE_PAGE + 1
    c[1].caption(f"Runs {first:,}–{first + len(rows) - 1:,} of the {len(shown):,} shown, newest first "
                 f"({TABLE_PAGE:,} a page; a column's sort orders this page). The CSV download below has all "
                 f"{len(shown):,}.")
    return rows
