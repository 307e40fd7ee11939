"""The Dynamic computation page in headless Chromium: move the threshold slider with the keyboard,
the metrics follow, the Plotly charts have data, no exception box; a screenshot is saved."""

from benchmarks.browser import exception_boxes, select_option, wait_until_idle


def _metric(page, label: str) -> str:
    box = page.get_by_test_id("stMetric").filter(has_text=label).first
    return box.get_by_test_id("stMetricValue").inner_text()


def test_dynamic_page_in_a_real_browser(app_url, page, screenshots):
    page.goto(f"{app_url}/Dynamic_computation")
    # the sidebar's cnn has no exits: the page says so, and the model picked here becomes the sidebar's
    page.get_by_text("the sidebar's model, has no early exits").wait_for(timeout=120_000)
    wait_until_idle(page)
    select_option(page, "Model with early exits", "lenet5_exits")
    page.get_by_text("Mean MACs / image").first.wait_for(timeout=240_000)  # cold: exit tables computed
    wait_until_idle(page)
    sidebar_model = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").filter(has_text="Model").first
    shown = sidebar_model.inner_text() + " ".join(i.input_value() for i in sidebar_model.locator("input").all())
    assert "lenet5_exits" in shown
    page.wait_for_selector(".js-plotly-plot .scatterlayer .trace", timeout=60_000)  # the curve has data
    assert page.locator(".js-plotly-plot").count() >= 2
    assert not exception_boxes(page)
    before = (_metric(page, "Accuracy"), _metric(page, "Mean MACs / image"), _metric(page, "Leave at exit 1"))

    thumb = page.get_by_test_id("stSlider").first.get_by_role("slider")
    thumb.focus()
    thumb.press("End")  # threshold 1.0: no image leaves early
    page.get_by_test_id("stMetric").filter(has_text="Run to the end").get_by_text("100.0 %").wait_for(timeout=60_000)
    wait_until_idle(page)
    after = (_metric(page, "Accuracy"), _metric(page, "Mean MACs / image"), _metric(page, "Leave at exit 1"))
    assert after != before and after[2] == "0.0 %"

    thumb.focus()
    thumb.press("Home")  # threshold 0.0: every image leaves at the first exit
    page.get_by_test_id("stMetric").filter(has_text="Leave at exit 1").get_by_text("100.0 %").wait_for(timeout=60_000)
    wait_until_idle(page)
    assert _metric(page, "Mean MACs / image") not in (before[1], after[1])
    assert not exception_boxes(page)
    page.screenshot(path=str(screenshots / "dynamic.png"), full_page=True)
