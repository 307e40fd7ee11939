"""The Budget search page in headless Chromium: pick the mlp, search the default grid under the
default budget (an eighth of the stored size), and see the chosen configuration, the curve with
data, no exception box; screenshot saved."""

import re

from benchmarks.browser import exception_boxes, select_option, wait_until_idle


def test_budget_search_in_a_real_browser(app_url, page, screenshots):
    page.goto(f"{app_url}/Budget_search")
    page.get_by_text("configurations to try").first.wait_for(timeout=120_000)
    wait_until_idle(page, timeout_ms=120_000)
    select_option(page, "Model", "mlp", sidebar=True)
    wait_until_idle(page, timeout_ms=120_000)
    page.get_by_text("of the uncompressed 1.02 MiB").first.wait_for(timeout=120_000)
    page.get_by_role("button", name="Search").click()
    page.get_by_text(re.compile(r"^Chosen: ")).first.wait_for(timeout=300_000)  # the job's final message
    wait_until_idle(page, timeout_ms=120_000)
    page.wait_for_selector(".js-plotly-plot .scatterlayer .point", timeout=60_000)  # the curve has data
    body = page.inner_text("body")
    assert "within budget" in body and "points" in body and "Best so far" not in body
    assert not exception_boxes(page)
    page.screenshot(path=str(screenshots / "budget.png"), full_page=True)
