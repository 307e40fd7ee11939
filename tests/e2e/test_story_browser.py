"""What a stakeholder receives matches what was measured (issue 26), in headless Chromium: a store
with a few runs (three starred, two of them named), the explorer opens on their story (filters
folded away), and the story table on the page, the CSV and the HTML report of the same starred
runs say the same words: the names, "x smaller", "x faster" or "no measurable change"."""

import csv
import io
import os
from pathlib import Path

from benchmarks.browser import exception_boxes, wait_until_idle
from compression.charts.story import story_table
from compression.charts.pareto import explorer_frame
from compression.store import RunStore
from story_runs import seed_story  # tests/story_runs.py


def _story_rows(page) -> list[list[str]]:
    """The story table's rows as the page shows them: st.dataframe draws on a canvas and keeps an
    accessible table of the cells in view beside it (the story's reading order puts the name, the
    accuracy and the ratios first, so they are in view)."""
    grid = page.get_by_test_id("stDataFrame").first  # the story table comes first in the story view
    grid.wait_for(timeout=60_000)
    # the grid's accessible table is filled after the canvas: seen empty ([]) right after the grid showed
    grid.locator("th", has_text="latency vs baseline").first.wait_for(state="attached", timeout=60_000)
    head = grid.evaluate("e => [...e.querySelectorAll('th')].map(x => x.textContent)")
    assert "accuracy change" in head and "latency vs baseline" in head, head
    return grid.evaluate("e => [...e.querySelectorAll('tr')].map(r => [...r.querySelectorAll('td')]"
                         ".map(c => c.textContent)).filter(r => r.length)")


def test_story_csv_and_report_say_the_same_words(app_url, page, screenshots):
    home = Path(os.environ["COMPRESSION_HOME"])
    ids = seed_story(home / "runs.sqlite")
    starred = [ids["prune"], ids["quant"], ids["pipe"]]
    store = RunStore(home / "runs.sqlite")
    expected = story_table(explorer_frame([store.get(i) for i in starred]))  # the words, from the stored pair
    words = {int(r["run"]): (r["name"], r["size vs baseline"], r["latency vs baseline"])
             for r in expected.to_dict("records")}
    assert words[ids["prune"]][0] == "Half the channels, fine-tuned 1 epoch"
    assert words[ids["pipe"]][0] == "unstructured 0.8, 1 epoch → 4-bit per-channel"  # no name: what it did
    assert words[ids["prune"]][2].endswith("x faster") and words[ids["quant"]][2] == "no measurable change"

    # the explorer opens on the story of the starred runs, the filters folded away
    page.goto(f"{app_url}/Pareto_explorer")
    page.get_by_text("The story: starred runs against their baselines").wait_for(timeout=120_000)
    wait_until_idle(page)
    assert not exception_boxes(page)
    body = page.inner_text("body")
    assert "3 of " in body and " runs shown" in body
    filters = page.locator(".st-key-explorer_filters details")
    assert filters.get_attribute("open") is None  # folded
    assert not page.get_by_text("Created between (UTC)").is_visible()
    page.screenshot(path=str(screenshots / "explorer-story-labels.png"), full_page=False)
    for name in ("Half the channels, fine-tuned 1 epoch", "8-bit cnn"):  # the chart is labelled with the names
        page.locator(".js-plotly-plot .textpoint", has_text=name.split(",")[0]).first.wait_for(timeout=30_000)
    page.screenshot(path=str(screenshots / "explorer-story-labels.png"), full_page=False)

    rows = _story_rows(page)
    assert len(rows) == 3
    for run_id, (name, size, latency) in words.items():
        assert any(name in r and size in r and latency in r for r in rows), (name, size, latency, rows)

    # the CSV of the same runs (the story view shows only them)
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Download these 3 runs (CSV)").click()
    table = {int(r["run"]): r for r in csv.DictReader(io.StringIO(Path(download.value.path()).read_text()))}
    assert sorted(table) == sorted(starred)
    for run_id, (name, size, latency) in words.items():
        row = table[run_id]
        assert (row["name"] or row["description"]) == name
        assert row["size vs baseline"] == size and row["latency vs baseline"] == latency
    wait_until_idle(page)

    # the report of the same runs
    with page.expect_download(timeout=120_000) as download:
        page.get_by_role("button", name="Download a report").click()
    report = Path(download.value.path()).read_text()
    starred_part = report[report.index("Starred runs (3)"):]
    starred_part = starred_part[:starred_part.index("</table>")]
    for run_id, (name, size, latency) in words.items():
        for text in (name, size, latency):
            assert text in starred_part, (text, run_id)
    assert not exception_boxes(page)
