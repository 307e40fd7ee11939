"""The Pareto explorer with thousands of runs (issue 29): the chart keeps every run (WebGL past
WEBGL_FROM, hollow markers and the frontier kept), the pickers, the parallel chart and the table
hold a bounded part and say so, and every run stays reachable (a run-id box, table pages, the CSV)."""

import json
import re

import pandas as pd
import pytest

from benchmarks.bench_explorer import seed_store
from compression.charts.explorer_scale import (DRAWN_MAX, PARALLEL_MAX, PICKER_MAX, TABLE_PAGE, drawn_runs,
                                               newest_first, parallel_runs, picker_ids, table_page)
from compression.charts.export import csv_frame
from compression.charts.pareto import (LEAN_HOVER, WEBGL_FROM, explorer_frame, frontier_ids, pareto_chart, run_id_of,
                                       simulated_on)
from compression.store import RunStore
from tests.test_explorer_page import figure, page, run_ids, shown_caption, values

N = 1100  # above every bound: WEBGL_FROM and TABLE_PAGE (1,000 runs), PICKER_MAX, PARALLEL_MAX


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    path = tmp_path_factory.mktemp("scale") / "runs.sqlite"
    seed_store(path, N)
    return explorer_frame(RunStore(path).runs(dataset="fashion-mnist", include_hidden=True))


def test_bounds_are_below_the_seeded_runs():
    assert max(WEBGL_FROM, TABLE_PAGE, PICKER_MAX, PARALLEL_MAX, DRAWN_MAX) < N - 3  # 3 baseline runs are not markers


def test_the_chart_draws_the_frontier_the_starred_the_chosen_and_a_fixed_sample(frame):
    front = frontier_ids(frame, "size_bytes")
    starred = frame.assign(starred=frame["id"].isin([7, 8]))
    drawn = drawn_runs(starred, front, keep=[5, None, 9])
    ids = set(drawn["id"].astype(int))
    assert len(drawn) == DRAWN_MAX and set(front) | {5, 7, 8, 9} <= ids
    assert set(frame.loc[frame["method"] == "baseline", "id"].astype(int)) <= ids
    assert drawn_runs(starred, front, keep=[5, None, 9])["id"].tolist() == drawn["id"].tolist()  # the same each time
    assert list(drawn.index) == sorted(drawn.index)  # in the frame's order
    assert len(drawn_runs(frame.head(DRAWN_MAX), front)) == DRAWN_MAX  # when all fit, all of them
    fig = pareto_chart(drawn, "size_bytes", frontier=front).to_dict()
    assert {t["type"] for t in fig["data"] if t.get("customdata")} == {"scatter"}  # up to 1,000: SVG, as before


def test_many_runs_are_drawn_by_webgl_every_one_once_with_hollow_markers_and_the_frontier(frame):
    front = frontier_ids(frame, "latency_ms")
    fig = pareto_chart(frame, "latency_ms", frontier=front, selected=front[0]).to_dict()
    drawn = [t for t in fig["data"] if t.get("x") is not None and list(t["x"]) != [None]]
    assert {t["type"] for t in drawn} == {"scattergl"}  # WebGL draws above SVG: one layer, the frontier on top
    markers = [t for t in drawn if t["mode"] == "markers" and not t["name"].startswith("selected")]
    ids = [run_id_of({"customdata": c}) for t in markers if "customdata" in t for c in t["customdata"]]
    assert sorted(ids) == sorted(int(i) for i in frame["id"])  # every run, once, as a click reads it
    hollow = {run_id_of({"customdata": c}) for t in markers for c, s in zip(t.get("customdata", []), t["marker"]["symbol"])
              if isinstance(t["marker"]["symbol"], (list, tuple)) and s.endswith("-open")}
    simulated = set(frame.loc[simulated_on(frame, "latency_ms"), "id"].astype(int))
    assert simulated and hollow == simulated - set(frame.loc[frame["method"] == "baseline", "id"])
    (line,) = [t for t in drawn if t["name"].startswith("Pareto frontier")]
    assert line["line"]["shape"] == "hv" and len(values(line["x"])) == len(front)


def test_the_lean_hover_says_what_the_full_hover_says(frame):
    """Past WEBGL_FROM the hover is a template filled in the browser; filled here the way plotly does
    (d3 formats .2f and ,), it gives each run's full hover text."""
    fig = pareto_chart(frame, "size_bytes").to_dict()
    hover = frame.set_index("id")["hover"]
    checked = 0
    for t in fig["data"]:
        if t.get("hovertemplate") != LEAN_HOVER:
            continue
        for c, y in zip(t["customdata"], values(t["y"])):
            def fill(m):
                v = y if m.group(1) == "y" else c[int(m.group(2))]
                return str(v) if m.group(3) is None else format(v, m.group(3))
            text = re.sub(r"%\{(y|customdata\[(\d+)\])(?::(\.2f|,))?\}", fill, LEAN_HOVER).replace("<extra></extra>", "")
            assert text == hover[c[0]]
            checked += 1
    assert checked == int((frame["method"] != "baseline").sum())


def test_a_few_runs_stay_svg(frame):
    fig = pareto_chart(frame.iloc[:200], "size_bytes")
    assert {t["type"] for t in fig.to_dict()["data"]} == {"scatter"}


def test_picker_offers_the_frontier_the_runs_in_use_and_the_newest(frame):
    front = frontier_ids(frame, "size_bytes")
    oldest = int(newest_first(frame)["id"].iloc[-1])
    ids = picker_ids(frame, frontier=front, keep=[oldest, None, "base", 10**9])
    newest = [int(i) for i in newest_first(frame)["id"].iloc[:PICKER_MAX]]
    assert set(ids) == set(front) | {oldest} | set(newest) and ids == sorted(ids, reverse=True)
    assert len(ids) < len(frame)
    small = frame.iloc[:PICKER_MAX]
    assert picker_ids(small) == sorted((int(i) for i in small["id"]), reverse=True)  # all when they fit


def test_parallel_chart_draws_the_frontier_then_the_newest(frame):
    front = frontier_ids(frame, "size_bytes")
    lines = parallel_runs(frame, front)
    assert len(lines) == PARALLEL_MAX and set(front) <= set(lines["id"])
    rest = frame[~frame["id"].isin(front)]
    cut = newest_first(rest)["created"].iloc[PARALLEL_MAX - len(front) - 1]
    assert (lines.loc[~lines["id"].isin(front), "created"] >= cut).all()
    assert len(parallel_runs(frame.iloc[:50], front)) == 50  # all when they fit


def test_table_pages_cover_every_run_once_newest_first(frame):
    first, pages = table_page(frame, 1)
    assert pages == -(-len(frame) // TABLE_PAGE) == 2 and len(first) == TABLE_PAGE
    assert list(first["created"]) == sorted(first["created"], reverse=True)
    last, _ = table_page(frame, 99)  # clamped to the last page
    assert pd.concat([first, last])["id"].sort_values().tolist() == frame["id"].sort_values().tolist()
    assert len(csv_frame(frame, [])) == len(frame)  # the CSV: every shown run, not a page


def test_the_page_with_many_runs_says_what_each_part_shows_and_reaches_every_run(home):
    seed_store(home / "runs.sqlite", N)
    at = page()
    assert not at.exception and not at.error
    assert len(run_ids(figure(at))) == DRAWN_MAX and shown_caption(at).startswith(f"{N:,} of {N:,} runs shown")
    assert f"The chart draws {DRAWN_MAX:,} of them" in shown_caption(at)
    at.toggle(key="explorer_draw_all").set_value(True).run()  # every run, by WebGL
    fig = figure(at)
    assert {t["type"] for t in fig["data"] if t.get("customdata")} == {"scattergl"}
    assert len(run_ids(fig)) == N and "The chart draws" not in shown_caption(at)
    options = at.selectbox(key="explorer_run").options
    assert PICKER_MAX <= len(options) < N
    captions = " ".join(c.value for c in at.caption)
    assert f"The picker lists {len(options):,} of the {N:,} shown runs" in captions
    assert not [c for c in at.get("plotly_chart") if "explorer_parallel" in c.proto.id]  # folded: not built
    assert f"The CSV download below has all {N:,}" in captions
    assert "These pickers list" in captions  # the compare view's pickers are bounded too
    at.session_state["explorer_knobs"] = True  # opened: the frontier's and the newest runs' lines
    at.run()
    (knobs,) = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if "explorer_parallel" in c.proto.id]
    assert knobs["data"][0]["type"] == "parcoords" and f"{PARALLEL_MAX:,} runs" in knobs["layout"]["title"]["text"]
    assert f"{PARALLEL_MAX:,} of the {N:,} shown runs drawn here" in " ".join(c.value for c in at.caption)
    table = at.dataframe[-1].value
    assert len(table) == TABLE_PAGE
    at.number_input(key="explorer_table_page").set_value(2).run()
    assert len(at.dataframe[-1].value) == N - TABLE_PAGE
    assert not set(at.dataframe[-1].value["run"]) & set(table["run"])  # the second page: the other runs
    offered = {int(re.match(r"run (\d+) · ", o).group(1)) for o in options}
    oldest = min(set(range(1, N + 1)) - offered)  # a run the picker does not list
    at.number_input(key="explorer_run_id").set_value(oldest).run()  # the run-id box selects any shown run
    assert not at.exception and at.selectbox(key="explorer_run").value == oldest
    assert at.number_input(key="explorer_run_id").value is None  # emptied for the next id
    assert at.query_params["run"] in (str(oldest), [str(oldest)])  # kept in the link
    at.number_input(key="explorer_run_id").set_value(10**6).run()  # not a shown run: one line, nothing changes
    assert at.selectbox(key="explorer_run").value == oldest
    assert any("Run 1000000 is not among the shown runs" in e.value for e in at.error)
    assert [b.proto.label for b in at.get("download_button")][0].startswith(f"Download these {N:,} runs (CSV)")


def test_the_chart_and_tables_are_built_once_per_store_revision_and_view(home, monkeypatch):
    """A second session (or a click that reruns the page) reuses the figure and tables built for the
    same store revision and view; a stored run makes them again."""
    from compression.charts import pareto
    seed_store(home / "runs.sqlite", 30)
    built = []
    real = pareto.pareto_chart
    monkeypatch.setattr(pareto, "pareto_chart", lambda *a, **k: built.append(1) or real(*a, **k))
    first = page()
    assert not first.exception and len(built) == 1
    again = page()
    assert len(built) == 1 and figure(again) == figure(first)  # the same view: not built again
    page(x="macs")
    assert len(built) == 2  # another x-axis: another figure
    RunStore(home / "runs.sqlite").update(1, starred=True)  # the store changed: built anew
    page()
    assert len(built) == 3
