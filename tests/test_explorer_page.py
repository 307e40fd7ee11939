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
    """The Pareto chart (the page also draws the shown runs' parallel coordinates)."""
    (chart,) = [c for c in at.get("plotly_chart") if "explorer_chart" in c.proto.id]
    return json.loads(chart.proto.spec)


def values(array) -> list:
    """A plotly data array as sent to the browser (plain list, or base64 typed array)."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def run_ids(fig: dict) -> list[int]:
    """Run ids drawn as markers (the frontier line, path and selection ring left out)."""
    return sorted(i[0] if isinstance(i, list) else i  # past 1,000 runs: [id, hover fields...] (LEAN_HOVER)
                  for t in fig["data"] if t.get("mode") == "markers" and "customdata" in t
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


def test_runtime_filter_compares_latency_like_with_like(home):
    seed_store(home / "runs.sqlite", 20)
    with sqlite3.connect(home / "runs.sqlite") as db:  # runs 3-6 timed on torch.compile
        db.execute("UPDATE runs SET extra = json_set(extra, '$.runtime', 'compile') WHERE id BETWEEN 3 AND 6")
    at = page(x="latency_ms")
    assert not at.exception
    assert any("not comparable across runtimes" in c.value for c in at.caption)  # mixed: said
    assert at.multiselect(key="explorer_runtimes").options == ["compile", "eager"]
    at.multiselect(key="explorer_runtimes").set_value(["compile"]).run()
    assert not at.exception
    assert run_ids(figure(at)) == [3, 4, 5, 6] and at.query_params["runtimes"] == "compile"
    assert not any("not comparable across runtimes" in c.value for c in at.caption)
    again = page(x="latency_ms", runtimes="eager")  # the link keeps the filter
    assert len(run_ids(figure(again))) == 16 and 3 not in run_ids(figure(again))


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
    # under the one name every page gives a run's file (<name or model>-<method>-<id>.cxp), with what it is
    assert any(f"mlp-quantize-{kept}.cxp (1,234 bytes)" in label for label in labels), labels
    assert any("Compression Explorer's own container" in c.value for c in at.caption)
    at = page(run=str(gone))
    assert any("no longer on disk" in c.value for c in at.caption)


def test_empty_and_unreadable_stores(home):
    at = page()
    assert not at.exception and any("No runs stored for" in i.value for i in at.info)
    (home / "runs.sqlite").unlink()
    (home / "runs.sqlite").write_bytes(b"garbage" * 1000)
    at = page()
    assert not at.exception and any("runs.sqlite" in e.value for e in at.error)


def test_details_say_which_gains_are_real_and_flag_a_chance_level_run(home):
    """The explorer says the same as the pages (one honesty sentence from simulated_metrics), and a
    run at chance level says so with its fix; an unstructured prune is on the size frontier."""
    base = Metrics(0.92, 1000, 1000, 1000, 4000, 1e4, 1.0, False)
    store = RunStore()
    sparse = store.add(Result("mlp", "fashion-mnist", "prune", {"method": "unstructured", "ratio": 0.9,
                                                                 "finetune_epochs": 2}, "cpu",
                              Metrics(0.91, 1000, 1000, 100, 500, 1e4, 1.0, True), base,
                              extra={"simulated_metrics": ["latency_ms"], "baseline_latency_ms": 1.0,
                                     "latency_spread_ms": 0.01, "baseline_latency_spread_ms": 0.01}))
    chance = store.add(Result("mlp", "fashion-mnist", "prune", {"method": "unstructured", "ratio": 0.95,
                                                                 "finetune_epochs": 0}, "cpu",
                              Metrics(0.10, 1000, 1000, 50, 300, 1e4, 1.0, True), base,
                              extra={"simulated_metrics": ["latency_ms"]}))
    at = page(run=str(sparse))
    assert not at.exception
    assert shown_caption(at).startswith("2 of 2 runs shown · 1 model · 2 on the frontier")
    texts = [w.value for w in at.warning]
    assert any(t.startswith("Size and MACs are real; latency is simulated") for t in texts), texts
    assert not any("savings are not" in t for t in texts)
    (cmp,) = [d.value for d in at.dataframe if "change" in d.value]  # the run against its baseline
    change = dict(zip(cmp["metric"], cmp["change"]))
    assert change["stored size"] == "8.00x smaller" and change["latency (batch 1)"] == "no measurable change (simulated)"
    at = page(run=str(chance))
    texts = [w.value for w in at.warning]
    assert any(t.startswith("Chance level: 10.00 % on 10 classes") and "set fine-tuning epochs" in t
               for t in texts), texts


# ---- runs kept on purpose: hidden, tags, star + story view, delete ---------------------------------

def test_hidden_runs_are_off_the_explorer_until_asked_for(seeded):
    hidden = [r["id"] for r in seeded.runs()[:3]]
    for run_id in hidden:
        seeded.update(run_id, hidden=True)
    at = page()
    assert not at.exception
    assert not set(hidden) & set(run_ids(figure(at))) and len(run_ids(figure(at))) == 57
    assert shown_caption(at).startswith("57 of 60 runs shown") and "3 hidden" in shown_caption(at)
    assert len(at.dataframe[-1].value) == 57
    at.toggle(key="explorer_hidden").set_value(True).run()
    assert not at.exception and set(hidden) <= set(run_ids(figure(at))) and at.query_params["hidden"] == "1"
    assert page(hidden="1").toggle(key="explorer_hidden").value is True  # kept in the link


def test_tag_filter(seeded):
    rows = seeded.runs()
    seeded.tag(rows[0]["id"], "review")
    seeded.tag(rows[1]["id"], "review", "int8")
    seeded.tag(rows[2]["id"], "int8")
    at = page()
    assert at.multiselect(key="explorer_tags").options == ["int8", "review"]
    at.multiselect(key="explorer_tags").set_value(["review"]).run()
    assert not at.exception and run_ids(figure(at)) == sorted([rows[0]["id"], rows[1]["id"]])
    assert at.query_params["tags"] == "review"
    at.multiselect(key="explorer_tags").set_value(["review", "int8"]).run()  # any of them
    assert run_ids(figure(at)) == sorted(r["id"] for r in rows[:3])


def test_star_from_the_details_then_the_story_view_shows_only_starred_runs(seeded):
    prune = seeded.runs(method="prune")[0]
    seeded.update(prune["id"], name="Half the channels")
    quant = seeded.runs(method="quantize")[0]
    at = page(run=str(prune["id"]))
    at.button(key=f"explorer_star_{prune['id']}").click().run()
    assert not at.exception and seeded.get(prune["id"])["starred"] is True
    assert any("starred" in t.value for t in at.toast)
    assert at.button(key=f"explorer_star_{prune['id']}").label == "Unstar"
    seeded.update(quant["id"], starred=True)  # one more, unnamed

    at.toggle(key="explorer_story").set_value(True).run()
    assert not at.exception and at.query_params["story"] == "1"
    fig = figure(at)
    assert run_ids(fig) == sorted([prune["id"], quant["id"]])  # only the starred runs
    (names,) = [t for t in fig["data"] if t.get("name") == "names"]
    from compression.run_labels import describe  # unnamed: what it did, in a few words
    assert sorted(names["text"]) == sorted(["Half the channels", describe("quantize", quant["config"])])
    story = next(d.value for d in at.dataframe if "size vs baseline" in d.value.columns and "name" in d.value.columns)
    assert list(story["run"]) == [r["id"] for r in sorted([prune, quant], key=lambda r: -r["size_bytes"])]
    row = story.set_index("run").loc[prune["id"]]
    base = prune["baseline"]
    assert row["name"] == "Half the channels" and row["accuracy (%)"] == round(prune["accuracy"] * 100, 2)
    from compression.charts.format import fmt_change  # said the one way, as on every page
    from compression.honesty import simulated_metrics
    assert row["size vs baseline"] == fmt_change(prune["size_bytes"], base["size_bytes"], "size_bytes",
                                                 simulated="size_bytes" in simulated_metrics(prune)).text
    assert row["accuracy change"] == f"{(prune['accuracy'] - base['accuracy']) * 100:+.2f} points"


def test_story_view_without_starred_runs_says_how_to_star(seeded):
    at = page(story="1")
    assert not at.exception and any("star it" in w.value for w in at.warning)


def test_delete_from_the_details_asks_first_then_removes_the_run_and_its_artifact(seeded, home):
    (home / "artifacts").mkdir()
    file = home / "artifacts" / "mlp-q.cxp"
    file.write_bytes(b"\x01" * 100)
    m = Metrics(0.88, 1000, 10, 10, 100, 10.0, 0.1, False)
    run_id = seeded.add(Result("mlp", "fashion-mnist", "quantize", {"bits": 4}, "cpu", m, m), artifact_path=str(file))
    at = page(run=str(run_id))
    assert run_id in run_ids(figure(at))
    at.button(key=f"explorer_delete_{run_id}").click().run()
    assert not at.exception and seeded.get(run_id) is not None  # not yet: it asks
    assert any(f"Delete run {run_id}" in w.value for w in at.warning)
    at.button(key="explorer_delete_no").click().run()
    assert seeded.get(run_id) is not None and not any(f"Delete run {run_id}" in w.value for w in at.warning)
    at.button(key=f"explorer_delete_{run_id}").click().run()
    at.button(key="explorer_delete_yes").click().run()
    assert not at.exception
    assert seeded.get(run_id) is None and not file.exists()
    assert run_id not in run_ids(figure(at)) and shown_caption(at).startswith("60 of 60 runs shown")
    assert at.selectbox(key="explorer_run").value is None and "run" not in at.query_params
    assert any(f"Run {run_id} and its artifact file deleted" in t.value for t in at.toast)


def test_hide_and_name_from_the_details(seeded):
    run = seeded.runs(method="distill")[0]
    at = page(run=str(run["id"]))
    at.text_input(key=f"explorer_name_{run['id']}").input("Distilled, T=4").run()
    assert not at.exception and seeded.get(run["id"])["name"] == "Distilled, T=4"
    assert any("“Distilled, T=4”" in m.value for m in at.markdown)
    at.text_input(key=f"explorer_name_{run['id']}").input("two\nlines").run()
    assert any("two" in e.value for e in at.error) and seeded.get(run["id"])["name"] == "Distilled, T=4"
    at.button(key=f"explorer_hide_{run['id']}").click().run()
    assert not at.exception and seeded.get(run["id"])["hidden"] is True
    assert run["id"] not in run_ids(figure(at)) and at.selectbox(key="explorer_run").value is None


def test_every_run_with_an_artifact_file_offers_it(seeded, home, monkeypatch, tmp_path):
    """Absolute paths, paths under the data folder and paths relative to where the app runs."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rel").mkdir()
    (tmp_path / "rel" / "cwd.cxp").write_bytes(b"\x02" * 7)
    m = Metrics(0.88, 1000, 10, 10, 7, 10.0, 0.1, False)
    run_id = seeded.add(Result("mlp", "fashion-mnist", "quantize", {"bits": 4}, "cpu", m, m), artifact_path="rel/cwd.cxp")
    at = page(run=str(run_id))
    (button,) = [b for b in at.get("download_button") if f"mlp-quantize-{run_id}.cxp" in b.proto.label]
    assert "7 bytes" in button.proto.label


def test_each_run_names_its_runtime_and_a_latency_axis_across_runtimes_says_so(home):
    store = RunStore()
    m = Metrics(0.85, 1000, 1000, 500, 1234, 40000.0, 0.5, False)
    store.add(Result("mlp", "fashion-mnist", "prune", {"ratio": 0.5}, "cpu", m, m, extra={"runtime": "onnxruntime"}))
    store.add(Result("mlp", "fashion-mnist", "prune", {"ratio": 0.6}, "cpu", m, m))  # stored before runtimes: eager
    at = page(x="latency_ms")
    assert not at.exception
    assert sorted(at.dataframe[1].value["runtime"]) == ["eager", "onnxruntime"]
    assert any("timed on eager, onnxruntime" in c.value for c in at.caption)
    hover = " ".join(h for t in figure(at)["data"] for h in (t.get("hovertext") or []))
    assert "onnxruntime" in hover


# ---- readable by a stakeholder (issue 26) ----------------------------------------------------------

def filters_expander(at):
    (box,) = [e for e in at.expander if e.label.startswith("Filters")]
    return box


def test_starred_runs_open_the_story_with_the_filters_folded_away(seeded):
    prune = seeded.runs(method="prune")[0]
    seeded.update(prune["id"], name="Half the channels", starred=True)
    at = page()
    assert not at.exception
    assert at.toggle(key="explorer_story").value is True  # starred runs: the story first
    assert at.query_params["story"] == "1"
    box = filters_expander(at)
    assert box.proto.expanded is False and box.label == "Filters: all runs"
    assert at.multiselect(key="explorer_models") in box.multiselect  # the filters are inside it
    fig = figure(at)
    assert run_ids(fig) == [prune["id"]]
    story = next(d.value for d in at.dataframe if "size vs baseline" in d.value.columns and "name" in d.value.columns)
    assert list(story["name"]) == ["Half the channels"]

    at.toggle(key="explorer_story").set_value(False).run()  # off is written, so the link keeps it
    assert not at.exception and at.query_params["story"] == "0"
    assert len(run_ids(figure(page(story="0")))) == 60
    at.multiselect(key="explorer_methods").set_value(["prune"]).run()
    assert filters_expander(at).label == "Filters (on: method)"


def test_without_starred_runs_the_explorer_opens_on_every_run_and_pickers_say_what_runs_did(seeded):
    at = page()
    assert not at.exception and at.toggle(key="explorer_story").value is False
    assert "story" not in at.query_params and filters_expander(at).proto.expanded is False
    options = at.selectbox(key="explorer_run").options
    assert options and not any("=" in o.replace("T=", "") for o in options), options[:3]  # never a config dump
    assert any(" · structured " in o or " · unstructured " in o for o in options)
    prune = seeded.runs(method="prune")[0]
    at.selectbox(key="explorer_run").set_value(prune["id"]).run()
    seeded.update(prune["id"], name="Renamed")  # a rename keeps the choice (the selectbox's key is its identity)
    at.run()
    assert at.selectbox(key="explorer_run").value == prune["id"]
    assert any(o.startswith(f"run {prune['id']} · “Renamed” · ") for o in at.selectbox(key="explorer_run").options)
