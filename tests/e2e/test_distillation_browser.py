"""The Distillation page in headless Chromium: the teacher's soft labels are drawn, and moving T
redraws them. (Training through the page is covered by the AppTest in test_distillation_page.py;
in a browser on 2 loaded cores it takes minutes, too long for CI.)"""

from benchmarks.browser import exception_boxes, wait_until_idle


def _slider(page, label: str):
    return page.get_by_test_id("stSlider").filter(has_text=label).first.get_by_role("slider")


def test_distillation_page_in_a_real_browser(app_url, page, screenshots):
    page.goto(f"{app_url}/Distillation")
    page.get_by_text("Soft labels of the teacher").first.wait_for(timeout=120_000)
    wait_until_idle(page)
    page.wait_for_selector(".js-plotly-plot .barlayer .point", timeout=60_000)  # the soft-label bars have data
    assert page.get_by_text("T = 2 (soft labels)").count() >= 1
    assert not exception_boxes(page)

    # move T to its maximum with the keyboard: the chart follows
    _slider(page, "Temperature T").press("End")
    page.get_by_text("T = 20 (soft labels)").first.wait_for(timeout=60_000)
    wait_until_idle(page)
    assert "at T = 20" in page.inner_text("body")
    assert not exception_boxes(page)
    page.screenshot(path=str(screenshots / "distillation.png"), full_page=True)
