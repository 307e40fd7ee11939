"""The app in a real browser (headless Chromium): time from `streamlit run` to the first complete
render of the home page (baseline card shown, script idle), with an empty app data folder (cold:
baseline measured) and again with its caches filled (warm); then the time from picking another
model in the sidebar to its baseline card, for each zoo model in turn (cold, then warm)."""

from __future__ import annotations

import tempfile
import time

from benchmarks.browser import browser_page, select_option, chromium_available, streamlit_server, wait_until_idle
from compression.models import load_pretrained, model_card, zoo_names
from compression.metrics import count_params


def _first_render(home: str) -> float:
    start = time.perf_counter()
    with streamlit_server(env={"COMPRESSION_HOME": home}) as url, browser_page() as page:
        page.goto(url)
        page.get_by_text("Test accuracy").first.wait_for(timeout=120_000)
        wait_until_idle(page)
        return time.perf_counter() - start


def _switches(home: str) -> list[dict]:
    rows = []
    names = [n for n in zoo_names() if model_card(n)["dataset"] == "fashion-mnist"]
    with streamlit_server(env={"COMPRESSION_HOME": home}) as url, browser_page() as page:
        page.goto(url)
        page.get_by_text("Test accuracy").first.wait_for(timeout=120_000)
        wait_until_idle(page)
        current = names[0]
        for rnd in ("cold", "warm"):
            for name in names[1:] + names[:1]:
                if name == current:
                    continue
                params = f"{count_params(load_pretrained(name)):,}"
                start = time.perf_counter()
                select_option(page, "Model", name, sidebar=True)
                page.get_by_text(params, exact=True).first.wait_for(timeout=120_000)
                wait_until_idle(page)
                rows.append({"what": f"switch to {name} ({rnd} cache)", "seconds": time.perf_counter() - start})
                current = name
    return rows


def run() -> list[dict]:
    if not chromium_available():
        return [{"what": "skipped: Chromium or playwright not installed"}]
    home = tempfile.mkdtemp(prefix="bench-app-")
    rows = [{"what": "streamlit run -> home page rendered (cold: empty caches)", "seconds": _first_render(home)},
            {"what": "streamlit run -> home page rendered (warm: caches on disk)", "seconds": _first_render(home)}]
    return rows + _switches(tempfile.mkdtemp(prefix="bench-app-"))
