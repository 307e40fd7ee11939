"""The Pareto explorer page under AppTest, on run stores seeded by the tests."""

import base64
import datetime as dt
import json
import sqlite3

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from benchmarks.bench_explorer import seed_store
from compression.metrics import Metrics, Result
from compression.paths import REPO_ROOT as ROOT
from compression.store import RunStore

PAGE = str(ROOT / "pages" / "6_Pareto_explorer.py")


def page(**query) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def figure(at) -> dict:
    (chart,) = at.get("plotly_chart")
    return json.loads(chart.proto.spec)


def values(array) -> list:
    """A plotly data array as sent to the browser (plain list, or base64 typed array)."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def run_ids(fig: dict) -> list[int]:
    """Run ids drawn as markers (the frontier line, path and selection ring left out)."""
    return sorted(i for t in fig["data"] if t.get("mode") == "markers" and "customdata" in t
                  and not t["name"].startswith("selected") for i in values(t["customdata"]))


def shown_caption(at) -> str:
    return next(c.value for c in at.caption if "runs shown" in c.value)


@pytest.fixture
def seeded(home):
    seed_store(home / "runs.sqlite", 60)
    return RunStore()


def test_renders_every_run_with_its_frontier(seeded):
    at = page()
    assert not at.exception and not at.error
    rows = seeded.runs()
    assert run_ids(figure(at)) == sorted(r["id"] for r in rows)  # one marker per stored run
    assert shown_caption(at).startswith("60 of 60 runs shown")
    frontier, table = at.dataframe[0].value, at.dataframe[1].value
    assert len(table) == 60 and table["on frontier"].sum() == len(frontier)
    assert list(frontier["stored size (bytes)"]) == sorted(frontier["stored size (bytes)"])  # cheapest first
    assert not frontier["simulated"].any()
    assert dict(at.query_params) == {"dataset": "fashion-mnist"}
    assert [b.proto.label for b in at.get("download_button")][0].startswith("Download these 60 runs (CSV)")


def test_changing_the_x_axis_and_the_filters(seeded):
    at = page()
    at.selectbox(key="explorer_x").set_value("macs").run()
    assert not at.exception
    fig = figure(at)
    assert fig["layout"]["xaxis"]["title"]["text"].startswith("MACs per image")
    assert at.query_params["x"] == "macs"
    at.toggle(key="explorer_log").set_value(False).run()
    assert figure(at)["layout"]["xaxis"]["type"] == "linear" and at.query_params["log"] == "0"

    prune = [r["id"] for r in seeded.runs(method="prune")]
    at.multiselect(key="explorer_methods").set_value(["prune"]).run()
    assert not at.exception
    assert run_ids(figure(at)) == sorted(prune)
    assert shown_caption(at).startswith(f"{len(prune)} of 60 runs shown")
    assert set(at.dataframe[-1].value["method"]) == {"prune"}
    at.multiselect(key="explorer_models").set_value(["cnn"]).run()
    both = [r["id"] for r in seeded.runs(method="prune", model="cnn")]
    assert run_ids(figure(at)) == sorted(both) and at.query_params["models"] == "cnn"
    at.multiselect(key="explorer_devices").set_value(["cpu"]).run()
    assert run_ids(figure(at)) == sorted(both)  # every seeded run is on the cpu


def test_date_filter(home):
    seed_store(home / "runs.sqlite", 20)
    old = dt.datetime(2024, 1, 10, 12, tzinfo=dt.timezone.utc).timestamp()
    with sqlite3.connect(home / "runs.sqlite") as db:
        db.execute("UPDATE runs SET created_at = ? WHERE id <= 5", (old,))
    at = page()
    at.date_input(key="explorer_dates").set_value((dt.date(2024, 1, 1), dt.date(2024, 1, 31))).run()
    assert not at.exception
    assert run_ids(figure(at)) == [1, 2, 3, 4, 5]
    assert at.query_params["dates"] == "2024-01-01..2024-01-31"
    at.date_input(key="explorer_dates").set_value((dt.date(2024, 2, 1), dt.date(2024, 2, 2))).run()
    assert not at.exception and any("None of the 20 stored runs" in w.value for w in at.warning)


def test_a_link_reproduces_the_view(seeded):
    pipe = seeded.runs(method="pipeline")[0]
    at = page(x="params", log="0", methods="pipeline,no-such-method", run=str(pipe["id"]))
    assert not at.exception
    assert at.selectbox(key="explorer_x").value == "params"
    assert at.toggle(key="explorer_log").value is False
    assert at.multiselect(key="explorer_methods").value == ["pipeline"]  # the unknown method dropped
    assert at.selectbox(key="explorer_run").value == pipe["id"]
    fig = figure(at)
    assert fig["layout"]["xaxis"]["type"] == "linear"
    assert any(t["name"] == f"selected: run {pipe['id']}" for t in fig["data"])


def test_details_of_a_pipeline_run_with_its_path_and_artifact(seeded, home):
    pipe = seeded.runs(method="pipeline")[0]
    at = page()
    at.selectbox(key="explorer_run").set_value(pipe["id"]).run()
    assert not at.exception
    assert any(f"**Run {pipe['id']}**" in m.value for m in at.markdown)
    comparison = at.dataframe[1].value.set_index("metric")
    base = pipe["baseline"]
    assert comparison.loc["test accuracy", "change"] == f"{(pipe['accuracy'] - base['accuracy']) * 100:+.2f} points"
    path = at.dataframe[2].value
    assert list(path["method"]) == ["prune", "quantize", "pipeline"] and path["run"].iloc[-1] == pipe["id"]
    names = [t["name"] for t in figure(at)["data"]]
    assert f"pipeline of run {pipe['id']}" in names  # the path is drawn on the chart
    assert any("No artifact file was kept" in c.value for c in at.caption)

    # a run with a kept artifact gets a download button with its real size
    (home / "artifacts").mkdir()
    (home / "artifacts" / "mlp-q.bin").write_bytes(b"\x01" * 1234)
    m = Metrics(0.88, 1000, 10, 10, 1234, 10.0, 0.1, False)
    kept = seeded.add(Result("mlp", "fashion-mnist", "quantize", {"bits": 4}, "cpu", m, m),
                      artifact_path="artifacts/mlp-q.bin")
    gone = seeded.add(Result("mlp", "fashion-mnist", "quantize", {"bits": 2}, "cpu", m, m),
                      artifact_path="artifacts/deleted.bin")
    at = page(run=str(kept))
    labels = [b.proto.label for b in at.get("download_button")]
    assert any("mlp-q.bin, 1,234 bytes" in label for label in labels), labels
    at = page(run=str(gone))
    assert any("no longer on disk" in c.value for c in at.caption)


def test_empty_and_unreadable_stores(home):
    at = page()
    assert not at.exception and any("No runs stored for" in i.value for i in at.info)
    (home / "runs.sqlite").unlink()
    (home / "runs.sqlite").write_bytes(b"garbage" * 1000)
    at = page()
    assert not at.exception and any("runs.sqlite" in e.value for e in at.error)
