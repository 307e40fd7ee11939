"""The app's navigation: which page scripts (pages/, where AppTest opens them one by one) sit in
which sidebar section, at which URL.

A page keeps the URL Streamlit's pages/ discovery gave it before there was a navigation, its file
name without the number (pages/5_Dynamic_computation.py -> /Dynamic_computation), so links people
kept still open; its title is that name with spaces, or TITLES' for a page renamed since (Budget
search is now Search, still at /Budget_search). Home is the default page, at the root URL."""

from __future__ import annotations

import re

import streamlit as st

HOME = "0_Home.py"
SECTIONS: dict[str, list[str]] = {  # section -> page files; "" has no header
    "": [HOME],
    "Compress": ["1_Pruning.py", "2_Distillation.py", "3_Quantization.py", "4_Architecture.py",
                 "5_Dynamic_computation.py"],
    "Combine": ["7_Pipelines.py", "8_Budget_search.py"],
    "Review": ["6_Pareto_explorer.py"],
}
TITLES = {"8_Budget_search.py": "Search"}  # renamed pages: the title changed, the old URL stays


def title(file: str) -> str:
    return TITLES.get(file) or url_path(file).replace("_", " ")


def url_path(file: str) -> str:
    return re.sub(r"^\d+_", "", file.removesuffix(".py"))


JOB_SECTIONS = ("Compress", "Combine")  # pages that run jobs: the editor role (compression.access)


def pages() -> dict[str, list[st.Page]]:
    """SECTIONS as st.Page objects, for st.navigation (inside a script run); the Compress and
    Combine pages only for users who may run jobs (a viewer's link to one opens Home)."""
    from compression.access import allowed
    from ui import auth  # noqa: F401  (the app's user source, before the first check)
    jobs = allowed("run jobs")
    return {section: [st.Page(f"pages/{file}", title=title(file), url_path=url_path(file),
                              default=file == HOME) for file in files]
            for section, files in SECTIONS.items() if jobs or section not in JOB_SECTIONS}


def refuse_if_not_allowed(page_file: str, user) -> None:
    """A Compress / Combine page run by a user who may not run jobs (a page opened directly): one
    line naming the role needed, and the page stops."""
    from pathlib import Path

    from compression.access import AccessDenied, require
    name = Path(page_file).name
    if any(name in SECTIONS[s] for s in JOB_SECTIONS):
        try:
            require("run jobs", what=f"the {title(name)} page", user=user)
        except AccessDenied as exc:
            st.warning(str(exc), icon=":material/lock:")
            st.stop()


def use_app_navigation() -> None:
    """Called at the top of every page (by the sidebar). Streamlit (1.67) decides once per server
    process whether the app uses the pages/ folder's own navigation: yes while a pages/ folder sits
    beside the entry point, until the first st.navigation call. So after a restart, a link straight
    to /Pruning would run the page under the folder's flat navigation (an "app" entry, no sections)
    until someone opened the home page. Here such a run switches that off and reruns: app.py then
    builds this navigation and opens the same page (same url_path, same query string)."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # another Streamlit: nothing to switch off
        return
    if getattr(PagesManager, "uses_pages_directory", None):
        PagesManager.uses_pages_directory = False
        st.rerun()
