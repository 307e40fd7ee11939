"""The Pareto explorer in headless Chromium: a chart with data, the x-axis switch (kept in the URL),
a click on a marker opening that run's details, the report and CSV downloads, and a link
reproducing the view."""

import os
from pathlib import Path

from benchmarks.bench_explorer import seed_store
from benchmarks.browser import exception_boxes, select_option, wait_until_idle

POINTS = ".js-plotly-plot .scatterlayer .point"


def test_explorer_in_a_real_browser(app_url, page, screenshots):
    seed_store(Path(os.environ["COMPRESSION_HOME"]) / "runs.sqlite", 60)  # beside the fixture's baseline run
    page.goto(f"{app_url}/Pareto_explorer")
    page.get_by_text("Pareto frontier: accuracy against stored size").wait_for(timeout=90_000)
    wait_until_idle(page)
    page.wait_for_selector(POINTS, timeout=30_000)
    assert page.locator(POINTS).count() >= 60  # every run drawn (plus stars and the frontier)
    assert "61 of 61 runs shown" in page.inner_text("body")
    assert not exception_boxes(page)

    select_option(page, "x-axis", "MACs per image")
    page.locator(".js-plotly-plot .xtitle", has_text="MACs per image").wait_for(timeout=30_000)
    wait_until_idle(page)
    assert "x=macs" in page.url
    assert page.locator(POINTS).count() >= 60
    assert not exception_boxes(page)
    page.screenshot(path=str(screenshots / "explorer.png"), full_page=True)

    # a click on a marker selects that run: its details (metrics against the baseline) open below
    box = page.locator(POINTS).first.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    details = page.locator("[data-testid='stMarkdown']", has_text="measured on")
    details.first.wait_for(timeout=30_000)
    wait_until_idle(page)
    assert "run=" in page.url and not exception_boxes(page)

    # the report button builds the HTML report of what is shown, with every chart
    with page.expect_download(timeout=120_000) as download:
        page.get_by_role("button", name="Download a report").click()
    report = Path(download.value.path()).read_text()
    assert report.startswith("<!DOCTYPE html>") and report.count('class="plotly-graph-div"') == 4
    assert 'id="frontier-fashion-mnist-size_bytes"' in report
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Download these 61 runs (CSV)").click()
    assert len(Path(download.value.path()).read_text().strip().splitlines()) == 62  # header + 61 runs

    # the link reproduces the view in a fresh visit
    link = page.url
    page.goto("about:blank")
    page.goto(link)
    page.locator(".js-plotly-plot .xtitle", has_text="MACs per image").wait_for(timeout=60_000)
    wait_until_idle(page)
    details.first.wait_for(timeout=30_000)  # the selected run's details again
    assert not exception_boxes(page)
