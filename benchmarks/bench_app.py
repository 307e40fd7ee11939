"""The app in a real browser (headless Chromium): time from `streamlit run` to the first complete
render of the home page (baseline card shown, script idle), with an empty app data folder (cold:
baseline measured) and again with its caches filled (warm); then the time from picking another
model in the sidebar to its baseline card, for each zoo model in turn (cold, then warm).

Parts (`python -m benchmarks app:slider,visits`): start, switch (the above), slider (a fresh server,
cnn: a slider move on Pruning, Quantization, Architecture and Dynamic computation, the time to
the first new numbers and to the full-test-set ones) and visits (a fresh server: the home page once, then the first visit of every
page, each until its first number is shown and the script is idle)."""

from __future__ import annotations

import tempfile
import time

from benchmarks import common
from benchmarks.browser import browser_page, select_option, chromium_available, streamlit_server, wait_until_idle
from compression.models import load_pretrained, model_card, zoo_names
from compression.metrics import count_params


def _first_render(home: str) -> tuple[float, float]:
    """Seconds from `streamlit run` to the home page rendered (script idle), and to its latency
    timed and shown (ui.home_timing: timed after the rest of the page is drawn)."""
    start = time.perf_counter()
    with streamlit_server(env={"COMPRESSION_HOME": home}) as url, browser_page() as page:
        page.goto(url)
        page.get_by_text("Test accuracy").first.wait_for(timeout=120_000)
        wait_until_idle(page)
        rendered = time.perf_counter() - start
        page.wait_for_function(f"() => ({_METRIC_TEXT})('Latency (batch 1)')?.endsWith('s')", timeout=120_000)
        return rendered, time.perf_counter() - start


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


# the page-side checks read only metric boxes, captions and buttons, every 50 ms: reading the whole
# body's text lays out every chart each time, and on 2 cores that took CPU from the server measured
_METRIC_TEXT = """(label) => {
    const box = [...document.querySelectorAll('[data-testid=stMetric]')].find(b => b.innerText.includes(label));
    return box ? box.querySelector('[data-testid=stMetricValue]').innerText : null;
}"""


def _metric(page, label: str) -> str | None:
    return page.evaluate(_METRIC_TEXT, label)


def _move(page, slider_label: str, key: str) -> None:
    page.get_by_test_id("stSlider").filter(has_text=slider_label).first.get_by_role("slider").focus()
    page.keyboard.press(key)


_CHANGED = """([label, before]) => {
    const box = [...document.querySelectorAll('[data-testid=stMetric]')].find(b => b.innerText.includes(label));
    const v = box && box.querySelector('[data-testid=stMetricValue]').innerText;
    return v && v !== before && v !== 'measuring…';
}"""
_FULL = """([label, before]) => {
    const box = [...document.querySelectorAll('[data-testid=stMetric]')].find(b => b.innerText.includes(label));
    const v = box && box.querySelector('[data-testid=stMetricValue]').innerText;
    const w = document.querySelector("[data-testid='stStatusWidget']");
    const captions = [...document.querySelectorAll('[data-testid=stCaptionContainer]')].map(c => c.innerText).join(' ');
    return v && v !== before && v !== 'measuring…' && !captions.includes('refining')
        && !(w && /Running|Stop/.test(w.innerText)) && !document.querySelector("[data-stale='true']")
        && [...document.querySelectorAll('button')].some(b => b.innerText.includes('Keep this run'));
}"""


_DONE = """([label, before]) => {
    const box = [...document.querySelectorAll('[data-testid=stMetric]')].find(b => b.innerText.includes(label));
    const v = box && box.querySelector('[data-testid=stMetricValue]').innerText;
    const w = document.querySelector("[data-testid='stStatusWidget']");
    const text = [...document.querySelectorAll('[data-testid=stCaptionContainer], [data-testid=stMetricValue]')]
        .map(c => c.innerText).join(' ');
    return v && v !== before && !text.includes('refining') && !text.includes('measuring…')
        && !(w && /Running|Stop/.test(w.innerText)) && !document.querySelector("[data-stale='true']");
}"""

# (page, what the page needs first, slider label, key pressed, what, metric read, "full" check, its ready text)
SLIDERS = (
    ("Pruning", None, "Pruning ratio", "ArrowRight", "Pruning: ratio 0.50 -> 0.55 (unstructured)",
     "Test accuracy", _FULL, "Keep this run"),
    ("Quantization", None, "Weight bits", "ArrowLeft", "Quantization: weight bits 8 -> 7",
     "Test accuracy", _FULL, "Keep this run"),
    ("Architecture", None, "Kernel size k", "ArrowRight", "Architecture: kernel size 3 -> 4 (calculator)",
     "Standard weights", _DONE, "Keep this run"),
    ("Architecture", None, "Kept energy", "Home", "Architecture: kept energy 0.90 -> 0.05 (conversion, no recovery)",
     "Parameters", _FULL, "Keep this run"),  # before recovery the accuracy can be 10 % at both values
    ("Dynamic_computation", ("Model with early exits", "cnn_exits"), "Threshold T", "End",
     "Dynamic computation: cnn_exits threshold -> 1.0", "Accuracy", _DONE, "Mean MACs / image"),
)


def _slider_moves(home: str) -> list[dict]:
    """cnn on a fresh server: each page's first result, then one slider move; seconds from the key
    press to the first new accuracy, and to the full result (its Keep button; the Dynamic page's
    numbers are complete at once: the slider reads a table of every exit's verdict)."""
    rows = []
    with streamlit_server(env={"COMPRESSION_HOME": home}) as url, browser_page() as page:
        for path, setup, label, key, what, shown, full_check, ready in SLIDERS:
            page.goto(f"{url}/{path}")
            page.wait_for_selector("h1", timeout=300_000)
            wait_until_idle(page, 300_000)
            if setup:
                select_option(page, *setup)
            page.get_by_text(ready).first.wait_for(timeout=300_000)
            wait_until_idle(page, 300_000)
            page.wait_for_function(_SETTLED, timeout=300_000, polling=100)
            before = _metric(page, shown)
            start = time.perf_counter()
            _move(page, label, key)
            print(f"  {what}: moved ({shown} was {before!r})", flush=True)
            page.wait_for_function(_CHANGED, arg=[shown, before], timeout=180_000, polling=50)
            first = time.perf_counter() - start
            page.wait_for_function(full_check, arg=[shown, before], timeout=180_000, polling=50)
            full = time.perf_counter() - start
            rows += [{"what": f"{what}: slider -> first numbers", "seconds": first},
                     {"what": f"{what}: slider -> full test set", "seconds": full}]
            print(f"  {what}: first numbers {first:.2f} s, full {full:.2f} s", flush=True)
    return rows


_SETTLED = """() => {
    const w = document.querySelector("[data-testid='stStatusWidget']");
    const text = [...document.querySelectorAll('[data-testid=stCaptionContainer], [data-testid=stMetricValue]')]
        .map(c => c.innerText).join(' ');
    return !(w && /Running|Stop/.test(w.innerText)) && !document.querySelector("[data-stale='true']")
        && !text.includes('refining') && !text.includes('measuring…');
}"""


def _first_visits(home: str) -> list[dict]:
    """A fresh server: the home page once, then each Compress page's first visit (a new page load
    each) until its script is idle (first numbers shown), and until nothing is pending any more."""
    from ui.navigation import SECTIONS, url_path
    rows = []
    with streamlit_server(env={"COMPRESSION_HOME": home}) as url, browser_page() as page:
        start = time.perf_counter()
        page.goto(url)
        page.get_by_text("Test accuracy").first.wait_for(timeout=300_000)
        wait_until_idle(page, 300_000)
        rows.append({"what": "first visit: Home (fresh server)", "seconds": time.perf_counter() - start})
        for file in SECTIONS["Compress"]:
            start = time.perf_counter()
            page.goto(f"{url}/{url_path(file)}")
            page.wait_for_selector("h1", timeout=300_000)
            page.wait_for_timeout(200)
            wait_until_idle(page, 300_000)
            shown = time.perf_counter() - start
            page.wait_for_function(_SETTLED, timeout=300_000, polling=100)
            rows += [{"what": f"first visit after home: {url_path(file)} (script idle)", "seconds": shown},
                     {"what": f"first visit after home: {url_path(file)} (nothing pending)",
                      "seconds": time.perf_counter() - start}]
    return rows


def run() -> list[dict]:
    if not chromium_available():
        return [{"what": "skipped: Chromium or playwright not installed"}]
    rows = []
    for part in common.parts(["start", "switch", "slider", "visits"]):
        if part == "start":
            home = tempfile.mkdtemp(prefix="bench-app-")
            for cache in ("cold: empty caches", "warm: caches on disk"):
                rendered, timed = _first_render(home)
                rows += [{"what": f"streamlit run -> home page rendered ({cache})", "seconds": rendered},
                         {"what": f"streamlit run -> home latency timed and shown ({cache})", "seconds": timed}]
        elif part == "switch":
            rows += _switches(tempfile.mkdtemp(prefix="bench-app-"))
        elif part == "slider":
            home = tempfile.mkdtemp(prefix="bench-app-")
            _first_render(home)  # the baselines on disk, as after any first start
            rows += _slider_moves(home)
        else:
            home = tempfile.mkdtemp(prefix="bench-app-")
            _first_render(home)
            rows += _first_visits(home)
    return rows
