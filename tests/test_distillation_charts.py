"""The Distillation page's plot builders, without a browser."""

import pytest

from compression.charts.distillation import curves_frame, results_frame, soft_label_bars, sweep_curve, training_curves


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
    assert df["vs hard labels"].tolist() == ["–", "+3.00 points", "+1.00 points"]
    assert df["labeled images"].tolist() == ["all"] * 3  # never 'None' in a cell
    assert not df.isna().any().any() or df["train time (s)"].isna().all()
    fig = sweep_curve(rows, "temperature", teacher_accuracy=0.92)
    assert list(fig.data[0].x) == [2.0, 8.0] and list(fig.data[0].y) == pytest.approx([83.0, 81.0])


def test_soft_label_bars_in_percent():
    fig = soft_label_bars([0.9, 0.1], [0.6, 0.4], ["a", "b"], 4.0)
    assert list(fig.data[0].y) == pytest.approx([90.0, 10.0]) and "T = 4" in fig.data[1].name
