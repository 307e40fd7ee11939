"""The home page's zip upload under AppTest: the folder becomes a dataset selected in the sidebar,
its problems listed on the page; a malicious zip is refused with its reason and nothing is kept."""

import io
import threading
import time
import zipfile

import pytest
from streamlit.testing.v1 import AppTest

from compression.paths import REPO_ROOT
from tests.test_datasets_upload import _folder_zip, _png

HOME_PAGE = str(REPO_ROOT / "pages" / "0_Home.py")


def _quick_timing(model, shape, device, runtime, batch_sizes):
    return {"runtime": runtime, "fallback": None, "other_cores": None,
            "rows": [{"batch": b, "median_ms": 1.0 * b, "spread_ms": 0.01 * b, "lo_ms": 0.99 * b, "hi_ms": 1.01 * b,
                      "images_per_s": 1000.0} for b in batch_sizes]}


@pytest.fixture(autouse=True)
def _background_work_ends(monkeypatch):
    """No warm start (the zoo's defaults: not what these tests look at); the home card's timing runs
    in a background thread: let it end before the next test (or the interpreter's exit, which would
    abort a thread inside a torch call)."""
    import ui.home_timing as home_timing
    monkeypatch.setenv("COMPRESSION_WARM", "0")
    monkeypatch.setattr(home_timing, "time_model", _quick_timing)  # the card's latency: not what is tested here
    yield
    end = time.monotonic() + 300
    while any(t.name in ("warm-start", "live-home-timing-runner") for t in threading.enumerate()):
        assert time.monotonic() < end, "the home page's background work did not end"
        time.sleep(0.2)


def test_upload_a_zip_then_it_is_the_sidebars_dataset(home):
    zipped = _folder_zip(extra=[("test/dog/broken.png", b"not a png")]).getvalue()
    at = AppTest.from_file(HOME_PAGE, default_timeout=180).run()
    at.file_uploader(key="home_zip_file").set_value(("my pets.zip", zipped, "application/zip"))
    at.run()
    at.button(key="home_zip_go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.sidebar.selectbox(key="sidebar_dataset").value == "my-pets"  # named after the file
    assert any("Added the dataset **my-pets**" in s.value for s in at.success)
    problems = [w.value for w in at.warning if "problem" in w.value]
    assert problems and "test/dog/broken.png: not a readable image" in problems[0]
    assert "on 6 test images" in " ".join(c.value for c in at.caption)  # 7 listed, the unreadable one left out


def test_a_malicious_zip_is_refused_on_the_page(home):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../../escaped.png", _png())
    at = AppTest.from_file(HOME_PAGE, default_timeout=180).run()
    at.file_uploader(key="home_zip_file").set_value(("evil.zip", buf.getvalue(), "application/zip"))
    at.run()
    at.button(key="home_zip_go").click().run()
    assert not at.exception
    assert any("points outside the folder" in e.value for e in at.error)
    assert not (home / "datasets" / "evil").exists() and not list(home.parent.rglob("escaped*"))

