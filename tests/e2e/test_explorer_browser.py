"""The Pareto explorer in headless Chromium: a chart with data, the x-axis switch (kept in the URL),
a click on a marker opening that run's details, the report and CSV downloads, a link
reproducing the view, a run's artifact downloaded twice, and starring a run for the story view."""

import os
from pathlib import Path

from benchmarks.bench_explorer import seed_store
from benchmarks.browser import exception_boxes, select_option, wait_until_idle
from compression.metrics import Metrics, Result
from compression.store import RunStore

POINTS = ".js-plotly-plot .scatterlayer .point"


def test_explorer_in_a_real_browser(app_url, page, screenshots):
    home = Path(os.environ["COMPRESSION_HOME"])
    seed_store(home / "runs.sqlite", 60)  # beside the fixture's baseline run
    (home / "artifacts").mkdir(exist_ok=True)
    artifact = home / "artifacts" / "mlp-e2e.cxp"
    artifact.write_bytes(bytes(range(256)) * 40)
    m = Metrics(0.8801, 10000, 66000, 66000, len(artifact.read_bytes()), 66000.0, 0.05, False)
    base = Metrics(0.8980, 10000, 266610, 266610, 1069077, 266200, 0.060, False)
    kept = RunStore(home / "runs.sqlite").add(Result("mlp", "fashion-mnist", "quantize", {"bits": 8}, "cpu", m, base),
                                              artifact_path=str(artifact))
    page.goto(f"{app_url}/Pareto_explorer")
    page.get_by_text("Pareto frontier: accuracy against stored size").wait_for(timeout=90_000)
    wait_until_idle(page)
    page.wait_for_selector(POINTS, timeout=30_000)
    assert page.locator(POINTS).count() >= 60  # every run drawn (plus stars and the frontier)
    assert "62 of 62 runs shown" in page.inner_text("body")
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
    wait_until_idle(page)
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Download these 62 runs (CSV)").click()
    assert len(Path(download.value.path()).read_text().strip().splitlines()) == 63  # header + 62 runs

    # the link reproduces the view in a fresh visit
    link = page.url
    page.goto("about:blank")
    page.goto(link)
    page.locator(".js-plotly-plot .xtitle", has_text="MACs per image").wait_for(timeout=60_000)
    wait_until_idle(page)
    details.first.wait_for(timeout=30_000)  # the selected run's details again
    assert not exception_boxes(page)

    # a run's artifact: built when clicked, a second download works too (no "Deferred file not found")
    page.goto(f"{app_url}/Pareto_explorer?run={kept}")
    button = page.get_by_role("button", name="Download the compressed model")
    button.wait_for(timeout=60_000)
    wait_until_idle(page)
    for _ in range(2):
        with page.expect_download(timeout=60_000) as download:
            button.click()
        assert Path(download.value.path()).read_bytes() == artifact.read_bytes()
        wait_until_idle(page)
    assert not exception_boxes(page)

    # name and star it, then the story view shows it alone, labelled with its name
    name = page.locator(f".st-key-explorer_name_{kept} input")
    name.fill("8-bit mlp, 4x smaller")
    name.press("Enter")
    wait_until_idle(page)
    star = page.locator(f".st-key-explorer_star_{kept}")
    star.get_by_role("button", name="Star", exact=True).click()
    star.get_by_role("button", name="Unstar", exact=True).wait_for(timeout=30_000)
    wait_until_idle(page)
    page.get_by_text("Story view: starred runs only").click()
    page.locator(".js-plotly-plot .textpoint", has_text="8-bit mlp, 4x smaller").wait_for(timeout=30_000)
    wait_until_idle(page)
    assert "story=1" in page.url and "1 of 62 runs shown" in page.inner_text("body")
    assert not exception_boxes(page)
    page.screenshot(path=str(screenshots / "explorer-story.png"), full_page=True)
