"""The Architecture page in headless Chromium: the calculator reacts, the charts have data."""

from benchmarks.browser import exception_boxes, wait_until_idle


def _metric(page, label: str) -> str:
    box = page.get_by_test_id("stMetric").filter(has_text=label).first
    return box.get_by_test_id("stMetricValue").inner_text()


def test_architecture_page_in_a_real_browser(app_url, page, screenshots):
    page.goto(f"{app_url}/Architecture")
    page.get_by_text("Accuracy before training").first.wait_for(timeout=120_000)
    wait_until_idle(page, timeout_ms=120_000)
    assert (_metric(page, "Standard weights"), _metric(page, "Separable weights")) == ("72", "26")
    assert _metric(page, "Closed form") == "0.3611"

    # move the kernel-size slider one step right with the keyboard: 3x3 -> 4x4
    slider = page.get_by_test_id("stSlider").filter(has_text="Kernel size k").get_by_role("slider")
    slider.focus()
    slider.press("ArrowRight")
    page.wait_for_function("() => document.body.innerText.includes('0.3125')", timeout=30_000)  # 1/4 + 1/16
    wait_until_idle(page)
    assert (_metric(page, "Standard weights"), _metric(page, "Separable weights")) == ("128", "40")

    page.wait_for_selector(".js-plotly-plot .barlayer .point", timeout=30_000)      # weight bars
    page.wait_for_selector(".js-plotly-plot .scatterlayer .point", timeout=30_000)  # accuracy vs cost
    assert "Parameters" in page.inner_text("body")
    assert not exception_boxes(page)
    page.screenshot(path=str(screenshots / "architecture.png"), full_page=True)
