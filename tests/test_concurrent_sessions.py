"""Several users at once (issue 9), the fast version of benchmarks/bench_load.py: 4 sessions start a
method at the same moment (inline pruning, inline quantization, a background fine-tuning job,
inline pruning again), sharing the cached models and the device queue. No session sees an error,
and the run store holds exactly one run per completed action: nothing lost, nothing doubled."""

from __future__ import annotations

from benchmarks.bench_load import plan, run_load


def test_plan_mixes_kinds_with_distinct_settings():
    actions = plan(8)
    assert {a.kind for a in actions} == {"prune", "quantize", "job"}
    assert len({a.stored_key for a in actions}) == 8  # every action stores its own run


def test_four_sessions_at_once_no_error_nothing_lost(tmp_path):
    out = run_load(4, home=str(tmp_path / "home"))
    assert [r["errors"] for r in out["rows"]] == [[]] * 4
    assert all(r["completed"] for r in out["rows"])
    assert out["stored_runs"] == 4                       # one run per completed action ...
    assert out["stored"] == out["expected"]              # ... and exactly the ones they made
    # the device queue admits one heavy job at a time: the session with the background job waited
    # for (or was waited on by) the inline ones, and every session still finished
    assert max(r["wait_s"] for r in out["rows"]) > 0
