"""The Dynamic computation page under AppTest, and its plot builders without a browser."""

import math

import pandas as pd
from streamlit.testing.v1 import AppTest

from compression.paths import REPO_ROOT as ROOT
from ui.charts_dynamic import exit_bars, exit_curve, width_chart

PAGE = str(ROOT / "pages" / "5_Dynamic_computation.py")


def _metrics(at):
    return {m.label: m.value for m in at.metric}


def test_threshold_slider_updates_the_metrics(home):
    at = AppTest.from_file(PAGE, default_timeout=300)
    at.session_state["keep_sidebar_model"] = "lenet5_exits"  # the page follows the sidebar's model
    at.run()
    assert not at.exception, at.exception
    first = _metrics(at)
    assert {"Accuracy", "Mean MACs / image", "Leave at exit 1", "Run to the end"} <= set(first)
    assert len(at.get("plotly_chart")) == 2  # the curve over all thresholds and the exit shares
    at.slider(key="dynamic_threshold_confidence").set_value(1.0).run()  # never leave early
    assert not at.exception
    never = _metrics(at)
    assert never["Leave at exit 1"] == "0.0 %" and never["Run to the end"] == "100.0 %"
    assert never["Mean MACs / image"] != first["Mean MACs / image"]
    at.slider(key="dynamic_threshold_confidence").set_value(0.0).run()  # everyone leaves first
    assert _metrics(at)["Leave at exit 1"] == "100.0 %" and not at.exception
    # the measured-speed button stores the threshold in the run store
    at.button(key="dynamic_measure").click().run()
    assert not at.exception
    assert {"Latency, early exit (batch 1)", "Latency, full network"} <= set(_metrics(at))
    from compression.store import RunStore
    (run,) = RunStore().runs(method="early-exit")
    assert run["config"]["thresholds"] == [0.0] and run["extra"]["exit_shares"][0] == 1.0


def test_per_exit_thresholds_for_three_exits(home):
    at = AppTest.from_file(PAGE, default_timeout=300)
    at.run()
    at.selectbox(key="dynamic_model").set_value("cnn_exits").run()
    at.checkbox(key="dynamic_per_exit").check().run()
    assert not at.exception
    at.slider(key="dynamic_threshold_confidence_0").set_value(1.0).run()
    at.slider(key="dynamic_threshold_confidence_1").set_value(0.0).run()
    assert not at.exception
    m = _metrics(at)  # nobody leaves at exit 1, everybody at exit 2
    assert m["Leave at exit 1"] == "0.0 %" and m["Run to the end"] == "0.0 %"


def test_width_selector(home):
    at = AppTest.from_file(PAGE, default_timeout=300)
    at.run()
    at.radio(key="dynamic_mode").set_value("Dynamic width (slimmable)").run()
    assert not at.exception
    full = _metrics(at)
    at.select_slider(key="dynamic_width").set_value(0.5).run()
    assert not at.exception
    half = _metrics(at)
    assert half["Parameters"] == "25,090" and full["Parameters"] == "98,554"
    assert half["MACs / image"] == "527.10 k"
    at.button(key="dynamic_save_width").click().run()
    from compression.store import RunStore
    (run,) = RunStore().runs(method="width")
    assert run["config"] == {"width": 0.5} and run["macs"] == 527_104


def test_charts_have_data():
    curve = pd.DataFrame({"threshold": [0.0, 0.5, 1.0], "accuracy": [0.8, 0.88, 0.9], "macs": [1e5, 2e5, 4e5]})
    fig = exit_curve(curve, current={"accuracy": 0.88, "macs": 2e5}, full={"accuracy": 0.9, "macs": 4e5})
    assert [len(t.x) for t in fig.data] == [3, 1, 1]
    exits = pd.DataFrame({"exit": ["exit 1", "exit 2 (full)"], "share": [0.7, 0.3],
                          "accuracy": [0.95, math.nan], "macs": [1e5, 4e5]})
    bars = exit_bars(exits)
    assert list(bars.data[0].y) == [70.0, 30.0] and bars.data[0].text[1] == "none"
    widths = pd.DataFrame({"width": [0.5, 1.0], "accuracy": [0.9, 0.92], "macs_ratio": [0.26, 1.0],
                           "latency_ratio": [0.5, 1.0], "macs": [5e5, 2e6], "latency_ms": [0.2, 0.4]})
    fig = width_chart(widths, current=0.5)
    assert len(fig.data) == 3 and list(fig.data[1].y) == [0.26, 1.0]
