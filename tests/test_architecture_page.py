"""The Architecture page under streamlit.testing.v1.AppTest (mlp: the cheapest model to convert)."""

import os

import pytest
from streamlit.testing.v1 import AppTest

from compression.paths import REPO_ROOT as ROOT

PAGE = str(ROOT / "pages" / "4_Architecture.py")


def _metrics(at):
    """The metrics once the conversion's live result is complete (ui.live: the first test images
    first, then all of them): the page runs again after this session's runner is idle."""
    if "live_runner_architecture" in at.session_state:
        assert at.session_state["live_runner_architecture"].wait_idle(180)
        at.run()
    return {m.label: m.value for m in at.metric}


@pytest.fixture
def page(home):
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["keep_sidebar_model"] = "mlp"
    at.run()
    assert not at.exception
    return at


def test_calculator_defaults_to_the_issue_example_and_follows_its_sliders(page):
    m = _metrics(page)
    assert (m["Standard weights"], m["Separable weights"]) == ("72", "26")  # 3x3, 2 -> 4
    assert m["Separable / standard"] == m["Closed form 1/O + 1/k²"] + "x" == "0.3611x"
    page.slider(key="architecture_k").set_value(5).run()
    page.slider(key="architecture_o").set_value(8).run()
    m = _metrics(page)
    assert (m["Standard weights"], m["Separable weights"]) == (f"{25 * 2 * 8}", f"{25 * 2 + 2 * 8}")
    assert m["Closed form 1/O + 1/k²"] == f"{1 / 8 + 1 / 25:.4f}"
    assert not page.exception
    assert len(page.get("plotly_chart")) >= 3  # diagram, weight bars, accuracy against cost


def test_rank_and_energy_sliders_show_the_converted_model_at_once(page):
    m = _metrics(page)
    assert m["Parameters"] == "141,724"  # low-rank at 90% energy, ranks 111/50/9 (depthwise: no convs)
    page.slider(key="architecture_energy").set_value(0.5).run()
    assert _metrics(page)["Parameters"] == "23,562"
    page.radio(key="architecture_by").set_value("rank").run()
    page.slider(key="architecture_rank").set_value(8).run()
    # every layer at rank 8, biases kept: K(M + N) + M each (100x10 too: 880 weights < 1000)
    assert _metrics(page)["Parameters"] == f"{8 * 1084 + 300 + 8 * 400 + 100 + 8 * 110 + 10:,}" == "13,162"
    assert not page.exception
    accuracy = float(_metrics(page)["Accuracy before training"].split()[0])
    assert 10 < accuracy < 89.8  # from the SVD: better than chance, below the full model
    from compression.store import RunStore
    assert RunStore().count() == 0  # three conversions shown, none kept
    (keep,) = [b for b in page.button if b.label == "Keep this run"]
    keep.click().run()
    (run,) = RunStore().runs(method="architecture")
    assert run["extra"]["stage"] == "converted" and run["params"] == 13_162
    from compression.artifact import load_artifact  # the kept file rebuilds the converted network
    rebuilt = load_artifact(open(run["artifact_path"], "rb").read())
    assert sum(p.numel() for p in rebuilt.parameters()) == 13_162


def test_bad_choice_shows_a_message_not_a_traceback(page):
    page.multiselect(key="architecture_convert").set_value([]).run()
    assert not page.exception
    assert any("at least one conversion" in i.value for i in page.info)


def test_recovery_job_trains_stores_and_reports(page):
    page.radio(key="architecture_by").set_value("rank").run()
    page.slider(key="architecture_rank").set_value(4).run()
    before = float(_metrics(page)["Accuracy before training"].split()[0])
    page.select_slider(key="architecture_match").set_value(0)
    page.slider(key="architecture_epochs").set_value(1)
    page.select_slider(key="architecture_subset").set_value(2000)
    page.button(key="architecture_recover").click().run()
    job = page.session_state["architecture_job"].wait(timeout=300)
    assert job.status == "done", job.error
    page.run()
    assert not page.exception
    assert any("Recovered (0 matching steps per layer, finetune 1 epoch)" in s.value for s in page.success)
    after = job.result["accuracy"]
    assert after * 100 > before  # rank 4 keeps too little; one short epoch already wins accuracy back
    assert job.result["params"] == 4 * 1084 + 300 + 4 * 400 + 100 + 4 * 110 + 10  # training keeps the shape
    from compression.store import RunStore
    (run,) = RunStore().runs(method="architecture")  # the job's result, stored with its file
    assert run["extra"]["stage"] == "recovered" and os.path.getsize(run["artifact_path"]) == run["size_bytes"]


def test_the_sidebar_runtime_times_the_conversion_and_is_kept(home):
    """The converted model's latency is timed on the sidebar's runtime, said on the card and stored
    when kept; 'Time on every runtime' waits under the card."""
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["keep_sidebar_model"] = "mlp"
    at.session_state["keep_sidebar_runtime"] = "onnxruntime"
    at.run()
    assert not at.exception
    _metrics(at)  # the whole result, latency included
    latency = next(m for m in at.metric if m.label == "Latency (batch 1)")
    assert "(ONNX Runtime (CPUExecutionProvider))" in latency.proto.help
    assert [b for b in at.button if b.label == "Time on every runtime"]
    (keep,) = [b for b in at.button if b.label == "Keep this run"]
    keep.click().run()
    from compression.store import RunStore
    (run,) = RunStore().runs(method="architecture")
    assert run["extra"]["runtime"] == "onnxruntime" and run["extra"]["baseline_latency_ms"] > 0


def test_a_conversion_answers_on_the_first_test_images_then_on_all(home, monkeypatch):
    """The converted model's accuracy on the first 500 test images (against the original on the
    same images) and its counts come first; size, latency and Keep come with the whole test set."""
    import threading
    import time

    from ui import architecture as arch
    gate, original = threading.Event(), arch._converted

    def held(*args, **kwargs):  # the full stage waits until the first one was looked at
        gate.wait(120)
        return original(*args, **kwargs)

    monkeypatch.setattr(arch, "_converted", held)
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["keep_sidebar_model"] = "mlp"
    at.session_state["architecture_energy"] = 0.61  # a value no other test caches
    captions = lambda: " ".join(c.value for c in at.caption)  # noqa: E731
    try:
        at.run()
        end = time.monotonic() + 120
        while "refining" not in captions() and time.monotonic() < end:  # a slow machine: look again
            time.sleep(0.2)
            at.run()
        assert not at.exception
        assert "on a stratified sample of 500 of 10,000 test images, every class (refining…)" in captions()
        partial = {m.label: m.value for m in at.metric}
        assert partial["Latency (batch 1)"] == partial["Size on disk"] == "measuring…"
        assert not [b for b in at.button if b.label == "Keep this run"]
    finally:
        gate.set()
    full = _metrics(at)
    assert "refining" not in captions() and full["Latency (batch 1)"] != "measuring…"
    assert (full["Parameters"], full["MACs / image"]) == (partial["Parameters"], partial["MACs / image"])
    assert [b for b in at.button if b.label == "Keep this run"]
