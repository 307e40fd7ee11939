"""The home page under streamlit.testing.v1.AppTest."""

from streamlit.testing.v1 import AppTest

from compression.paths import REPO_ROOT as ROOT


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
