"""Fixtures for the real-browser tests: one streamlit server per module, screenshots folder."""

import os
import tempfile
from pathlib import Path

import pytest

from benchmarks.browser import browser_page, chromium_available, streamlit_server
from benchmarks.common import home_env


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    folder = Path(os.environ.get("COMPRESSION_SCREENSHOTS") or tempfile.mkdtemp(prefix="compression-screens-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    if not chromium_available():
        pytest.skip("Chromium or playwright not installed (make test installs them as root or with sudo)")
    home = tmp_path_factory.mktemp("e2e-home")
    from compression.evaluate import evaluate
    from compression.store import RunStore
    with home_env(home):  # the seeding below and the test's own checks use it
        RunStore(home / "runs.sqlite").add(evaluate("cnn", limit=2000))  # one stored run for the chart
        with streamlit_server(env={"COMPRESSION_HOME": str(home)}) as url:
            yield url


@pytest.fixture
def page():
    with browser_page() as p:
        yield p
