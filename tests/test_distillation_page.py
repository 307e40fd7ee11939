"""The Distillation page under streamlit.testing.v1.AppTest (its plot builders: test_distillation_charts.py)."""

from streamlit.testing.v1 import AppTest

from compression.paths import REPO_ROOT as ROOT

PAGE = str(ROOT / "pages" / "2_Distillation.py")


def _soft_bars(at):
    import json
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    return [trace["y"] for trace in fig["data"]]


def test_moving_t_softens_the_shown_soft_labels(home):
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    assert not at.exception
    t1, t2 = _soft_bars(at)  # T = 1 and the default T = 2
    assert max(t2) < max(t1) and t1.index(max(t1)) == t2.index(max(t2))  # flatter, same top class
    at.slider(key="distill_temperature").set_value(20.0).run()
    assert not at.exception
    _, t20 = _soft_bars(at)
    assert max(t20) < max(t2) and abs(sum(t20) - 100) < 1e-3
    assert any("No students of cnn stored yet" in i.value for i in at.info)


def test_a_one_epoch_run_completes_and_stores_both_students(home, monkeypatch):
    from compression.store import RunStore
    from support import every_runtime_table, without_a_cxx_compiler
    without_a_cxx_compiler(monkeypatch)
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    at.select_slider(key="distill_labeled").set_value(1000)
    at.slider(key="distill_epochs").set_value(1)
    at.button(key="distill_start").click().run()
    assert not at.exception
    at.session_state["distill_job"].wait(timeout=600)
    at.run()
    assert not at.exception and not at.error
    job = at.session_state["distill_job"]
    assert job.status == "done", job.error
    runs = RunStore().runs(method="distill")
    assert len(runs) == 2 and {r["extra"]["role"] for r in runs} == {"hard labels", "distilled"}
    assert all(r["model"] == "cnn" and r["config"]["train_subset"] == 1000 and r["artifact_path"] for r in runs)
    # the table shows both students; the Pareto chart shows them beside the teacher
    table = at.dataframe[0].value
    assert list(table["trained on"]) == ["hard labels", "distilled"]
    assert len(at.get("plotly_chart")) >= 3  # soft labels, curves, students vs teacher
    # the distilled student against its teacher on every runtime
    rows = every_runtime_table(at, "distill_runtimes_job", "result vs teacher")
    onnx = rows[rows["runtime"].str.startswith("ONNX Runtime")]
    assert list(onnx["batch"]) == [1, 256] and onnx["result"].str.contains("±", regex=False).all()
    assert onnx["ratio (teacher / result)"].notna().all()  # the teacher (cnn) and the student both ran
    assert rows[rows["runtime"].str.startswith("torch.compile")]["note"].str.contains("C++ compiler", regex=False).all()
    assert any("result and the teacher timed interleaved" in c.value for c in at.caption)


def test_bad_choice_is_shown_not_raised(home):
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    at.radio(key="distill_init").set_value("pretrained")
    at.select_slider(key="distill_width").set_value(0.5).run()
    assert not at.exception
    assert any("got width 0.5" in e.value for e in at.error)
