"""The pruning page in headless Chromium: move the ratio slider, a new measured result and the
Plotly charts (with data) follow, no exception box."""

from benchmarks.browser import exception_boxes, wait_until_idle


def _metric(page, label: str) -> str:
    box = page.get_by_test_id("stMetric").filter(has_text=label).first
    return box.get_by_test_id("stMetricValue").inner_text()


def test_pruning_page_slider_in_a_real_browser(app_url, page, screenshots):
    page.goto(f"{app_url}/Pruning")
    # first visit: the baseline and one pruning are measured on all 10k test images
    page.get_by_text("Nonzero parameters").first.wait_for(timeout=300_000)
    wait_until_idle(page, 120_000)
    assert not exception_boxes(page)
    before = _metric(page, "Nonzero parameters")
    assert "simulated" in page.inner_text("body")  # unstructured by default: speed simulated
    # latency is timed on the sidebar's runtime (eager by default)
    assert page.get_by_test_id("stSidebar").get_by_text("Latency runtime").is_visible()

    slider = page.get_by_test_id("stSlider").filter(has_text="Pruning ratio").get_by_role("slider")
    slider.focus()
    for _ in range(6):  # 0.50 -> 0.80 in steps of 0.05
        page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=stMetricValue]')].length > 0", timeout=30_000)
    page.wait_for_timeout(1500)  # let the rerun start before waiting for it to finish
    wait_until_idle(page, 120_000)
    page.wait_for_function(
        f"""() => {{
            const boxes = [...document.querySelectorAll('[data-testid=stMetric]')];
            const box = boxes.find(b => b.innerText.includes('Nonzero parameters'));
            return box && !box.innerText.includes({before!r});
        }}""", timeout=120_000)
    assert _metric(page, "Nonzero parameters") != before
    assert "0.80" in page.get_by_test_id("stSlider").filter(has_text="Pruning ratio").inner_text()
    # charts with data: per-layer bars; then, once the result is kept, the accuracy-vs-ratio curve of
    # the stored runs (a slider's result is a preview until kept)
    page.wait_for_selector(".js-plotly-plot .barlayer .point", timeout=30_000)
    page.get_by_role("button", name="Keep this run").click()
    page.get_by_text("Kept as run").wait_for(timeout=60_000)
    page.get_by_role("button", name="Time on every runtime").wait_for(timeout=30_000)  # under the full result
    wait_until_idle(page, 120_000)
    page.wait_for_selector(".js-plotly-plot .scatterlayer .point", timeout=30_000)
    assert not exception_boxes(page)
    page.screenshot(path=str(screenshots / "pruning.png"), full_page=True)
