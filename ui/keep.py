"""'Keep this run': a page's live result is a preview (shown, cached, not stored) until the user
keeps it; then it is stored with its artifact file like any finished job (compression.previews)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from compression.previews import keep
from ui import cache

KEPT = "kept_previews"  # session state: preview key -> run id


def kept_run(preview: dict[str, Any]) -> int | None:
    return st.session_state.get(KEPT, {}).get(preview["key"])


def keep_button(preview: dict[str, Any], *, what: str = "result") -> int | None:
    """The keep button, or the run id it was kept as. Keeping the same preview twice stores it once."""
    slot = st.empty()
    run_id = kept_run(preview)
    if run_id is None and slot.button("Keep this run", key=f"keep_{preview['key']}", icon=":material/bookmark_add:",
                                      help=f"This {what} is a preview: measured, shown and cached, not stored. Keep it "
                                           "to see it on the Pareto explorer and download its file later."):
        try:
            run_id = keep(preview, store=cache.run_store())
        except Exception as exc:  # a full disk or an unreadable store: say so, the page stays usable
            slot.error(f"Could not keep this run: {exc}")
            return None
        st.session_state.setdefault(KEPT, {})[preview["key"]] = run_id
    if run_id is not None:
        slot.success(f"Kept as run {run_id}, with its file: it is on the Pareto explorer.", icon=":material/bookmark:")
    return run_id
