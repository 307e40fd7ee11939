"""The explorer's frames and figure builders (pure functions, no browser)."""

import datetime as dt

import pandas as pd
import pytest

from compression.charts.pareto import (baseline_points, explorer_frame, filter_frame, frontier_ids, frontier_table,
                                       pareto_chart, run_id_of, table_frame)
from compression.charts.run_detail import comparison_frame, path_frame
from compression.metrics import Metrics, wilson_interval

BASE = Metrics(0.90, 1000, 1000, 500, 4000, 40000.0, 0.5, False).to_dict()  # = run 1 below


def run(i, method, size, acc, *, model="mlp", simulated=False, device="cpu", day=1, parent=None, n=1000, baseline=BASE,
        extra=None, latency=0.5):
    return {"id": i, "created_at": dt.datetime(2024, 5, day, 12, tzinfo=dt.timezone.utc).timestamp(),
            "model": model, "dataset": "fashion-mnist", "method": method, "config": {"ratio": i / 10},
            "device": device, "code_version": "t", "accuracy": acc, "accuracy_n": n, "params": size // 4,
            "nonzero_params": size // 8, "size_bytes": size, "macs": 10.0 * size, "latency_ms": latency,
            "simulated": simulated, "baseline": baseline, "extra": extra or {}, "parent_id": parent, "artifact_path": None}


RUNS = [run(1, "baseline", 4000, 0.90, baseline=BASE),
        run(2, "prune", 1000, 0.85, parent=None, day=2),
        run(3, "quantize", 500, 0.84, parent=2, day=3),
        run(4, "prune", 800, 0.70, day=4),                      # dominated by 2? no: cheaper; by 3: yes
        run(5, "prune", 300, 0.95, simulated=True, day=5),      # would dominate all, but is simulated (an old
        #                                                         row: no simulated_metrics, so every cost is)
        run(6, "distill", 2000, 0.88, model="lenet5", device="cuda", day=6)]


@pytest.fixture
def df():
    return explorer_frame(RUNS)


def test_frame_carries_the_confidence_interval(df):
    assert list(df["id"]) == [1, 2, 3, 4, 5, 6]
    lo, hi = wilson_interval(0.85, 1000)
    row = df.set_index("id").loc[2]
    assert (row["ci_low"], row["ci_high"]) == (lo, hi) and lo < 0.85 < hi
    assert row["label"] == "unstructured 0.2" and "run 2" in row["hover"]  # what it did, not key=value and "4.00x smaller, -5.00 points" in row["hover"]
    assert explorer_frame([]).empty


def test_frontier_leaves_simulated_gains_out_unless_asked(df):
    assert frontier_ids(df, "size_bytes") == [3, 2, 6, 1]
    assert frontier_ids(df, "size_bytes", include_simulated=True) == [5]  # 5 dominates every other run
    assert frontier_ids(df[df["simulated"]], "size_bytes") == []


def test_filters(df):
    assert list(filter_frame(df, methods=["prune"])["id"]) == [2, 4, 5]
    assert list(filter_frame(df, models=["lenet5"], devices=["cuda"])["id"]) == [6]
    assert list(filter_frame(df, dates=(dt.date(2024, 5, 3), dt.date(2024, 5, 4)))["id"]) == [3, 4]
    assert list(filter_frame(df, dates=(dt.date(2024, 5, 5),))["id"]) == [5, 6]  # open-ended range
    assert len(filter_frame(df)) == 6
    assert list(filter_frame(df, runtimes=["eager"])["id"]) == [1, 2, 3, 4, 5, 6]  # stored before runtimes: eager
    timed = explorer_frame(RUNS[:2] + [run(7, "prune", 900, 0.86, extra={"runtime": "onnxruntime"})])
    assert list(filter_frame(timed, runtimes=["onnxruntime"])["id"]) == [7]
    assert list(filter_frame(timed, runtimes=["eager", "onnxruntime"])["id"]) == [1, 2, 7]


def _points(fig):
    return [t for t in fig.data if t.mode == "markers" and t.x is not None and t.x[0] is not None]


def test_chart_one_marker_per_run_colored_by_method_shaped_by_model_hollow_when_simulated(df):
    fig = pareto_chart(df, "size_bytes", frontier=frontier_ids(df, "size_bytes"))
    runs = [t for t in _points(fig) if t.customdata is not None]
    assert sorted(i for t in runs for i in t.customdata) == [1, 2, 3, 4, 5, 6]  # every run, once
    by_name = {t.name: t for t in runs}
    prune = by_name["prune"]
    shape = dict(zip(prune.customdata, prune.marker.symbol))
    assert shape[5].endswith("-open") and not shape[2].endswith("-open")  # run 5 is simulated
    assert shape[2] == shape[4]  # same model, same shape
    assert by_name["distill"].marker.symbol[0] != shape[2]  # lenet5 is not drawn like mlp
    assert prune.marker.color != by_name["quantize"].marker.color
    assert by_name["uncompressed (baseline run)"].marker.symbol == "star"
    # error bars are the Wilson interval, in accuracy points
    t = by_name["quantize"]
    lo, hi = wilson_interval(0.84, 1000)
    assert t.error_y.array[0] == pytest.approx((hi - 0.84) * 100) and t.error_y.arrayminus[0] == pytest.approx((0.84 - lo) * 100)
    assert fig.layout.xaxis.type == "log" and "stored size" in fig.layout.xaxis.title.text
    legend2 = [t.name for t in fig.data if t.legend == "legend2"]
    assert legend2 == ["lenet5", "mlp", "hollow: size simulated for this run"]
    # on the parameters axis nothing is simulated: no hollow marker, no legend entry for it
    fig = pareto_chart(df, "params")
    assert not any(s.endswith("-open") for t in _points(fig) if t.customdata is not None for s in t.marker.symbol)
    assert [t.name for t in fig.data if t.legend == "legend2"] == ["lenet5", "mlp"]


def test_frontier_per_axis_uses_every_run_whose_number_on_that_axis_is_real():
    """An unstructured prune's sparse file is real (on the size frontier) but it runs dense kernels
    (off the latency frontier); an old row with simulated true and no list is off both."""
    sparse = run(7, "prune", 250, 0.96, simulated=True, latency=0.1, extra={"simulated_metrics": ["latency_ms"]})
    old = run(8, "prune", 200, 0.97, simulated=True, latency=0.05)
    frame = explorer_frame(RUNS + [sparse, old])
    assert list(frame.set_index("id").loc[7, "simulated_metrics"]) == ["latency_ms"]
    assert list(frame.set_index("id").loc[8, "simulated_metrics"]) == ["size_bytes", "macs", "latency_ms"]
    size_front, latency_front = frontier_ids(frame, "size_bytes"), frontier_ids(frame, "latency_ms")
    assert 7 in size_front and 7 not in latency_front and 8 not in size_front and 8 not in latency_front
    assert frontier_ids(frame, "size_bytes", include_simulated=True) == [8]  # the option still lets them in
    # hollow where the axis is simulated for the run: 7 on latency only, 8 on both
    def hollow(cost):
        fig = pareto_chart(frame, cost)
        return {i for t in _points(fig) if t.customdata is not None
                for i, s in zip(t.customdata, t.marker.symbol) if s.endswith("-open")}
    assert hollow("size_bytes") == {5, 8} and hollow("latency_ms") == {5, 7, 8}
    assert "simulated: latency" in frame.set_index("id").loc[7, "hover"]


def test_frontier_is_a_rising_step_line(df):
    fig = pareto_chart(df, "size_bytes", frontier=frontier_ids(df, "size_bytes"), log_x=False)
    (line,) = [t for t in fig.data if t.name and t.name.startswith("Pareto frontier")]
    assert line.line.shape == "hv"  # flat until the next frontier run: "best accuracy within this budget"
    assert list(line.x) == sorted(line.x) and list(line.y) == sorted(line.y)
    assert fig.layout.xaxis.type == "linear"


def test_selected_run_and_its_pipeline_path(df):
    fig = pareto_chart(df, "params", path=[2, 3], selected=3)
    names = [t.name for t in fig.data]
    assert "pipeline of run 3" in names and "selected: run 3" in names
    path = fig.data[names.index("pipeline of run 3")]
    assert list(path.customdata) == [2, 3] and list(path.x) == [250, 125]  # params of runs 2 and 3


def test_recorded_baselines_are_marked_once_unless_stored_as_runs(df):
    other = dict(BASE, accuracy=0.91)
    extra = explorer_frame(RUNS + [run(7, "prune", 900, 0.8, model="lenet5", baseline=other),
                                   run(8, "prune", 700, 0.8, model="lenet5", baseline=other)])
    pts = baseline_points(extra)
    # mlp's baseline is stored as run 1 (not repeated); lenet5's: one marker per device measured on
    assert sorted(zip(pts["model"], pts["device"], pts["accuracy"])) == [("lenet5", "cpu", 0.91), ("lenet5", "cuda", 0.90)]


@pytest.mark.parametrize("point, expected", [
    ({"customdata": 7}, 7), ({"customdata": [7]}, 7), ({"customdata": {"0": 7}}, 7),
    ({"customdata": None}, None), ({}, None), ({"customdata": "x"}, None)])
def test_run_id_of_a_clicked_point(point, expected):
    assert run_id_of(point) == expected


def test_tables(df):
    front = frontier_ids(df, "size_bytes")
    table = table_frame(df, front)
    assert len(table) == 6 and list(table["on frontier"]) == [True, True, True, False, False, True]
    row = table.set_index("run").loc[3]
    assert row["x smaller than baseline"] == 8.0 and row["accuracy change (points)"] == pytest.approx(-6.0)
    assert row["size vs baseline"] == "8.00x smaller"
    assert table.set_index("run").loc[5, "size vs baseline"] == "13.3x smaller (simulated)"  # an old simulated row
    ft = frontier_table(df, front)
    assert list(ft["run"]) == front and '"ratio": 0.3' in ft.set_index("run").loc[3, "config (JSON)"]
    assert frontier_table(df, []).empty


def test_comparison_against_the_baseline():
    beside = {"baseline_latency_ms": 0.5, "latency_spread_ms": 0.01, "baseline_latency_spread_ms": 0.01}
    cmp = comparison_frame({**RUNS[2], "extra": beside}).set_index("metric")
    assert cmp.loc["test accuracy", "change"] == "-6.00 points"
    assert cmp.loc["stored size", "change"] == "8.00x smaller"
    assert cmp.loc["latency (batch 1)", "change"] == "no measurable change"
    old = comparison_frame(RUNS[2]).set_index("metric")  # stored before baselines were timed beside runs
    assert old.loc["latency (batch 1)", "change"] == "latency baseline unreliable"
    sparse = comparison_frame({**RUNS[2], "latency_ms": 0.25, "simulated": True,
                               "extra": {**beside, "simulated_metrics": ["latency_ms"]}}).set_index("metric")
    assert sparse.loc["latency (batch 1)", "change"] == "2.00x faster (simulated)"
    assert sparse.loc["stored size", "change"] == "8.00x smaller"  # the file is real
    assert cmp.loc["parameters", "uncompressed"] == "1,000"
    no_base = comparison_frame({**RUNS[2], "baseline": None}).set_index("metric")
    assert (no_base["uncompressed"] == "–").all()


def test_path_frame():
    p = path_frame([RUNS[1], RUNS[2]])
    assert list(p["step"]) == [1, 2] and list(p["run"]) == [2, 3] and isinstance(p, pd.DataFrame)


def test_many_runs_keep_the_interval_in_the_hover_not_as_bars():
    from compression.charts.pareto import CI_BARS_UP_TO
    many = explorer_frame([run(i, "prune", 1000 + i, 0.8) for i in range(1, CI_BARS_UP_TO + 2)])
    t = [t for t in _points(pareto_chart(many)) if t.name == "prune"][0]
    assert len(t.customdata) == CI_BARS_UP_TO + 1 and t.error_y.array is None
    assert all("95% CI" in h for h in t.hovertext)
    few = explorer_frame([run(i, "prune", 1000 + i, 0.8) for i in range(1, CI_BARS_UP_TO + 1)])
    assert [t for t in _points(pareto_chart(few)) if t.name == "prune"][0].error_y.array is not None


def test_the_csv_rounds_to_what_numbers_mean_with_iso_times_and_whole_configs():
    import io
    import json as js

    from compression.charts.export import csv_frame
    long = {"layer_bits": [[f"layer{i}", 4] for i in range(40)], "method": "uniform"}  # far past any label's length
    rows = [dict(run(1, "baseline", 4000, 0.90)), dict(run(3, "quantize", 1234, 0.84321, parent=1, day=3), config=long,
                                                       name="4-bit, per layer", tags=["review", "int8"], starred=True,
                                                       group_id="sweep:1a2b3c4d")]
    rows[1]["latency_ms"] = 0.123456
    frame = csv_frame(explorer_frame(rows), frontier=[3])
    back = pd.read_csv(io.StringIO(frame.to_csv(index=False)), keep_default_na=False)
    r = back.set_index("run").loc[3]
    assert r["created (UTC)"] == "2024-05-03T12:00:00Z" and back.set_index("run").loc[1, "created (UTC)"] == "2024-05-01T12:00:00Z"
    assert js.loads(r["config (JSON)"]) == long  # the whole config, no "…"
    assert r["accuracy (%)"] == 84.32 and r["accuracy change (points)"] == -5.68
    assert r["x smaller than baseline"] == 3.24 and r["latency (ms)"] == 0.123  # 4000/1234 = 3.2414...
    assert (r["name"], r["tags"], r["starred"], r["group"]) == ("4-bit, per layer", "review,int8", True, "sweep:1a2b3c4d")
    assert frame.to_csv(index=False).splitlines()[2].endswith(",True,1")  # on the frontier, parent run 1 (not 1.0)
    assert bool(r["on frontier"]) and r["test images"] == 1000


def test_each_run_says_its_runtime_and_old_runs_read_eager():
    rows = [run(1, "prune", 1000, 0.85), run(2, "prune", 900, 0.84, extra={"runtime": "onnxruntime"}),
            run(3, "prune", 800, 0.83, extra={"runtime": "eager", "runtime_fallback": "compile could not run"})]
    df = explorer_frame(rows)
    assert list(df["runtime"]) == ["eager", "onnxruntime", "eager"]
    assert "on cpu, onnxruntime" in df.loc[1, "hover"] and "on cpu, eager" in df.loc[0, "hover"]
    assert list(table_frame(df)["runtime"]) == ["eager", "onnxruntime", "eager"]
