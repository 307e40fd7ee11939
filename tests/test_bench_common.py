import pytest

from benchmarks.common import aggregate


def test_aggregate_takes_medians_and_shows_the_range():
    runs = [[{"what": "cnn", "x": 2.0, "n": 3, "ok": True}],
            [{"what": "cnn", "x": 1.0, "n": 3, "ok": True}],
            [{"what": "cnn", "x": 4.0, "n": 3, "ok": True}]]
    (row,) = aggregate(runs)
    assert row["what"] == "cnn" and row["x"] == 2.0 and row["x range"] == "1.000 .. 4.000"
    assert row["n"] == 3 and "n range" not in row  # the same in every run: no range
    assert row["ok"] is True  # booleans are not averaged


def test_aggregate_joins_differing_labels_and_refuses_mismatched_runs():
    (row,) = aggregate([[{"what": "T 0.64", "v": None}], [{"what": "T 0.65", "v": None}]])
    assert row["what"] == "T 0.64 / T 0.65" and row["v"] is None
    with pytest.raises(ValueError, match="row counts"):
        aggregate([[{"a": 1}], []])
