"""Keeping a run on purpose, from the explorer's run details: name it, edit its tags, star it (the
story view's runs), hide it, delete it (after a confirmation; its predictions and artifact file go
too). Every change goes through compression.store.RunStore in a widget callback, so the rerun that
follows already reads the changed store; what happened is said once, as a toast.

Only the controls the acting user's role allows are drawn (viewer: none; editor: star any run,
the rest on their own runs; admin: all); the store checks again, so a forged change is refused
with one line naming the role needed."""

from __future__ import annotations

import streamlit as st

from compression import CompressionError, access
from compression.run_labels import NAME_MAX

FLASH = "explorer_flash"           # (icon, text) said once on the next run
CONFIRM = "explorer_confirm_delete"  # the run id whose delete waits for "Yes"


def flash() -> None:
    """Say what the last change did (set by the callbacks below)."""
    said = st.session_state.pop(FLASH, None)
    if said:
        icon, text = said
        (st.error if icon == "error" else st.toast)(text, icon=":material/error:" if icon == "error" else icon)


def _say(text: str, icon: str = ":material/check_circle:") -> None:
    st.session_state[FLASH] = (icon, text)


def _update(store, run_id: int, done: str, **change) -> None:
    try:
        store.update(run_id, **change)
        _say(done)
    except CompressionError as exc:
        _say(str(exc), "error")


def _save_name(store, run_id: int) -> None:
    text = st.session_state.get(f"explorer_name_{run_id}", "")
    _update(store, run_id, f"Run {run_id} named “{text.strip()}”." if text.strip() else f"Run {run_id}: name cleared.",
            name=text)


def _save_tags(store, run_id: int) -> None:
    tags = st.session_state.get(f"explorer_tags_{run_id}", [])
    _update(store, run_id, f"Run {run_id} tags: {', '.join(tags) or 'none'}.", tags=tags)


def _hide(store, run_id: int, hidden: bool) -> None:
    shown = st.session_state.get("explorer_hidden", False)
    _update(store, run_id, f"Run {run_id} hidden" + ("." if shown else ": “Show hidden runs” brings it back.")
            if hidden else f"Run {run_id} is shown again.", hidden=hidden)


def _delete(store, run_id: int) -> None:
    st.session_state.pop(CONFIRM, None)
    try:
        gone = store.delete(run_id)
    except CompressionError as exc:
        _say(str(exc), "error")
        return
    if st.session_state.get("explorer_run") == run_id:
        st.session_state["explorer_run"] = None
    files = [w for w, done in (("its artifact file", gone["artifact_removed"]),
                               ("its exported files", gone.get("exports_removed"))) if done]
    what = f" and {' and '.join(files)}" if files else ""
    _say(f"Run {run_id}{what} deleted." + (f" Runs {', '.join(map(str, gone['detached']))} no longer have a parent."
                                           if gone["detached"] else ""), ":material/delete:")


def _star_button(where, run_id: int, starred: bool, store) -> None:
    where.button("Unstar" if starred else "Star", key=f"explorer_star_{run_id}", width="stretch",
                 icon=":material/star_border:" if starred else ":material/star:",
                 on_click=_update, args=(store, run_id,
                                         f"Run {run_id} " + ("unstarred." if starred else "starred: it is in the story view.")),
                 kwargs=dict(starred=not starred), help="Starred runs make the story view: what a reviewer follows.")


def manage_run(run: dict, store) -> None:
    """The controls for one run (keys carry the run id, so each run's widgets start from its own values)."""
    run_id, starred, hidden = int(run["id"]), bool(run.get("starred")), bool(run.get("hidden"))
    manage, star = access.allowed("manage", owner=run.get("owner") or access.LOCAL), access.allowed("star runs")
    if not manage:
        if star:
            _star_button(st.columns([2, 10])[0], run_id, starred, store)
        return
    c = st.columns([4, 4, 2, 2, 2], vertical_alignment="bottom")
    c[0].text_input("Name", value=run.get("name") or "", key=f"explorer_name_{run_id}", max_chars=NAME_MAX,
                    placeholder="e.g. 8-bit mlp, 4x smaller", on_change=_save_name, args=(store, run_id),
                    help="What a reviewer reads on the story view's chart and table. Empty: no name.")
    known = sorted(set(store.tags(dataset=run["dataset"], include_hidden=True)) | set(run.get("tags") or []))
    c[1].multiselect("Tags", known, default=run.get("tags") or [], key=f"explorer_tags_{run_id}",
                     accept_new_options=True, placeholder="add a tag", on_change=_save_tags, args=(store, run_id),
                     help="Type a new tag and press Enter. No commas, at most 32 characters.")
    _star_button(c[2], run_id, starred, store)
    c[3].button("Unhide" if hidden else "Hide", key=f"explorer_hide_{run_id}", width="stretch",
                icon=":material/visibility:" if hidden else ":material/visibility_off:",
                on_click=_hide, args=(store, run_id, not hidden),
                help="Hidden runs stay in the store but are left out of every list, chart and report.")
    c[4].button("Delete…", key=f"explorer_delete_{run_id}", width="stretch", icon=":material/delete:",
                on_click=lambda: st.session_state.update({CONFIRM: run_id}))
    if st.session_state.get(CONFIRM) == run_id:
        what = f" and its artifact file `{run['artifact_path']}`" if run.get("artifact_path") else ""
        st.warning(f"Delete run {run_id}, its stored predictions{what}? This cannot be undone; runs made "
                   "from it stay, without a parent.", icon="⚠️")
        y = st.columns([2, 2, 6])
        y[0].button(f"Yes, delete run {run_id}", key="explorer_delete_yes", type="primary",
                    on_click=_delete, args=(store, run_id))
        y[1].button("Cancel", key="explorer_delete_no", on_click=lambda: st.session_state.pop(CONFIRM, None))
