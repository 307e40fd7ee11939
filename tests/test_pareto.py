"""The frontier on hand-made points, pipeline paths, and the sweep executors."""

import concurrent.futures as cf
import multiprocessing as mp
import threading
import time

import pytest
from hypothesis import given, settings, strategies as st

from compression import CompressionError
from compression.pareto import frontier_mask, pareto_frontier, pipeline_path
from compression.sweep import FuturesExecutor, InProcessExecutor, default_executor, set_default_executor


def P(run_id, size, acc, **kw):
    return {"id": run_id, "size_bytes": size, "accuracy": acc, **kw}


def ids(points):
    return [p["id"] for p in points]


# ---- frontier ------------------------------------------------------------------------------------

def test_single_point_is_its_own_frontier():
    assert ids(pareto_frontier([P(1, 100, 0.5)])) == [1]
    assert pareto_frontier([]) == []


def test_all_dominated_but_one():
    # run 1 is the smallest and the most accurate: it dominates every other point
    pts = [P(2, 200, 0.80), P(1, 100, 0.95), P(3, 150, 0.90), P(4, 100, 0.94), P(5, 900, 0.95)]
    assert ids(pareto_frontier(pts)) == [1]


def test_staircase_cheapest_first_and_accuracy_rising():
    pts = [P(1, 1000, 0.92), P(2, 100, 0.80), P(3, 300, 0.85), P(4, 400, 0.84), P(5, 50, 0.60), P(6, 2000, 0.91)]
    front = pareto_frontier(pts)
    assert ids(front) == [5, 2, 3, 1]  # 4 is beaten by 3 (smaller, more accurate), 6 by 1
    assert [p["accuracy"] for p in front] == sorted(p["accuracy"] for p in front)


def test_ties_in_cost_keep_the_more_accurate_and_ties_in_accuracy_the_cheaper():
    pts = [P(1, 100, 0.80), P(2, 100, 0.85), P(3, 300, 0.90), P(4, 200, 0.90)]
    assert ids(pareto_frontier(pts)) == [2, 4]


def test_exact_duplicates_are_all_kept_on_the_frontier_and_all_dropped_off_it():
    # two runs with identical numbers: neither dominates the other, so both are listed
    pts = [P(1, 100, 0.9), P(2, 100, 0.9), P(3, 50, 0.7), P(4, 500, 0.8), P(5, 500, 0.8)]
    assert ids(pareto_frontier(pts)) == [3, 1, 2]  # 4 and 5 are dominated by 1 (and 2)


def test_missing_or_non_finite_numbers_are_never_on_the_frontier():
    pts = [P(1, None, 0.99), P(2, float("nan"), 0.99), P(3, 100, float("inf")), P(4, 100, 0.5)]
    assert ids(pareto_frontier(pts)) == [4]


def test_any_cost_axis():
    pts = [{"id": 1, "macs": 10, "latency_ms": 5.0, "accuracy": 0.9},
           {"id": 2, "macs": 20, "latency_ms": 1.0, "accuracy": 0.9}]
    assert ids(pareto_frontier(pts, cost="macs")) == [1]
    assert ids(pareto_frontier(pts, cost="latency_ms")) == [2]


def test_bad_cost_and_bad_lengths_are_named():
    with pytest.raises(CompressionError, match="'weight'"):
        pareto_frontier([P(1, 1, 1)], cost="weight")
    with pytest.raises(CompressionError, match="3 costs but 2 values"):
        frontier_mask([1, 2, 3], [0.1, 0.2])


def _dominates(a, b):
    return a[0] <= b[0] and a[1] >= b[1] and (a[0] < b[0] or a[1] > b[1])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 30), st.integers(0, 30)), max_size=40))
def test_frontier_matches_the_definition(points):
    """Against the O(n^2) definition, on small integer grids (so ties and duplicates are common):
    a point is on the frontier exactly when no other point dominates it."""
    mask = frontier_mask([c for c, _ in points], [v for _, v in points])
    for i, p in enumerate(points):
        assert mask[i] == (not any(_dominates(q, p) for q in points)), (i, p)


# ---- pipeline path -------------------------------------------------------------------------------

def test_pipeline_path_follows_parents_first_step_first():
    rows = {1: {"id": 1, "parent_id": None}, 2: {"id": 2, "parent_id": 1}, 3: {"id": 3, "parent_id": 2}}
    assert ids(pipeline_path(3, rows.get)) == [1, 2, 3]
    assert ids(pipeline_path(1, rows.get)) == [1]


def test_pipeline_path_survives_a_missing_parent_and_a_loop():
    assert ids(pipeline_path(2, {2: {"id": 2, "parent_id": 99}}.get)) == [2]
    loop = {1: {"id": 1, "parent_id": 2}, 2: {"id": 2, "parent_id": 1}}
    assert ids(pipeline_path(1, loop.get)) == [2, 1]
    assert pipeline_path(5, {}.get) == []


# ---- sweep executors -----------------------------------------------------------------------------

def square(x):
    if x == "bad":
        raise CompressionError("config 'bad' refused")
    return x * x


def test_in_process_runs_in_order_with_progress_for_ui_jobs():
    events = []
    points = list(InProcessExecutor().map(square, [1, 2, 3], progress=events.append))
    assert [(p.index, p.config, p.result) for p in points] == [(0, 1, 1), (1, 2, 4), (2, 3, 9)]
    assert [(e["step"], e["steps"]) for e in events] == [(1, 3), (2, 3), (3, 3)]  # what ui.jobs reads


def test_a_refused_config_is_that_point_s_error_and_the_sweep_goes_on():
    points = list(InProcessExecutor().map(square, [2, "bad", 3]))
    assert [p.ok for p in points] == [True, False, True]
    assert points[1].error == "config 'bad' refused" and points[2].result == 9


def test_a_bug_propagates():
    with pytest.raises(TypeError):
        list(InProcessExecutor().map(square, [None]))


def test_stop_keeps_what_was_done():
    done = []
    points = []
    for p in InProcessExecutor().map(square, range(10), should_stop=lambda: len(done) >= 4):
        done.append(p)
        points.append(p.result)
    assert points == [0, 1, 4, 9]  # no point starts after Stop; the finished ones are kept


def test_futures_executor_on_threads_gives_the_same_points_with_bounded_concurrency():
    running, peak, lock = [0], [0], threading.Lock()

    def slow_square(x):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        return square(x)

    events = []
    with cf.ThreadPoolExecutor(4) as pool:
        points = list(FuturesExecutor(pool, max_pending=2).map(slow_square, range(12), progress=events.append))
    assert sorted((p.index, p.result) for p in points) == [(i, i * i) for i in range(12)]
    assert peak[0] <= 2  # never more points in flight than max_pending
    assert [e["step"] for e in events] == list(range(1, 13)) and events[-1]["steps"] == 12


def test_futures_executor_on_processes_and_its_stop():
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as pool:
        points = list(FuturesExecutor(pool).map(square, [3, "bad", 5]))
        assert sorted((p.index, p.result, p.error) for p in points) == [
            (0, 9, None), (1, None, "config 'bad' refused"), (2, 25, None)]
        got = []
        for p in FuturesExecutor(pool, max_pending=1).map(square, range(50), should_stop=lambda: len(got) >= 3):
            got.append(p.index)
        assert got == [0, 1, 2]  # one in flight at a time: Stop after the third leaves the rest unstarted


def test_the_default_executor_can_be_swapped():
    assert isinstance(default_executor(), InProcessExecutor)
    with cf.ThreadPoolExecutor(2) as pool:
        swapped = FuturesExecutor(pool)
        previous = set_default_executor(swapped)
        try:
            assert default_executor() is swapped
        finally:
            set_default_executor(previous)
    assert default_executor() is previous
    with pytest.raises(CompressionError, match="max_pending=0"):
        FuturesExecutor(cf.ThreadPoolExecutor(1), max_pending=0)
