"""The Dynamic computation page under AppTest (its plot builders: test_dynamic_charts.py)."""

from streamlit.testing.v1 import AppTest

from compression.paths import REPO_ROOT as ROOT

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
    at.run()  # the sidebar's cnn has no exits: the page says so and offers the zoo's models with exits
    assert any("cnn, the sidebar's model, has no early exits" in i.value for i in at.info)
    at.selectbox(key="dynamic_model").set_value("cnn_exits").run()
    assert at.sidebar.selectbox(key="sidebar_model").value == "cnn_exits"  # picked here: the sidebar follows
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
    at.selectbox(key="dynamic_slim_model").set_value("cnn_slim").run()
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


def test_attach_exits_to_a_model_without_them_then_use_it(home):
    at = AppTest.from_file(PAGE, default_timeout=300)
    at.session_state["keep_sidebar_model"] = "mlp"
    at.run()
    assert not at.exception
    assert at.multiselect(key="dynamic_attach_blocks").value  # a default choice of blocks
    at.multiselect(key="dynamic_attach_blocks").set_value(["1"])
    at.button(key="dynamic_attach_start").click().run()
    job = at.session_state["dynamic_attach_job"].wait(300)
    assert job.status == "done", job.error
    at.run()
    card = job.result["card"]
    assert any(f"Kept as model **{card['name']}**" in s.value for s in at.success)
    at.button(key="dynamic_attach_use").click().run()
    assert not at.exception
    assert at.sidebar.selectbox(key="sidebar_model").value == card["name"]  # the sidebar's model now
    assert {"Accuracy", "Mean MACs / image", "Leave at exit 1", "Run to the end"} <= set(_metrics(at))
