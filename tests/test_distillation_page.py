"""The Distillation page under streamlit.testing.v1.AppTest, and its plot builders."""

import pytest
from streamlit.testing.v1 import AppTest

from compression.paths import REPO_ROOT as ROOT
from ui.charts_distillation import curves_frame, results_frame, soft_label_bars, sweep_curve, training_curves

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


def test_a_one_epoch_run_completes_and_stores_both_students(home):
    from compression.store import RunStore
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


def test_bad_choice_is_shown_not_raised(home):
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    at.radio(key="distill_init").set_value("pretrained")
    at.select_slider(key="distill_width").set_value(0.5).run()
    assert not at.exception
    assert any("got width 0.5" in e.value for e in at.error)


# ---------------------------------------------------------------------------------------------
# plot builders (no browser)

EVENTS = [{"run": "hard labels (no teacher)", "role": "hard labels", "epoch": e, "epochs": 2, "val_accuracy": a}
          for e, a in ((1, 0.70), (2, 0.75))] + \
         [{"run": "distilled T=4, α=0.9", "role": "distilled", "epoch": e, "epochs": 2, "val_accuracy": a}
          for e, a in ((1, 0.72), (2, 0.78))]


def test_training_curves_draw_both_students():
    fig = training_curves(EVENTS, teacher_accuracy=0.92)
    assert [t.name for t in fig.data] == ["hard labels (no teacher)", "distilled T=4, α=0.9"]
    assert list(fig.data[1].y) == pytest.approx([72.0, 78.0])
    assert fig.data[0].line.dash == "dash"
    assert len(curves_frame([{"step": 1}])) == 0  # entries without accuracy are skipped


def _row(role, acc, T=None, alpha=0.0):
    return {"role": role, "accuracy": acc, "accuracy_n": 10000, "size_bytes": 250309, "params": 61706,
            "macs": 416520, "latency_ms": 0.4, "epochs_done": 2, "stopped": False,
            "config": {"temperature": T, "alpha": alpha, "epochs": 2, "student": "lenet5"}}


def test_results_and_sweep_against_hard_labels():
    rows = [_row("hard labels", 0.80), _row("distilled", 0.83, 2.0, 0.9), _row("distilled", 0.81, 8.0, 0.9)]
    df = results_frame(rows)
    assert df["vs hard labels (points)"].tolist()[1:] == pytest.approx([3.0, 1.0])
    fig = sweep_curve(rows, "temperature", teacher_accuracy=0.92)
    assert list(fig.data[0].x) == [2.0, 8.0] and list(fig.data[0].y) == pytest.approx([83.0, 81.0])


def test_soft_label_bars_in_percent():
    fig = soft_label_bars([0.9, 0.1], [0.6, 0.4], ["a", "b"], 4.0)
    assert list(fig.data[0].y) == pytest.approx([90.0, 10.0]) and "T = 4" in fig.data[1].name
