"""The home page in headless Chromium: baseline card, gallery, a plotly chart with data."""

from benchmarks.browser import exception_boxes, select_option, wait_until_idle


def test_home_page_in_a_real_browser(app_url, page, screenshots):
    page.goto(app_url)
    page.get_by_text("Test accuracy").first.wait_for(timeout=90_000)
    wait_until_idle(page)
    body = page.inner_text("body")
    for label in ("Parameters", "Size on disk", "MACs / image", "Latency (batch 1)", "Images / s"):
        assert label in body
    assert "Predictions on test images" in body
    page.wait_for_selector(".js-plotly-plot .scatterlayer .point", timeout=30_000)  # the chart has data
    assert not exception_boxes(page)
    page.screenshot(path=str(screenshots / "home.png"), full_page=True)

    # switch the model in the sidebar: the baseline card follows
    select_option(page, "Model", "mlp", sidebar=True)
    page.get_by_text("266,610").wait_for(timeout=60_000)
    wait_until_idle(page)
    assert not exception_boxes(page)
