"""The Pareto explorer's compare view (Streamlit side): pick two runs (by default the selected run
and its baseline), then agreement, per-class accuracy, where errors moved, the flipped images and
the per-layer statistics. The pair lives in session state "explorer_cmp" ("12,base" or "12,15"),
which ui.explorer keeps in the URL as `cmp`."""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import streamlit as st

from compression import CompressionError
from compression.charts.compare import confusion_diff_chart, flip_rows, layer_frame, per_class_chart, thumbnail
from compression.charts.explorer_scale import picker_ids
from compression.charts.format import fmt_pct
from compression.compare import pair_names
from ui import cache
from ui.explorer import choice_labels, run_choice_id
from ui.sidebar import show_error

PAIR, RUN_A, RUN_B = "explorer_cmp", "explorer_cmp_a", "explorer_cmp_b"
BASE = "base"
MAX_THUMBNAILS = 48


def _parse(pair: str) -> tuple[int | None, int | str]:
    a, _, b = (pair or "").partition(",")
    try:
        return int(a), (BASE if b in ("", BASE) else int(b))
    except ValueError:
        return None, BASE


@st.cache_data(max_entries=16, show_spinner="Comparing the two runs image by image…")
def _compare(path: str, a: int, b: int | None, version: int) -> dict:
    """Both runs' predictions and their comparison (b None: run a against its baseline model, which
    is evaluated here). `version` changes when predictions were added (a re-evaluation)."""
    from compression.compare import compare_loaded, load_pair
    from compression.store import RunStore
    run_a, pred_a, run_b, pred_b = load_pair(a, b, store=RunStore(path), device="cpu")
    return {"cmp": compare_loaded(run_a, pred_a, run_b, pred_b), "run_a": run_a, "run_b": run_b,
            "pred_a": pred_a.predicted, "pred_b": pred_b.predicted}


def _ask_reevaluate(store, run: dict) -> None:
    from compression.compare import missing_predictions_reason
    st.warning(f"Run {run['id']}: {missing_predictions_reason(run)}.", icon="ℹ️")
    source = "evaluate its model again" if run.get("method") == "baseline" else "load its artifact"
    if not run.get("artifact_path") and run.get("method") != "baseline":
        return  # nothing to re-evaluate: the reason says so
    if st.button(f"Re-evaluate run {run['id']} ({source}, predict {run['accuracy_n']:,} test images)",
                 key=f"explorer_cmp_reeval_{run['id']}", icon=":material/refresh:"):
        from compression.compare import reevaluate
        try:
            with st.spinner(f"Re-evaluating run {run['id']}…"):
                reevaluate(run, store=store)
            st.session_state["explorer_cmp_version"] = st.session_state.get("explorer_cmp_version", 0) + 1
            st.rerun()
        except CompressionError as exc:
            show_error(exc)


def compare_section(store, df: pd.DataFrame, selected: int | None, frontier: Sequence[int] = ()) -> None:
    """The picker and, once a run is picked, the comparison. With many runs the pickers offer the
    frontier, the selected run, the pair in use and the newest (explorer_scale.picker_ids): any other
    run is compared by selecting it first ("Run N vs its baseline", or as B once it is in the pair)."""
    if RUN_A not in st.session_state:  # first render: the pair from the URL
        st.session_state[RUN_A], st.session_state[RUN_B] = _parse(st.session_state.get(PAIR, ""))
    for key in (RUN_A, RUN_B):  # a renamed run stays chosen (its label changed)
        run_choice_id(key)
    ids = picker_ids(df, frontier=frontier, keep=[selected, st.session_state[RUN_A], st.session_state.get(RUN_B)])
    labels = choice_labels(df, ids)
    if st.session_state[RUN_A] not in ids:
        st.session_state[RUN_A] = None
    if st.session_state.get(RUN_B) not in [BASE, *ids]:
        st.session_state[RUN_B] = BASE

    st.subheader("Compare two runs")
    c = st.columns([5, 5, 3])
    a = c[0].selectbox("Run", ids, key=RUN_A, format_func=labels.get, index=None,
                       placeholder="Pick a run to see what its compression changed")
    b = c[1].selectbox("against", [BASE, *ids], key=RUN_B,
                       format_func=lambda v: "its baseline model (uncompressed)" if v == BASE else labels[v])
    if selected is not None and (a, b) != (selected, BASE):
        c[2].button(f"Run {selected} vs its baseline", key="explorer_cmp_selected", icon=":material/compare_arrows:",
                    on_click=lambda: st.session_state.update({RUN_A: selected, RUN_B: BASE}))
    if len(ids) < len(df):
        st.caption(f"These pickers list {len(ids):,} of {len(df):,} runs (the frontier, the selected run, this pair "
                   "and the newest): select any other run by its id under Run details, then compare it here.")
    st.session_state[PAIR] = "" if a is None else f"{a},{b}"
    if a is None:
        return
    missing = [r for r in (store.get(a), None if b == BASE else store.get(b))
               if r is not None and store.predictions(r["id"]) is None]
    for run in missing:
        _ask_reevaluate(store, run)
    if missing:
        return
    try:
        out = _compare(str(store.path), a, None if b == BASE else b, st.session_state.get("explorer_cmp_version", 0))
    except CompressionError as exc:
        show_error(exc)
        return
    # the names as they are now (the comparison is cached; a run may have been renamed since)
    now = {r["id"]: r for r in (store.get(a), None if b == BASE else store.get(b)) if r is not None}
    runs = [{**r, "name": now.get(r.get("id"), r).get("name")} for r in (out["run_a"], out["run_b"])]
    out["cmp"]["name_a"], out["cmp"]["name_b"] = pair_names(*runs)
    _view(out)


def _who(cmp: dict, side: str) -> str:
    """One side as the caption says it: “name” (run 8, prune of cnn), or the uncompressed model."""
    run_id, name = cmp[f"run_{side}"], cmp[f"name_{side}"]
    return name if run_id is None else f"“{name}” (run {run_id}, {cmp[f'method_{side}']} of {cmp[f'model_{side}']})"


def _view(out: dict) -> None:
    cmp, data = out["cmp"], cache.dataset(out["cmp"]["dataset"])
    name_a, name_b = cmp["name_a"], cmp["name_b"]  # the names the user gave, else what the runs did
    # the names in full once; the tiles and image captions, too narrow for them, say A and B
    st.markdown(f"**A**: {_who(cmp, 'a')}  \n**B**: {_who(cmp, 'b')}")
    st.caption(f"On the first {cmp['n']:,} {cmp['dataset']} test images; differences are B minus A.")
    m = st.columns(5)
    m[0].metric("Agreement", fmt_pct(cmp["agreement"]), help="Images on which both predict the same class.")
    m[1].metric("Accuracy of A", fmt_pct(cmp["accuracy_a"]), help=name_a)
    m[2].metric("Accuracy of B", fmt_pct(cmp["accuracy_b"]), help=name_b,
                delta=f"{(cmp['accuracy_b'] - cmp['accuracy_a']) * 100:+.2f} points")
    m[3].metric("Right → wrong", f"{cmp['right_to_wrong']:,}", help=f"Right for {name_a}, wrong for {name_b}.")
    m[4].metric("Wrong → right", f"{cmp['wrong_to_right']:,}", help=f"Wrong for {name_a}, right for {name_b}.")
    c = st.columns(2)
    c[0].plotly_chart(per_class_chart(cmp, name_a, name_b), key="explorer_cmp_per_class", width="stretch")
    c[1].plotly_chart(confusion_diff_chart(cmp, data.classes, name_a, name_b), key="explorer_cmp_confusion",
                      width="stretch")

    st.markdown("**Flipped images**")
    f = st.columns([3, 2])
    kinds = {"right_to_wrong": "right → wrong", "wrong_to_right": "wrong → right", "both": "both"}  # fixed labels:
    # with the counts in them, the radio's options would change with the pair and lose the choice
    kind = f[0].radio("Flips", list(kinds), format_func=kinds.get, horizontal=True, key="explorer_cmp_kind")
    true = f[1].selectbox("True class", data.classes, index=None, placeholder="all classes", key="explorer_cmp_class")
    rows = flip_rows(cmp, out["pred_a"], out["pred_b"], data.test.labels.numpy(), data.classes, kind=kind,
                     true_class=true)
    if rows:
        shown = rows[:MAX_THUMBNAILS]
        st.caption("Under each image: its index in the test set, its true class, then what A and B predicted.")
        st.image([thumbnail(data.test.images[r["index"]].numpy()) for r in shown], width=84,  # A, B: names are long
                 caption=[f"#{r['index']} {r['true']} · A: {r['a']} · B: {r['b']}" for r in shown])
        if len(rows) > len(shown):
            st.caption(f"The first {len(shown)} of {len(rows):,} flipped images.")
    else:
        st.caption("No flipped image of this kind" + (f" in class {true}." if true else "."))

    st.markdown("**Per-layer weights**")
    same = out["run_a"]["model"].split("+")[0] == out["run_b"]["model"].split("+")[0]
    layers = layer_frame(None if out["run_a"].get("id") is None else out["run_a"], out["run_b"], name_a, name_b) \
        if same else None
    if layers is None:
        st.caption("Not available: " + ("the two runs have different architectures." if not same else
                                         "neither run stored a per-layer table."))
    else:
        st.dataframe(layers, hide_index=True, width="stretch", key="explorer_cmp_layers",
                     column_config={col: st.column_config.NumberColumn(format="%.2f") for col in layers.columns[1:]})
