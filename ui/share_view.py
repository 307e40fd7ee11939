"""Share links on the Streamlit side: the explorer's "Share for review" box (make a link to the story
view or to the comparison on screen, list the links, revoke them) and the page a link opens: that
view, read-only, without signing in, and nothing else (app.py routes `?share=` here)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pandas as pd
import streamlit as st

from compression import CompressionError, access, share
from ui import cache

LIFETIMES = {24: "1 day", 72: "3 days", 168: "1 week", 720: "30 days"}
MADE = "share_made"  # session state: the token of the link just made


def link_url(token: str) -> str:
    """The link: this server's address (as the browser reached it) with ?share=TOKEN."""
    from streamlit import config
    try:
        parts = urlsplit(st.context.url or "")
        origin = f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""
    except Exception:  # no browser context (a test)
        origin = ""
    base = (config.get_option("server.baseUrlPath") or "").strip("/")
    return f"{origin}/{base + '/' if base else ''}?share={token}"


def _when(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _make(store, view: str, ids: list[int], title: str) -> None:
    try:
        made = share.create(store, view, ids, hours=st.session_state.get("share_hours", 72), title=title)
        st.session_state[MADE] = made.token
    except CompressionError as exc:
        st.session_state[MADE] = None
        st.session_state["share_error"] = str(exc)


def _revoke(store, share_id: int) -> None:
    try:
        share.revoke(store, share_id)
        st.toast(f"Share link {share_id} revoked: it opens nothing now.", icon=":material/link_off:")
    except CompressionError as exc:
        st.session_state["share_error"] = str(exc)


def share_box(store, story_ids: list[int], pair: tuple[int, int | None] | None, title: str) -> None:
    """Make a read-only link to the story (these starred runs) or to the comparison on screen; the
    links made so far, with who made them, and Revoke. Editors and admins only (viewers: nothing)."""
    if not access.allowed("share"):
        return
    with st.expander("Share for review (a read-only link, no sign-in needed)", icon=":material/share:"):
        error = st.session_state.pop("share_error", None)
        if error:
            st.error(error)
        choices = {}
        if story_ids:
            choices["story"] = f"the story: {len(story_ids)} starred run{'s' if len(story_ids) != 1 else ''}"
        if pair is not None:
            a, b = pair
            choices["compare"] = f"the comparison: run {a} against " + ("its baseline" if b is None else f"run {b}")
        if not choices:
            st.caption("Star runs (the story view) or pick a comparison to share it.")
        else:
            c = st.columns([4, 2, 2], vertical_alignment="bottom")
            view = c[0].radio("Share", list(choices), format_func=choices.get, key="share_view", horizontal=True)
            c[1].selectbox("Valid for", list(LIFETIMES), index=1, format_func=LIFETIMES.get, key="share_hours")
            ids = story_ids if view == "story" else [i for i in pair if i is not None]
            c[2].button("Make a link", key="share_make", icon=":material/add_link:", type="primary",
                        on_click=_make, args=(store, view, ids, title))
        if st.session_state.get(MADE):
            st.code(link_url(st.session_state[MADE]), language=None)
            st.caption("Anyone with this link sees that view, read-only, until it expires or is revoked.")
        _links_table(store)


def _links_table(store) -> None:
    made = share.links(store)
    if not made:
        return
    st.dataframe(pd.DataFrame([{"link": s.id, "view": s.view, "runs": ", ".join(map(str, s.run_ids)),
                                "made by": s.created_by, "made": _when(s.created_at), "expires": _when(s.expires_at),
                                "status": s.status + (f" by {s.revoked_by}" if s.revoked_by else "")} for s in made]),
                 hide_index=True, width="stretch", key="share_links")
    mine = [s.id for s in made if s.status == "active" and access.allowed("manage", owner=s.created_by)]
    if mine:
        c = st.columns([3, 2], vertical_alignment="bottom")
        pick = c[0].selectbox("Revoke link", mine, key="share_revoke_pick", format_func=lambda i: f"link {i}")
        c[1].button("Revoke", key="share_revoke", icon=":material/link_off:", on_click=_revoke, args=(store, pick))


# ---- what a link opens ---------------------------------------------------------------------------

def shared_page() -> None:
    """The page a share link opens (app.py: the only page when ?share= is in the URL)."""
    st.set_page_config(page_title="Shared review", layout="wide")
    token = st.query_params.get("share", "")
    try:
        store = cache.run_store()
        opened = share.open_link(store, token)
        runs = [r for r in (store.get(i) for i in opened.run_ids) if r is not None]
    except CompressionError as exc:  # one line, nothing of the data
        st.error(str(exc), icon=":material/link_off:")
        st.stop()
    st.title(opened.title or ("Shared review" if opened.view == "story" else "Shared comparison"))
    st.caption(f"A read-only view shared by {opened.created_by}, valid until {_when(opened.expires_at)}. "
               "Nothing here can be changed.")
    if not runs:
        st.warning("The runs of this link are no longer in the store.")
        st.stop()
    if opened.view == "story":
        _story(runs)
    else:
        _comparison(store, runs)


def _story(runs: list[dict]) -> None:
    from compression.charts.pareto import explorer_frame, frontier_ids
    from compression.charts.story import story_chart, story_table
    from ui.explorer import table_columns
    df = explorer_frame(runs)
    cost = st.segmented_control("x-axis", ["size_bytes", "params", "macs", "latency_ms"], default="size_bytes",
                                key="shared_x") or "size_bytes"
    st.plotly_chart(story_chart(df, cost, log_x=True, frontier=frontier_ids(df, cost), selected=None),
                    key="shared_story_chart", width="stretch")
    st.dataframe(story_table(df), hide_index=True, width="stretch", key="shared_story_table",
                 column_config=table_columns())


def _comparison(store, runs: list[dict]) -> None:
    from ui.compare import _compare, _view
    a = runs[0]["id"]
    b = runs[1]["id"] if len(runs) > 1 else None
    if any(store.predictions(r["id"]) is None for r in runs):
        st.warning("One of these runs has no stored predictions: the comparison cannot be shown.")
        return
    try:
        out = _compare(str(store.path), a, b, 0)
    except CompressionError as exc:
        st.error(str(exc))
        return
    _view(out, *(("baseline", f"run {a}") if b is None else (f"run {a}", f"run {b}")))
