"""The Search page (at the old /Budget_search URL) in headless Chromium: pick the mlp, run a 4-trial
search without the budget grid under the default budget (an eighth of the stored size), and see
the choice (or the near miss), the trials with their front, Optuna's views, the command line, no
exception box; screenshot saved."""

import re

from benchmarks.browser import exception_boxes, select_option, wait_until_idle


def test_search_in_a_real_browser(app_url, page, screenshots):
    page.goto(f"{app_url}/Budget_search")
    page.get_by_text("Executor:").first.wait_for(timeout=120_000)
    wait_until_idle(page, timeout_ms=120_000)
    select_option(page, "Model", "mlp", sidebar=True)
    wait_until_idle(page, timeout_ms=120_000)
    page.get_by_text("than the uncompressed 1.02 MiB").first.wait_for(timeout=120_000)
    trials = page.get_by_role("spinbutton", name="Trials to run")
    trials.fill("4")
    trials.press("Enter")
    wait_until_idle(page, timeout_ms=60_000)
    page.locator("label").filter(has_text="Solver's candidates first").first.click()
    wait_until_idle(page, timeout_ms=60_000)
    page.get_by_role("button", name="Search", exact=True).click()
    page.get_by_text("Reproduce or continue it").first.wait_for(timeout=600_000)  # the job's final view
    wait_until_idle(page, timeout_ms=120_000)
    page.wait_for_selector(".js-plotly-plot .scatterlayer .point", timeout=60_000)  # the trials chart has data
    # the command line is a code block that the browser highlights after the rest (seen missing under load)
    page.wait_for_function("document.body.innerText.includes('--trials 4')", timeout=60_000)
    body = page.inner_text("body")
    assert re.search(r"Best that fits the budget: |Best near miss", body) and "The front" in body
    assert "--no-grid" in body and "--trials 4" in body and "0 done" not in body
    assert not exception_boxes(page)
    page.screenshot(path=str(screenshots / "search.png"), full_page=True)
