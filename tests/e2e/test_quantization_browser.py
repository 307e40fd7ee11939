"""The Quantization page in headless Chromium: move the bits slider, a new measured result and
charts with data appear, no exception box; screenshots saved."""

from benchmarks.browser import exception_boxes, wait_until_idle


def _subheaders(page) -> str:
    return " | ".join(h.inner_text() for h in page.query_selector_all("h3"))


def test_quantization_page_in_a_real_browser(app_url, page, screenshots):
    page.goto(f"{app_url}/Quantization")
    page.get_by_text("Stored size").first.wait_for(timeout=180_000)
    wait_until_idle(page, timeout_ms=180_000)
    assert "uniform 8-bit per-channel symmetric" in _subheaders(page)
    body = page.inner_text("body")
    assert "layers quantized" in body and not exception_boxes(page)
    page.screenshot(path=str(screenshots / "quantization-8bit.png"), full_page=True)

    # move the weight-bits slider from 8 down to 4 with the keyboard
    slider = page.get_by_test_id("stSlider").filter(has_text="Weight bits").get_by_role("slider")
    slider.focus()
    for _ in range(4):
        slider.press("ArrowLeft")
    page.get_by_role("heading", name="uniform 4-bit per-channel symmetric").first.wait_for(timeout=180_000)
    # no 4-bit kernel: the page says latency is simulated. Waited for rather than read at once: the
    # status widget can report idle before the rerun has replaced the 8-bit result below the heading
    page.get_by_text("Latency is simulated").first.wait_for(timeout=180_000)
    wait_until_idle(page, timeout_ms=180_000)
    assert "Conv layers in float32" not in page.inner_text("body")  # nothing left of the 8-bit result
    page.wait_for_selector(".js-plotly-plot .point", timeout=60_000)  # charts with data
    assert page.locator(".js-plotly-plot").count() >= 2
    assert not exception_boxes(page)
    page.screenshot(path=str(screenshots / "quantization.png"), full_page=True)
