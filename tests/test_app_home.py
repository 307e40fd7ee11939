"""The home page under streamlit.testing.v1.AppTest: through app.py (the navigation's default page)
and, where a test clicks a button, as pages/0_Home.py. AppTest runs app.py through the pages/
folder's navigation first on every run (the folder sits beside it), and the switch to app.py's
navigation inside that run drops button clicks; a served app makes that switch once per process,
before anyone can click (ui/navigation.py)."""

import pytest
from streamlit.testing.v1 import AppTest

from compression.paths import REPO_ROOT as ROOT

HOME_PAGE = str(ROOT / "pages" / "0_Home.py")


def _metrics(at):
    return {m.label: m.value for m in at.metric}


def test_home_renders_baseline_and_switches_model(home):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception
    first = _metrics(at)
    assert {"Test accuracy", "Parameters", "Size on disk", "MACs / image", "Latency (batch 1)", "Images / s"} <= set(first)
    at.sidebar.selectbox(key="sidebar_model").set_value("mlp").run()
    assert not at.exception
    second = _metrics(at)
    assert second["Parameters"] == "266,610" and second["Parameters"] != first["Parameters"]
    # empty run history says what to do first
    assert any("No compression runs stored yet" in i.value for i in at.info)


def test_home_shows_stored_runs(home):
    from compression.evaluate import evaluate
    from compression.store import RunStore
    RunStore().add(evaluate("mlp", limit=300))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["keep_sidebar_model"] = "mlp"
    at.run()
    assert not at.exception
    assert not any("No compression runs" in i.value for i in at.info)
    assert len(at.get("plotly_chart")) == 1


def test_home_upload_own_weights(home):
    import io
    import torch
    from compression.models import load_pretrained
    buf = io.BytesIO()
    torch.save(load_pretrained("lenet5").state_dict(), buf)
    at = AppTest.from_file(HOME_PAGE, default_timeout=120).run()
    at.selectbox(key="home_byo_base").set_value("lenet5")
    at.file_uploader(key="home_byo_file").set_value(("mine.pt", buf.getvalue(), "application/octet-stream"))
    at.text_input(key="home_byo_name").set_value("lenet5-uploaded")
    at.run()
    at.button(key="home_byo_go").click().run()
    assert not at.exception and not at.error
    assert at.sidebar.selectbox(key="sidebar_model").value == "lenet5-uploaded"
    assert _metrics(at)["Test accuracy"] == "90.73 %"  # the zoo lenet5's weights, re-evaluated


def test_home_refuses_a_pickled_model(home):
    import io
    import torch
    buf = io.BytesIO()
    torch.save(torch.nn.Linear(2, 2), buf)
    at = AppTest.from_file(HOME_PAGE, default_timeout=120).run()
    at.file_uploader(key="home_byo_file").set_value(("model.pt", buf.getvalue(), "application/octet-stream"))
    at.run()
    at.button(key="home_byo_go").click().run()
    assert not at.exception
    assert any("pickled object" in e.value for e in at.error)


def _fresh_home_timing():
    """No timing left running from an earlier test's session (it would land after the clear, or
    call a patched timer), then nothing known."""
    import threading
    import time
    import ui.home_timing as home_timing
    from ui import live
    end = time.monotonic() + 60
    while any(t.name == f"live-{home_timing.PAGE}-runner" for t in threading.enumerate()):
        assert time.monotonic() < end, "an earlier session's home timing did not end"
        time.sleep(0.1)
    live.clear(home_timing.PAGE)


def test_home_times_latency_now_with_its_spread_and_retimes_on_request(home, monkeypatch):
    """Latency and images/s are not read from disk (a figure timed under load would stay there):
    they are timed on the page's first visit in the background and shown with their spread."""
    import time
    import ui.home_timing as home_timing
    from ui import live
    _fresh_home_timing()
    monkeypatch.setattr(home_timing, "NOISY", float("inf"))  # one timing each (the noisy path: below)
    timed = []
    real = home_timing.time_model
    monkeypatch.setattr(home_timing, "time_model", lambda *a, **k: timed.append(a[3]) or real(*a, **k))

    def shown(at, want_new=0):
        for _ in range(240):
            at.run()
            assert not at.exception
            latency = _metrics(at)["Latency (batch 1)"]
            line = next((c.value for c in at.caption if c.value.startswith("Latency ")), "")
            if latency != "timing…" and len(timed) > want_new:
                assert latency.endswith(("µs", "ms")) and " ± " in line and "timed at" in line
                return line
            time.sleep(0.5)
        raise AssertionError("the home page never showed a timed latency")
    at = AppTest.from_file(HOME_PAGE, default_timeout=120)
    line = shown(at)  # "Latency 0.356 ± 0.186 ms at batch 1, ..."
    assert float(line.split(" ± ")[1].split()[0]) >= 0 and "per batch of 256" in line
    assert timed == ["eager"]  # the sidebar's runtime
    images = _metrics(at)["Images / s"]
    assert images.replace(",", "").isdigit() and int(images.replace(",", "")) > 0
    help_text = next(m for m in at.metric if m.label == "Latency (batch 1)").help
    assert "95 % interval of the median" in help_text and "PyTorch eager" in help_text
    at.button(key="home_retime").click()
    shown(at, want_new=1)
    assert timed == ["eager", "eager"]  # timed again, not served from the first timing


@pytest.mark.parametrize("first_spread, first_other, says", [(0.9, None, "1.000 ± 0.900 ms at batch 1)"),
                                                           (0.01, 1.5, "other programs 1.5 cores")])
def test_home_retimes_a_busy_timing_once_by_itself_and_says_so(home, monkeypatch, first_spread, first_other, says):
    """Busy: a wide spread, or other programs using cores meanwhile (a steady load slows every round
    alike, so the spread alone does not show it)."""
    import time
    import ui.home_timing as home_timing
    from ui import live
    _fresh_home_timing()
    monkeypatch.setattr(home_timing, "RETIME_AFTER", 0.1)
    timings = iter([(first_spread, first_other), (0.01, 0.1)])  # the first timing under load, the second quiet

    def fake(model, shape, device, runtime, batch_sizes):
        s, other = next(timings)
        return {"runtime": runtime, "fallback": None, "other_cores": other,
                "rows": [{"batch": b, "median_ms": 1.0 * b, "spread_ms": s * b, "lo_ms": (1 - s) * b + 0.001,
                          "hi_ms": (1 + s) * b, "images_per_s": 1000.0} for b in batch_sizes]}
    monkeypatch.setattr(home_timing, "time_model", fake)
    at = AppTest.from_file(HOME_PAGE, default_timeout=120)
    lines = []
    for _ in range(120):
        at.run()
        assert not at.exception
        lines = [c.value for c in at.caption if c.value.startswith("Latency ")]
        if lines and "Timed twice" in lines[0]:
            break
        time.sleep(0.25)
    assert lines and "Timed twice" in lines[0] and says in lines[0].split("Timed twice")[1]
    assert lines[0].startswith("Latency 1.000 ± 0.010 ms") and "machine was busy while timing" not in lines[0]
    assert "Other programs kept 0.1 of" in lines[0]
