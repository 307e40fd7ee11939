"""Harness for real-browser checks: `streamlit run app.py` on a free localhost port, driven by
Playwright in Debian's Chromium (/usr/bin/chromium; never `playwright install`).
Used by tests/e2e and by the app benchmarks."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


def chromium_available() -> bool:
    if not Path(CHROMIUM).exists():
        return False
    try:
        import playwright  # noqa: F401
    except ImportError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(env: dict[str, str] | None = None, timeout: float = 60.0, *, port: int | None = None,
                     args: tuple[str, ...] = ()) -> Iterator[str]:
    """Start `streamlit run app.py` (on `port`, else a free one; `args`: more options, e.g.
    --secrets.files); yield its URL once /_stcore/health answers; stop it after."""
    port = port or free_port()
    log = tempfile.NamedTemporaryFile(prefix="streamlit-", suffix=".log", delete=False)
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true",
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none", *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start; log: {Path(log.name).read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def browser_page(width: int = 1400, height: int = 1200):
    """A Playwright page in headless Chromium with a throwaway profile."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": width, "height": height})
            try:
                yield context.pages[0] if context.pages else context.new_page()
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def wait_until_idle(page, timeout_ms: int = 60_000) -> None:
    """Wait until Streamlit has finished running the script: no status widget offering to stop a
    run (Streamlit 1.67 shows 'Stop' there while the script runs, not 'Running...'), and no element
    still marked stale from the previous run."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_ms)
    page.wait_for_function(
        """() => {
            const w = document.querySelector("[data-testid='stStatusWidget']");
            const running = w && /Running|Stop/.test(w.innerText);
            return !running && !document.querySelector("[data-stale='true']");
        }""",
        timeout=timeout_ms)


def wait_for_points(page, timeout_ms: int = 60_000) -> None:
    """Wait until a plotly chart has drawn data points: SVG markers (`.scatterlayer .point`), or
    WebGL ones (a scattergl trace with data and its canvas: the Pareto explorer past 1,000 runs)."""
    page.wait_for_function(
        """() => [...document.querySelectorAll('.js-plotly-plot')].some(g =>
            g.querySelector('.scatterlayer .point') || (g.querySelector('.gl-container canvas') &&
            (g._fullData || []).some(t => t.type === 'scattergl' && t.x && t.x.length)))""",
        timeout=timeout_ms)


def exception_boxes(page) -> list[str]:
    return [e.inner_text() for e in page.query_selector_all("[data-testid='stException']")]


def select_option(page, label: str, option: str, *, sidebar: bool = False) -> None:
    """Open the selectbox whose label is `label` and pick `option`."""
    scope = page.get_by_test_id("stSidebar") if sidebar else page
    pick(page, scope.get_by_test_id("stSelectbox").filter(has_text=label).first,
         page.get_by_role("option", name=option, exact=True))


def pick(page, box, option, *, attempts: int = 4, wait_ms: int = 15_000) -> None:
    """Open the selectbox `box` and click `option` (locators). A click that lands while the script
    reruns opens a list that the rerun then closes, or no list: so the list is given `wait_ms` to
    show the option, and otherwise closed (Escape), the script awaited, and the box clicked again."""
    for attempt in range(attempts):
        box.click()
        try:
            option.first.wait_for(timeout=wait_ms)
            option.first.click(timeout=wait_ms)
            return
        except Exception:  # playwright's TimeoutError: the list closed or never opened
            if attempt == attempts - 1:
                raise
            page.keyboard.press("Escape")
            wait_until_idle(page, 120_000)
