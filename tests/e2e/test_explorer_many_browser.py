"""The Pareto explorer in headless Chromium with more runs than its SVG, drawn, picker, parallel-chart
and table bounds (issue 29): a sample drawn, then "Draw all": the markers drawn by WebGL, a click on one selects its run, the run-id box
selects a run the picker does not list, and the CSV download has every run."""

import os
from pathlib import Path

from benchmarks.bench_explorer import seed_store
from benchmarks.browser import exception_boxes, wait_for_points, wait_until_idle
from compression.charts.explorer_scale import DRAWN_MAX, PICKER_MAX
from compression.store import RunStore

N = 1100  # above WEBGL_FROM, TABLE_PAGE and PARALLEL_MAX (1,000) and PICKER_MAX (500)

# a WebGL marker's place on the screen, from plotly's own axes (a canvas has no element per point):
# the lowest point of the smallest method's trace (alone there, so the click lands on it alone)
MARKER = """() => { const gd = document.querySelector('.js-plotly-plot'); const fl = gd._fullLayout;
    const t = gd._fullData.filter(d => d.type === 'scattergl' && d.mode === 'markers' && d.customdata
                                       && d.name !== 'uncompressed (baseline run)')
                          .sort((a, b) => a.x.length - b.x.length)[0];
    let k = 0; for (let i = 0; i < t.y.length; i++) if (t.y[i] < t.y[k]) k = i;
    const r = gd.getBoundingClientRect();
    return {x: r.left + fl.xaxis._offset + fl.xaxis.c2p(t.x[k]), y: r.top + fl.yaxis._offset + fl.yaxis.c2p(t.y[k])}; }"""


def test_many_runs_webgl_click_run_id_box_and_csv(app_url, page, screenshots):
    home = Path(os.environ["COMPRESSION_HOME"])
    seed_store(home / "runs.sqlite", N)  # beside the fixture's baseline run
    total = len(RunStore(home / "runs.sqlite").runs(include_hidden=True))
    page.goto(f"{app_url}/Pareto_explorer")
    wait_for_points(page, 120_000)
    wait_until_idle(page, 120_000)
    assert page.locator(".js-plotly-plot .scatterlayer .point").count() == DRAWN_MAX  # a sample, in SVG
    assert f"The chart draws {DRAWN_MAX:,} of them" in page.inner_text("body")
    page.get_by_text(f"Draw all {total:,} runs").click()
    page.wait_for_function("() => !document.querySelector('.js-plotly-plot .scatterlayer .point')", timeout=120_000)
    wait_for_points(page, 120_000)
    wait_until_idle(page, 120_000)
    assert not page.locator(".js-plotly-plot .scatterlayer .point").count()  # no SVG marker: WebGL
    body = page.inner_text("body")
    assert f"{total:,} of {total:,} runs shown" in body and "The picker lists" in body
    assert f"The CSV download below has all {total:,}" in body and not exception_boxes(page)
    page.screenshot(path=str(screenshots / "explorer-many.png"), full_page=True)

    at = page.evaluate(MARKER)
    page.mouse.move(at["x"], at["y"])  # the hover: the template filled from the run's fields (LEAN_HOVER)
    label = page.locator(".js-plotly-plot .hoverlayer .hovertext").first
    label.wait_for(timeout=30_000)
    text = label.text_content()  # an SVG node
    assert text.startswith("run ") and "accuracy" in text and "95% CI" in text and "%{" not in text, text
    page.mouse.click(at["x"], at["y"])
    page.locator("[data-testid='stMarkdown']", has_text="measured on").first.wait_for(timeout=60_000)
    wait_until_idle(page, 120_000)
    assert "run=" in page.url and not exception_boxes(page)

    # run 4: among the oldest, so not among the picker's newest PICKER_MAX (any run works in the box)
    assert total - 4 > PICKER_MAX
    box = page.locator(".st-key-explorer_run_id input")
    box.fill("4")
    box.press("Enter")
    page.wait_for_function("() => /[?&]run=4(&|$)/.test(location.search)", timeout=60_000)
    wait_until_idle(page, 120_000)
    details = page.locator("[data-testid='stMarkdown']", has_text="measured on").first.inner_text()
    assert details.startswith("Run 4:") and not exception_boxes(page)

    with page.expect_download(timeout=120_000) as download:
        page.get_by_role("button", name=f"Download these {total:,} runs (CSV)").click()
    assert len(Path(download.value.path()).read_text().strip().splitlines()) == total + 1  # header + every run
