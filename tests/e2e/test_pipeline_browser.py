"""The Pipelines page in headless Chromium: build a tiny pipeline (prune the mlp, then store its
weights in 8 bits; fine-tuning on 1,000 images) with the builder, run it, and see the path chart with data,
the final file's download and no exception box; screenshot saved."""

from benchmarks.browser import exception_boxes, select_option, wait_until_idle


def test_pipeline_page_runs_a_tiny_pipeline(app_url, page, screenshots):
    page.goto(f"{app_url}/Pipelines")
    page.get_by_text("Named recipe").first.wait_for(timeout=120_000)
    wait_until_idle(page, timeout_ms=120_000)
    select_option(page, "Model", "mlp", sidebar=True)
    wait_until_idle(page, timeout_ms=120_000)
    page.get_by_text("pipeline --model mlp").first.wait_for(timeout=120_000)  # the recipe's command line
    assert "Han et al. 2016" in page.inner_text("body")

    page.get_by_text("Build your own").first.click()
    page.get_by_role("button", name="Add step").wait_for(timeout=60_000)
    wait_until_idle(page)
    page.get_by_role("button", name="Add step").click()           # prune:unstructured:0.5 + 1 epoch
    page.get_by_text("pipeline --model mlp --steps").first.wait_for(timeout=60_000)
    wait_until_idle(page)
    select_option(page, "Step to add", "quantize")
    page.get_by_test_id("stSelectbox").filter(has_text="Bits").first.wait_for(timeout=60_000)
    wait_until_idle(page)
    page.get_by_role("button", name="Add step").click()           # quantize:uniform:8
    page.get_by_text("quantize:uniform:8").first.wait_for(timeout=60_000)
    wait_until_idle(page)
    slider = page.get_by_test_id("stSlider").filter(has_text="Training images per epoch").get_by_role("slider")
    slider.focus()
    slider.press("Home")                                             # 1,000 images: a quick run
    page.get_by_text("--subset 1000").first.wait_for(timeout=60_000)
    wait_until_idle(page)
    body = page.inner_text("body")
    assert "prune:unstructured:0.5" in body and "quantize:uniform:8" in body and "--subset 1000" in body

    page.get_by_role("button", name="Run the pipeline").click()
    page.get_by_text("Download the final model").first.wait_for(timeout=300_000)
    wait_until_idle(page, timeout_ms=120_000)
    page.wait_for_selector(".js-plotly-plot .scatterlayer .point", timeout=60_000)  # the path chart has data
    body = page.inner_text("body")
    assert "smaller" in body and "Stored size" in body
    assert not exception_boxes(page)
    page.screenshot(path=str(screenshots / "pipelines.png"), full_page=True)
