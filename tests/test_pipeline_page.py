"""The pipelines page under AppTest: builder, refused orders, a run with results stored as a chain,
Stop keeping finished steps (the plot builders: test_pipeline_charts.py)."""


from streamlit.testing.v1 import AppTest

from compression.paths import REPO_ROOT as ROOT

PAGE = str(ROOT / "pages" / "7_Pipelines.py")


def _page():
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["keep_sidebar_model"] = "mlp"
    return at


def _started(steps: list[str]) -> AppTest:
    """The page with these steps built (on the first 1,000 test images) and Run pressed."""
    at = _page()
    at.session_state["pipe_mode"] = "Build your own"
    at.session_state["pipe_steps"] = steps
    at.session_state["pipe_subset"] = "1,000"
    at.run()
    at.button(key="pipe_run").click().run()
    return at


def test_recipe_mode_shows_the_steps_and_the_command_line(home):
    at = _page()
    at.run()
    assert not at.exception
    assert at.radio(key="pipe_mode").value == "Named recipe"
    assert "prune:unstructured:0.9" in at.code[0].value and "--model mlp" in at.code[0].value
    assert not at.button(key="pipe_run").disabled


def test_builder_adds_steps_and_refuses_a_bad_order_before_running(home):
    at = _page()
    at.session_state["pipe_mode"] = "Build your own"
    at.run()
    at.selectbox(key="pipe_kind").set_value("quantize").run()
    at.button(key="pipe_add").click().run()
    at.selectbox(key="pipe_kind").set_value("finetune").run()
    at.button(key="pipe_add").click().run()
    assert not at.exception
    assert at.session_state["pipe_steps"] == ["quantize:uniform:8", "finetune:1"]
    assert any("Refused before running" in e.value and "cannot follow quantize" in e.value for e in at.error)
    assert at.button(key="pipe_run").disabled
    at.button(key="pipe_remove").click().run()
    assert not at.error and not at.button(key="pipe_run").disabled


def test_running_a_pipeline_stores_each_step_and_shows_the_path(home):
    at = _started(["prune:unstructured:0.8", "quantize:cluster-huffman:4"])
    job = at.session_state["pipe_job"]
    job.wait(300)
    at.run()
    assert not at.exception and job.status == "done", job.error
    assert len(job.result) == 2
    from compression.store import RunStore
    runs = RunStore().runs(method="pipeline")
    assert [r["parent_id"] for r in runs] == [runs[1]["id"], None]  # newest first: step 2 points at step 1
    metrics = {m.label: m.value for m in at.metric}
    assert {"Test accuracy", "Stored size", "MACs / image", "Latency (batch 1)"} <= set(metrics)
    chart = at.get("plotly_chart")[0]
    assert "pipeline" in chart.proto.spec  # the path chart, with its points
    assert at.get("download_button")
    assert any("offered for pipelines without a quantize step" in c.value for c in at.caption)
    assert not [b for b in at.button if b.label == "Time on every runtime"]


def test_final_file_against_the_fp32_model_on_every_runtime(home, monkeypatch):
    """A pipeline without a quantize step: its final file on every runtime; sparse weights run dense
    kernels, so every row says (simulated)."""
    from support import every_runtime_table, without_a_cxx_compiler
    without_a_cxx_compiler(monkeypatch)
    at = _started(["prune:unstructured:0.8", "finetune:1"])
    at.session_state["pipe_job"].wait(300)
    at.run()
    assert not at.exception
    rows = every_runtime_table(at, "pipe_runtimes_job", "result vs fp32 model")
    eager = rows[rows["runtime"] == "PyTorch eager"]
    assert list(eager["batch"]) == [1, 256] and eager["result"].str.contains("±", regex=False).all()
    assert eager["result vs fp32 model"].str.endswith("(simulated)").all()  # its latency gain is not realized


def test_stop_keeps_the_finished_steps(home):
    import threading
    at = _started(["prune:unstructured:0.5", "finetune:3", "quantize:uniform:8"])
    job = at.session_state["pipe_job"]
    stopper = threading.Thread(target=lambda: (_wait_for(lambda: any(e.get("stage") == 2 for e in job.events)),
                                               job.request_stop()))
    stopper.start()
    job.wait(300)
    stopper.join()
    at.run()
    assert not at.exception and job.status == "stopped"
    assert len(job.result) == 1  # the prune step; fine-tuning was interrupted
    assert any("Stopped: 1 of 3 steps finished" in w.value for w in at.warning)


def _wait_for(cond, timeout=120):
    import time
    end = time.time() + timeout
    while not cond() and time.time() < end:
        time.sleep(0.02)
